#include "mgr/repl/replicator.h"

#include <algorithm>
#include <random>
#include <utility>

#include "mgr/log/log.h"
#include "net/gossip_endpoint.h"
#include "store/codec.h"

namespace clustermgr::mgr {

struct Replicator::Peer {
  std::string endpoint;     // its gossip (PUB) endpoint: the key
  bool configured = false;  // --peer: never dropped
  std::string serf_member;  // found through Serf (empty otherwise)
  std::string name;         // learned from its messages (or Serf)
  std::string origin;       // its current incarnation's origin
  std::string rpc_endpoint;
  crdt::VersionVector applied;  // its latest report (of `origin`)
  bool reported = false;
  uint64_t last_contact_ms = 0;
  uint64_t last_sync_ms = 0;  // last syncReply received
  uint64_t next_sync_ms = 0;  // 0: as soon as possible
  uint64_t sync_sent_ms = 0;
  bool sync_outstanding = false;
  bool connected = false;   // the last send went out, or it spoke to us
  uint64_t learned_ms = 0;  // when it was learned (from a reply or its own request)
};

struct Replicator::Session {
  uint64_t id = 0;
  std::string requester;  // its gossip endpoint
  std::vector<std::string> chunks;
  crdt::VersionVector covered;
  crdt::HlcTimestamp hlc;  // the clock when the snapshot was taken
  uint64_t last_used_ms = 0;
};

struct Replicator::Fetch {
  std::string peer;
  uint64_t id = 0;
  uint32_t chunks = 0;
  crdt::VersionVector covered;
  crdt::HlcTimestamp hlc;  // the sender's clock when it took the snapshot
  crdt::StateKeys keys;    // of every chunk received: what the snapshot holds
  std::vector<bool> have;
  uint32_t have_count = 0;
  uint32_t cursor = 0;                 // next index never asked for
  std::map<uint32_t, uint64_t> asked;  // outstanding: index -> when asked
  std::optional<crdt::ClusterState> last;
  SnapshotAssembly assembly;
  uint64_t progress_ms = 0;
  uint64_t started_ms = 0;
};

struct Replicator::Waiter {
  uint64_t seq = 0;
  int replicas = 0;
  uint64_t started_ms = 0;
  uint64_t deadline_ms = 0;
  AckDone done;
};

Replicator::Replicator(ReplicatorOptions options, Replica* replica, net::GossipTransport* transport)
    : options_(std::move(options)), replica_(replica), transport_(transport) {
  // Session ids are random so that a restarted peer's old ids are not mistaken for new ones.
  std::random_device rd;
  next_session_id_ = ((uint64_t{rd()} << 32) ^ rd()) | 1;
  applied_ = Applied();
}

Replicator::~Replicator() {
  // Parked replies would otherwise never be answered: tell them now.
  std::vector<Waiter> waiters = std::move(waiters_);
  for (Waiter& w : waiters) {
    w.done(Status(Code::kOutcomeUnknown, "outcome unknown: shutting down before " +
                                             std::to_string(w.replicas) +
                                             " peers confirmed the write"));
  }
}

net::GossipPeerInfo Replicator::Self() const {
  return net::GossipPeerInfo{replica_->name(), replica_->origin(), transport_->endpoint(),
                             options_.rpc_endpoint};
}

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
    p.reported = false;
    p.next_sync_ms = 0;
  }
  if (!sender.name.empty()) p.name = sender.name;
  if (!sender.rpc_endpoint.empty()) p.rpc_endpoint = sender.rpc_endpoint;
  p.last_contact_ms = now_ms;
  p.connected = true;
  return &p;
}

void Replicator::NoteReport(Peer& peer, const crdt::VersionVector& applied) {
  peer.applied.Merge(applied);
  peer.reported = true;
  if (!peer.origin.empty()) stability_.Report(peer.endpoint, peer.origin, applied);
  // The peer has something we lack: ask for it now rather than at the next round.
  if (!applied_.Dominates(applied) && !peer.sync_outstanding) peer.next_sync_ms = 0;
}

