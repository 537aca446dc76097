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
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>

#include "net/serf_client.h"
#include "net/serf_monitor.h"

namespace {

using clustermgr::net::SerfClient;
using clustermgr::net::SerfClientOptions;
using clustermgr::net::SerfConnectionEvent;
using clustermgr::net::SerfMemberEvent;
using clustermgr::net::SerfMonitor;
using clustermgr::net::SerfNodeEvent;

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

int Usage(const char* error) {
  if (error) std::cerr << "serf-events: " << error << "\n";
  std::cerr << "usage: serf-events --serf-rpc HOST:PORT [--serf-auth-key KEY] [--nodes]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  SerfClientOptions options;
  bool nodes = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string(name) + "=";
      if (arg.rfind(prefix, 0) == 0) return argv[i] + prefix.size();
      if (arg == name && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (arg == "-h" || arg == "--help") {
      Usage(nullptr);
      return 0;
    } else if (arg == "--nodes") {
      nodes = true;
    } else if (arg.rfind("--serf-rpc", 0) == 0) {
      const char* v = value("--serf-rpc");
      if (!v) return Usage("--serf-rpc needs a value");
      options.address = v;
    } else if (arg.rfind("--serf-auth-key", 0) == 0) {
      const char* v = value("--serf-auth-key");
      if (!v) return Usage("--serf-auth-key needs a value");
      options.auth_key = v;
    } else {
      return Usage(("unknown argument " + arg).c_str());
    }
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
