// The replication endpoint scheme (when replication needs more sockets, they are derived
// from --gossip-bind").
//
// An instance binds two sockets from its one configured gossip endpoint:
//   PUB    at the gossip endpoint itself          (peers' SUB sockets connect here)
//   ROUTER at the anti-entropy endpoint below     (peers' DEALER sockets connect here)
// The anti-entropy endpoint is derived, never configured:
//   tcp://HOST:PORT   ->  tcp://HOST:(PORT+1)      so PORT must be 1..65534
//   ipc://PATH        ->  ipc://PATH.ae
//   inproc://NAME     ->  inproc://NAME.ae
// A peer's --peer value and its Serf tag `gossip=` name its gossip (PUB) endpoint; the other
// end derives the ROUTER from it the same way.
//
// Thread-safety: pure functions, but for InterfaceAddress, which reads the host's interfaces.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace clustermgr::net {

// Errors (kInvalidArgument): not tcp://, ipc:// or inproc://; a tcp endpoint without a numeric
// port, with port 0 or *, or with port 65535.
Result<std::string> AntiEntropyEndpoint(const std::string& gossip_endpoint);

// A tcp endpoint's port (0 when it has none or it is "*"); -1 when not a tcp endpoint.
int TcpPort(const std::string& endpoint);

// `endpoint` with its host replaced by `host` when the host is a wildcard ("*", "0.0.0.0",
// "[::]", "::"), so that a peer can connect to what a member advertises; unchanged otherwise.
std::string ConnectableEndpoint(const std::string& endpoint, const std::string& host);

// This host's address for an endpoint bound to a wildcard: the first up, non-loopback IPv4
// interface address, else the first such global IPv6 one, else "127.0.0.1".
std::string InterfaceAddress();

}  // namespace clustermgr::net