// ---- publishing and receiving ---------------------------------------------------------------

void Replicator::OnLocalDelta(const crdt::Delta& delta) {
  if (delta.seq == 0) return;
  net::GossipMessage m;
  m.body =
      net::GossipDelta{delta.origin, delta.seq, store::EncodeDelta(delta), options_.ack_wanted};
  const uint64_t before = transport_->counters().bytes_published;
  if (transport_->Publish(m)) CountOut(kAllPeers, transport_->counters().bytes_published - before);
  ++counters_.published;
}

void Replicator::Poll(uint64_t now_ms) {
  applied_ = Applied();
  for (size_t n = 0; n < options_.max_messages_per_poll; ++n) {
    auto in = transport_->Receive();
    if (!in) break;
    Handle(std::move(*in), now_ms);
  }
  Flush();
  SendUrgentSyncs(now_ms);
  CheckWaiters(now_ms);
}

void Replicator::Handle(net::GossipIncoming in, uint64_t now_ms) {
  using Via = net::GossipIncoming::Via;
  net::GossipBody& body = in.message.body;
  const net::GossipPeerInfo& sender = in.message.sender;
  // A published delta carries no sender: its origin ("<name>/<incarnation>") names it.
  std::string from = sender.name;
  if (const auto* d = std::get_if<net::GossipDelta>(&body); d && from.empty()) {
    from = d->origin.substr(0, d->origin.find('/'));
  }
  PeerTraffic& traffic = TrafficOf(from);
  ++traffic.messages_in;
  traffic.bytes_in += in.bytes;
  if (auto* d = std::get_if<net::GossipDelta>(&body); d && in.via == Via::kPublished) {
    OnDelta(std::move(*d));
    return;
  }
  if (in.via == Via::kRequest) {
    Peer* peer = NoteSender(sender, sender.gossip_endpoint, in.peer_key, now_ms);
    if (auto* r = std::get_if<net::SyncRequest>(&body)) {
      if (peer) OnSyncRequest(in.from, *peer, *r, now_ms);
      return;
    }
    if (auto* f = std::get_if<net::SnapshotFetch>(&body)) {
      OnSnapshotFetch(in.from, sender.name, *f, now_ms);
      return;
    }
    if (auto* r = std::get_if<net::Report>(&body)) {
      if (peer) NoteReport(*peer, r->applied);
      return;
    }
  } else if (in.via == Via::kReply) {
    if (!FindPeer(in.from)) return;  // removed meanwhile
    Peer* peer = NoteSender(sender, in.from, "", now_ms);
    if (!peer) return;
    if (auto* r = std::get_if<net::SyncReply>(&body)) {
      OnSyncReply(*peer, std::move(*r), now_ms);
      return;
    }
    if (auto* c = std::get_if<net::SnapshotChunk>(&body)) {
      OnSnapshotChunk(*peer, std::move(*c), now_ms);
      return;
    }
  }
  ++counters_.bad_messages;  // a message on a channel it does not belong to
}

void Replicator::OnDelta(net::GossipDelta delta) {
  ++counters_.deltas_received;
  if (delta.ack_wanted) {
    ack_origins_.insert(delta.origin);
    reports_due_.insert(delta.origin);
  }
  Accept(std::move(delta));
}

void Replicator::Accept(net::GossipDelta delta) {
  const uint64_t applied = applied_.Get(delta.origin);
  if (delta.seq <= applied) {
    ++counters_.deltas_duplicate;
    return;
  }
  auto& queue = buffer_[delta.origin];
  if (queue.count(delta.seq)) {
    ++counters_.deltas_duplicate;
    return;
  }
  // The next delta in order is always taken (it applies at once); later ones only while the
  // buffer has room (anti-entropy fetches what is dropped).
  if (delta.seq != applied + 1 && buffered_ >= options_.max_buffered_deltas) {
    ++counters_.deltas_overflow;
    return;
  }
  const uint64_t seq = delta.seq;
  queue.emplace(seq, std::move(delta));
  ++buffered_;
}

