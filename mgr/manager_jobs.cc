#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>

#include "clustermgr_version.h"
#include "mgr/ansible/extra_vars.h"
#include "mgr/audit/audit_trail.h"
#include "mgr/fencing/playbook_check.h"
#include "mgr/log/log.h"
#include "mgr/manager.h"
#include "mgr/manager_replies.h"
#include "store/codec.h"

namespace clustermgr::mgr {

using crdt::ClusterState;
using crdt::InventoryRecord;
using crdt::JobRecord;
using crdt::JobStatus;
using crdt::NodeStatus;
using nlohmann::json;
using R = net::RpcReply;
using reply::Error;
using reply::Invalid;
using reply::IsActive;
using reply::KindName;

namespace {

// Writes `node` (now `rec`) moved to status `to`, remembering where it was.
void PutMoved(crdt::DeltaBuilder& b, const std::string& node, const InventoryRecord& rec,
              NodeStatus to, uint64_t now_ms) {
  InventoryRecord after = rec;
  after.prev_status = rec.status;
  after.prev_state = rec.state;
  after.status = to;
  after.updated_ms = now_ms;
  b.PutNode(node, after);
}

// A rolling job's batches of `serial` nodes, in the request's order; one batch when `serial` is
// 0.
std::vector<std::vector<std::string>> Batches(const std::vector<std::string>& nodes,
                                              uint32_t serial) {
  std::vector<std::vector<std::string>> batches;
  const std::size_t per_batch = serial == 0 ? nodes.size() : serial;
  for (std::size_t i = 0; i < nodes.size(); i += per_batch) {
    batches.emplace_back(
        nodes.begin() + static_cast<std::ptrdiff_t>(i),
        nodes.begin() + static_cast<std::ptrdiff_t>(std::min(nodes.size(), i + per_batch)));
  }
  return batches;
}

}  // namespace

// ---- the job service: starting, running and finishing jobs ----------------------------------

std::string Manager::NextJobId() const {
  // <instance>-<n>: n one above the highest this instance has used. Unique because only this
  // instance issues its own ids and its jobs are in its durable state.
  uint64_t highest = 0;
  const std::string prefix = replica_->name() + "-";
  for (const auto& [id, entry] : replica_->state().jobs.entries()) {
    if (id.rfind(prefix, 0) != 0) continue;
    const std::string rest = id.substr(prefix.size());
    // A replicated id is a peer's input: digits beyond uint64_t are skipped (stoull would throw).
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size()) continue;
    highest = std::max<uint64_t>(highest, n);
  }
  return prefix + std::to_string(highest + 1);
}

RunVars Manager::MergedVars(const std::vector<std::string>& nodes, const json& request) const {
  const ClusterState& state = replica_->state();
  const AnsibleConfig config = EffectiveConfig(AnsibleDefaultsOf(*options_), state.Config());
  const std::set<std::string> allowed(options_->allow_extra_vars.begin(),
                                      options_->allow_extra_vars.end());
  // Replicated client layers were checked when written, by whichever instance took them (maybe
  // an older one, or one allowing more names): a reserved name in them does not reach a run.
  auto client_layer = [&](json layer, const std::string& what) {
    for (const std::string& name : DropReservedExtraVars(&layer, allowed)) {
      CM_LOG(kWarn) << "extra-vars: the reserved variable " << name << " in " << what
                    << " is ignored";
    }
    return layer;
  };
  json globals = json::object();
  for (const auto& [k, text] : state.Globals()) globals[k] = json::parse(text, nullptr, false);
  globals = client_layer(std::move(globals), "the global extra-vars");
  const json configured = client_layer(config.extra_variables, "the config's extra_variables");
  std::map<std::string, json> by_node;
  if (nodes.empty()) by_node[""] = MergeExtraVars(configured, globals, {}, request);
  // Each node's own merge: one node's remembered vars must not reach another node of the run.
  for (const std::string& node : nodes) {
    json vars = json::object();
    for (const auto& [k, text] : state.NodeVars(node)) vars[k] = json::parse(text, nullptr, false);
    vars = client_layer(std::move(vars), "node " + node + "'s extra-vars");
    by_node[node] = MergeExtraVars(configured, globals, vars, request);
  }
  return SplitRunVars(std::move(by_node), config.operator_extra_variables);
}

