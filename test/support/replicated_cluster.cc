#include "test/support/replicated_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace clustermgr::test {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

ReplicatedCluster::ReplicatedCluster(std::string bin_dir)
    : bin_dir_(std::move(bin_dir)),
      dir_(MakeTempDir("clustermgr-repl")),
      keep_dir_(std::getenv("CLUSTERMGR_KEEP_TEST_DIRS") != nullptr) {}

ReplicatedCluster::~ReplicatedCluster() {
  for (auto& i : instances_) {
    if (i->process_) i->process_->Kill();
  }
  instances_.clear();
  if (keep_dir_) {
    std::fprintf(stderr, "kept %s\n", dir_.c_str());
  } else {
    RemoveTree(dir_);
  }
}

net::RpcClient& ReplicatedCluster::Instance::client() {
  if (!client_) {
    net::RpcClient::Options o;
    o.timeout = 5s;
    o.curve = options_.client_curve;
    client_ = std::make_unique<net::RpcClient>(rpc_url_, o);
  }
  return *client_;
}

std::string ReplicatedCluster::Instance::LogTail(size_t bytes) const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

bool ReplicatedCluster::Instance::Start(std::string* error,
                                        const std::vector<std::string>& extra_args) {
  if (process_ && process_->Running()) {
    *error = name() + " is already running";
    return false;
  }
  ProcessOptions p;
  p.program = program_;
  p.args = {"--name=" + name(), "--data-dir=" + data_dir_};
  if (options_.insecure) p.args.push_back("--insecure");
  auto with_port = [&](std::string s) {
    if (auto at = s.find("PORT"); at != std::string::npos) {
      s.replace(at, 4, gossip_.substr(gossip_.rfind(':') + 1));
    }
    return s;
  };
  const std::string bind = options_.gossip_bind.empty() ? gossip_ : with_port(options_.gossip_bind);
  p.args.insert(p.args.end(),
                {"--rpc-bind=" + rpc_url_, "--gossip-bind=" + bind,
                 "--serf-rpc=" + (options_.serf_rpc.empty() ? "127.0.0.1:1" : options_.serf_rpc),
                 std::string("--sync=") + (options_.sync ? "true" : "false")});
  for (const auto& peer : peers_) p.args.push_back("--peer=" + peer);
  if (!options_.gossip_advertise.empty()) {
    p.args.push_back("--gossip-advertise=" + with_port(options_.gossip_advertise));
  }
  for (const auto& a : options_.extra_args) p.args.push_back(a);
  for (const auto& a : extra_args) p.args.push_back(a);
  // clustermgrd refuses --peer without --expect. These clusters run without Serf, so each
  // instance counts itself alone for the token unless a test says otherwise.
  if (std::none_of(p.args.begin(), p.args.end(),
                   [](const std::string& a) { return a.rfind("--expect", 0) == 0; })) {
    p.args.push_back("--expect=1");
  }
  p.env = options_.env;
  p.output_path = log_path_;
  std::string why;
  process_ = Process::Start(p, &why);
  if (!process_) {
    *error = "cannot start clustermgrd " + name() + ": " + why;
    return false;
  }
  client_.reset();  // a fresh connection for the new process
  const auto deadline = Clock::now() + 15s;
  net::RpcClient probe(
      rpc_url_, net::RpcClient::Options{500ms, net::kMaxReplyBytes, "", options_.client_curve});
  while (Clock::now() < deadline) {
    if (!process_->Running()) {
      *error = name() + " exited (" + Process::DescribeStatus(*process_->exit_status()) + "):\n" +
               LogTail();
      return false;
    }
    if (probe.Status().ok()) return true;
  }
  *error = name() + " does not answer RPC on " + rpc_url_ + ":\n" + LogTail();
  return false;
}

void ReplicatedCluster::Instance::Kill() {
  client_.reset();
  if (process_) process_->Kill();
}

void ReplicatedCluster::Instance::Stop() {
  client_.reset();
  if (process_) process_->Stop();
}

void ReplicatedCluster::Instance::Wipe() { RemoveTree(data_dir_); }

ReplicatedCluster::Instance* ReplicatedCluster::Add(InstanceOptions options, std::string* error) {
  // A port taken between the check and the bind makes the daemon exit: try new ports.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto in = std::make_unique<Instance>();
    in->program_ = Bin("clustermgrd");
    in->options_ = options;
    const int rpc = FreeLoopbackPort();
    const int gossip = FreeLoopbackPortPair();
    if (rpc <= 0 || gossip <= 0) {
      *error = "no free loopback ports";
      return nullptr;
    }
    in->rpc_url_ = "tcp://127.0.0.1:" + std::to_string(rpc);
    in->gossip_ = "tcp://127.0.0.1:" + std::to_string(gossip);
    in->data_dir_ = dir_ + "/" + options.name;
    in->log_path_ = dir_ + "/" + options.name + ".log";
    if (options.peer_with_earlier) {
      for (const auto& other : instances_) in->peers_.push_back(other->gossip_);
    }
    if (in->Start(error)) {
      instances_.push_back(std::move(in));
      return instances_.back().get();
    }
    if (error->find("Address already in use") == std::string::npos) return nullptr;
    RemoveTree(in->data_dir_);
  }
  return nullptr;
}

bool ReplicatedCluster::AddMany(int n, const std::vector<std::string>& extra_args,
                                std::string* error, bool sync) {
  for (int i = 1; i <= n; ++i) {
    InstanceOptions o;
    o.name = "m" + std::to_string(i);
    o.extra_args = extra_args;
    o.sync = sync;
    if (!Add(o, error)) return false;
  }
  return true;
}

bool ReplicatedCluster::WaitConverged(std::chrono::milliseconds timeout, std::string* why,
                                      bool no_tombstones) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::optional<net::StatusInfo> first;
    std::string first_name;
    bool same = true;
    for (auto& in : instances_) {
      if (!in->running()) continue;
      auto s = in->client().Status();
      if (!s.ok()) {
        *why = in->name() + ": status failed: " + s.status().message();
        same = false;
        break;
      }
      if (no_tombstones && s.value().tombstones > 0) {
        *why = in->name() + " still holds " + std::to_string(s.value().tombstones) + " tombstones";
        same = false;
        break;
      }
      if (!first) {
        first = s.value();
        first_name = in->name();
        continue;
      }
      if (!(s.value().applied == first->applied) || s.value().state_digest != first->state_digest) {
        std::ostringstream o;
        o << in->name() << " differs from " << first_name << ": applied {";
        for (const auto& e : s.value().applied) o << e.origin << ":" << e.count << " ";
        o << "} vs {";
        for (const auto& e : first->applied) o << e.origin << ":" << e.count << " ";
        o << "}, digest " << s.value().state_digest << " vs " << first->state_digest;
        *why = o.str();
        same = false;
        break;
      }
    }
    if (same) return true;
    if (Clock::now() >= deadline) return false;
    // Nothing pushes convergence to a client: look again shortly.
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace clustermgr::test