void Replicator::Flush() {
  if (buffered_ > 0) {
    const crdt::VersionVector applied = Applied();
    std::vector<crdt::Delta> batch;
    std::set<std::string> origins;
    for (auto& [origin, queue] : buffer_) {
      uint64_t next = applied.Get(origin) + 1;
      while (!queue.empty() && queue.begin()->first < next) {
        queue.erase(queue.begin());
        --buffered_;
        ++counters_.deltas_duplicate;
      }
      while (!queue.empty() && queue.begin()->first == next) {
        net::GossipDelta& g = queue.begin()->second;
        auto d = store::DecodeDelta(g.payload);
        const bool good = d.ok() && d->origin == origin && d->seq == next;
        if (!good) {
          ++counters_.bad_messages;
          CM_LOG(kWarn) << "replication: dropping delta " << origin << ":" << next << ": "
                        << (d.ok() ? "its payload names another origin or seq"
                                   : d.status().message());
        } else {
          batch.push_back(std::move(d).value());
          origins.insert(origin);
          ++next;
        }
        queue.erase(queue.begin());
        --buffered_;
        if (!good) break;  // anti-entropy will bring a good copy
      }
    }
    if (!batch.empty()) {
      if (Status s = replica_->ApplyRemote(batch); s.ok()) {
        counters_.deltas_applied += batch.size();
        for (const std::string& o : origins) {
          if (ack_origins_.count(o)) reports_due_.insert(o);
        }
      } else {
        ++counters_.store_errors;
        CM_LOG(kError) << "replication: cannot store " << batch.size()
                       << " deltas from peers: " << s.message();
      }
    }
    applied_ = Applied();
    // What is still buffered sits behind a gap: ask its publisher for anti-entropy now.
    for (auto it = buffer_.begin(); it != buffer_.end();) {
      if (it->second.empty()) {
        it = buffer_.erase(it);
        continue;
      }
      ++counters_.gaps;
      for (auto& [endpoint, peer] : peers_) {
        if (peer->origin == it->first && !peer->sync_outstanding) peer->next_sync_ms = 0;
      }
      ++it;
    }
  }
  if (!reports_due_.empty()) {
    net::GossipMessage m{Self(), net::Report{applied_}};
    for (auto& [endpoint, peer] : peers_) {
      if (reports_due_.count(peer->origin)) SendTo(endpoint, m);
    }
    reports_due_.clear();
  }
}

// ---- traffic per peer ------------------------------------------------------------------------

Replicator::PeerTraffic& Replicator::TrafficOf(const std::string& name) {
  // Names come from peers' messages: the map is bounded, the rest counted together.
  constexpr size_t kMaxNamed = 64;
  const std::string key = name.empty() ? "unknown" : name;
  auto it = traffic_.find(key);
  if (it != traffic_.end()) return it->second;
  return traffic_[traffic_.size() < kMaxNamed ? key : "other"];
}

void Replicator::CountOut(const std::string& name, uint64_t bytes) {
  PeerTraffic& t = TrafficOf(name);
  ++t.messages_out;
  t.bytes_out += bytes;
}

bool Replicator::SendTo(const std::string& endpoint, const net::GossipMessage& m) {
  const uint64_t before = transport_->counters().bytes_sent;
  if (!transport_->Send(endpoint, m)) return false;
  Peer* peer = FindPeer(endpoint);
  CountOut(peer && !peer->name.empty() ? peer->name : endpoint,
           transport_->counters().bytes_sent - before);
  return true;
}

void Replicator::ReplyTo(const std::string& identity, const std::string& name,
                         const net::GossipMessage& m) {
  const uint64_t before = transport_->counters().bytes_sent;
  if (transport_->Reply(identity, m)) CountOut(name, transport_->counters().bytes_sent - before);
}