std::vector<InventoryHost> Manager::Hosts(const std::vector<std::string>& nodes,
                                          const std::optional<std::string>& group) const {
  std::vector<InventoryHost> hosts;
  for (const std::string& node : nodes) {
    const InventoryRecord* rec = replica_->state().Node(node);
    InventoryHost host{node, rec ? rec->addr : "", {}};
    host.groups = group ? std::vector<std::string>{*group} : replica_->state().HostGroups(node);
    if (host.groups.empty()) host.groups.push_back(groups_.master());
    hosts.push_back(std::move(host));
  }
  return hosts;
}

PlaybookSpec Manager::Spec(const std::string& playbook, std::vector<InventoryHost> hosts,
                           RunVars vars, const std::string& job_id, uint64_t epoch) const {
  const AnsibleConfig config =
      EffectiveConfig(AnsibleDefaultsOf(*options_), replica_->state().Config());
  PlaybookSpec spec;
  spec.kill_grace = std::chrono::milliseconds(options_->grace_ms());
  spec.playbook_dir = config.playbook_dir;
  spec.playbook = playbook;
  spec.hosts = std::move(hosts);
  // The job's identity reaches the playbook, so side effects can be traced to one job and epoch.
  // Reserved for clients (mgr/ansible/extra_vars.h kManagerVars), so a playbook can trust them.
  vars.operator_common["clustermgr_job_id"] = job_id;
  vars.operator_common["clustermgr_epoch"] = epoch;
  for (auto& [host, own] : vars.operator_per_host) {
    own.erase("clustermgr_job_id");
    own.erase("clustermgr_epoch");
  }
  spec.extra_vars = std::move(vars.operator_common);
  spec.host_vars = std::move(vars.operator_per_host);
  spec.client_vars = std::move(vars.common);
  spec.client_host_vars = std::move(vars.per_host);
  spec.user = config.user;
  spec.private_key = config.private_key;
  spec.forks = config.forks;
  spec.roles_path = options_->ansible_roles_dir;
  // Each run's private dir (inventory, merged extra-vars) lives in the data dir, not in /tmp, so
  // that the runs a killed daemon leaves behind are removed when it starts again.
  spec.temp_parent = RunsDir(*options_);
  ::mkdir(spec.temp_parent.c_str(), 0700);  // EEXIST is fine; a failure shows in the run
  return spec;
}

R Manager::Commission(const net::CommissionRequest& req, uint64_t now_ms) {
  return StartLifecycleJob(JobKind::kCommission, req.names, req.group, req.extra_vars, 0, now_ms);
}
R Manager::Decommission(const net::DecommissionRequest& req, uint64_t now_ms) {
  return StartLifecycleJob(JobKind::kDecommission, req.names, "", req.extra_vars, 0, now_ms);
}
R Manager::Update(const net::UpdateRequest& req, uint64_t now_ms) {
  return StartLifecycleJob(JobKind::kUpdate, req.names, req.group, req.extra_vars, req.serial,
                           now_ms);
}
R Manager::Upgrade(const net::UpgradeRequest& req, uint64_t now_ms) {
  return StartLifecycleJob(JobKind::kUpgrade, req.names, "", req.extra_vars, req.serial, now_ms);
}

JobScript Manager::LifecycleScript(JobKind kind, const std::string& job_id,
                                   const std::vector<std::vector<std::string>>& batches,
                                   const std::optional<std::string>& new_group,
                                   const RunVars& merged, uint64_t epoch) const {
  const AnsibleConfig config =
      EffectiveConfig(AnsibleDefaultsOf(*options_), replica_->state().Config());
  const bool rolling = batches.size() > 1;
  JobScript script{job_id, {}};
  for (std::size_t b = 0; b < batches.size(); ++b) {
    const std::vector<std::string>& hosts = batches[b];
    auto spec = [&](const std::string& playbook, const std::optional<std::string>& g) {
      return Spec(playbook, Hosts(hosts, g), merged, job_id, epoch);
    };
    const int batch = rolling ? static_cast<int>(b) : -1;
    // Configure, cleaning up after a failure; cleanup alone (the old host-groups); upgrade.
    auto configure = [&] {
      return JobStep{spec(config.configure_playbook, new_group),
                     {spec(config.cleanup_playbook, new_group)},
                     batch};
    };
    auto cleanup = [&] { return JobStep{spec(config.cleanup_playbook, std::nullopt), {}, batch}; };
    switch (kind) {
      case JobKind::kCommission:
        script.steps.push_back(configure());
        break;
      case JobKind::kDecommission:
        script.steps.push_back(cleanup());
        break;
      case JobKind::kUpdate:
        script.steps.push_back(cleanup());
        script.steps.push_back(configure());
        break;
      case JobKind::kUpgrade:
        script.steps.push_back({spec(config.upgrade_playbook, std::nullopt), {}, batch});
        break;
    }
  }
  return script;
}

