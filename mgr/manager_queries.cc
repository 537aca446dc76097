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
using nlohmann::json;
using R = net::RpcReply;
using reply::Error;
using reply::Invalid;
using reply::IsActive;
using reply::ToJobInfo;
using reply::ToNet;

// ---- reads -------------------------------------------------------------------------------------

R Manager::NodeGet(const net::NodeGetRequest& req) const {
  if (clustermgr::Status s = CheckNodeRef(req.name); !s.ok()) return Error(s);
  auto name = ResolveNode(replica_->state(), req.name);
  if (!name) {
    return R::Error(Code::kNotFound,
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
    return R::Error(Code::kNotFound,
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
    return R::Error(Code::kNotFound,
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
  return R::Ok(net::JsonText{
      ToJson(EffectiveConfig(AnsibleDefaultsOf(*options_), replica_->state().Config())).dump()});
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
      return R::Error(Code::kFailedPrecondition,
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

}  // namespace clustermgr::mgr
