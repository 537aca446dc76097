// A cluster of real clustermgrd processes on loopback, for the replication tests: each instance
// has its own data dir (in one temp dir), an RPC port and a gossip port pair (PORT for PUB,
// PORT+1 for the anti-entropy ROUTER), optional Serf agent address, and extra flags. Instances
// can be SIGKILLed, stopped, restarted on the same ports, wiped, and added later.
//
// Readiness and convergence are observed over RPC (`status`): Start waits until the daemon
// answers; WaitConverged polls every instance's applied vector and live-state digest until they
// agree (the daemons offer no push notification for it). Every wait has a deadline.
//
// Thread-safety: one test thread drives a cluster. RpcClient objects are per thread: Client()
// gives the driving thread's; make your own (Instance::url()) for other threads.
// Lifetime: the destructor kills every daemon and removes the temp dir (kept when
// CLUSTERMGR_KEEP_TEST_DIRS is set, e.g. to read the daemons' logs).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/rpc_client.h"
#include "test/support/process.h"

namespace clustermgr::test {

struct InstanceOptions {
  std::string name;
  // --peer every instance added before this one (and they do not need it back: a syncRequest
  // makes the other side connect too).
  bool peer_with_earlier = true;
  std::string serf_rpc;  // --serf-rpc; empty: an address nothing listens on
  bool sync = false;     // --sync: off by default (a SIGKILL loses nothing either way)
  std::vector<std::string> extra_args;  // e.g. "--test-drop-gossip=0.3"
  // false: no --insecure (pass --curve-key etc. in extra_args, and set client_curve so that the
  // harness can talk to the instance).
  bool insecure = true;
  std::optional<net::CurveClientConfig> client_curve;  // the harness's RPC client keys
  // Added to the daemon's environment (e.g. libfaketime's LD_PRELOAD and FAKETIME).
  std::map<std::string, std::string> env;
  // --gossip-bind with the instance's gossip port in place of "PORT" (e.g. "tcp://0.0.0.0:PORT");
  // empty: its loopback endpoint (gossip_endpoint()), which peers dial in either case.
  std::string gossip_bind;
  // --gossip-advertise, "PORT" replaced likewise; empty: not given.
  std::string gossip_advertise;
};

class ReplicatedCluster {
 public:
  class Instance {
   public:
    const std::string& name() const { return options_.name; }
    const std::string& url() const { return rpc_url_; }
    const std::string& gossip_endpoint() const { return gossip_; }
    const std::string& data_dir() const { return data_dir_; }
    std::string log_path() const { return log_path_; }
    std::string LogTail(size_t bytes = 3000) const;
    bool running() { return process_ && process_->Running(); }
    // The running daemon's process id (-1 before the first start); e.g. to read /proc.
    pid_t pid() const { return process_ ? process_->pid() : -1; }
    // The harness thread's client of this instance (5 s timeout).
    net::RpcClient& client();

    // Starts (again) with the same name, ports and data dir, plus `extra_args` for this start
    // only; waits until it answers RPC. False (with *error) when it exits or does not answer.
    bool Start(std::string* error, const std::vector<std::string>& extra_args = {});
    void Kill();  // SIGKILL, reaped
    void Stop();  // SIGTERM, reaped (SIGKILL after 5 s)
    // Deletes the data dir (the instance must not run).
    void Wipe();

   private:
    friend class ReplicatedCluster;
    std::string program_;  // clustermgrd
    InstanceOptions options_;
    std::vector<std::string> peers_;
    std::string rpc_url_;
    std::string gossip_;
    std::string data_dir_;
    std::string log_path_;
    std::unique_ptr<Process> process_;
    std::unique_ptr<net::RpcClient> client_;
  };

  // An empty cluster in a fresh temp dir; programs come from `bin_dir` (tests pass
  // CLUSTERMGR_BIN_DIR).
  explicit ReplicatedCluster(std::string bin_dir);
  ~ReplicatedCluster();
  ReplicatedCluster(const ReplicatedCluster&) = delete;
  ReplicatedCluster& operator=(const ReplicatedCluster&) = delete;

  // Adds and starts an instance; null (with *error) if it does not come up.
  Instance* Add(InstanceOptions options, std::string* error);
  // Adds `n` instances "m1".."mn" (each peering with the earlier ones) with `extra_args`.
  bool AddMany(int n, const std::vector<std::string>& extra_args, std::string* error,
               bool sync = false);

  Instance& at(size_t i) { return *instances_[i]; }
  size_t size() const { return instances_.size(); }
  const std::string& dir() const { return dir_; }

  // Waits until every running instance reports the same applied vector and live-state digest
  // (and, with no_tombstones, no tombstones), nothing being restored. On timeout returns false
  // and sets *why to what differed last.
  bool WaitConverged(std::chrono::milliseconds timeout, std::string* why,
                     bool no_tombstones = false);

  // A program from the build (clustermgrd, clustermgr, state-inspect).
  std::string Bin(const std::string& program) const { return bin_dir_ + "/" + program; }

 private:
  std::string bin_dir_;
  std::string dir_;
  bool keep_dir_ = false;
  std::vector<std::unique_ptr<Instance>> instances_;
};

}  // namespace clustermgr::test