R Manager::StartLifecycleJob(JobKind kind, const std::vector<std::string>& names,
                             const std::string& group, const std::string& extra_vars,
                             uint32_t serial, uint64_t now_ms) {
  ExtraVarsParse vars = ParseExtraVars(extra_vars);
  if (!vars.ok()) return Invalid(vars.error);
  if (std::string e = CheckReservedExtraVars(vars.vars, AllowedVars()); !e.empty()) {
    return Invalid(e);
  }
  const TokenStatus token = token_();
  if (!token.self_holds) return R::Error(Code::kUnavailable, token.why_not);

  LifecycleRequest request{names, group, std::nullopt};
  if (const JobRecord* active = ActiveJob()) request.active_job = ActiveJobText(*active);
  const ClusterState& state = replica_->state();
  Result<std::vector<NodeMove>> plan =
      kind == JobKind::kCommission     ? PlanCommission(state, request, groups_)
      : kind == JobKind::kDecommission ? PlanDecommission(state, request, groups_)
                                       : PlanUpdate(state, request, groups_);  // and upgrade
  if (!plan.ok()) return Error(plan.status());

  std::vector<std::string> nodes;
  for (const NodeMove& m : *plan) nodes.push_back(m.node);
  std::vector<std::vector<std::string>> batches = Batches(nodes, serial);
  const bool rolling = batches.size() > 1;
  const std::string job_id = NextJobId();

  // The script is built before the write, from the state as it was: the cleanup of an update
  // runs against the old host-groups, the configure against the new ones.
  const bool regroup = kind != JobKind::kDecommission && !group.empty();
  const std::optional<std::string> new_group = regroup ? std::optional(group) : std::nullopt;
  JobScript script =
      LifecycleScript(kind, job_id, batches, new_group, MergedVars(nodes, vars.vars), token.epoch);

  std::vector<std::string> fence_warnings;
  if (std::optional<R> refused = CheckFencing(script, &fence_warnings)) return *refused;

  JobRecord job;
  job.id = job_id;
  job.desc = KindName(static_cast<int>(kind));
  job.nodes = nodes;
  job.host_group = group;
  job.status = JobStatus::kRunning;
  job.epoch = token.epoch;
  job.owner = replica_->name();
  job.created_ms = job.started_ms = now_ms;
  // A rolling job moves only its first batch now; the others wait Allocated (OnBatchDone).
  const std::set<std::string> moving_now(batches.front().begin(), batches.front().end());
  auto written = replica_->Write(
      [&](crdt::DeltaBuilder& b) {
        for (NodeMove& m : *plan) {
          m.after.updated_ms = now_ms;
          if (moving_now.count(m.node) != 0) b.PutNode(m.node, m.after);
          if (regroup) b.SetHostGroups(m.node, {group});
          if (kind != JobKind::kDecommission) {
            for (const auto& [k, v] : vars.vars.items()) b.SetNodeVar(m.node, k, v.dump());
          }
        }
        b.PutJob(job);
      },
      token.epoch);
  if (!written.ok()) return WriteFailed(written.status());

  running_job_ = job_id;
  running_kind_ = kind;
  running_is_discover_ = false;
  running_batches_ = rolling ? std::move(batches) : std::vector<std::vector<std::string>>{};
  StartLog(std::move(fence_warnings));
  CM_LOG(kInfo) << "job " << job_id << ": " << job.desc << " of " << nodes.size()
                << " node(s) started at epoch " << token.epoch
                << (rolling ? ", " + std::to_string(serial) + " at a time" : "");
  executor_->Start(std::move(script));
  return R::Ok(net::JobAccepted{job_id});
}

