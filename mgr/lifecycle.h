// Node lifecycle rules: which status moves are allowed, and the validation of
// commission / decommission / update requests in the predecessor's order with its error texts
// (clusterm's, kept so its scripts keep working). Pure functions of the replicated state: no I/O.
//
// A plan is all-or-nothing: either every node of the request moves, or the request is refused
// and nothing changes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crdt/cluster_state.h"

namespace clustermgr::mgr {

// The configured host-groups. The first is the master group; every other one is a worker group
// (the default is service-master,service-worker).
class HostGroups {
 public:
  explicit HostGroups(std::vector<std::string> groups);
  static HostGroups Default() { return HostGroups({"service-master", "service-worker"}); }

  bool Valid(const std::string& group) const;
  bool IsMaster(const std::string& group) const { return !groups_.empty() && group == groups_[0]; }
  const std::string& master() const { return groups_.at(0); }
  const std::vector<std::string>& all() const { return groups_; }

 private:
  std::vector<std::string> groups_;
};

bool TransitionAllowed(crdt::NodeStatus from, crdt::NodeStatus to);
// kFailedPrecondition `transition from "<old>" to "<new>" is not allowed` when not allowed.
Status CheckTransition(crdt::NodeStatus from, crdt::NodeStatus to);
// Where a node goes when the job that moved it dies or is cancelled: Provisioning and
// Maintenance -> Unallocated, Cancelled -> Decommissioned; any other status stays.
crdt::NodeStatus SafeStatus(crdt::NodeStatus status);

// Checks the form of a node reference from a request (a node name or a management address)
// before it is looked up, so that hostile text is refused with a clear error and never echoed
// raw. kInvalidArgument unless IsValidNodeName or IsValidNodeAddr
// (mgr/ansible/ansible_inventory.h):
//   `invalid node name or address <n>: use 1 to 253 letters, digits, '_', '-', '.' (and ':',
//    '%' in an IP address)`   (<n> JSON-quoted and shortened, see QuoteForMessage)
Status CheckNodeRef(const std::string& name_or_addr);

// The node named `name_or_addr` (its name, or its management address), or nullopt.
std::optional<std::string> ResolveNode(const crdt::ClusterState& state,
                                       const std::string& name_or_addr);

// One node's move in a plan: its canonical name and its record after the move.
struct NodeMove {
  std::string node;
  crdt::InventoryRecord after;
};

struct LifecycleRequest {
  std::vector<std::string> nodes;  // names or addresses, as the user gave them
  std::string host_group;          // commission: required; update: "" keeps each node's groups
  // Description of the active job, if one is running: refuses the request first of all.
  std::optional<std::string> active_job;
};

// Each returns the moves to apply atomically, or the refusal (kFailedPrecondition,
// kInvalidArgument or kNotFound) with the predecessor's text. Checks run in its order: active
// job, empty request, malformed node (CheckNodeRef) or unknown node, not Discovered, host-group,
// master/worker rule, transition. Values are quoted with QuoteForMessage.
Result<std::vector<NodeMove>> PlanCommission(const crdt::ClusterState& state,
                                             const LifecycleRequest& request,
                                             const HostGroups& groups);
Result<std::vector<NodeMove>> PlanDecommission(const crdt::ClusterState& state,
                                               const LifecycleRequest& request,
                                               const HostGroups& groups);
Result<std::vector<NodeMove>> PlanUpdate(const crdt::ClusterState& state,
                                         const LifecycleRequest& request, const HostGroups& groups);

// The text that refuses a request while `job` is active.
std::string ActiveJobText(const crdt::JobRecord& job);

}  // namespace clustermgr::mgr
