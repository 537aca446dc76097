// Who called the HTTP gateway, and which role that caller has (net/access.h).
//
//   caller                                   role
//   TLS client certificate, subject S        the role of the client allow-list line whose NAME
//                                            is S (RFC 2253, "CN=alice,O=ops") or S's common
//                                            name ("alice"); refused when a client allow-list is
//                                            configured and names neither; admin when the daemon
//                                            has no client allow-list (the CA alone decides)
//   plain HTTP from a loopback address       HttpAccess::plain_role (--http-loopback-role)
//   plain HTTP from elsewhere (only with     HttpAccess::plain_role as well: --http-insecure
//   --http-insecure)                         callers are as anonymous as loopback ones
//
// Thread-safety: value types and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/access.h"
#include "net/allow_list.h"

namespace clustermgr::mgr::http {

struct HttpCaller {
  enum class Kind { kCertificate, kLoopback, kRemote };
  Kind kind = Kind::kLoopback;
  std::string subject;  // kCertificate: the certificate's subject (RFC 2253)
  std::string address;  // the peer's address
  bool operator==(const HttpCaller&) const = default;
};

// How logs and the audit trail name it: "certificate CN=alice,O=ops", "loopback",
// "unauthenticated 10.0.0.7".
std::string Describe(const HttpCaller& caller);

// The value of the first CN attribute of an RFC 2253 subject ("" when none). Escaped commas
// ("\,") stay part of the value.
std::string CommonName(std::string_view subject);

// What the daemon's allow-lists and options say about HTTP callers.
struct HttpAccess {
  // The client allow-list (--curve-clients); nullopt when the daemon has none.
  std::optional<std::vector<net::AllowedKey>> clients;
  net::Role plain_role = net::Role::kAdmin;  // --http-loopback-role
  std::string instance;                      // names the instance in refusals
};

// The caller as the request path judges it (name = Describe(caller), key = ""). Error
// (kPermissionDenied, one line) for a certificate the client allow-list does not name.
Result<net::Caller> ResolveCaller(const HttpCaller& caller, const HttpAccess& access);

}  // namespace clustermgr::mgr::http