R Manager::Discover(const net::DiscoverRequest& req, uint64_t now_ms) {
  ExtraVarsParse vars = ParseExtraVars(req.extra_vars);
  if (!vars.ok()) return Invalid(vars.error);
  if (std::string e = CheckReservedExtraVars(vars.vars, AllowedVars()); !e.empty()) {
    return Invalid(e);
  }
  const TokenStatus token = token_();
  if (!token.self_holds) return R::Error(Code::kUnavailable, token.why_not);
  if (const JobRecord* active = ActiveJob()) {
    return R::Error(Code::kFailedPrecondition, ActiveJobText(*active));
  }
  if (req.addrs.empty()) return Invalid("atleast one node address should be specified");
  std::vector<std::string> existing;
  for (const std::string& addr : req.addrs) {
    if (!IsValidNodeAddr(addr)) return Invalid("invalid node address " + QuoteForMessage(addr));
    for (const auto& [name, entry] : replica_->state().inventory.entries()) {
      if (!entry.tombstone() && entry.value->addr == addr) existing.push_back(name + ":" + addr);
    }
  }
  if (!existing.empty()) {
    std::string list;
    for (const auto& e : existing) list += (list.empty() ? "" : " ") + e;
    return R::Error(Code::kFailedPrecondition,
                    "one or more nodes already exist with the specified management addresses. "
                    "Existing nodes: [" +
                        list + "]");
  }
  const std::string job_id = NextJobId();
  std::vector<InventoryHost> hosts;
  for (size_t i = 0; i < req.addrs.size(); ++i) {
    hosts.push_back({"node" + std::to_string(i + 1), req.addrs[i], {"cluster-node"}});
  }
  const AnsibleConfig config =
      EffectiveConfig(AnsibleDefaultsOf(*options_), replica_->state().Config());
  JobScript script{job_id, {}};
  script.steps.push_back(
      {Spec(config.configure_playbook, hosts, MergedVars({}, vars.vars), job_id, token.epoch), {}});
  std::vector<std::string> fence_warnings;
  if (std::optional<R> refused = CheckFencing(script, &fence_warnings)) return *refused;
  JobRecord job;
  job.id = job_id;
  job.desc = "discover";
  job.nodes = req.addrs;
  job.host_group = "cluster-node";
  job.status = JobStatus::kRunning;
  job.epoch = token.epoch;
  job.owner = replica_->name();
  job.created_ms = job.started_ms = now_ms;
  auto written = replica_->Write([&](crdt::DeltaBuilder& b) { b.PutJob(job); }, token.epoch);
  if (!written.ok()) return WriteFailed(written.status());
  running_job_ = job_id;
  running_is_discover_ = true;
  running_batches_.clear();
  StartLog(std::move(fence_warnings));
  executor_->Start(std::move(script));
  return R::Ok(net::JobAccepted{job_id});
}

std::optional<R> Manager::CheckFencing(const JobScript& script,
                                       std::vector<std::string>* warnings) const {
  if (options_->node_fencing == fencing::Mode::kOff) return std::nullopt;
  std::set<std::string> checked;
  auto check = [&](const PlaybookSpec& spec) -> std::optional<R> {
    if (!checked.insert(spec.playbook).second) return std::nullopt;
    const PlaybookPath path = ResolvePlaybookPath(spec.playbook_dir, spec.playbook);
    if (!path.ok()) return std::nullopt;  // the run reports it, under every mode
    const clustermgr::Status fenced = fencing::CheckPlaybookFenced(path.path, spec.playbook);
    if (fenced.ok()) return std::nullopt;
    if (options_->node_fencing == fencing::Mode::kRequire) {
      return R::Error(Code::kFailedPrecondition, "--node-fencing=require: " + fenced.message());
    }
    CM_LOG(kWarn) << fenced.message() << " (--node-fencing=warn: it runs unfenced)";
    warnings->push_back("clustermgr: warning: " + fenced.message() +
                        " (--node-fencing=warn: it runs unfenced, so a deposed token holder "
                        "could still change these hosts)");
    return std::nullopt;
  };
  for (const JobStep& step : script.steps) {
    if (auto refused = check(step.playbook)) return refused;
    for (const PlaybookSpec& recovery : step.on_failure) {
      if (auto refused = check(recovery)) return refused;
    }
  }
  return std::nullopt;
}

void Manager::StartLog(std::vector<std::string> first_lines) {
  pending_lines_.clear();
  log_lines_ = log_bytes_ = dropped_lines_ = 0;
  for (std::string& line : first_lines) {
    log_bytes_ += line.size() + 1;
    ++log_lines_;
    pending_lines_.push_back(std::move(line));
  }
}

