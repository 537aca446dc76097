#include "mgr/manager.h"

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
#include "store/codec.h"

namespace clustermgr::mgr {
namespace {

using crdt::ClusterState;
using crdt::InventoryRecord;
using crdt::JobRecord;
using crdt::JobStatus;
using crdt::NodeState;
using crdt::NodeStatus;
using nlohmann::json;
using R = net::RpcReply;

net::RpcCode ToRpcCode(Code code) {
  switch (code) {
    case Code::kOk:
      return net::RpcCode::kOk;
    case Code::kInvalidArgument:
      return net::RpcCode::kInvalidArgument;
    case Code::kNotFound:
      return net::RpcCode::kNotFound;
    case Code::kFailedPrecondition:
      return net::RpcCode::kFailedPrecondition;
    case Code::kUnavailable:
      return net::RpcCode::kUnavailable;
    case Code::kOutcomeUnknown:
      return net::RpcCode::kOutcomeUnknown;
    case Code::kUnimplemented:
      return net::RpcCode::kUnimplemented;
    default:
      return net::RpcCode::kInternal;
  }
}

R Error(const Status& status) { return R::Error(ToRpcCode(status.code()), status.message()); }
R Invalid(std::string text) { return R::Error(net::RpcCode::kInvalidArgument, std::move(text)); }

net::JobStatus ToNet(JobStatus s) { return static_cast<net::JobStatus>(static_cast<int>(s) + 1); }

net::JobInfo ToJobInfo(const JobRecord& job) {
  net::JobInfo info;
  info.id = job.id;
  info.desc = job.desc;
  info.nodes = job.nodes;
  info.status = ToNet(job.status);
  info.error = job.error;
  info.epoch = job.epoch;
  info.owner = job.owner;
  info.created_ms = static_cast<int64_t>(job.created_ms);
  info.started_ms = static_cast<int64_t>(job.started_ms);
  info.ended_ms = static_cast<int64_t>(job.ended_ms);
  info.log_line_count = job.log_lines;
  for (const crdt::HostSummary& h : job.hosts) {
    info.hosts.push_back({h.host, h.ok, h.changed, h.unreachable, h.failed, h.skipped});
  }
  return info;
}

bool IsActive(const JobRecord& job) { return !crdt::IsFinal(job.status); }

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

const char* KindName(int kind) {
  static const char* const kNames[] = {"commission", "decommission", "update", "upgrade"};
  return kNames[kind];
}

}  // namespace

std::string RunsDir(const DaemonOptions& options) {
  // Absolute: ansible-playbook runs in the playbook dir, so a relative --data-dir would not
  // lead it to its inventory.
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::absolute(options.data_dir, ec);
  return (ec ? std::filesystem::path(options.data_dir) : dir).string() + "/runs";
}

Manager::Manager(const DaemonOptions* options, Replica* replica, JobExecutor* executor,
                 TokenFn token, Reply reply)
    : options_(options),
      replica_(replica),
      executor_(executor),
      token_(std::move(token)),
      reply_(std::move(reply)),
      groups_(options->host_groups),
      node_infos_(replica) {}

std::optional<R> Manager::Handle(const net::IncomingRequest& in, uint64_t now_ms) {
  return std::visit(
      [&](const auto& req) -> std::optional<R> {
        using T = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<T, net::NodeGetRequest>) return NodeGet(req);
        if constexpr (std::is_same_v<T, net::NodesGetRequest>) return NodesGet();
        if constexpr (std::is_same_v<T, net::CommissionRequest>) return Commission(req, now_ms);
        if constexpr (std::is_same_v<T, net::DecommissionRequest>) {
          return Decommission(req, now_ms);
        }
        if constexpr (std::is_same_v<T, net::UpdateRequest>) return Update(req, now_ms);
        if constexpr (std::is_same_v<T, net::UpgradeRequest>) return Upgrade(req, now_ms);
        if constexpr (std::is_same_v<T, net::DiscoverRequest>) return Discover(req, now_ms);
        if constexpr (std::is_same_v<T, net::GlobalGetRequest>) return GlobalGet();
        if constexpr (std::is_same_v<T, net::GlobalSetRequest>) return GlobalSet(req);
        if constexpr (std::is_same_v<T, net::JobGetRequest>) return JobGet(req);
        if constexpr (std::is_same_v<T, net::JobLogFollowRequest>) {
          return JobLogFollow(req, in.reply_to, now_ms);
        }
        if constexpr (std::is_same_v<T, net::JobsListRequest>) return JobsList();
        if constexpr (std::is_same_v<T, net::JobCancelRequest>) return JobCancel(req);
        if constexpr (std::is_same_v<T, net::ConfigGetRequest>) return ConfigGet();
        if constexpr (std::is_same_v<T, net::ConfigSetRequest>) return ConfigSet(req);
        if constexpr (std::is_same_v<T, net::MembersRequest>) return Members();
        if constexpr (std::is_same_v<T, net::TokenRequest>) return Token();
        if constexpr (std::is_same_v<T, net::StatusRequest>) return Status(now_ms);
        if constexpr (std::is_same_v<T, net::StateDumpRequest>) return StateDump(req, now_ms);
        if constexpr (std::is_same_v<T, net::AuditListRequest>) {
          const uint32_t limit = req.limit == 0 ? kAuditDefaultList : req.limit;
          return R::Ok(
              net::JsonText{ListAudit(replica_->state(), std::min(limit, kAuditMaxList)).dump()});
        }
        return R::Error(net::RpcCode::kUnimplemented, "operation not implemented");
      },
      in.request);
}

