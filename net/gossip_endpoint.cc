#include "net/gossip_endpoint.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <charconv>
#include <string_view>

namespace clustermgr::net {
namespace {

constexpr std::string_view kTcp = "tcp://";

// Splits "tcp://HOST:PORT" at the last ':'; false when it is not of that form.
bool SplitTcp(const std::string& endpoint, std::string_view* host, std::string_view* port) {
  if (endpoint.rfind(kTcp, 0) != 0) return false;
  std::string_view rest(endpoint);
  rest.remove_prefix(kTcp.size());
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  *host = rest.substr(0, colon);
  *port = rest.substr(colon + 1);
  return true;
}

}  // namespace

int TcpPort(const std::string& endpoint) {
  std::string_view host, port;
  if (!SplitTcp(endpoint, &host, &port)) return -1;
  int value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value < 0 || value > 65535) {
    return 0;
  }
  return value;
}

Result<std::string> AntiEntropyEndpoint(const std::string& gossip) {
  auto bad = [&](const std::string& why) {
    return Status(
        Code::kInvalidArgument,
        "cannot derive the anti-entropy endpoint from gossip endpoint \"" + gossip + "\": " + why);
  };
  if (gossip.rfind("ipc://", 0) == 0 || gossip.rfind("inproc://", 0) == 0) {
    if (gossip.size() <= gossip.find("://") + 3) return bad("no path or name");
    return gossip + ".ae";
  }
  std::string_view host, port;
  if (!SplitTcp(gossip, &host, &port)) {
    return bad("expected tcp://HOST:PORT, ipc://PATH or inproc://NAME");
  }
  const int p = TcpPort(gossip);
  if (p <= 0) return bad("the port must be a number from 1 to 65534 (not 0 or *)");
  if (p == 65535) return bad("port 65535 leaves no next port for anti-entropy");
  return std::string(kTcp) + std::string(host) + ":" + std::to_string(p + 1);
}

std::string ConnectableEndpoint(const std::string& endpoint, const std::string& host) {
  std::string_view h, port;
  if (host.empty() || !SplitTcp(endpoint, &h, &port)) return endpoint;
  if (h != "*" && h != "0.0.0.0" && h != "[::]" && h != "::") return endpoint;
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(kTcp) + (v6 ? "[" + host + "]" : host) + ":" + std::string(port);
}

std::string InterfaceAddress() {
  ifaddrs* all = nullptr;
  if (getifaddrs(&all) != 0) return "127.0.0.1";
  std::string v4, v6;
  for (ifaddrs* i = all; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) {
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET && v4.empty()) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) v4 = text;
    } else if (i->ifa_addr->sa_family == AF_INET6 && v6.empty()) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
      if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text)) v6 = text;
    }
  }
  freeifaddrs(all);
  if (!v4.empty()) return v4;
  if (!v6.empty()) return v6;
  return "127.0.0.1";
}

}  // namespace clustermgr::net