R Manager::JobCancel(const net::JobCancelRequest& req) {
  const TokenStatus token = token_();
  if (!token.self_holds) return R::Error(Code::kUnavailable, token.why_not);
  std::string id = req.job_id;
  if (id.empty()) {
    const JobRecord* active = ActiveJob();
    if (!active) return R::Error(Code::kNotFound, "info for \"active\" job doesn't exist");
    id = active->id;
  }
  const JobRecord* job = replica_->state().Job(id);
  if (!job)
    return R::Error(Code::kNotFound, "info for " + QuoteForMessage(id) + " job doesn't exist");
  if (!IsActive(*job)) {
    return R::Error(Code::kFailedPrecondition, "job " + QuoteForMessage(id) + " is not active: " +
                                                   std::string(crdt::ToString(job->status)));
  }
  if (!executor_->Cancel(id)) {
    return R::Error(Code::kFailedPrecondition,
                    "job " + QuoteForMessage(id) + " is not running on this instance");
  }
  return R::Ok(net::JobCancelled{id});
}

// ---- job events ----------------------------------------------------------------------------

void Manager::OnJobEvent(JobEvent event, uint64_t now_ms) {
  if (event.job_id != running_job_) return;  // a straggler from a job already finished
  if (event.kind == JobEvent::Kind::kLine) {
    if (log_lines_ >= kMaxLogLines || log_bytes_ >= kMaxLogBytes) {
      if (dropped_lines_++ == 0) {
        pending_lines_.push_back("clustermgr: log truncated: the limit of " +
                                 std::to_string(kMaxLogLines) + " lines or " +
                                 std::to_string(kMaxLogBytes) + " bytes was reached");
        ++log_lines_;
      }
      return;
    }
    log_bytes_ += event.line.size() + 1;
    ++log_lines_;
    pending_lines_.push_back(std::move(event.line));
    if (pending_lines_.size() >= kChunkLines) FlushLog(now_ms);
    return;
  }
  if (event.kind == JobEvent::Kind::kBatchDone) {
    OnBatchDone(event.batch, now_ms);
    return;
  }
  if (dropped_lines_ > 0) {
    pending_lines_.push_back("clustermgr: " + std::to_string(dropped_lines_ - 1) +
                             " more lines were dropped");
    ++log_lines_;
  }
  FlushLog(now_ms);
  const JobStatus status = shutting_down_ && event.cancelled ? JobStatus::kInterrupted
                           : event.cancelled                 ? JobStatus::kCancelled
                           : !event.succeeded                ? JobStatus::kErrored
                           : event.fenced.empty()            ? JobStatus::kComplete
                                                             : JobStatus::kFenced;
  const JobKind kind = running_kind_;
  const bool discover = running_is_discover_;
  std::vector<crdt::HostSummary> hosts;
  for (const auto& [host, r] : event.recap) {  // a map: sorted by host
    auto count = [](int n) { return static_cast<uint32_t>(std::max(n, 0)); };
    hosts.push_back({host, count(r.ok), count(r.changed), count(r.unreachable), count(r.failed),
                     count(r.skipped)});
  }
  FinishJob(
      event.job_id, status,
      status == JobStatus::kInterrupted ? "interrupted: clustermgrd was stopped"
      : event.cancelled                 ? "cancelled"
                                        : event.error,
      [&](const std::string& node, NodeStatus current) {
        // A fenced node belongs to the newer token holder that touched it: its status is that
        // holder's to set, not this (stale) job's.
        if (discover || event.fenced.count(node)) return current;
        if (event.cancelled) return SafeStatus(current);
        switch (kind) {
          case JobKind::kCommission:
          case JobKind::kUpdate:
          case JobKind::kUpgrade:
            // A rolling job's earlier batches are Allocated already, its later ones still are:
            // neither may move to Unallocated, so only the last batch run changes here.
            return event.succeeded ? NodeStatus::kAllocated : NodeStatus::kUnallocated;
          case JobKind::kDecommission:
            return NodeStatus::kDecommissioned;
        }
        return current;
      },
      replica_->state().Job(event.job_id) ? replica_->state().Job(event.job_id)->epoch : 0, now_ms,
      std::move(hosts));
  running_job_.clear();
  running_batches_.clear();
}