// ---- reads -------------------------------------------------------------------------------------

R Manager::NodeGet(const net::NodeGetRequest& req) const {
  if (::clustermgr::Status s = CheckNodeRef(req.name); !s.ok()) return Error(s);
  auto name = ResolveNode(replica_->state(), req.name);
  if (!name) {
    return R::Error(net::RpcCode::kNotFound,
                    "node with name or address \"" + req.name + "\" doesn't exists");
  }
  return R::Ok(*node_infos_.Find(*name));
}

R Manager::NodesGet() const { return R::Ok(node_infos_.List()); }

R Manager::GlobalGet() const {
  json globals = json::object();
  for (const auto& [k, text] : replica_->state().Globals()) {
    globals[k] = json::parse(text, nullptr, false);
  }
  return R::Ok(net::JsonText{globals.dump()});
}

const JobRecord* Manager::ActiveJob() const {
  const JobRecord* active = nullptr;
  for (const auto& [id, entry] : replica_->state().jobs.entries()) {
    if (entry.tombstone() || !IsActive(*entry.value)) continue;
    if (!active || entry.value->created_ms > active->created_ms) active = &*entry.value;
  }
  return active;
}

R Manager::JobGet(const net::JobGetRequest& req) const {
  const ClusterState& state = replica_->state();
  if (req.label.empty()) {
    return Invalid("Invalid or empty job label specified: " + QuoteForMessage(req.label));
  }
  const JobRecord* job = nullptr;
  if (req.label == "active") {
    job = ActiveJob();
  } else if (req.label == "last") {
    for (const auto& [id, entry] : state.jobs.entries()) {
      if (entry.tombstone() || IsActive(*entry.value)) continue;
      if (!job ||
          std::tie(entry.value->created_ms, entry.value->id) > std::tie(job->created_ms, job->id)) {
        job = &*entry.value;
      }
    }
  } else {
    job = state.Job(req.label);
  }
  if (!job) {
    return R::Error(net::RpcCode::kNotFound,
                    "info for " + QuoteForMessage(req.label) + " job doesn't exist");
  }
  net::JobDetail detail;
  detail.job = ToJobInfo(*job);
  detail.log_lines = state.JobLog(job->id);
  return R::Ok(std::move(detail));
}

