// Plain data of the Serf agent's RPC ("IPC") protocol, free of msgpack so that users of the
// client need not see the codec. Field names follow serf's client/const.go (Member,
// memberEventRecord, membersFilteredRequest).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace clustermgr::net {

// One member as the agent reports it (`members`, `members-filtered`, stream records).
struct SerfMember {
  std::string name;
  // Textual IP ("127.0.0.1", "::1"); the agent sends raw 4/16 address bytes, IPv4-mapped IPv6
  // is shown as IPv4. Empty when the agent sent none.
  std::string addr;
  uint16_t port = 0;  // gossip port
  std::map<std::string, std::string> tags;
  // "alive", "leaving", "left", "failed" (or "none"); passed through as sent.
  std::string status;
  uint8_t protocol_min = 0;
  uint8_t protocol_max = 0;
  uint8_t protocol_cur = 0;
  uint8_t delegate_min = 0;
  uint8_t delegate_max = 0;
  uint8_t delegate_cur = 0;

  // "addr:port" ("[addr]:port" for IPv6).
  std::string Endpoint() const;
  bool operator==(const SerfMember&) const = default;
};

enum class SerfEventType {
  // Synthetic, never on the wire: the full member list, delivered by SerfClient each time a
  // member stream is (re)opened, so that a subscriber can diff it against what it knew.
  kResync,
  kMemberJoin,
  kMemberLeave,
  kMemberFailed,
  kMemberUpdate,
  kMemberReap,
  kUnknown,  // any other "Event" string (kept in SerfMemberEvent::event)
};

// "resync", "member-join", ... ; ParseSerfEventType maps unknown names to kUnknown.
const char* SerfEventTypeName(SerfEventType type);
SerfEventType ParseSerfEventType(std::string_view name);

// A member event record of a `stream` (memberEventRecord), or a synthetic resync.
struct SerfMemberEvent {
  SerfEventType type = SerfEventType::kUnknown;
  std::string event;                // the wire name ("member-join"), "resync" for kResync
  std::vector<SerfMember> members;  // may be empty
};

// Arguments of `members-filtered`. The agent anchors every value as a regular expression
// (^value$); an empty status or name matches everything.
struct SerfMemberFilter {
  std::map<std::string, std::string> tags;
  std::string status;
  std::string name;
};

// The stream filter that selects every membership event this project cares about.
inline constexpr std::string_view kSerfMemberEventFilter =
    "member-join,member-leave,member-failed,member-update";

// Error strings the agent sends in the response header (cmd/serf/command/agent/ipc.go).
inline constexpr std::string_view kSerfErrAuthRequired = "Authentication required";
inline constexpr std::string_view kSerfErrInvalidAuthToken = "Invalid authentication token";
inline constexpr std::string_view kSerfErrHandshakeRequired = "Handshake required";
inline constexpr std::string_view kSerfErrUnsupportedCommand = "Unsupported command";
inline constexpr std::string_view kSerfErrUnsupportedIpcVersion = "Unsupported IPC version";

// The only IPC version serf speaks.
inline constexpr int32_t kSerfIpcVersion = 1;

}  // namespace clustermgr::net
