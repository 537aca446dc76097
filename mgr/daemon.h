// Daemon: clustermgrd's event loop and the things it owns.
//
// One thread (the one that calls Run()) owns all mutable manager state: the replica (store,
// clock), the manager, the RPC server socket. Other threads talk to it by messages: the Serf
// monitor and the job executor post into mailboxes, signals write to eventfds. The loop polls
// all of them and runs periodic work every tick.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "crdt/hlc.h"
#include "crdt/status.h"
#include "mgr/job_executor.h"
#include "mgr/mailbox.h"
#include "mgr/manager.h"
#include "mgr/options.h"
#include "mgr/replica.h"
#include "mgr/replicator.h"
#include "mgr/tag_publisher.h"
#include "net/gossip_transport.h"
#include "net/rpc_server.h"
#include "net/serf_monitor.h"

namespace clustermgr::mgr {

class Daemon {
 public:
  explicit Daemon(DaemonOptions options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Opens the data dir, binds the RPC socket, starts the Serf monitor, claims the token when it
  // runs alone, and interrupts jobs a previous run left behind. Errors (one line each): the data
  // dir is unusable, in use by another clustermgrd, or corrupt; the RPC endpoint cannot be bound.
  Status Start();
  // Runs until Stop(). Returns the process exit code.
  int Run();
  // Async-signal-safe and thread-safe: makes Run() return after the current iteration.
  void Stop();
  // Async-signal-safe and thread-safe: re-reads the --config file at the next iteration.
  void Reload();

  const std::string& rpc_endpoint() const { return rpc_endpoint_; }

 private:
  TokenView CurrentToken() const;
  void HandleRpc(uint64_t now_ms);
  void HandleSerf(uint64_t now_ms);
  void HandleJobs(uint64_t now_ms);
  void DoReload();
  // Binds the gossip sockets and starts the replicator with the --peer peers.
  Status StartReplication();
  // Hands own_tags_ to the Serf tag publisher (applied on its thread, re-applied after a Serf
  // reconnect). Call after every change of own_tags_.
  void PublishTags();
  static uint64_t NowMs();

  DaemonOptions options_;
  crdt::SystemClock physical_;
  zmq::context_t context_;
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<net::RpcServer> rpc_;
  Mailbox<JobEvent> job_mail_;
  Mailbox<net::SerfNodeEvent> serf_mail_;
  std::unique_ptr<JobExecutor> executor_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<net::SerfMonitor> monitor_;
  std::unique_ptr<net::ZmqGossipTransport> gossip_;
  std::unique_ptr<Replicator> replicator_;
  std::unique_ptr<TagPublisher> tag_publisher_;
  // This manager's own Serf tags, all in this one set (SPEC 6): role=clustermgr, rpc=<RPC
  // endpoint>, gossip=<gossip endpoint>, and the token logic's entries. Serf refuses a whole
  // encoded tag set above 512 bytes: keep keys and values short.
  std::map<std::string, std::string> own_tags_;
  std::string rpc_endpoint_;
  uint64_t started_ms_ = 0;
  uint64_t epoch_ = 0;  // the epoch this instance claimed (0: not holding the token)
  int stop_fd_ = -1;
  int reload_fd_ = -1;
  int serf_up_fd_ = -1;  // the Serf client (re)connected: publish the tags again
};

}  // namespace clustermgr::mgr