R Manager::JobsList() const {
  std::vector<const JobRecord*> jobs;
  for (const auto& [id, entry] : replica_->state().jobs.entries()) {
    if (!entry.tombstone()) jobs.push_back(&*entry.value);
  }
  std::sort(jobs.begin(), jobs.end(), [](const JobRecord* a, const JobRecord* b) {
    return std::tie(a->created_ms, a->id) < std::tie(b->created_ms, b->id);
  });
  net::JobList list;
  for (const JobRecord* job : jobs) {
    list.jobs.push_back(ToJobInfo(*job));
    list.jobs.back().hosts.clear();  // a list stays small; `job get` has the per-host summary
  }
  return R::Ok(std::move(list));
}

std::optional<R> Manager::JobLogFollow(const net::JobLogFollowRequest& req, const net::ReplyTo& to,
                                       uint64_t now_ms) {
  const JobRecord* job = replica_->state().Job(req.job_id);
  if (!job) {
    return R::Error(net::RpcCode::kNotFound,
                    "info for " + QuoteForMessage(req.job_id) + " job doesn't exist");
  }
  if (job->log_lines <= req.from_line && IsActive(*job) && req.wait_ms > 0) {
    const uint32_t wait = std::min(req.wait_ms, kMaxFollowWaitMs);
    followers_.push_back({to, req.job_id, req.from_line, now_ms + wait});
    return std::nullopt;
  }
  std::vector<std::string> lines = replica_->state().JobLog(req.job_id);
  net::JobLogChunk chunk;
  chunk.first_line = std::min<uint64_t>(req.from_line, lines.size());
  chunk.lines.assign(lines.begin() + static_cast<std::ptrdiff_t>(chunk.first_line), lines.end());
  chunk.ended = !IsActive(*job);
  chunk.status = ToNet(job->status);
  chunk.error = job->error;
  return R::Ok(std::move(chunk));
}

void Manager::AnswerFollowers(uint64_t now_ms, bool deadline_only) {
  std::vector<Follower> waiting;
  for (Follower& f : followers_) {
    const JobRecord* job = replica_->state().Job(f.job_id);
    const bool ready =
        !job || (!deadline_only && (job->log_lines > f.from_line || !IsActive(*job)));
    if (ready || now_ms >= f.deadline_ms) {
      net::IncomingRequest in;
      in.reply_to = f.to;
      in.request = net::JobLogFollowRequest{f.job_id, f.from_line, 0};
      reply_(f.to, *Handle(in, now_ms));
    } else {
      waiting.push_back(std::move(f));
    }
  }
  followers_ = std::move(waiting);
}

R Manager::ConfigGet() const {
  return R::Ok(
      net::JsonText{ToJson(EffectiveConfig(*options_, replica_->state().Config())).dump()});
}

R Manager::Token() const {
  const TokenStatus t = token_();
  net::TokenInfo info;
  info.holder = t.holder;
  info.epoch = t.holder_epoch;
  info.highest_epoch = replica_->state().token_epoch.value();
  info.visible_managers = static_cast<uint32_t>(t.visible);
  info.expected_managers = static_cast<uint32_t>(options_->expect);
  info.quorum = static_cast<uint32_t>(t.quorum);
  info.has_quorum = t.visible >= t.quorum;
  info.self_holds = t.self_holds;
  info.reason = t.why_not;
  return R::Ok(std::move(info));
}

R Manager::Members() const {
  if (replication_.members) {
    const TokenStatus t = token_();
    net::MemberList list{replication_.members()};
    for (auto& m : list.members) {
      m.token_holder = m.self ? t.self_holds : (!t.holder.empty() && m.name == t.holder);
    }
    return R::Ok(std::move(list));
  }
  net::MemberInfo self;
  self.name = replica_->name();
  self.rpc_endpoint = options_->rpc_bind;
  self.gossip_endpoint = options_->gossip_bind;
  self.alive = true;
  self.self = true;
  self.token_holder = token_().self_holds;
  self.lag_deltas = 0;
  net::MemberList list;
  list.members.push_back(std::move(self));
  return R::Ok(std::move(list));
}

