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
#include <optional>
#include <set>
#include <string>
#include <zmq.hpp>

#include "base/event_fd.h"
#include "base/status.h"
#include "crdt/hlc.h"
#include "mgr/ansible/job_executor.h"
#include "mgr/forwarder.h"
#include "mgr/http/gateway.h"
#include "mgr/http/metrics.h"
#include "mgr/mailbox.h"
#include "mgr/manager.h"
#include "mgr/options.h"
#include "mgr/repl/replica.h"
#include "mgr/repl/replicator.h"
#include "mgr/systemd/notifier.h"
#include "mgr/tag_publisher.h"
#include "mgr/token.h"
#include "net/gossip_transport.h"
#include "net/rpc_server.h"
#include "net/serf_monitor.h"
#include "net/zap_handler.h"

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
  // Async-signal-safe and thread-safe: re-reads the --config file and the allow-lists at the
  // next iteration.
  void Reload();

  const std::string& rpc_endpoint() const { return rpc_endpoint_; }

 private:
  // Serf tag names of a manager instance (role=clustermgr is the monitor's).
  static constexpr const char* kTagInstance = "instance";
  static constexpr const char* kTagRpc = "rpc";
  static constexpr const char* kTagEpoch = "epoch";
  static constexpr const char* kTagGossip = "gossip";  // the gossip (PUB) endpoint
  static constexpr const char* kTagCurve = "curve";    // its CURVE public key (Z85)

  // The election's view, except that a holder does not act whose epoch is below the replicated
  // epoch register (a newer claim was made; the election drops at its next tick) or whose loop
  // did not tick for longer than the contact window (the next tick gives the token up).
  TokenStatus CurrentToken() const;
  // Milliseconds of the monotonic clock (durations, the lease, tick scheduling).
  static uint64_t SteadyMs();
  // The other managers the token may count: Serf says alive and replication hears from them.
  std::map<std::string, ManagerSighting> CountableManagers(uint64_t now_ms);
  // While the store refuses writes: stand down from the token and reopen the store every
  // second until it accepts writes again; then resume.
  void StoreRecoveryTick(uint64_t now_ms);
  // Runs the election and carries out what it decides.
  void ElectionTick(uint64_t now_ms);
  // A side-effecting request at a non-holder goes to the holder; true when it was forwarded.
  bool MaybeForward(net::IncomingRequest& in, const net::Caller& caller);
  // Who sent `in`: the allow-lists' entry for its key, or for a request a peer instance
  // forwarded, the caller it names. A refusal text when the key is not (or no longer) listed,
  // or a non-peer claims to forward.
  Result<net::Caller> Identify(const net::IncomingRequest& in) const;
  // Appends an audit record (mgr/audit/audit_trail.h) to the replicated state: into the delta
  // the request wrote, when it wrote one after `seq_before` in the open batch (one delta per
  // write, not two); as a delta of its own otherwise (the default: refusals, forwards).
  void Audit(const net::Caller& caller, const net::RpcRequest& request, const std::string& via,
             const net::RpcReply& reply, uint64_t now_ms,
             std::optional<uint64_t> seq_before = std::nullopt);
  // Rebuilds the ZAP policy and the caller table from `curve`; closes the connections of keys
  // that are no longer listed. Returns how many connections it closed.
  int ApplyAccess(const DaemonCurve& curve);
  // Remembers which key a TCP connection carries, to close it if the key is removed.
  void NoteConnection(int fd, const std::string& key);
  // Takes every request waiting on the RPC socket, in batches (see RpcBatch).
  void HandleRpc(uint64_t now_ms);
  // A batch: OpenBatch starts staging writes (Replica::BeginBatch); CloseBatch makes them
  // durable with one write and one sync, then sends the replies that waited, in arrival order
  // (every one an error when the write failed).
  void OpenBatch();
  void CloseBatch(uint64_t now_ms);
  // --ack-replicas: `ok` goes to `to` once enough peers hold seq `seq` durably.
  void AwaitAck(const net::ReplyTo& to, net::RpcReply ok, uint64_t seq, uint64_t now_ms);
  // Standing down after a failed store write (StoreRecoveryTick reopens the store).
  void NoteStoreFailure(uint64_t now_ms, const std::string& why);
  // Calls from the HTTP gateway's threads: requests take the RPC path, the rest is answered here.
  void HandleHttp(uint64_t now_ms);
  // One request, from the RPC socket or the gateway: logged when it mutates, forwarded to the
  // token holder or handled here, and answered through Reply().
  void HandleRequest(net::IncomingRequest& in, uint64_t now_ms);
  // Every reply goes out here: counted for /metrics, then sent to the socket or the gateway.
  void Reply(const net::ReplyTo& to, const net::RpcReply& reply);
  // Stamps arrival time and operation on a request's reply address (for the request metrics).
  static void Stamp(net::ReplyTo* to, const net::RpcRequest& request);
  std::vector<http::MetricFamily> Metrics(uint64_t now_ms);
  http::Health Readiness(uint64_t now_ms);
  void ApplyMonitorEvent(const http::Call& call, const http::MonitorEvent& event, uint64_t now_ms);
  // Answers an HTTP call refused for its caller's identity or role (logged and audited).
  void RefuseHttp(const http::Call& call, const std::string& why, uint64_t now_ms);
  void HandleForwarded();
  // On stop: ends the running job (Interrupted, nodes safe) before the loop returns.
  void FinishRunningJob();
  void HandleSerf(uint64_t now_ms);
  // Connection changes the Serf client's thread posted: logged; tags re-applied on reconnect.
  void HandleSerfConnections();
  void HandleJobs(uint64_t now_ms);
  void DoReload();
  // SIGHUP: re-reads the allow-lists `from` names (the old ones stay on an error).
  void ReloadAllowLists(const DaemonOptions& from);
  // The phases of Start(), in order.
  // Moves the data dir aside for --restore-from-peers, opens the replica, clears old run dirs.
  Status OpenStore();
  Status StartRpc();
  // Binds the gossip sockets and starts the replicator with the --peer peers.
  Status StartReplication();
  // The job executor, the manager and the forwarder.
  void StartManager();
  // The Serf monitor and the tags this instance publishes.
  void StartSerf();
  // The HTTP gateway, with --http-bind.
  Status StartHttp();
  // Replication's part of the `status` answer.
  void FillReplicationStatus(net::StatusInfo* info);
  static uint64_t NowMs();
  // CURVE: starts the ZAP handler (before any server socket binds). No-op with --insecure.
  Status StartCurve();
  // The CURVE server key of manager instance `instance` ("" when unknown or plain TCP).
  std::string PeerServerKey(const std::string& instance) const;

  DaemonOptions options_;
  crdt::SystemClock physical_;
  zmq::context_t context_;
  std::unique_ptr<net::ZapHandler> zap_;  // before the sockets it judges; its own thread
  std::set<std::string> peer_keys_;       // --curve-peers and our own key
  std::string default_peer_key_;          // the one key a peer can have, when it is clear
  std::map<std::string, std::string> manager_keys_;  // instance -> `curve=` tag (allowed ones)
  std::map<std::string, net::Caller> callers_;       // listed key -> name and role
  http::HttpAccess http_access_;  // how HTTP callers get roles (the client list, options)
  struct SeenConnection {
    std::string key;
    std::string peer;  // getpeername when first seen: the fd is only trusted while it matches
  };
  std::map<int, SeenConnection> connections_;  // RPC connections by fd (bounded)
  // The RPC requests of one drain of the socket. Their writes are staged and made durable
  // together; a reply that could reveal a staged write (any Ok reply once something is
  // staged, and any reply to a client that already waits) waits in `replies` until then.
  // Refusals that reveal nothing go out at once.
  struct PendingReply {
    net::ReplyTo to;
    net::RpcReply reply;
    bool mutation = false;
    uint64_t ack_seq = 0;  // --ack-replicas: then wait for the peers
  };
  struct RpcBatch {
    bool open = false;
    bool mutation = false;  // the request being handled mutates
    std::vector<PendingReply> replies;
    std::set<std::string> waiting;  // routing ids with a reply in `replies`
  };
  static constexpr size_t kMaxRpcBatch = 256;
  RpcBatch batch_;
  uint64_t rpc_write_batches_ = 0;  // batches that made writes durable (one store write each)
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<net::RpcServer> rpc_;
  Mailbox<JobEvent> job_mail_;
  Mailbox<net::SerfNodeEvent> serf_mail_;
  Mailbox<net::SerfConnectionEvent> serf_conn_mail_;  // the Serf client's thread posts here
  Mailbox<ForwardedReply> forward_mail_;
  std::unique_ptr<JobExecutor> executor_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<net::SerfMonitor> monitor_;
  std::unique_ptr<TagPublisher> tags_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<net::ZmqGossipTransport> gossip_;
  std::unique_ptr<Replicator> replicator_;
  Mailbox<http::Call> http_mail_;
  std::unique_ptr<http::Gateway> http_;  // its threads post into http_mail_
  // Request counts, errors and latency by (transport, operation), for /metrics.
  struct RequestStats {
    uint64_t requests = 0;
    uint64_t errors = 0;
    http::Histogram latency{http::LatencyBounds()};
  };
  std::map<std::pair<std::string, std::string>, RequestStats> request_stats_;
  http::Histogram write_batches_{http::SizeBounds()};  // entries per committed local delta
  TokenElection election_;
  // What Serf last said of each node and each other manager instance.
  std::map<std::string, NodeObservation> nodes_seen_;
  // Serf members with manager tags, by member name: a member reusing another's instance name
  // neither overwrites nor ends that one's sighting.
  struct SerfManager {
    std::string instance;        // its `instance` tag
    std::string epoch_tag;       // its `epoch` tag as given (parsed strictly when counted)
    uint64_t counted_epoch = 0;  // the highest epoch it claimed while it counted
    ManagerSighting sighting;
  };
  std::map<std::string, SerfManager> managers_seen_;
  std::set<std::string> warned_members_;  // Serf members whose bad manager tags were logged
  bool serf_connected_ = false;
  bool serf_reported_ = false;  // the first connection attempt was logged
  // Managers Serf calls alive that replication has not heard from lately (logged on change).
  std::set<std::string> silent_managers_;
  uint64_t own_tag_epoch_ = 0;  // the highest epoch our own agent's tag ever showed
  uint64_t next_orphan_check_ms_ = 0;
  // A failed store write: since when (0: the store is writable) and the next reopen attempt.
  uint64_t store_failed_ms_ = 0;
  uint64_t next_store_retry_ms_ = 0;
  std::string rpc_endpoint_;
  uint64_t started_ms_ = 0;
  const EventFd stop_;         // Stop() from any thread (a signal handler too) wakes the loop
  const EventFd reload_;       // likewise Reload()
  int undercount_logged_ = 0;  // managers visible beyond --expect, last warned about
  SystemdNotifier notifier_;   // readiness and watchdog, when run by systemd
};

}  // namespace clustermgr::mgr