// ---- anti-entropy ---------------------------------------------------------------------------

void Replicator::SendSync(Peer& peer, uint64_t now_ms) {
  net::GossipMessage m{Self(), net::SyncRequest{applied_}};
  if (SendTo(peer.endpoint, m)) {
    peer.connected = true;
    peer.sync_outstanding = true;
    peer.sync_sent_ms = now_ms;
    peer.next_sync_ms = now_ms + options_.anti_entropy_ms;
    ++counters_.syncs_sent;
  } else {
    // Not connected (yet, or any more): try again at the next tick; ZeroMQ reconnects in the
    // background, so the first tick after it does sends at once.
    peer.connected = false;
    peer.next_sync_ms = now_ms + 1;
  }
}

void Replicator::SendUrgentSyncs(uint64_t now_ms) {
  if (fetch_) return;
  for (auto& [endpoint, peer] : peers_) {
    if (peer->next_sync_ms == 0 && !peer->sync_outstanding) SendSync(*peer, now_ms);
  }
}

void Replicator::OnSyncRequest(const std::string& identity, Peer& peer,
                               const net::SyncRequest& request, uint64_t now_ms) {
  NoteReport(peer, request.applied);
  const crdt::VersionVector mine = Applied();
  net::SyncReply reply;
  reply.applied = mine;
  // Snapshot or deltas is decided before any delta goes out: deltas of one origin applied
  // before a snapshot taken later could bring back a write whose delete the snapshot no longer
  // shows (collected). Every origin's log must reach back to what the requester has.
  bool snapshot = false;
  const std::map<std::string, store::DeltaLogRange> log = replica_->store().DeltaLog();
  for (const auto& [origin, have] : mine.entries()) {
    const uint64_t theirs = request.applied.Get(origin);
    if (have <= theirs) continue;
    auto range = log.find(origin);
    auto next = replica_->store().EncodedDeltasSince(origin, theirs, 1);
    if (range == log.end() || range->second.last < have ||
        (!next.ok() && next.status().code() == Code::kNotFound)) {
      snapshot = true;
      break;
    }
  }
  size_t bytes = 0;
  for (const auto& [origin, have] : mine.entries()) {
    if (snapshot) break;
    const uint64_t theirs = request.applied.Get(origin);
    if (have <= theirs) continue;
    const size_t room = options_.max_reply_deltas - reply.deltas.size();
    if (room == 0 || bytes >= options_.max_reply_bytes) {
      reply.more = true;
      break;
    }
    auto got = replica_->store().EncodedDeltasSince(origin, theirs, room);
    if (!got.ok()) {
      if (got.status().code() == Code::kNotFound) {
        snapshot = true;
        break;
      }
      ++counters_.store_errors;
      CM_LOG(kError) << "replication: cannot read the delta log: " << got.status().message();
      continue;
    }
    uint64_t seq = theirs;
    bool cut = got->size() == room;
    for (std::string& encoded : *got) {
      if (!reply.deltas.empty() && bytes + encoded.size() > options_.max_reply_bytes) {
        cut = true;
        break;
      }
      bytes += encoded.size();
      reply.deltas.push_back(net::GossipDelta{origin, ++seq, std::move(encoded), false});
    }
    if (seq < have) {
      if (!cut) {
        snapshot = true;  // the log ends short of what we applied: only a snapshot covers it
        break;
      }
      reply.more = true;
    }
    if (reply.more) break;
  }
  for (const auto& [endpoint, p] : peers_) {
    if (endpoint != peer.endpoint && !p->origin.empty() && p->last_contact_ms > 0 &&
        now_ms - p->last_contact_ms <= options_.peer_alive_ms) {
      reply.peers.push_back(endpoint);
    }
  }
  if (snapshot) {
    reply.deltas.clear();
    reply.more = false;
    reply.snapshot = Offer(peer.endpoint, request.applied, now_ms);
  }
  ReplyTo(identity, peer.name, net::GossipMessage{Self(), std::move(reply)});
}