R Manager::Status(uint64_t now_ms) const {
  (void)now_ms;
  const ClusterState& state = replica_->state();
  net::StatusInfo info;
  info.name = replica_->name();
  info.version = CLUSTERMGR_VERSION;
  info.protocol_version = net::kRpcProtocolVersion;
  info.rpc_endpoint = options_->rpc_bind;
  info.gossip_endpoint = options_->gossip_bind;
  info.state_entries = state.globals.size() + state.node_vars.size() + state.host_groups.size() +
                       state.inventory.size() + state.jobs.size() + state.job_logs.size() +
                       state.config.size();
  info.tombstones = state.globals.tombstones() + state.node_vars.tombstones() +
                    state.inventory.tombstones() + state.jobs.tombstones() +
                    state.job_logs.tombstones() + state.config.tombstones();
  info.data_dir = options_->data_dir;
  info.store_ok = replica_->store().write_error().ok();
  info.store_error = replica_->store().write_error().message();
  if (replication_.fill_status) replication_.fill_status(&info);
  return R::Ok(std::move(info));
}

R Manager::StateDump(const net::StateDumpRequest& req, uint64_t now_ms) {
  // Chunks stay far below the RPC reply cap (net::kMaxReplyBytes).
  constexpr uint64_t kDefaultChunk = 4 << 20;
  constexpr uint64_t kMaxChunk = 16 << 20;
  const uint64_t want =
      req.max_bytes == 0 ? kDefaultChunk : std::min<uint64_t>(req.max_bytes, kMaxChunk);
  std::string fresh;
  const std::string* bytes = nullptr;
  uint64_t id = req.snapshot_id;
  if (id == 0) {
    // Ids grow with time, so a continuation sent to a restarted daemon never matches.
    id = std::max(now_ms << 10, last_snapshot_id_ + 1);
    last_snapshot_id_ = id;
    fresh = store::EncodeState(replica_->state());
    if (fresh.size() > want) {
      snapshots_.push_back({id, std::move(fresh)});
      if (snapshots_.size() > kKeptSnapshots) snapshots_.erase(snapshots_.begin());
      bytes = &snapshots_.back().bytes;
    } else {
      bytes = &fresh;
    }
  } else {
    for (const Snapshot& s : snapshots_) {
      if (s.id == id) bytes = &s.bytes;
    }
    if (!bytes) {
      return R::Error(net::RpcCode::kFailedPrecondition,
                      "state snapshot " + std::to_string(id) +
                          " is no longer kept (read to its end, or newer ones were taken); start "
                          "the dump again");
    }
  }
  if (req.offset > bytes->size()) {
    return Invalid("offset " + std::to_string(req.offset) + " is beyond the snapshot's " +
                   std::to_string(bytes->size()) + " bytes");
  }
  net::StateChunk chunk;
  chunk.snapshot_id = id;
  chunk.total_bytes = bytes->size();
  chunk.offset = req.offset;
  chunk.data = bytes->substr(req.offset, want);
  if (req.offset + chunk.data.size() == bytes->size()) {
    std::erase_if(snapshots_, [id](const Snapshot& s) { return s.id == id; });
  }
  return R::Ok(std::move(chunk));
}

// ---- writes ------------------------------------------------------------------------------------

R Manager::WriteFailed(const ::clustermgr::Status& status) const {
  CM_LOG(kError) << "write failed: " << status.message();
  if (status.code() == Code::kOutcomeUnknown) {
    return R::Error(net::RpcCode::kOutcomeUnknown, status.message());
  }
  if (status.message().rfind("not stored: ", 0) == 0) {  // read-only store; it reopens by itself
    return R::Error(net::RpcCode::kUnavailable, status.message());
  }
  return R::Error(net::RpcCode::kInternal, "the write was not stored: " + status.message());
}

std::set<std::string> Manager::AllowedVars() const {
  return {options_->allow_extra_vars.begin(), options_->allow_extra_vars.end()};
}

