// Manager: what clustermgrd does with requests and events, over the replicated state.
//
// It validates lifecycle requests (mgr/lifecycle.h), writes their status changes, job record and
// remembered host-groups and extra-vars as one durable delta, starts the job's playbooks on the
// JobExecutor, turns the job's output into log chunks, and moves the nodes on when the job ends.
// It applies Serf membership to the inventory and serves reads of the state.
//
// Threading: owned and called by the event loop thread only. Replies to requests that wait (a
// job-log long-poll) are sent later through the Reply callback, also on the event loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mgr/ansible/ansible_config.h"
#include "mgr/ansible/extra_vars.h"
#include "mgr/ansible/job_executor.h"
#include "mgr/lifecycle.h"
#include "mgr/options.h"
#include "mgr/reads/node_info_cache.h"
#include "mgr/repl/replica.h"
#include "mgr/token.h"
#include "net/rpc_server.h"
#include "net/rpc_types.h"

namespace clustermgr::mgr {

// What Serf said about one cluster node.
struct NodeObservation {
  enum class Kind { kDiscovered, kDisappeared, kUpdated };
  Kind kind = Kind::kDiscovered;
  std::string name;  // NodeLabel-NodeSerial
  std::string addr;  // NodeAddr
  std::map<std::string, std::string> tags;
  std::string serf_status;
};

// What replication (mgr/repl/replicator.h) knows, for `members` and `status`; unset when alone.
struct ReplicationView {
  std::function<std::vector<net::MemberInfo>()> members;  // this instance first
  std::function<void(net::StatusInfo*)> fill_status;      // peers, applied vector, digest, ...
};

// Where playbook runs keep their private dirs: <data-dir>/runs (cleared at daemon start).
std::string RunsDir(const DaemonOptions& options);

class Manager {
 public:
  using Reply = std::function<void(const net::ReplyTo&, net::RpcReply)>;
  using TokenFn = std::function<TokenStatus()>;

  // Limits of a job's log: beyond them lines are dropped after one marker line.
  static constexpr uint64_t kMaxLogLines = 20'000;
  static constexpr size_t kMaxLogBytes = 4 << 20;
  // A log chunk is written once this many lines are pending, or at the next Tick().
  static constexpr size_t kChunkLines = 200;
  static constexpr uint32_t kMaxFollowWaitMs = 30'000;

  // All pointers must outlive the manager.
  Manager(const DaemonOptions* options, Replica* replica, JobExecutor* executor, TokenFn token,
          Reply reply);

  // Handles one request. Returns the reply, or nullopt when the request waits and will be
  // answered later through the Reply callback.
  std::optional<net::RpcReply> Handle(const net::IncomingRequest& request, uint64_t now_ms);

  void OnJobEvent(JobEvent event, uint64_t now_ms);
  void OnNodeObservation(const NodeObservation& observation, uint64_t now_ms);
  // Applies a batch of observations in order, written as one delta (token holder only).
  void OnNodeObservations(const std::vector<NodeObservation>& observations, uint64_t now_ms);
  // Periodic work: flushes pending log lines, answers long-polls whose wait ran out.
  void Tick(uint64_t now_ms);
  // Called by the token holder: marks every active job that does not run here Interrupted (its
  // instance restarted, died or lost the token, so it can no longer finish) and moves its nodes
  // to safe statuses, at the holder's epoch so that the old owner's late writes lose.
  void InterruptOrphanedJobs(uint64_t now_ms);
  // Stops the job running here (the token was lost): its playbook is terminated.
  void CancelRunningJob();
  // The daemon is stopping: the running job's playbook is terminated and, when its end arrives
  // through OnJobEvent, the job ends Interrupted with its nodes in safe statuses.
  void BeginShutdown();

  void SetReplicationView(ReplicationView view) { replication_ = std::move(view); }

  // The running job on this instance, if any.
  const std::string& running_job() const { return running_job_; }

 private:
  using R = net::RpcReply;

  R NodeGet(const net::NodeGetRequest& req) const;
  R NodesGet() const;
  R Commission(const net::CommissionRequest& req, uint64_t now_ms);
  R Decommission(const net::DecommissionRequest& req, uint64_t now_ms);
  R Update(const net::UpdateRequest& req, uint64_t now_ms);
  R Upgrade(const net::UpgradeRequest& req, uint64_t now_ms);
  R Discover(const net::DiscoverRequest& req, uint64_t now_ms);
  R GlobalGet() const;
  R GlobalSet(const net::GlobalSetRequest& req);
  R JobGet(const net::JobGetRequest& req) const;
  std::optional<R> JobLogFollow(const net::JobLogFollowRequest& req, const net::ReplyTo& to,
                                uint64_t now_ms);
  R JobsList() const;
  R JobCancel(const net::JobCancelRequest& req);
  R ConfigGet() const;
  R ConfigSet(const net::ConfigSetRequest& req);
  R Token() const;
  R Members() const;
  R Status(uint64_t now_ms) const;
  R StateDump(const net::StateDumpRequest& req, uint64_t now_ms);

