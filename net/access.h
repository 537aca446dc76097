// Roles of callers, and which role a request needs. Shared by every way a request enters a
// daemon: the RPC server (a CURVE key from an allow-list, net/allow_list.h) and any other
// gateway (which maps its own caller identity to a key name and role the same way).
//
//   role      may
//   reader    nodeGet, nodesGet, globalGet, jobGet, jobLogFollow, jobsList, configGet, members,
//             token, status
//   operator  also commission, decommission, update, discover, globalSet, jobCancel, auditList
//   admin     also configSet and stateDump (the full state, as `state-inspect --url` reads it)
//
// An allow-list line without a role grants admin (what every key could do before roles). A
// daemon's peer instances are admins: they forward requests on behalf of callers, and the
// forwarded request carries the original caller's identity (Caller), which the receiving
// instance judges again. Plain TCP (--insecure) has no identities: every caller is an admin.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "net/rpc_types.h"

namespace clustermgr::net {

enum class Role { kReader = 0, kOperator = 1, kAdmin = 2 };  // ordered: each includes the last

// "reader", "operator", "admin".
std::string_view RoleName(Role role);
// The inverse of RoleName; nullopt for anything else (case-sensitive).
std::optional<Role> ParseRole(std::string_view name);

// Who sent a request, as the instance where it entered judged it.
struct Caller {
  std::string key;   // the CURVE public key (Z85); "" for a plain or non-CURVE caller
  std::string name;  // the allow-list's name for it ("" when the line names none)
  Role role = Role::kAdmin;
  bool operator==(const Caller&) const = default;
};

// "key NAME (role)" or "key Z85... (role)" when unnamed; without a key, the name a gateway gave
// its caller ("certificate CN=alice (operator)", "loopback (admin)") or "plain caller (admin)":
// how log lines and refusals name a caller.
std::string Describe(const Caller& caller);

// The least role that may make `request`.
Role RequiredRole(const RpcRequest& request);

// True when `role` may make a request that needs `required`.
inline bool RoleAllows(Role role, Role required) {
  return static_cast<int>(role) >= static_cast<int>(required);
}

// nullopt when `caller` may make `request`; otherwise the one-line refusal:
//   `key ops (reader) may not configSet: it needs the admin role`
std::optional<std::string> Refusal(const Caller& caller, const RpcRequest& request);

}  // namespace clustermgr::net
