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
#include "mgr/manager_replies.h"
#include "store/codec.h"

namespace clustermgr::mgr {

using crdt::InventoryRecord;
using crdt::NodeState;
using R = net::RpcReply;
using reply::Error;
using reply::Invalid;

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
        return R::Error(Code::kUnimplemented, "operation not implemented");
      },
      in.request);
}

// ---- writes ------------------------------------------------------------------------------------

R Manager::WriteFailed(const clustermgr::Status& status) const {
  CM_LOG(kError) << "write failed: " << status.message();
  if (status.code() == Code::kOutcomeUnknown) {
    return R::Error(Code::kOutcomeUnknown, status.message());
  }
  if (status.message().rfind("not stored: ", 0) == 0) {  // read-only store; it reopens by itself
    return R::Error(Code::kUnavailable, status.message());
  }
  return R::Error(Code::kInternal, "the write was not stored: " + status.message());
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
  auto config = ParseConfigSet(req.config, AnsibleDefaultsOf(*options_), AllowedVars());
  if (!config.ok()) return Error(config.status());
  auto written = replica_->Write([&](crdt::DeltaBuilder& b) { b.ReplaceConfig(*config); });
  if (!written.ok()) return WriteFailed(written.status());
  return R::Ok();
}

void Manager::Tick(uint64_t now_ms) {
  FlushLog(now_ms);
  AnswerFollowers(now_ms, true);
}

// ---- the inventory observer: Serf members into the replicated inventory ----------------------

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
