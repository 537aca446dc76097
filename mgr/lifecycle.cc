#include "mgr/lifecycle.h"

#include <algorithm>
#include <set>

#include "mgr/ansible/ansible_inventory.h"

namespace clustermgr::mgr {
namespace {

using crdt::ClusterState;
using crdt::InventoryRecord;
using crdt::NodeState;
using crdt::NodeStatus;

Status Refuse(std::string text) { return Status(Code::kFailedPrecondition, std::move(text)); }

// Go's fmt of a []string, as the predecessor printed lists: [a b c].
std::string GoList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? " " : "") + items[i];
  return out + "]";
}

// A node outside `request` that is Discovered, Allocated and in the master group.
bool AnotherMasterExists(const ClusterState& state, const std::set<std::string>& request,
                         const HostGroups& groups) {
  for (const auto& [name, entry] : state.inventory.entries()) {
    if (entry.tombstone() || request.count(name)) continue;
    const InventoryRecord& rec = *entry.value;
    if (rec.state != NodeState::kDiscovered || rec.status != NodeStatus::kAllocated) continue;
    if (state.host_groups.Contains({name, groups.master()})) return true;
  }
  return false;
}

bool AnyWorkerOutside(const ClusterState& state, const std::set<std::string>& request,
                      const HostGroups& groups) {
  for (const auto& [name, entry] : state.inventory.entries()) {
    if (entry.tombstone() || request.count(name)) continue;
    if (entry.value->status != NodeStatus::kAllocated) continue;
    for (const std::string& g : state.HostGroups(name)) {
      if (groups.Valid(g) && !groups.IsMaster(g)) return true;
    }
  }
  return false;
}

// The common first steps: active job, empty request, unknown nodes, not Discovered. On success
// the canonical names in request order, without duplicates.
Result<std::vector<std::string>> CheckNodes(const ClusterState& state,
                                            const LifecycleRequest& request) {
  if (request.active_job) return Refuse(*request.active_job);
  if (request.nodes.empty()) {
    return Status(Code::kInvalidArgument, "atleast one node should be specified");
  }
  std::vector<std::string> names;
  for (const std::string& given : request.nodes) {
    if (Status s = CheckNodeRef(given); !s.ok()) return s;
    auto name = ResolveNode(state, given);
    if (!name) {
      return Status(Code::kNotFound, "node with name or address \"" + given + "\" doesn't exists");
    }
    if (std::find(names.begin(), names.end(), *name) == names.end()) names.push_back(*name);
  }
  std::vector<std::string> not_discovered;
  for (const std::string& name : names) {
    if (state.Node(name)->state != NodeState::kDiscovered) not_discovered.push_back(name);
  }
  if (!not_discovered.empty()) {
    return Refuse(
        "one or more nodes are not in discovered state, please check their network "
        "reachability. Non-discovered nodes: " +
        GoList(not_discovered));
  }
  return names;
}

// Moves every node to `to`, or refuses with the first disallowed transition.
Result<std::vector<NodeMove>> MoveAll(const ClusterState& state,
                                      const std::vector<std::string>& names, NodeStatus to) {
  std::vector<NodeMove> moves;
  for (const std::string& name : names) {
    const InventoryRecord& before = *state.Node(name);
    if (Status s = CheckTransition(before.status, to); !s.ok()) {
      return Refuse("failed to update " + name + "'s state in inventory, Error: " + s.message());
    }
    InventoryRecord after = before;
    after.prev_status = before.status;
    after.prev_state = before.state;
    after.status = to;
    moves.push_back({name, std::move(after)});
  }
  return moves;
}

}  // namespace

Status CheckNodeRef(const std::string& name_or_addr) {
  if (IsValidNodeName(name_or_addr) || IsValidNodeAddr(name_or_addr)) return Status::Ok();
  return Status(Code::kInvalidArgument,
                "invalid node name or address " + QuoteForMessage(name_or_addr) +
                    ": use 1 to 253 letters, digits, '_', '-', '.' (and ':', '%' in an IP "
                    "address)");
}

HostGroups::HostGroups(std::vector<std::string> groups) : groups_(std::move(groups)) {}

bool HostGroups::Valid(const std::string& group) const {
  return !group.empty() && std::find(groups_.begin(), groups_.end(), group) != groups_.end();
}

