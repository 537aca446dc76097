#include "net/serf_status.h"

namespace clustermgr::net {

const char* SerfErrcName(SerfErrc code) {
  switch (code) {
    case SerfErrc::kOk:
      return "ok";
    case SerfErrc::kInvalidArgument:
      return "invalid-argument";
    case SerfErrc::kNotConnected:
      return "not-connected";
    case SerfErrc::kConnectFailed:
      return "connect-failed";
    case SerfErrc::kHandshakeRefused:
      return "handshake-refused";
    case SerfErrc::kAuthFailed:
      return "auth-failed";
    case SerfErrc::kTimeout:
      return "timeout";
    case SerfErrc::kProtocol:
      return "protocol";
    case SerfErrc::kRemote:
      return "remote";
    case SerfErrc::kConnectionLost:
      return "connection-lost";
    case SerfErrc::kClosed:
      return "closed";
  }
  return "unknown";
}

}  // namespace clustermgr::net
