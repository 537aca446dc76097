// serf-events: prints Serf membership events as they come, one line each (a debugging aid).
//
//   serf-events --serf-rpc 127.0.0.1:7373 [--serf-auth-key KEY] [--nodes]
//
// By default every member of every stream record is printed as
//   <event> <member> <ip:port> <status> k=v,k=v
// starting with a "resync" of the full member list (repeated after each reconnect). With
// --nodes the node monitor's events are printed instead (discovered/disappeared/updated node
// or manager, see net/serf_membership.h). Runs until SIGINT or SIGTERM (exit 0); exits 1 when
// the first connection fails, 2 on bad usage. Later disconnects and reconnects are reported on
// stderr.
#include <atomic>
#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>

#include "clustermgr_version.h"
#include "net/serf_client.h"
#include "net/serf_monitor.h"
#include "tools/command_line.h"

namespace {

using clustermgr::net::SerfClient;
using clustermgr::net::SerfClientOptions;
using clustermgr::net::SerfConnectionEvent;
using clustermgr::net::SerfMemberEvent;
using clustermgr::net::SerfMonitor;
using clustermgr::net::SerfNodeEvent;

constexpr const char* kUsage = "usage: serf-events --serf-rpc ADDR [--serf-auth-key KEY] [--nodes]";

std::mutex out_mu;

void PrintLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(out_mu);
  std::cout << line << std::endl;  // flushed: the output is usually piped or watched
}

void PrintRecord(const SerfMemberEvent& e) {
  for (const auto& m : e.members) {
    std::string tags;
    for (const auto& [k, v] : m.tags) {
      if (!tags.empty()) tags += ",";
      tags += k + "=" + v;
    }
    PrintLine(e.event + " " + m.name + " " + m.Endpoint() + " " + m.status + " " + tags);
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  SerfClientOptions options;
  bool nodes = false;
  po::options_description desc("serf-events options");
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("serf-rpc", po::value(&options.address)->required()->value_name("ADDR"),
       "the Serf agent's RPC address (HOST:PORT)")
    ("serf-auth-key", po::value(&options.auth_key)->value_name("KEY"), "Serf RPC auth key")
    ("nodes", po::bool_switch(&nodes),
       "print the node monitor's events instead of raw member events");
  // clang-format on
  try {
    po::variables_map vm;
    po::store(clustermgr::tools::ParseCommandLine(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << kUsage << "\n\n"
                << "Prints Serf membership events as they come, one line each.\n\n"
                << desc << "\nexit status: 0 stopped by SIGINT/SIGTERM, 1 the first connection "
                << "failed, 2 usage error.\n";
      return 0;
    }
    if (vm.count("version")) {
      std::cout << "serf-events " CLUSTERMGR_VERSION "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "serf-events: " << e.what() << "\n" << kUsage << "\n";
    return 2;
  }

  // Wait for SIGINT/SIGTERM synchronously: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Connection changes after the first connection (whose failure main reports itself).
  static std::atomic<bool> started{false};
  options.on_connection = [](const SerfConnectionEvent& e) {
    if (!started) return;
    std::lock_guard<std::mutex> lock(out_mu);
    if (e.connected) {
      std::cerr << "serf-events: connected" << std::endl;
    } else {
      std::cerr << "serf-events: " << e.reason.message() << std::endl;
    }
  };

  std::unique_ptr<SerfMonitor> monitor;
  std::unique_ptr<SerfClient> client;
  if (nodes) {
    monitor = std::make_unique<SerfMonitor>(
        options, [](const SerfNodeEvent& e) { PrintLine(clustermgr::net::ToString(e)); });
    auto st = monitor->WaitConnected(options.connect_timeout + 2 * options.request_timeout);
    if (!st.ok()) {
      std::cerr << "serf-events: " << st.message() << std::endl;
      return 1;
    }
  } else {
    auto connected = SerfClient::Connect(options);
    if (!connected.ok()) {
      std::cerr << "serf-events: " << connected.status().message() << std::endl;
      return 1;
    }
    client = std::move(connected).value();
    auto sub = client->SubscribeMembers(PrintRecord);
    if (!sub.ok()) {
      std::cerr << "serf-events: " << sub.status().message() << std::endl;
      return 1;
    }
  }
  started = true;
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}