bool TransitionAllowed(NodeStatus from, NodeStatus to) {
  if (from == to) return true;
  switch (from) {
    case NodeStatus::kUnallocated:
      return to == NodeStatus::kProvisioning;
    case NodeStatus::kProvisioning:
      return to == NodeStatus::kUnallocated || to == NodeStatus::kAllocated;
    case NodeStatus::kAllocated:
      return to == NodeStatus::kCancelled || to == NodeStatus::kMaintenance;
    case NodeStatus::kCancelled:
      return to == NodeStatus::kDecommissioned;
    case NodeStatus::kDecommissioned:
      return to == NodeStatus::kProvisioning;
    case NodeStatus::kMaintenance:
      return to == NodeStatus::kUnallocated || to == NodeStatus::kAllocated;
  }
  return false;
}

Status CheckTransition(NodeStatus from, NodeStatus to) {
  if (TransitionAllowed(from, to)) return Status::Ok();
  return Refuse("transition from \"" + std::string(crdt::ToString(from)) + "\" to \"" +
                std::string(crdt::ToString(to)) + "\" is not allowed");
}

NodeStatus SafeStatus(NodeStatus status) {
  switch (status) {
    case NodeStatus::kProvisioning:
    case NodeStatus::kMaintenance:
      return NodeStatus::kUnallocated;
    case NodeStatus::kCancelled:
      return NodeStatus::kDecommissioned;
    default:
      return status;
  }
}

std::optional<std::string> ResolveNode(const ClusterState& state, const std::string& name_or_addr) {
  if (state.Node(name_or_addr)) return name_or_addr;
  for (const auto& [name, entry] : state.inventory.entries()) {
    if (!entry.tombstone() && !name_or_addr.empty() && entry.value->addr == name_or_addr) {
      return name;
    }
  }
  return std::nullopt;
}

std::string ActiveJobText(const crdt::JobRecord& job) {
  return "there is already an active job, please try in sometime. Job: " + job.id + " (" +
         job.desc + " " + GoList(job.nodes) + ", " + std::string(crdt::ToString(job.status)) + ")";
}

Result<std::vector<NodeMove>> PlanCommission(const ClusterState& state,
                                             const LifecycleRequest& request,
                                             const HostGroups& groups) {
  auto names = CheckNodes(state, request);
  if (!names.ok()) return names.status();
  if (!groups.Valid(request.host_group)) {
    return Status(Code::kInvalidArgument,
                  "invalid or empty host-group specified: " + QuoteForMessage(request.host_group));
  }
  const std::set<std::string> in_request(names->begin(), names->end());
  if (!groups.IsMaster(request.host_group) && !AnotherMasterExists(state, in_request, groups)) {
    return Refuse(
        "Cannot commission a worker node without existence of a master node in the cluster, "
        "make sure atleast one master node is commissioned.");
  }
  return MoveAll(state, *names, NodeStatus::kProvisioning);
}

Result<std::vector<NodeMove>> PlanDecommission(const ClusterState& state,
                                               const LifecycleRequest& request,
                                               const HostGroups& groups) {
  auto names = CheckNodes(state, request);
  if (!names.ok()) return names.status();
  const std::set<std::string> in_request(names->begin(), names->end());
  bool removes_master = false;
  for (const std::string& name : *names) {
    removes_master |= state.host_groups.Contains({name, groups.master()}) &&
                      state.Node(name)->status == NodeStatus::kAllocated;
  }
  if (removes_master && !AnotherMasterExists(state, in_request, groups) &&
      AnyWorkerOutside(state, in_request, groups)) {
    return Refuse(
        "decommissioning the specified node(s) will leave only worker nodes in the cluster, "
        "make sure all worker nodes are decommissioned before last master node.");
  }
  return MoveAll(state, *names, NodeStatus::kCancelled);
}

Result<std::vector<NodeMove>> PlanUpdate(const ClusterState& state, const LifecycleRequest& request,
                                         const HostGroups& groups) {
  auto names = CheckNodes(state, request);
  if (!names.ok()) return names.status();
  if (!request.host_group.empty() && !groups.Valid(request.host_group)) {
    return Status(Code::kInvalidArgument,
                  "invalid host-group specified: " + QuoteForMessage(request.host_group));
  }
  const std::set<std::string> in_request(names->begin(), names->end());
  if (!request.host_group.empty() && !groups.IsMaster(request.host_group) &&
      !AnotherMasterExists(state, in_request, groups)) {
    return Refuse(
        "Updating these nodes as worker will result in no master node in the cluster, make "
        "sure atleast one node is commissioned as master.");
  }
  return MoveAll(state, *names, NodeStatus::kMaintenance);
}

}  // namespace clustermgr::mgr
