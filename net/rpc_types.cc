#include "net/rpc_types.h"

#include <type_traits>

namespace clustermgr::net {

std::string_view ToString(NodeStatus s) {
  switch (s) {
    case NodeStatus::kUnspecified:
      return "";
    case NodeStatus::kUnallocated:
      return "Unallocated";
    case NodeStatus::kProvisioning:
      return "Provisioning";
    case NodeStatus::kAllocated:
      return "Allocated";
    case NodeStatus::kCancelled:
      return "Cancelled";
    case NodeStatus::kDecommissioned:
      return "Decommissioned";
    case NodeStatus::kMaintenance:
      return "Maintenance";
  }
  return "";
}

std::string_view ToString(NodeState s) {
  switch (s) {
    case NodeState::kUnknown:
      return "Unknown";
    case NodeState::kDiscovered:
      return "Discovered";
    case NodeState::kDisappeared:
      return "Disappeared";
  }
  return "Unknown";
}

std::string_view ToString(JobStatus s) {
  switch (s) {
    case JobStatus::kUnspecified:
      return "";
    case JobStatus::kQueued:
      return "Queued";
    case JobStatus::kRunning:
      return "Running";
    case JobStatus::kComplete:
      return "Complete";
    case JobStatus::kErrored:
      return "Errored";
    case JobStatus::kCancelled:
      return "Cancelled";
    case JobStatus::kInterrupted:
      return "Interrupted";
    case JobStatus::kFenced:
      return "Fenced";
  }
  return "";
}

bool JobEnded(JobStatus s) {
  return s == JobStatus::kComplete || s == JobStatus::kErrored || s == JobStatus::kCancelled ||
         s == JobStatus::kInterrupted || s == JobStatus::kFenced;
}

std::string_view OperationName(const RpcRequest& request) {
  return std::visit(
      [](const auto& r) -> std::string_view {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, NodeGetRequest>) return "nodeGet";
        if constexpr (std::is_same_v<T, NodesGetRequest>) return "nodesGet";
        if constexpr (std::is_same_v<T, CommissionRequest>) return "commission";
        if constexpr (std::is_same_v<T, DecommissionRequest>) return "decommission";
        if constexpr (std::is_same_v<T, UpdateRequest>) return "update";
        if constexpr (std::is_same_v<T, DiscoverRequest>) return "discover";
        if constexpr (std::is_same_v<T, GlobalGetRequest>) return "globalGet";
        if constexpr (std::is_same_v<T, GlobalSetRequest>) return "globalSet";
        if constexpr (std::is_same_v<T, JobGetRequest>) return "jobGet";
        if constexpr (std::is_same_v<T, JobLogFollowRequest>) return "jobLogFollow";
        if constexpr (std::is_same_v<T, JobsListRequest>) return "jobsList";
        if constexpr (std::is_same_v<T, JobCancelRequest>) return "jobCancel";
        if constexpr (std::is_same_v<T, ConfigGetRequest>) return "configGet";
        if constexpr (std::is_same_v<T, ConfigSetRequest>) return "configSet";
        if constexpr (std::is_same_v<T, MembersRequest>) return "members";
        if constexpr (std::is_same_v<T, TokenRequest>) return "token";
        if constexpr (std::is_same_v<T, StatusRequest>) return "status";
        if constexpr (std::is_same_v<T, StateDumpRequest>) return "stateDump";
        if constexpr (std::is_same_v<T, AuditListRequest>) return "auditList";
        if constexpr (std::is_same_v<T, UpgradeRequest>) return "upgrade";
      },
      request);
}

bool IsMutation(const RpcRequest& request) {
  return std::holds_alternative<CommissionRequest>(request) ||
         std::holds_alternative<DecommissionRequest>(request) ||
         std::holds_alternative<UpdateRequest>(request) ||
         std::holds_alternative<UpgradeRequest>(request) ||
         std::holds_alternative<DiscoverRequest>(request) ||
         std::holds_alternative<GlobalSetRequest>(request) ||
         std::holds_alternative<JobCancelRequest>(request) ||
         std::holds_alternative<ConfigSetRequest>(request);
}

}  // namespace clustermgr::net
