#include "mgr/repl/replicator.h"

#include <algorithm>
#include <utility>

#include "mgr/log/log.h"
#include "mgr/repl/replicator_internal.h"
#include "net/gossip_endpoint.h"
#include "store/codec.h"

namespace clustermgr::mgr {

Replicator::Replicator(ReplicatorOptions options, Replica* replica, net::GossipTransport* transport)
    : options_(std::move(options)),
      replica_(replica),
      transport_(transport),
      sequencer_(options_.max_buffered_deltas),
      sessions_(options_.max_sessions, options_.snapshot_idle_ms, options_.chunk) {
  applied_ = Applied();
}

// Parked replies are answered by ~AckWaiters (kOutcomeUnknown).
Replicator::~Replicator() = default;

net::GossipPeerInfo Replicator::Self() const {
  return net::GossipPeerInfo{replica_->name(), replica_->origin(), transport_->endpoint(),
                             options_.rpc_endpoint};
}

// ---- publishing and receiving ---------------------------------------------------------------

void Replicator::OnLocalDelta(const crdt::Delta& delta) {
  if (delta.seq != 0) PublishRun(std::span(&delta, 1));
}

void Replicator::OnLocalDeltas(const std::vector<crdt::Delta>& deltas) {
  // A batch's deltas are consecutive; anything else is split into runs that are.
  size_t begin = 0;
  while (begin < deltas.size()) {
    if (deltas[begin].seq == 0) {
      ++begin;
      continue;
    }
    size_t end = begin + 1;
    while (end < deltas.size() && deltas[end].origin == deltas[begin].origin &&
           deltas[end].seq == deltas[end - 1].seq + 1) {
      ++end;
    }
    PublishRun(std::span(deltas).subspan(begin, end - begin));
    begin = end;
  }
}

void Replicator::PublishRun(std::span<const crdt::Delta> deltas) {
  net::GossipMessage m;
  m.body = net::GossipDeltaRun{store::EncodeDeltaRun(deltas), options_.ack_wanted};
  const uint64_t before = transport_->counters().bytes_published;
  if (transport_->Publish(m)) CountOut(kAllPeers, transport_->counters().bytes_published - before);
  counters_.published += deltas.size();
}

void Replicator::Poll(uint64_t now_ms) {
  // Memory ahead of the disk (a failed local batch): nothing read from it goes to peers until
  // the store is reopened; what they send waits in the sockets.
  if (replica_->ahead_of_disk()) return;
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
  if (const auto* r = std::get_if<net::GossipDeltaRun>(&body); r && in.via == Via::kPublished) {
    OnDeltaRun(*r, in.bytes);
    return;
  }
  // A published delta carries no sender: its origin ("<name>/<incarnation>") names it.
  std::string from = sender.name;
  if (const auto* d = std::get_if<net::GossipDelta>(&body); d && from.empty()) {
    from = d->origin.substr(0, d->origin.find('/'));
  }
  if (const auto* b = std::get_if<net::GossipDeltaBatch>(&body); b && from.empty()) {
    from = b->deltas.front().origin.substr(0, b->deltas.front().origin.find('/'));
  }
  PeerTraffic& traffic = TrafficOf(from);
  ++traffic.messages_in;
  traffic.bytes_in += in.bytes;
  if (auto* d = std::get_if<net::GossipDelta>(&body); d && in.via == Via::kPublished) {
    OnDelta(std::move(*d));
    return;
  }
  if (auto* b = std::get_if<net::GossipDeltaBatch>(&body); b && in.via == Via::kPublished) {
    for (net::GossipDelta& d : b->deltas) OnDelta(std::move(d));
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
      if (peer) NoteReport(*peer, r->applied, net::DurableOf(*r));
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
  NoteReceived(delta.origin, delta.ack_wanted);
  Accept(std::move(delta));
}

void Replicator::OnDeltaRun(const net::GossipDeltaRun& run, std::size_t bytes) {
  // The origin that names the sender is inside the run: decoded first.
  auto deltas = store::DecodeDeltaRun(run.run);
  const std::string origin = deltas.ok() ? deltas->front().origin : "";
  PeerTraffic& traffic = TrafficOf(origin.substr(0, origin.find('/')));
  ++traffic.messages_in;
  traffic.bytes_in += bytes;
  if (!deltas.ok()) {
    ++counters_.bad_messages;
    CM_LOG(kWarn) << "replication: dropping a delta run: " << deltas.status().message();
    return;
  }
  for (crdt::Delta& delta : *deltas) {
    NoteReceived(delta.origin, run.ack_wanted);
    Accept(std::move(delta));
  }
}

void Replicator::NoteReceived(const std::string& origin, bool ack_wanted) {
  ++counters_.deltas_received;
  if (ack_wanted) {
    ack_origins_.insert(origin);
    reports_due_.insert(origin);
  }
}

void Replicator::Accept(net::GossipDelta delta) {
  const uint64_t applied = applied_.Get(delta.origin);
  Count(sequencer_.Accept(std::move(delta), applied));
}

void Replicator::Accept(crdt::Delta delta) {
  const uint64_t applied = applied_.Get(delta.origin);
  Count(sequencer_.Accept(std::move(delta), applied));
}

void Replicator::Count(DeltaSequencer::Accepted accepted) {
  switch (accepted) {
    case DeltaSequencer::Accepted::kBuffered:
      break;
    case DeltaSequencer::Accepted::kDuplicate:
      ++counters_.deltas_duplicate;
      break;
    case DeltaSequencer::Accepted::kOverflow:
      ++counters_.deltas_overflow;
      break;
  }
}

void Replicator::Flush() {
  if (sequencer_.buffered() > 0) {
    DeltaSequencer::Ready ready = sequencer_.TakeReady(Applied());
    counters_.deltas_duplicate += ready.duplicates;
    counters_.bad_messages += ready.bad;
    if (!ready.batch.empty()) {
      // Without a sync: the deltas are durable at their origins; Tick syncs on its cadence, and
      // at once below when a publisher waits for a report.
      if (Status s = replica_->ApplyRemote(ready.batch, /*sync=*/false); s.ok()) {
        counters_.deltas_applied += ready.batch.size();
        for (const std::string& o : ready.origins) {
          if (ack_origins_.count(o)) reports_due_.insert(o);
        }
      } else {
        ++counters_.store_errors;
        CM_LOG(kError) << "replication: cannot store " << ready.batch.size()
                       << " deltas from peers: " << s.message();
      }
    }
    applied_ = Applied();
    // What is still buffered sits behind a gap: ask its publisher for anti-entropy now.
    for (const std::string& origin : sequencer_.GapOrigins()) {
      ++counters_.gaps;
      for (auto& [endpoint, peer] : peers_) {
        if (peer->origin == origin && !peer->sync_outstanding) peer->next_sync_ms = 0;
      }
    }
  }
  if (!reports_due_.empty()) {
    SyncApplied();  // the publisher waits for our disk, not our memory
    net::GossipMessage m{Self(), net::Report{applied_, replica_->Durable()}};
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
  net::GossipMessage m{Self(), net::SyncRequest{applied_, replica_->Durable()}};
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
  NoteReport(peer, request.applied, net::DurableOf(request));
  const crdt::VersionVector mine = Applied();
  net::SyncReply reply;
  reply.applied = mine;
  reply.durable = replica_->Durable();
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
    // The state, the applied vector and the clock belong together: this thread is the store's
    // only writer.
    SnapshotSessions::Offered offered =
        sessions_.Offer(peer.endpoint, request.applied, replica_->state(), Applied(),
                        replica_->clock().last(), now_ms);
    if (offered.fresh) ++counters_.snapshots_served;
    reply.snapshot = offered.offer;
  }
  ReplyTo(identity, peer.name, net::GossipMessage{Self(), std::move(reply)});
}

void Replicator::OnSyncReply(Peer& peer, net::SyncReply reply, uint64_t now_ms) {
  peer.sync_outstanding = false;
  peer.last_sync_ms = now_ms;
  last_anti_entropy_ms_ = now_ms;
  ++counters_.syncs_answered;
  NoteReport(peer, reply.applied, net::DurableOf(reply));
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

// ---- timers ---------------------------------------------------------------------------------

void Replicator::Tick(uint64_t now_ms) {
  if (replica_->ahead_of_disk()) return;  // as in Poll
  SyncApplied();                          // the cadence of peers' deltas reaching this disk
  applied_ = Applied();
  RetryFetches(now_ms);
  ForgetSilentPeers(now_ms);
  for (auto& [endpoint, peer] : peers_) {
    if (peer->sync_outstanding && now_ms - peer->sync_sent_ms >= options_.sync_timeout_ms) {
      peer->sync_outstanding = false;  // lost: ask again
    }
    if (!fetch_ && !peer->sync_outstanding && now_ms >= peer->next_sync_ms) {
      SendSync(*peer, now_ms);
    }
  }
  sessions_.Expire(now_ms);
  CheckWaiters(now_ms);
  if (now_ms >= next_collect_ms_) {
    next_collect_ms_ = now_ms + options_.anti_entropy_ms;
    CollectTombstones();
  }
}

void Replicator::CollectTombstones() {
  const std::string self = transport_->endpoint();
  stability_.Report(self, replica_->origin(), replica_->Durable());
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
  waiters_.Add(seq, replicas, now_ms, timeout_ms, std::move(done));
}

void Replicator::SyncApplied() {
  if (!replica_->has_unsynced()) return;
  if (Status s = replica_->Sync(); !s.ok()) {
    ++counters_.store_errors;
    CM_LOG(kError) << "replication: cannot sync the deltas applied from peers: " << s.message();
  }
}

void Replicator::CheckWaiters(uint64_t now_ms) {
  const std::string& own = replica_->origin();
  waiters_.Check(now_ms, [&](uint64_t seq) {
    std::set<std::string> confirmed;  // distinct instances (by origin)
    for (const auto& [endpoint, peer] : peers_) {
      if (!peer->origin.empty() && peer->durable.Get(own) >= seq) confirmed.insert(peer->origin);
    }
    return static_cast<int>(confirmed.size());
  });
}

}  // namespace clustermgr::mgr