net::SnapshotOffer Replicator::Offer(const std::string& requester,
                                     const crdt::VersionVector& theirs, uint64_t now_ms) {
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    Session& s = *it->second;
    if (s.requester != requester) continue;
    if (!theirs.Dominates(s.covered)) {  // still useful: a transfer in progress, or re-asked
      s.last_used_ms = now_ms;
      return net::SnapshotOffer{s.id, static_cast<uint32_t>(s.chunks.size()), s.covered,
                                s.hlc.packed()};
    }
    sessions_.erase(it);  // it has all of that: a newer snapshot is needed
    break;
  }
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now_ms - it->second->last_used_ms >= options_.snapshot_idle_ms) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  if (sessions_.size() >= options_.max_sessions) return {};  // busy: asked again next round
  auto s = std::make_unique<Session>();
  s->id = next_session_id_++;
  s->requester = requester;
  // The state and the applied vector belong together: this thread is the store's only writer.
  s->covered = Applied();
  s->hlc = replica_->clock().last();
  for (const crdt::ClusterState& chunk : SplitSnapshot(replica_->state(), options_.chunk)) {
    s->chunks.push_back(store::EncodeState(chunk));
  }
  s->last_used_ms = now_ms;
  ++counters_.snapshots_served;
  CM_LOG(kInfo) << "replication: serving a snapshot of " << s->chunks.size() << " chunks to "
                << requester << " covering " << s->covered.ToString();
  net::SnapshotOffer offer{s->id, static_cast<uint32_t>(s->chunks.size()), s->covered,
                           s->hlc.packed()};
  sessions_.emplace(s->id, std::move(s));
  return offer;
}

void Replicator::OnSnapshotFetch(const std::string& identity, const std::string& requester,
                                 const net::SnapshotFetch& fetch, uint64_t now_ms) {
  net::SnapshotChunk chunk{fetch.id, fetch.index, "", false};
  auto it = sessions_.find(fetch.id);
  if (it == sessions_.end() || fetch.index >= it->second->chunks.size()) {
    chunk.gone = true;
  } else {
    it->second->last_used_ms = now_ms;
    chunk.state = it->second->chunks[fetch.index];
  }
  ReplyTo(identity, requester, net::GossipMessage{Self(), std::move(chunk)});
}

void Replicator::OnSyncReply(Peer& peer, net::SyncReply reply, uint64_t now_ms) {
  peer.sync_outstanding = false;
  peer.last_sync_ms = now_ms;
  last_anti_entropy_ms_ = now_ms;
  ++counters_.syncs_answered;
  NoteReport(peer, reply.applied);
  counters_.deltas_received += reply.deltas.size();
  for (net::GossipDelta& d : reply.deltas) Accept(std::move(d));
  if (reply.more) peer.next_sync_ms = 0;
  for (const std::string& endpoint : reply.peers) {
    if (endpoint == transport_->endpoint() || FindPeer(endpoint)) continue;
    if (!net::AntiEntropyEndpoint(endpoint).ok()) continue;
    CM_LOG(kInfo) << "replication: learned peer " << endpoint << " from " << peer.endpoint;
    EnsurePeer(endpoint).learned_ms = now_ms;
  }
  const net::SnapshotOffer& offer = reply.snapshot;
  if (offer.id == 0 || fetch_) return;
  if (Applied().Dominates(offer.covered)) return;  // caught up meanwhile
  fetch_ = std::make_unique<Fetch>();
  fetch_->peer = peer.endpoint;
  fetch_->id = offer.id;
  fetch_->chunks = offer.chunks;
  fetch_->covered = offer.covered;
  fetch_->hlc = crdt::HlcTimestamp::FromPacked(offer.hlc_high_water);
  fetch_->have.assign(offer.chunks, false);
  fetch_->progress_ms = now_ms;
  fetch_->started_ms = now_ms;
  CM_LOG(kInfo) << "replication: restoring from a snapshot of " << offer.chunks << " chunks from "
                << peer.endpoint << " (" << peer.name << ")";
  SendFetches(now_ms);
}