void Manager::OnBatchDone(int batch, uint64_t now_ms) {
  if (batch < 0 || static_cast<std::size_t>(batch) + 1 >= running_batches_.size()) return;
  const JobRecord* job = replica_->state().Job(running_job_);
  if (!job) return;
  auto move = [&](crdt::DeltaBuilder& b, const std::vector<std::string>& nodes, NodeStatus from,
                  NodeStatus to) {
    for (const std::string& node : nodes) {
      const InventoryRecord* rec = replica_->state().Node(node);
      if (rec && rec->status == from) PutMoved(b, node, *rec, to, now_ms);
    }
  };
  auto written = replica_->Write(
      [&](crdt::DeltaBuilder& b) {
        move(b, running_batches_[static_cast<std::size_t>(batch)], NodeStatus::kMaintenance,
             NodeStatus::kAllocated);
        move(b, running_batches_[static_cast<std::size_t>(batch) + 1], NodeStatus::kAllocated,
             NodeStatus::kMaintenance);
      },
      job->epoch);
  if (!written.ok()) {
    CM_LOG(kError) << "job " << running_job_ << ": batch " << batch + 1
                   << " done, node statuses not stored: " << written.status().message();
  }
}

void Manager::FlushLog(uint64_t now_ms) {
  if (pending_lines_.empty() || running_job_.empty()) return;
  const JobRecord* current = replica_->state().Job(running_job_);
  if (!current) return;
  JobRecord job = *current;
  std::string text;
  for (const std::string& line : pending_lines_) text += line + "\n";
  const uint64_t chunk = job.log_chunks;
  job.log_chunks += 1;
  job.log_lines += pending_lines_.size();
  (void)now_ms;
  auto written = replica_->Write(
      [&](crdt::DeltaBuilder& b) {
        b.PutJobLogChunk(job.id, chunk, std::move(text));
        b.PutJob(job);
      },
      job.epoch);
  if (!written.ok()) {
    CM_LOG(kError) << "job " << job.id << ": log chunk not stored: " << written.status().message();
    return;  // keep the lines; the next flush retries
  }
  pending_lines_.clear();
  AnswerFollowers(now_ms, false);
}

void Manager::FinishJob(const std::string& job_id, JobStatus status, const std::string& error,
                        const std::function<NodeStatus(const std::string&, NodeStatus)>& next,
                        uint64_t epoch, uint64_t now_ms, std::vector<crdt::HostSummary> hosts) {
  const JobRecord* current = replica_->state().Job(job_id);
  if (!current) return;
  JobRecord job = *current;
  if (!hosts.empty()) job.hosts = std::move(hosts);
  job.status = status;
  job.error = status == JobStatus::kComplete ? "" : error;
  job.ended_ms = now_ms;
  auto written = replica_->Write(
      [&](crdt::DeltaBuilder& b) {
        for (const std::string& node : job.nodes) {
          const InventoryRecord* rec = replica_->state().Node(node);
          if (!rec) continue;
          const NodeStatus to = next(node, rec->status);
          if (to == rec->status || !TransitionAllowed(rec->status, to)) continue;
          PutMoved(b, node, *rec, to, now_ms);
        }
        b.PutJob(job);
      },
      epoch);
  if (!written.ok()) {
    CM_LOG(kError) << "job " << job_id
                   << ": final status not stored: " << written.status().message();
  } else {
    CM_LOG(kInfo) << "job " << job_id << ": " << crdt::ToString(status)
                  << (job.error.empty() ? "" : ": " + job.error);
  }
  AnswerFollowers(now_ms, false);
}

void Manager::InterruptOrphanedJobs(uint64_t now_ms) {
  const TokenStatus token = token_();
  if (!token.self_holds) return;
  std::vector<std::string> orphans;
  for (const auto& [id, entry] : replica_->state().jobs.entries()) {
    if (entry.tombstone() || !IsActive(*entry.value) || id == running_job_) continue;
    // Written at a higher epoch than ours: our write would lose, so it is not ours to fence
    // (the election stands this instance down when the epoch register passes its epoch).
    if (entry.tag.stamp.epoch > token.epoch) continue;
    orphans.push_back(id);
  }
  for (const std::string& id : orphans) {
    CM_LOG(kWarn) << "job " << id << " (owner " << replica_->state().Job(id)->owner
                  << ") was interrupted: its instance stopped or lost the side-effect token";
    FinishJob(
        id, JobStatus::kInterrupted,
        "interrupted: the instance running it stopped or lost the side-effect token",
        [](const std::string&, NodeStatus s) { return SafeStatus(s); }, token.epoch, now_ms);
  }
}

void Manager::CancelRunningJob() {
  if (!running_job_.empty()) executor_->Cancel(running_job_);
}

void Manager::BeginShutdown() {
  shutting_down_ = true;
  CancelRunningJob();
}

}  // namespace clustermgr::mgr
