#include "net/access.h"

#include <type_traits>
#include <variant>

namespace clustermgr::net {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "admin";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kReader, Role::kOperator, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

std::string Describe(const Caller& caller) {
  const std::string role = " (" + std::string(RoleName(caller.role)) + ")";
  if (caller.key.empty()) return (caller.name.empty() ? "plain caller" : caller.name) + role;
  return "key " + (caller.name.empty() ? caller.key : caller.name) + role;
}

Role RequiredRole(const RpcRequest& request) {
  return std::visit(
      [](const auto& req) {
        using T = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<T, ConfigSetRequest> || std::is_same_v<T, StateDumpRequest>) {
          return Role::kAdmin;
        } else if constexpr (std::is_same_v<T, CommissionRequest> ||
                             std::is_same_v<T, DecommissionRequest> ||
                             std::is_same_v<T, UpdateRequest> ||
                             std::is_same_v<T, UpgradeRequest> ||
                             std::is_same_v<T, DiscoverRequest> ||
                             std::is_same_v<T, GlobalSetRequest> ||
                             std::is_same_v<T, JobCancelRequest> ||
                             std::is_same_v<T, AuditListRequest>) {
          return Role::kOperator;
        } else {
          return Role::kReader;
        }
      },
      request);
}

std::optional<std::string> Refusal(const Caller& caller, const RpcRequest& request) {
  const Role required = RequiredRole(request);
  if (RoleAllows(caller.role, required)) return std::nullopt;
  return Describe(caller) + " may not " + std::string(OperationName(request)) + ": it needs the " +
         std::string(RoleName(required)) + " role";
}

}  // namespace clustermgr::net
