#include "mgr/http/http_caller.h"

namespace clustermgr::mgr::http {

std::string Describe(const HttpCaller& caller) {
  switch (caller.kind) {
    case HttpCaller::Kind::kCertificate:
      return "certificate " + caller.subject;
    case HttpCaller::Kind::kLoopback:
      return "loopback";
    case HttpCaller::Kind::kRemote:
      break;
  }
  return "unauthenticated " + caller.address;
}

std::string CommonName(std::string_view subject) {
  // RFC 2253: attributes separated by unescaped ',' (or '+' within one RDN), "\" escapes.
  size_t start = 0;
  while (start <= subject.size()) {
    size_t end = start;
    while (end < subject.size() && subject[end] != ',' && subject[end] != '+') {
      end += subject[end] == '\\' ? 2 : 1;
    }
    end = std::min(end, subject.size());
    std::string_view attr = subject.substr(start, end - start);
    while (!attr.empty() && attr.front() == ' ') attr.remove_prefix(1);
    if (attr.size() > 3 && (attr.substr(0, 3) == "CN=" || attr.substr(0, 3) == "cn=")) {
      std::string value;
      for (size_t i = 3; i < attr.size(); ++i) {
        if (attr[i] == '\\' && i + 1 < attr.size()) ++i;
        value += attr[i];
      }
      return value;
    }
    start = end + 1;
  }
  return "";
}

Result<net::Caller> ResolveCaller(const HttpCaller& caller, const HttpAccess& access) {
  net::Caller out{"", Describe(caller), access.plain_role};
  if (caller.kind != HttpCaller::Kind::kCertificate) return out;
  if (!access.clients) {
    out.role = net::Role::kAdmin;
    return out;
  }
  const net::AllowedKey* line = net::FindByName(*access.clients, caller.subject);
  if (!line) {
    const std::string cn = CommonName(caller.subject);
    if (!cn.empty()) line = net::FindByName(*access.clients, cn);
  }
  if (!line) {
    return Status(Code::kFailedPrecondition,
                  "certificate " + caller.subject + " is not named in the client allow-list of " +
                      access.instance + " (name a line by the subject or its CN)");
  }
  out.role = line->role;
  return out;
}

}  // namespace clustermgr::mgr::http
