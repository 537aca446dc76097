#include "mgr/reads/node_info_cache.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

namespace clustermgr::mgr {

net::NodeInfo BuildNodeInfo(const crdt::ClusterState& state, const std::string& name,
                            const crdt::InventoryRecord& rec) {
  // net's enums have kUnspecified first where crdt's NodeStatus starts at its first status.
  auto status = [](crdt::NodeStatus s) {
    return static_cast<net::NodeStatus>(static_cast<int>(s) + 1);
  };
  auto node_state = [](crdt::NodeState s) {
    return static_cast<net::NodeState>(static_cast<int>(s));
  };
  net::NodeInfo info;
  info.name = name;
  info.addr = rec.addr;
  info.status = status(rec.status);
  info.state = node_state(rec.state);
  info.prev_status = status(rec.prev_status);
  info.prev_state = node_state(rec.prev_state);
  info.host_groups = state.HostGroups(name);
  info.monitoring.reserve(rec.tags.size() + 1);
  for (const auto& [k, v] : rec.tags) info.monitoring.emplace_back(k, v);
  if (!rec.serf_status.empty()) info.monitoring.emplace_back("serf_status", rec.serf_status);
  std::sort(info.monitoring.begin(), info.monitoring.end());
  nlohmann::json vars = nlohmann::json::object();
  for (const auto& [k, text] : state.NodeVars(name)) {
    vars[k] = nlohmann::json::parse(text, nullptr, false);
  }
  // A var name that is not UTF-8 (a peer's delta is not validated as a request is) is shown with
  // U+FFFD rather than failing the read.
  info.extra_vars = vars.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return info;
}

NodeInfoCache::NodeInfoCache(Replica* replica) : replica_(replica) {
  observer_id_ = replica_->AddNodesObserver([this](const Replica::NodesChange& c) { OnChange(c); });
}

NodeInfoCache::~NodeInfoCache() { replica_->RemoveNodesObserver(observer_id_); }

void NodeInfoCache::OnChange(const Replica::NodesChange& change) {
  if (change.all) {
    infos_.clear();
    stale_.clear();
    complete_ = false;
    return;
  }
  for (const std::string& name : change.names) {
    infos_.erase(name);
    if (complete_) stale_.insert(name);
  }
}

const net::NodeInfo* NodeInfoCache::Find(const std::string& name) {
  if (auto it = infos_.find(name); it != infos_.end()) return &it->second;
  const crdt::InventoryRecord* rec = replica_->state().Node(name);
  if (rec == nullptr) return nullptr;
  ++builds_;
  stale_.erase(name);
  return &infos_.emplace(name, BuildNodeInfo(replica_->state(), name, *rec)).first->second;
}

net::NodeList NodeInfoCache::List() {
  const crdt::ClusterState& state = replica_->state();
  if (!complete_) {
    for (const auto& [name, entry] : state.inventory.entries()) {
      if (entry.tombstone() || infos_.count(name)) continue;
      ++builds_;
      infos_.emplace_hint(infos_.end(), name, BuildNodeInfo(state, name, *entry.value));
    }
    complete_ = true;
  } else {
    for (const std::string& name : stale_) {
      if (infos_.count(name)) continue;  // a Find rebuilt it
      if (const crdt::InventoryRecord* rec = state.Node(name)) {
        ++builds_;
        infos_.emplace(name, BuildNodeInfo(state, name, *rec));
      }
    }
  }
  stale_.clear();
  net::NodeList list;
  list.nodes.reserve(infos_.size());
  for (const auto& [name, info] : infos_) list.nodes.push_back(info);
  return list;
}

}  // namespace clustermgr::mgr
