#include <algorithm>
#include <utility>

#include "mgr/log/log.h"
#include "mgr/repl/replicator.h"
#include "mgr/repl/replicator_internal.h"
#include "net/gossip_endpoint.h"

namespace clustermgr::mgr {

// ---- peers ----------------------------------------------------------------------------------

Replicator::Peer* Replicator::FindPeer(const std::string& endpoint) {
  auto it = peers_.find(endpoint);
  return it == peers_.end() ? nullptr : it->second.get();
}

Replicator::Peer& Replicator::EnsurePeer(const std::string& endpoint) {
  if (Peer* p = FindPeer(endpoint)) return *p;
  if (Status s = transport_->Connect(endpoint); !s.ok()) {
    CM_LOG(kWarn) << "replication: cannot connect to peer " << endpoint << ": " << s.message();
  }
  auto peer = std::make_unique<Peer>();
  peer->endpoint = endpoint;
  peer->next_sync_ms = 0;
  CM_LOG(kInfo) << "replication: peer " << endpoint << " added";
  return *peers_.emplace(endpoint, std::move(peer)).first->second;
}

void Replicator::RemovePeer(const std::string& endpoint) {
  auto it = peers_.find(endpoint);
  if (it == peers_.end()) return;
  CM_LOG(kInfo) << "replication: peer " << endpoint << " ("
                << (it->second->name.empty() ? "?" : it->second->name) << ") removed";
  if (fetch_ && fetch_->peer == endpoint) AbandonFetch("its peer was removed");
  transport_->Disconnect(endpoint);
  stability_.Forget(endpoint);
  peers_.erase(it);
}

void Replicator::ForgetSilentPeers(uint64_t now_ms) {
  std::vector<std::string> forget;
  for (auto& [endpoint, peer] : peers_) {
    const uint64_t heard = std::max(peer->last_contact_ms, peer->learned_ms);
    if (!peer->configured && peer->serf_member.empty() &&
        now_ms - heard >= options_.forget_learned_ms) {
      forget.push_back(endpoint);
    }
  }
  for (const std::string& endpoint : forget) RemovePeer(endpoint);
}

Status Replicator::AddPeer(const std::string& endpoint) {
  if (auto ae = net::AntiEntropyEndpoint(endpoint); !ae.ok()) return ae.status();
  if (endpoint == transport_->endpoint()) return Status::Ok();
  EnsurePeer(endpoint).configured = true;
  return Status::Ok();
}

void Replicator::OnManagerEvent(const net::SerfNodeEvent& e) {
  auto tag = e.tags.find("gossip");
  if (tag == e.tags.end() || tag->second.empty()) return;  // not (yet) replicating
  const std::string endpoint = net::ConnectableEndpoint(tag->second, e.address);
  if (endpoint == transport_->endpoint()) return;
  if (!net::AntiEntropyEndpoint(endpoint).ok()) {
    CM_LOG(kWarn) << "replication: Serf member " << e.member << " advertises an unusable gossip "
                  << "endpoint \"" << endpoint << "\"";
    return;
  }
  auto drop_if_serf_only = [&](const std::string& ep) {
    Peer* p = FindPeer(ep);
    if (p && !p->configured) RemovePeer(ep);
  };
  if (e.kind == net::SerfNodeEvent::Kind::kDisappeared) {
    // A member that failed may come back (ZeroMQ keeps reconnecting); one that left is gone.
    if (e.status == "left") {
      serf_members_.erase(e.member);
      drop_if_serf_only(endpoint);
    }
    return;
  }
  if (auto it = serf_members_.find(e.member); it != serf_members_.end() && it->second != endpoint) {
    drop_if_serf_only(it->second);  // it moved to another endpoint
  }
  serf_members_[e.member] = endpoint;
  bool rekey = false;
  if (auto key = e.tags.find("curve"); key != e.tags.end() && !key->second.empty()) {
    rekey = LearnPeerKey(endpoint, key->second, "Serf member " + e.member);
  }
  const bool existed = FindPeer(endpoint) != nullptr;
  Peer& p = EnsurePeer(endpoint);
  if (rekey && existed) Reconnect(endpoint);
  p.serf_member = e.member;
  if (p.name.empty()) p.name = e.name;
  if (auto rpc = e.tags.find("rpc"); rpc != e.tags.end() && p.rpc_endpoint.empty()) {
    p.rpc_endpoint = net::ConnectableEndpoint(rpc->second, e.address);
  }
}

bool Replicator::LearnPeerKey(const std::string& endpoint, const std::string& key,
                              const std::string& via) {
  auto changed = transport_->SetPeerKey(endpoint, key);
  if (!changed.ok()) {
    CM_LOG(kWarn) << "replication: not using the CURVE key of " << via << ": "
                  << changed.status().message();
    return false;
  }
  return *changed;
}

void Replicator::Reconnect(const std::string& endpoint) {
  transport_->Disconnect(endpoint);
  if (Status s = transport_->Connect(endpoint); !s.ok()) {
    CM_LOG(kWarn) << "replication: cannot connect to peer " << endpoint << ": " << s.message();
  } else {
    CM_LOG(kInfo) << "replication: connecting to peer " << endpoint << " with its CURVE key";
  }
}

Replicator::Peer* Replicator::NoteSender(const net::GossipPeerInfo& sender,
                                         const std::string& endpoint, const std::string& peer_key,
                                         uint64_t now_ms) {
  if (sender.origin == replica_->origin()) {
    // We reached ourselves through another name for our own endpoint.
    if (endpoint != transport_->endpoint() && FindPeer(endpoint)) {
      CM_LOG(kInfo) << "replication: " << endpoint << " is this instance; not a peer";
      RemovePeer(endpoint);
    }
    return nullptr;
  }
  if (endpoint.empty() || endpoint == transport_->endpoint() ||
      !net::AntiEntropyEndpoint(endpoint).ok()) {
    return nullptr;
  }
  // A requester over CURVE proved its key, which is also its servers' key.
  const bool rekey = !peer_key.empty() && LearnPeerKey(endpoint, peer_key, "requester " + endpoint);
  const bool known = FindPeer(endpoint) != nullptr;
  Peer& p = EnsurePeer(endpoint);
  if (!known) p.learned_ms = now_ms;
  if (rekey && known) Reconnect(endpoint);
  if (!sender.origin.empty() && p.origin != sender.origin) {
    if (!p.origin.empty()) {
      CM_LOG(kInfo) << "replication: peer " << endpoint << " is a new incarnation " << sender.origin
                    << " (was " << p.origin << ")";
    }
    p.origin = sender.origin;
    p.applied = {};
    p.durable = {};
    p.reported = false;
    p.next_sync_ms = 0;
  }
  if (!sender.name.empty()) p.name = sender.name;
  if (!sender.rpc_endpoint.empty()) p.rpc_endpoint = sender.rpc_endpoint;
  p.last_contact_ms = now_ms;
  p.connected = true;
  return &p;
}

void Replicator::NoteReport(Peer& peer, const crdt::VersionVector& applied,
                            const crdt::VersionVector& durable) {
  peer.applied.Merge(applied);
  peer.durable.Merge(durable);
  peer.reported = true;
  // Tombstone stability counts only what the peer holds on disk: what it applied without a
  // sync could be lost with its machine, and come back from an older write.
  if (!peer.origin.empty()) stability_.Report(peer.endpoint, peer.origin, durable);
  // The peer has something we lack: ask for it now rather than at the next round.
  if (!applied_.Dominates(applied) && !peer.sync_outstanding) peer.next_sync_ms = 0;
}

// ---- views ----------------------------------------------------------------------------------

namespace {

std::vector<net::OriginCount> Lag(const crdt::VersionVector& best, const crdt::VersionVector& v) {
  std::vector<net::OriginCount> out;
  for (const auto& [origin, seq] : best.entries()) {
    const uint64_t have = v.Get(origin);
    if (seq > have) out.push_back(net::OriginCount{origin, seq - have});
  }
  return out;
}

}  // namespace

std::vector<net::MemberInfo> Replicator::Members(uint64_t now_ms) const {
  const crdt::VersionVector mine = replica_->Applied();
  crdt::VersionVector best = mine;
  for (const auto& [endpoint, peer] : peers_) best.Merge(peer->applied);

  std::vector<net::MemberInfo> out;
  net::MemberInfo self;
  self.name = replica_->name();
  self.rpc_endpoint = options_.rpc_endpoint;
  self.gossip_endpoint = transport_->endpoint();
  self.alive = true;
  self.self = true;
  self.lag_deltas = 0;
  self.last_seen_ms = static_cast<int64_t>(now_ms);
  self.lag_by_origin = Lag(best, mine);
  out.push_back(std::move(self));

  std::vector<net::MemberInfo> peers;
  for (const auto& [endpoint, p] : peers_) {
    net::MemberInfo m;
    m.name = p->name.empty() ? endpoint : p->name;
    m.rpc_endpoint = p->rpc_endpoint;
    m.gossip_endpoint = endpoint;
    m.alive = p->last_contact_ms > 0 && now_ms - p->last_contact_ms <= options_.peer_alive_ms;
    // As net/rpc.capnp defines it: the member's own deltas it has issued (per its report) that
    // this instance has not applied yet.
    m.lag_deltas = -1;
    if (p->reported && !p->origin.empty()) {
      const uint64_t issued = p->applied.Get(p->origin);
      const uint64_t here = mine.Get(p->origin);
      m.lag_deltas = static_cast<int64_t>(issued > here ? issued - here : 0);
      m.lag_by_origin = Lag(best, p->applied);
    }
    m.last_seen_ms = static_cast<int64_t>(p->last_contact_ms);
    peers.push_back(std::move(m));
  }
  std::sort(peers.begin(), peers.end(),
            [](const net::MemberInfo& a, const net::MemberInfo& b) { return a.name < b.name; });
  for (auto& m : peers) out.push_back(std::move(m));
  return out;
}

std::map<std::string, uint64_t> Replicator::LastContactByName() const {
  std::map<std::string, uint64_t> out;
  for (const auto& [endpoint, p] : peers_) {
    if (p->name.empty() || p->last_contact_ms == 0) continue;
    uint64_t& last = out[p->name];
    last = std::max(last, p->last_contact_ms);
  }
  return out;
}

std::optional<Replicator::Heard> Replicator::HeardThroughMember(const std::string& member) const {
  auto endpoint = serf_members_.find(member);
  if (endpoint == serf_members_.end()) return std::nullopt;
  auto peer = peers_.find(endpoint->second);
  if (peer == peers_.end() || peer->second->last_contact_ms == 0) return std::nullopt;
  return Heard{peer->second->name, peer->second->last_contact_ms};
}

bool Replicator::CaughtUpWith(const std::string& name) const {
  if (fetch_) return false;
  const crdt::VersionVector mine = Applied();
  bool reported = false;
  for (const auto& [endpoint, p] : peers_) {
    if (p->name != name || !p->reported) continue;
    reported = true;
    if (!mine.Dominates(p->applied)) return false;
  }
  return reported;
}

std::vector<net::PeerStatus> Replicator::Peers(uint64_t now_ms) const {
  std::vector<net::PeerStatus> out;
  for (const auto& [endpoint, p] : peers_) {
    net::PeerStatus s;
    s.endpoint = endpoint;
    s.name = p->name;
    s.connected = p->connected && p->last_contact_ms > 0 &&
                  now_ms - p->last_contact_ms <= options_.peer_alive_ms;
    s.last_contact_ms = static_cast<int64_t>(p->last_contact_ms);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace clustermgr::mgr
