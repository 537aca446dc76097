// Turns Serf membership (stream records and resyncs from SerfClient) into node and manager
// events for the state owner. Pure logic, no I/O, no threads: SerfMonitor runs it on its own
// thread, and tests feed it directly.
//
// Tags (set on a Serf agent with `-tag k=v` or the RPC `tags` command):
//   NodeLabel, NodeSerial  a cluster node; its name is "<NodeLabel>-<NodeSerial>". Both must be
//                          non-empty.
//   NodeAddr               the node's management address (if absent, the member's Serf IP).
//   role=clustermgr        a manager instance (a member without node tags). Other manager
//                          tags (rpc, gossip, epoch, ...) are passed through untouched in
//                          SerfNodeEvent::tags.
// Members with neither are ignored.
//
// Mapping:
//   member alive in a resync, or member-join         -> Discovered (Updated if it was already
//                                                       present and something changed)
//   member-failed, member-leave, or not alive in a
//   resync, or missing from a resync                 -> Disappeared (once; not repeated while
//                                                       it stays absent)
//   member-update                                    -> Updated (refreshed address and tags)
//   a member whose identity changes (e.g. NodeSerial
//   updated, node tags added or removed)             -> Disappeared of the old identity, then
//                                                       Discovered of the new one
// Every member of a multi-member record is processed, in record order; an empty record
// produces nothing. A Disappeared is also reported for a member first seen as failed or left
// (e.g. at start), so that a restarted daemon learns that a node it knew is gone.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "net/serf_types.h"

namespace clustermgr::net {

inline constexpr std::string_view kSerfTagNodeLabel = "NodeLabel";
inline constexpr std::string_view kSerfTagNodeSerial = "NodeSerial";
inline constexpr std::string_view kSerfTagNodeAddr = "NodeAddr";
inline constexpr std::string_view kSerfTagRole = "role";
inline constexpr std::string_view kSerfRoleManager = "clustermgr";

// A message for the state owner. Plain data: safe to copy across threads.
struct SerfNodeEvent {
  enum class Kind { kDiscovered, kDisappeared, kUpdated };
  enum class Subject { kNode, kManager };

  Kind kind = Kind::kDiscovered;
  Subject subject = Subject::kNode;
  std::string name;          // node: "<NodeLabel>-<NodeSerial>"; manager: the Serf member name
  std::string member;        // the Serf member name
  std::string address;       // node: NodeAddr (or the Serf IP); manager: the Serf IP
  std::string serf_address;  // the member's gossip endpoint "ip:port"
  std::map<std::string, std::string> tags;  // all of the member's tags
  std::string status;                       // Serf status: "alive", "leaving", "left", "failed"
  SerfEventType cause = SerfEventType::kUnknown;  // the Serf event (or kResync) behind it

  bool operator==(const SerfNodeEvent&) const = default;
};

const char* SerfNodeEventKindName(SerfNodeEvent::Kind kind);           // "discovered", ...
const char* SerfNodeEventSubjectName(SerfNodeEvent::Subject subject);  // "node", "manager"
// One line: "discovered node n1-0 member=a0 addr=10.0.0.1 serf=127.0.0.1:7946 status=alive
// cause=member-join tags={NodeAddr=10.0.0.1,NodeLabel=n1,NodeSerial=0}".
std::string ToString(const SerfNodeEvent& event);

// Not thread-safe: owned by one thread.
class SerfMembership {
 public:
  // Applies one client event; returns the node and manager events it implies, in order.
  std::vector<SerfNodeEvent> Apply(const SerfMemberEvent& event);

  // Node or manager identity of a member, if it has one.
  struct Identity {
    SerfNodeEvent::Subject subject;
    std::string name;
    std::string address;
    bool operator==(const Identity&) const = default;
  };
  static std::optional<Identity> Classify(const SerfMember& member);

  // Members currently known as present (alive), by Serf member name.
  std::size_t present_count() const;

  // Node names the state owner believes present before any member list arrived (a restarted
  // daemon's inventory). The first resync reports Disappeared for each of them that it neither
  // lists alive nor reports otherwise: a node that left while nobody watched, and that the agent
  // no longer lists at all, would else stay present for the owner forever. Later resyncs compare
  // with what this object saw itself. Call before the first Apply.
  void ExpectNodes(std::set<std::string> names) { expected_nodes_ = std::move(names); }

 private:
  struct Known {
    SerfMember member;
    bool present = false;
  };

  void Present(const SerfMember& m, SerfEventType cause, bool explicit_update,
               std::vector<SerfNodeEvent>* out);
  void Gone(const SerfMember& m, SerfEventType cause, std::vector<SerfNodeEvent>* out);
  static void Emit(SerfNodeEvent::Kind kind, const Identity& id, const SerfMember& m,
                   SerfEventType cause, std::vector<SerfNodeEvent>* out);

  std::map<std::string, Known> members_;  // by Serf member name
  std::set<std::string> expected_nodes_;  // until the first resync
};

}  // namespace clustermgr::net
