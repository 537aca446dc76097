#include "net/serf_membership.h"

#include <set>
#include <utility>

namespace clustermgr::net {
namespace {

const std::string* FindTag(const SerfMember& m, std::string_view key) {
  auto it = m.tags.find(std::string(key));
  return it == m.tags.end() ? nullptr : &it->second;
}

}  // namespace

const char* SerfNodeEventKindName(SerfNodeEvent::Kind kind) {
  switch (kind) {
    case SerfNodeEvent::Kind::kDiscovered:
      return "discovered";
    case SerfNodeEvent::Kind::kDisappeared:
      return "disappeared";
    case SerfNodeEvent::Kind::kUpdated:
      return "updated";
  }
  return "unknown";
}

const char* SerfNodeEventSubjectName(SerfNodeEvent::Subject subject) {
  return subject == SerfNodeEvent::Subject::kNode ? "node" : "manager";
}

std::string ToString(const SerfNodeEvent& e) {
  std::string s = std::string(SerfNodeEventKindName(e.kind)) + " " +
                  SerfNodeEventSubjectName(e.subject) + " " + e.name + " member=" + e.member +
                  " addr=" + e.address + " serf=" + e.serf_address + " status=" + e.status +
                  " cause=" + SerfEventTypeName(e.cause) + " tags={";
  bool first = true;
  for (const auto& [k, v] : e.tags) {
    if (!first) s += ",";
    first = false;
    s += k + "=" + v;
  }
  return s + "}";
}

std::optional<SerfMembership::Identity> SerfMembership::Classify(const SerfMember& m) {
  const std::string* label = FindTag(m, kSerfTagNodeLabel);
  const std::string* serial = FindTag(m, kSerfTagNodeSerial);
  if (label && serial && !label->empty() && !serial->empty()) {
    const std::string* addr = FindTag(m, kSerfTagNodeAddr);
    return Identity{SerfNodeEvent::Subject::kNode, *label + "-" + *serial,
                    addr && !addr->empty() ? *addr : m.addr};
  }
  const std::string* role = FindTag(m, kSerfTagRole);
  if (role && *role == kSerfRoleManager) {
    return Identity{SerfNodeEvent::Subject::kManager, m.name, m.addr};
  }
  return std::nullopt;
}

std::size_t SerfMembership::present_count() const {
  std::size_t n = 0;
  for (const auto& [name, k] : members_) n += k.present ? 1 : 0;
  return n;
}

void SerfMembership::Emit(SerfNodeEvent::Kind kind, const Identity& id, const SerfMember& m,
                          SerfEventType cause, std::vector<SerfNodeEvent>* out) {
  SerfNodeEvent e;
  e.kind = kind;
  e.subject = id.subject;
  e.name = id.name;
  e.member = m.name;
  e.address = id.address;
  e.serf_address = m.addr.empty() ? std::string() : m.Endpoint();
  e.tags = m.tags;
  e.status = m.status;
  e.cause = cause;
  out->push_back(std::move(e));
}

void SerfMembership::Present(const SerfMember& m, SerfEventType cause, bool explicit_update,
                             std::vector<SerfNodeEvent>* out) {
  const auto now = Classify(m);
  auto it = members_.find(m.name);
  if (it == members_.end() || !it->second.present) {
    if (now) Emit(SerfNodeEvent::Kind::kDiscovered, *now, m, cause, out);
    members_[m.name] = Known{m, true};
    return;
  }
  const SerfMember before = it->second.member;
  const auto was = Classify(before);
  // The identity is subject and name; an address change is an update.
  const bool same = was.has_value() == now.has_value() &&
                    (!was || (was->subject == now->subject && was->name == now->name));
  if (!same) {
    if (was) Emit(SerfNodeEvent::Kind::kDisappeared, *was, before, cause, out);
    if (now) Emit(SerfNodeEvent::Kind::kDiscovered, *now, m, cause, out);
  } else if (now && (explicit_update || !(before == m))) {
    Emit(SerfNodeEvent::Kind::kUpdated, *now, m, cause, out);
  }
  it->second.member = m;
}

void SerfMembership::Gone(const SerfMember& m, SerfEventType cause,
                          std::vector<SerfNodeEvent>* out) {
  auto it = members_.find(m.name);
  if (it != members_.end() && !it->second.present) {
    it->second.member = m;  // already reported gone; keep the latest status quietly
    return;
  }
  if (it != members_.end()) {
    // Report under the identity the state owner knew, with the member's latest status.
    const auto was = Classify(it->second.member);
    SerfMember last = it->second.member;
    last.status = m.status;
    if (was) Emit(SerfNodeEvent::Kind::kDisappeared, *was, last, cause, out);
  } else if (const auto now = Classify(m)) {
    Emit(SerfNodeEvent::Kind::kDisappeared, *now, m, cause, out);
  }
  members_[m.name] = Known{m, false};
}

std::vector<SerfNodeEvent> SerfMembership::Apply(const SerfMemberEvent& event) {
  std::vector<SerfNodeEvent> out;
  switch (event.type) {
    case SerfEventType::kMemberJoin:
      for (const auto& m : event.members) Present(m, event.type, false, &out);
      break;
    case SerfEventType::kMemberUpdate:
      for (const auto& m : event.members) Present(m, event.type, true, &out);
      break;
    case SerfEventType::kMemberLeave:
    case SerfEventType::kMemberFailed:
      for (const auto& m : event.members) Gone(m, event.type, &out);
      break;
    case SerfEventType::kMemberReap:
      for (const auto& m : event.members) {
        Gone(m, event.type, &out);
        members_.erase(m.name);
      }
      break;
    case SerfEventType::kResync: {
      std::set<std::string> listed;
      for (const auto& m : event.members) {
        listed.insert(m.name);
        if (m.status == "alive") {
          Present(m, event.type, false, &out);
        } else {
          Gone(m, event.type, &out);
        }
      }
      // Members reaped while we were not looking.
      for (auto it = members_.begin(); it != members_.end();) {
        if (listed.count(it->first) != 0) {
          ++it;
          continue;
        }
        if (it->second.present) {
          SerfMember last = it->second.member;
          last.status = "left";
          if (const auto was = Classify(last)) {
            Emit(SerfNodeEvent::Kind::kDisappeared, *was, last, event.type, &out);
          }
        }
        it = members_.erase(it);
      }
      // Nodes the owner expected that this list neither has alive nor reported gone.
      std::set<std::string> mentioned;
      for (const auto& e : out) {
        if (e.subject == SerfNodeEvent::Subject::kNode) mentioned.insert(e.name);
      }
      for (const auto& [member, known] : members_) {
        const auto id = Classify(known.member);
        if (known.present && id && id->subject == SerfNodeEvent::Subject::kNode) {
          mentioned.insert(id->name);
        }
      }
      for (const std::string& name : expected_nodes_) {
        if (mentioned.count(name) != 0) continue;
        SerfNodeEvent e;
        e.kind = SerfNodeEvent::Kind::kDisappeared;
        e.subject = SerfNodeEvent::Subject::kNode;
        e.name = name;
        e.status = "left";
        e.cause = event.type;
        out.push_back(std::move(e));
      }
      expected_nodes_.clear();
      break;
    }
    case SerfEventType::kUnknown:
      break;
  }
  return out;
}

}  // namespace clustermgr::net