void Replicator::SendFetches(uint64_t now_ms) {
  if (!fetch_) return;
  Fetch& f = *fetch_;
  while (f.asked.size() < options_.snapshot_window && f.cursor < f.chunks) {
    const uint32_t index = f.cursor++;
    if (f.have[index]) continue;
    if (!SendTo(f.peer, net::GossipMessage{Self(), net::SnapshotFetch{f.id, index}})) {
      f.cursor = index;  // not connected: the retry timer picks it up
      return;
    }
    f.asked[index] = now_ms;
  }
}

void Replicator::AbandonFetch(const std::string& why) {
  if (!fetch_) return;
  CM_LOG(kWarn) << "replication: snapshot transfer from " << fetch_->peer << " abandoned after "
                << fetch_->have_count << " of " << fetch_->chunks << " chunks: " << why;
  ++counters_.snapshots_abandoned;
  fetch_.reset();
}

void Replicator::OnSnapshotChunk(Peer& peer, net::SnapshotChunk chunk, uint64_t now_ms) {
  if (!fetch_ || chunk.id != fetch_->id || peer.endpoint != fetch_->peer) return;  // stale
  Fetch& f = *fetch_;
  if (chunk.gone) {
    AbandonFetch("the peer no longer holds the snapshot");
    peer.next_sync_ms = 0;
    return;
  }
  if (chunk.index >= f.chunks) {
    ++counters_.bad_messages;
    return;
  }
  f.asked.erase(chunk.index);
  if (f.have[chunk.index]) return;  // a duplicate
  auto state = store::DecodeState(chunk.state);
  if (!state.ok()) {
    ++counters_.bad_messages;
    AbandonFetch("chunk " + std::to_string(chunk.index) +
                 " does not decode: " + state.status().message());
    return;
  }
  f.have[chunk.index] = true;
  ++f.have_count;
  f.progress_ms = now_ms;
  f.keys.Add(*state);
  if (chunk.index + 1 == f.chunks) {
    f.last = std::move(state).value();
  } else {
    f.assembly.TakeElements(&*state);
    if (Status s = replica_->ApplySnapshotChunk(*state, {}); !s.ok()) {
      ++counters_.store_errors;
      AbandonFetch("cannot store chunk: " + s.message());
      return;
    }
    ++counters_.chunks_applied;
  }
  if (f.have_count < f.chunks) {
    SendFetches(now_ms);
    return;
  }
  // The last chunk makes the snapshot authoritative for what it covers: entries this instance
  // holds from writes the sender had applied, but which the snapshot lacks, were beaten by a
  // delete the sender has since collected; they go.
  crdt::ClusterState last = f.assembly.Finish(std::move(*f.last));
  if (Status s = replica_->ApplySnapshotChunk(last, f.covered, f.hlc, &f.keys); !s.ok()) {
    ++counters_.store_errors;
    AbandonFetch("cannot store the last chunk: " + s.message());
    return;
  }
  ++counters_.chunks_applied;
  ++counters_.snapshots_applied;
  CM_LOG(kInfo) << "replication: restored a snapshot of " << f.chunks << " chunks from " << f.peer
                << " in " << (now_ms - f.started_ms) << " ms, covering " << f.covered.ToString();
  fetch_.reset();
  applied_ = Applied();
  last_anti_entropy_ms_ = now_ms;
  peer.next_sync_ms = 0;  // then the deltas since
}

// ---- timers ---------------------------------------------------------------------------------