  // Shared path of commission / decommission / update / upgrade: plan, write, start. `serial` >
  // 0 (update, upgrade): a rolling job, that many nodes at a time in the request's order; only
  // the running batch's nodes are in Maintenance, the others stay Allocated.
  enum class JobKind { kCommission, kDecommission, kUpdate, kUpgrade };
  R StartLifecycleJob(JobKind kind, const std::vector<std::string>& names, const std::string& group,
                      const std::string& extra_vars, uint32_t serial, uint64_t now_ms);
  // A rolling job's batch `batch` succeeded (and the next one is starting): its nodes become
  // Allocated, the next batch's nodes go to Maintenance, in one delta.
  void OnBatchDone(int batch, uint64_t now_ms);
  // The steps of a lifecycle job over `batches` (one batch unless rolling): each batch's steps
  // in turn, configure/cleanup hosts in `new_group` when given, else in their own host-groups.
  JobScript LifecycleScript(JobKind kind, const std::string& job_id,
                            const std::vector<std::vector<std::string>>& batches,
                            const std::optional<std::string>& new_group, const RunVars& merged,
                            uint64_t epoch) const;
  // The active job (Queued or Running) in the state, if any.
  const crdt::JobRecord* ActiveJob() const;
  std::string NextJobId() const;
  // Extra-vars of a run, per node: config < globals < the node's remembered vars < request,
  // split into what all nodes share and what is each node's own (no nodes: discover).
  RunVars MergedVars(const std::vector<std::string>& nodes, const nlohmann::json& request) const;
  PlaybookSpec Spec(const std::string& playbook, std::vector<InventoryHost> hosts, RunVars vars,
                    const std::string& job_id, uint64_t epoch) const;
  std::vector<InventoryHost> Hosts(const std::vector<std::string>& nodes,
                                   const std::optional<std::string>& group) const;
  // --node-fencing: whether every playbook of `script` applies the fencing role
  // (mgr/fencing/playbook_check.h). Under require a playbook that does not is a refusal of the
  // request (returned); under warn a line for the job log is added to *warnings.
  std::optional<R> CheckFencing(const JobScript& script, std::vector<std::string>* warnings) const;
  // A new job's log begins with `first_lines`.
  void StartLog(std::vector<std::string> first_lines);
  // Writes the pending log lines of the running job as one chunk.
  void FlushLog(uint64_t now_ms);
  // Ends `job_id`: final job status and the nodes' final statuses, in one delta.
  // `epoch` stamps the writes: the job's own for its normal end, the holder's for an interrupt.
  // `hosts`: the per-host summary of the job's runs (none for an interrupt).
  void FinishJob(const std::string& job_id, crdt::JobStatus status, const std::string& error,
                 const std::function<crdt::NodeStatus(const std::string&, crdt::NodeStatus)>& next,
                 uint64_t epoch, uint64_t now_ms, std::vector<crdt::HostSummary> hosts = {});
  void AnswerFollowers(uint64_t now_ms, bool deadline_only);
  R WriteFailed(const clustermgr::Status& status) const;
  // --allow-extra-var: reserved names clients may set all the same.
  std::set<std::string> AllowedVars() const;

  const DaemonOptions* options_;
  Replica* replica_;
  JobExecutor* executor_;
  TokenFn token_;
  Reply reply_;
  HostGroups groups_;
  mutable NodeInfoCache node_infos_;  // filled by reads
  ReplicationView replication_;

  // The job this instance runs, and its log lines not yet written.
  std::string running_job_;
  JobKind running_kind_ = JobKind::kCommission;
  bool running_is_discover_ = false;
  std::vector<std::vector<std::string>> running_batches_;  // a rolling job's batches, else empty
  std::vector<std::string> pending_lines_;
  uint64_t log_lines_ = 0;  // accepted so far (written + pending)
  size_t log_bytes_ = 0;
  uint64_t dropped_lines_ = 0;
  bool shutting_down_ = false;

  struct Follower {
    net::ReplyTo to;
    std::string job_id;
    uint64_t from_line;
    uint64_t deadline_ms;
  };
  std::vector<Follower> followers_;

  // stateDump snapshots larger than one chunk, while clients read them (newest last; dropped
  // once their last chunk is served, and beyond kKeptSnapshots).
  struct Snapshot {
    uint64_t id;
    std::string bytes;
  };
  static constexpr size_t kKeptSnapshots = 2;
  std::vector<Snapshot> snapshots_;
  uint64_t last_snapshot_id_ = 0;
};

}  // namespace clustermgr::mgr