R Manager::GlobalSet(const net::GlobalSetRequest& req) {
  ExtraVarsParse vars = ParseExtraVars(req.extra_vars);
  if (!vars.ok()) return Invalid(vars.error);
  if (std::string e = CheckReservedExtraVars(vars.vars, AllowedVars()); !e.empty()) {
    return Invalid(e);
  }
  std::map<std::string, std::string> globals;
  for (const auto& [k, v] : vars.vars.items()) globals.emplace(k, v.dump());
  auto written = replica_->Write([&](crdt::DeltaBuilder& b) { b.ReplaceGlobals(globals); });
  if (!written.ok()) return WriteFailed(written.status());
  return R::Ok();
}

R Manager::ConfigSet(const net::ConfigSetRequest& req) {
  auto config = ParseConfigSet(req.config, *options_, AllowedVars());
  if (!config.ok()) return Error(config.status());
  auto written = replica_->Write([&](crdt::DeltaBuilder& b) { b.ReplaceConfig(*config); });
  if (!written.ok()) return WriteFailed(written.status());
  return R::Ok();
}

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
  const AnsibleConfig config = EffectiveConfig(*options_, state.Config());
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
  const AnsibleConfig config = EffectiveConfig(*options_, replica_->state().Config());
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

R Manager::StartLifecycleJob(JobKind kind, const std::vector<std::string>& names,
                             const std::string& group, const std::string& extra_vars,
                             uint32_t serial, uint64_t now_ms) {
  ExtraVarsParse vars = ParseExtraVars(extra_vars);
  if (!vars.ok()) return Invalid(vars.error);
  if (std::string e = CheckReservedExtraVars(vars.vars, AllowedVars()); !e.empty()) {
    return Invalid(e);
  }
  const TokenStatus token = token_();
  if (!token.self_holds) return R::Error(net::RpcCode::kUnavailable, token.why_not);

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
  // A rolling job's batches, in the request's order; one batch when not rolling.
  std::vector<std::vector<std::string>> batches;
  const std::size_t per_batch = serial == 0 ? nodes.size() : serial;
  for (std::size_t i = 0; i < nodes.size(); i += per_batch) {
    batches.emplace_back(
        nodes.begin() + static_cast<std::ptrdiff_t>(i),
        nodes.begin() + static_cast<std::ptrdiff_t>(std::min(nodes.size(), i + per_batch)));
  }
  const bool rolling = batches.size() > 1;
  const std::string job_id = NextJobId();
  const AnsibleConfig config = EffectiveConfig(*options_, state.Config());

  // The script is built before the write, from the state as it was: the cleanup of an update
  // runs against the old host-groups, the configure against the new ones.
  const bool regroup = kind != JobKind::kDecommission && !group.empty();
  const std::optional<std::string> new_group = regroup ? std::optional(group) : std::nullopt;
  const RunVars merged = MergedVars(nodes, vars.vars);
  JobScript script{job_id, {}};
  for (std::size_t b = 0; b < batches.size(); ++b) {
    const std::vector<std::string>& hosts = batches[b];
    auto spec = [&](const std::string& playbook, const std::optional<std::string>& g) {
      return Spec(playbook, Hosts(hosts, g), merged, job_id, token.epoch);
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
  if (!token.self_holds) return R::Error(net::RpcCode::kUnavailable, token.why_not);
  if (const JobRecord* active = ActiveJob()) {
    return R::Error(net::RpcCode::kFailedPrecondition, ActiveJobText(*active));
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
    return R::Error(net::RpcCode::kFailedPrecondition,
                    "one or more nodes already exist with the specified management addresses. "
                    "Existing nodes: [" +
                        list + "]");
  }
  const std::string job_id = NextJobId();
  std::vector<InventoryHost> hosts;
  for (size_t i = 0; i < req.addrs.size(); ++i) {
    hosts.push_back({"node" + std::to_string(i + 1), req.addrs[i], {"cluster-node"}});
  }
  const AnsibleConfig config = EffectiveConfig(*options_, replica_->state().Config());
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
    const ::clustermgr::Status fenced = fencing::CheckPlaybookFenced(path.path, spec.playbook);
    if (fenced.ok()) return std::nullopt;
    if (options_->node_fencing == fencing::Mode::kRequire) {
      return R::Error(net::RpcCode::kFailedPrecondition,
                      "--node-fencing=require: " + fenced.message());
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
  if (!token.self_holds) return R::Error(net::RpcCode::kUnavailable, token.why_not);
  std::string id = req.job_id;
  if (id.empty()) {
    const JobRecord* active = ActiveJob();
    if (!active) return R::Error(net::RpcCode::kNotFound, "info for \"active\" job doesn't exist");
    id = active->id;
  }
  const JobRecord* job = replica_->state().Job(id);
  if (!job)
    return R::Error(net::RpcCode::kNotFound,
                    "info for " + QuoteForMessage(id) + " job doesn't exist");
  if (!IsActive(*job)) {
    return R::Error(net::RpcCode::kFailedPrecondition,
                    "job " + QuoteForMessage(id) +
                        " is not active: " + std::string(crdt::ToString(job->status)));
  }
  if (!executor_->Cancel(id)) {
    return R::Error(net::RpcCode::kFailedPrecondition,
                    "job " + QuoteForMessage(id) + " is not running on this instance");
  }
  return R::Ok(net::JobCancelled{id});
}

// ---- job events
// ----------------------------------------------------------------------------------

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

void Manager::Tick(uint64_t now_ms) {
  FlushLog(now_ms);
  AnswerFollowers(now_ms, true);
}

// ---- Serf
// ----------------------------------------------------------------------------------------

void Manager::OnNodeObservation(const NodeObservation& obs, uint64_t now_ms) {
  OnNodeObservations({obs}, now_ms);
}

void Manager::OnNodeObservations(const std::vector<NodeObservation>& observations,
                                 uint64_t now_ms) {
  const TokenStatus token = token_();
  // The records as the batch leaves them, in the order first changed: a node seen twice (a join,
  // then an update) is written once, with the latest word.
  std::map<std::string, InventoryRecord> changed;
  std::vector<std::string> order;
  for (const NodeObservation& obs : observations) {
    if (!IsValidNodeName(obs.name)) {
      CM_LOG(kWarn) << "ignoring Serf member with an invalid node name: " << obs.name;
      continue;
    }
    if (!token.self_holds) continue;  // the token holder applies Serf events; others observe
    auto pending = changed.find(obs.name);
    const InventoryRecord* current =
        pending != changed.end() ? &pending->second : replica_->state().Node(obs.name);
    InventoryRecord rec = current ? *current : InventoryRecord{};
    const NodeState state =
        obs.kind == NodeObservation::Kind::kDisappeared  ? NodeState::kDisappeared
        : obs.kind == NodeObservation::Kind::kDiscovered ? NodeState::kDiscovered
                                                         : rec.state;
    if (state != rec.state) {
      rec.prev_state = rec.state;
      rec.prev_status = rec.status;
      rec.state = state;
    }
    if (!obs.addr.empty()) rec.addr = obs.addr;
    if (!obs.tags.empty()) rec.tags = obs.tags;
    if (!obs.serf_status.empty()) rec.serf_status = obs.serf_status;
    if (current && rec == *current) continue;
    rec.updated_ms = now_ms;
    if (pending == changed.end()) order.push_back(obs.name);
    changed[obs.name] = std::move(rec);
  }
  if (changed.empty()) return;
  // One durable delta for the whole batch: a storm of joins costs one sync and one gossip
  // message, not one per node.
  auto written = replica_->Write(
      [&](crdt::DeltaBuilder& b) {
        for (const std::string& name : order) b.PutNode(name, changed[name]);
      },
      token.epoch);
  if (!written.ok()) {
    CM_LOG(kError) << changed.size() << " node(s), the first " << order.front()
                   << ": Serf update not stored: " << written.status().message();
  }
}

}  // namespace clustermgr::mgr