void Replicator::Tick(uint64_t now_ms) {
  applied_ = Applied();
  if (fetch_) {
    Fetch& f = *fetch_;
    if (now_ms - f.progress_ms >= options_.snapshot_idle_ms) {
      AbandonFetch("no progress for " + std::to_string(options_.snapshot_idle_ms) + " ms");
    } else {
      for (auto& [index, asked] : f.asked) {
        if (now_ms - asked < options_.fetch_retry_ms) continue;
        if (SendTo(f.peer, net::GossipMessage{Self(), net::SnapshotFetch{f.id, index}})) {
          asked = now_ms;
        }
      }
      SendFetches(now_ms);
    }
  }
  std::vector<std::string> forget;
  for (auto& [endpoint, peer] : peers_) {
    const uint64_t heard = std::max(peer->last_contact_ms, peer->learned_ms);
    if (!peer->configured && peer->serf_member.empty() &&
        now_ms - heard >= options_.forget_learned_ms) {
      forget.push_back(endpoint);
    }
  }
  for (const std::string& endpoint : forget) RemovePeer(endpoint);
  for (auto& [endpoint, peer] : peers_) {
    if (peer->sync_outstanding && now_ms - peer->sync_sent_ms >= options_.sync_timeout_ms) {
      peer->sync_outstanding = false;  // lost: ask again
    }
    if (!fetch_ && !peer->sync_outstanding && now_ms >= peer->next_sync_ms) {
      SendSync(*peer, now_ms);
    }
  }
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now_ms - it->second->last_used_ms >= options_.snapshot_idle_ms) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  CheckWaiters(now_ms);
  if (now_ms >= next_collect_ms_) {
    next_collect_ms_ = now_ms + options_.anti_entropy_ms;
    CollectTombstones();
  }
}

void Replicator::CollectTombstones() {
  const std::string self = transport_->endpoint();
  stability_.Report(self, replica_->origin(), applied_);
  std::set<std::string> known{self};
  for (const auto& [endpoint, peer] : peers_) known.insert(endpoint);
  std::optional<crdt::VersionVector> stable = stability_.Advance(known);
  if (!stable) return;
  auto dropped = replica_->store().CollectTombstones(*stable);
  if (!dropped.ok()) {
    ++counters_.store_errors;
    CM_LOG(kError) << "replication: cannot collect tombstones: " << dropped.status().message();
    return;
  }
  if (*dropped > 0) {
    counters_.tombstones_collected += *dropped;
    CM_LOG(kDebug) << "replication: collected " << *dropped << " tombstones stable at "
                   << stable->ToString();
  }
}

// ---- --ack-replicas -------------------------------------------------------------------------

void Replicator::AwaitReplicas(uint64_t seq, int replicas, uint64_t now_ms, uint64_t timeout_ms,
                               AckDone done) {
  if (replicas <= 0) {
    done(Status::Ok());
    return;
  }
  waiters_.push_back(Waiter{seq, replicas, now_ms, now_ms + timeout_ms, std::move(done)});
}

void Replicator::CheckWaiters(uint64_t now_ms) {
  if (waiters_.empty()) return;
  const std::string& own = replica_->origin();
  std::vector<std::pair<AckDone, Status>> ready;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    std::set<std::string> confirmed;  // distinct instances (by origin)
    for (const auto& [endpoint, peer] : peers_) {
      if (!peer->origin.empty() && peer->applied.Get(own) >= it->seq)
        confirmed.insert(peer->origin);
    }
    const int have = static_cast<int>(confirmed.size());
    if (have >= it->replicas) {
      ready.emplace_back(std::move(it->done), Status::Ok());
    } else if (now_ms >= it->deadline_ms) {
      ready.emplace_back(
          std::move(it->done),
          Status(Code::kOutcomeUnknown,
                 "outcome unknown: the write is durable on this instance, but only " +
                     std::to_string(have) + " of " + std::to_string(it->replicas) +
                     " required peers confirmed it within " +
                     std::to_string(it->deadline_ms - it->started_ms) + " ms"));
    } else {
      ++it;
      continue;
    }
    it = waiters_.erase(it);
  }
  for (auto& [done, status] : ready) done(status);
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
