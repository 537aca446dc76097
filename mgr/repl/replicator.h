// Replicator: keeps this instance's replica converged with its peers.
//
// Wire protocol and sockets: net/gossip.capnp; endpoints: net/gossip_endpoint.h.
//
// Gossip. Every local delta (Replica observer, after it is durable) is published with its origin
// and seq, in the compact run form (store::EncodeDeltaRun; the deltas of one durable batch go out
// as one run, OnLocalDeltas).
// Deltas received from peers are joined in per-origin seq order only: a delta at or below the
// origin's applied seq is a duplicate and dropped (LwwMap's tombstone collection requires it), the
// next one is applied, later ones wait in a bounded buffer (a gap: it asks for anti-entropy at
// once). Everything applicable after a burst of messages is committed as one store batch (one
// sync). Relayed deltas are never republished.
//
// Anti-entropy. Every `anti_entropy_ms` (and at once when a peer appears or reconnects, when a
// gap is seen, and when a peer's report shows it is ahead) a syncRequest with the applied vector
// goes to each peer; the peer answers with the missing deltas from its delta log, at most
// `max_reply_deltas` / `max_reply_bytes` per reply (`more`: ask again at once), or with a
// snapshot offer when its log no longer reaches back for some origin. Which of the two is
// decided over every origin before the first delta goes out, so a requester never applies one
// origin's old deltas and then a snapshot. The snapshot is the peer's state, applied vector and
// hybrid clock at offer time, split by SplitSnapshot (chunks of at most
// `chunk.max_entries` entries / ~`chunk.max_bytes`), pulled `snapshot_window` chunks at a time,
// each re-asked after `fetch_retry_ms`; host-group elements are held back and applied with the
// last chunk, which carries the OR-set context and the covered vector (ApplySnapshot). The
// snapshot is authoritative for what it covers: with the last chunk, local LWW entries whose
// write the covered vector includes but which no chunk held are removed (a delete beat them and
// was collected; without this a value deleted long ago could come back), the clock rises to the
// sender's, and the own seq to what the snapshot covers of this instance's history. The SUB
// socket is connected before any snapshot is asked for (ZeroMQ Clone pattern): deltas published
// meanwhile wait in the buffer and apply on top. While a snapshot is being fetched no other
// syncRequest is sent; a transfer without progress for `snapshot_idle_ms` is abandoned (chunks
// already applied are harmless joins) and anti-entropy starts over.
//
// Peers come from --peer (AddPeer), from Serf (OnManagerEvent: members tagged role=clustermgr
// with a `gossip=` tag; a member that left is dropped), from any instance that sends us a
// syncRequest, and from the live peers a syncReply lists (so partial --peer lists grow into a
// full mesh). Learned peers (the last two kinds) silent for `forget_learned_ms` are dropped;
// configured ones never, Serf ones when Serf says they left. A peer is keyed by its gossip
// endpoint; its name, origin and RPC endpoint come from its messages. Over CURVE the transport
// must also know each peer's server key: from --curve-peers, from a Serf member's `curve=` tag,
// or from the key a peer's own request came with (all checked against --curve-peers). Unreachable
// peers cost a failed non-blocking send per tick: ZeroMQ reconnects with backoff in the background.
//
// Tombstones: every `anti_entropy_ms` the two-round rule of mgr/repl/tombstone_stability.h runs
// over this instance and all known peers; a stable vector goes to Store::CollectTombstones.
//
// --ack-replicas: AwaitReplicas parks a reply until `replicas` distinct peers report an applied
// vector covering (own origin, seq) or the deadline passes. Deltas are then published with
// ackWanted, and receivers answer with a report as soon as they have applied them.
//
// Threading: owned by the event loop thread; every method runs there. The replica and the
// transport must outlive the replicator. Time is passed in (Unix ms), so tests drive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "mgr/repl/ack_waiters.h"
#include "mgr/repl/delta_sequencer.h"
#include "mgr/repl/replica.h"
#include "mgr/repl/snapshot_chunks.h"
#include "mgr/repl/snapshot_sessions.h"
#include "mgr/repl/tombstone_stability.h"
#include "net/gossip_transport.h"
#include "net/rpc_types.h"
#include "net/serf_membership.h"

namespace clustermgr::mgr {

struct ReplicatorOptions {
  std::string rpc_endpoint;  // advertised to peers (for `clustermgr members`)
  uint64_t anti_entropy_ms = 1000;
  uint64_t sync_timeout_ms = 2000;  // an unanswered syncRequest may be re-sent after this
  size_t max_reply_deltas = 500;
  size_t max_reply_bytes = size_t{1} << 20;
  ChunkLimits chunk;
  size_t snapshot_window = 4;
  uint64_t fetch_retry_ms = 1000;
  uint64_t snapshot_idle_ms = 10'000;  // transfer abandoned / session dropped after this idle
  size_t max_sessions = 2;             // snapshot sessions served at once
  size_t max_buffered_deltas = 10'000;
  size_t max_messages_per_poll = 1000;  // then the event loop gets to run again
  uint64_t peer_alive_ms = 3000;        // a peer heard from within this is alive
  // A peer learned from another peer or from its own requests (neither --peer nor Serf) is
  // forgotten after this long without a word from it.
  uint64_t forget_learned_ms = 10 * 60 * 1000;
  bool ack_wanted = false;  // publish with ackWanted (--ack-replicas > 0)
};

struct ReplicatorCounters {
  uint64_t published = 0;
  uint64_t deltas_received = 0;  // via PUB or in sync replies
  uint64_t deltas_applied = 0;
  uint64_t deltas_duplicate = 0;  // at or below the applied seq: dropped
  uint64_t deltas_overflow = 0;   // past a gap with the buffer full: dropped
  uint64_t gaps = 0;              // times a gap made us ask for anti-entropy
  uint64_t bad_messages = 0;      // undecodable payloads, mismatched envelopes, bad chunks
  uint64_t syncs_sent = 0;
  uint64_t syncs_answered = 0;  // replies received
  uint64_t snapshots_served = 0;
  uint64_t snapshots_applied = 0;
  uint64_t snapshots_abandoned = 0;
  uint64_t chunks_applied = 0;
  uint64_t tombstones_collected = 0;
  uint64_t store_errors = 0;
};

class Replicator {
 public:
  // Called with Ok once enough peers have the write, or kOutcomeUnknown at the deadline.
  using AckDone = AckWaiters::Done;

  Replicator(ReplicatorOptions options, Replica* replica, net::GossipTransport* transport);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // A configured peer (--peer): its gossip endpoint. Errors: kInvalidArgument (the endpoint
  // cannot be used); connecting to our own endpoint is ignored.
  Status AddPeer(const std::string& gossip_endpoint);
  // A manager instance seen by Serf (subject kManager): connects to its `gossip` tag, drops a
  // member that left.
  void OnManagerEvent(const net::SerfNodeEvent& event);

  // Publishes a committed local delta (register as a Replica observer).
  void OnLocalDelta(const crdt::Delta& delta);
  // Publishes the committed local deltas of one durable batch as one message, a `deltaRun`
  // (register as a Replica batch observer).
  void OnLocalDeltas(const std::vector<crdt::Delta>& deltas);
  // Handles what the transport has received (at most max_messages_per_poll), then commits.
  void Poll(uint64_t now_ms);
  // Periodic work: anti-entropy, snapshot transfer timers, tombstones, ack deadlines.
  void Tick(uint64_t now_ms);

  // --ack-replicas: `done` runs (later, from Poll or Tick on this thread; at once when
  // `replicas` <= 0) once `replicas` distinct peers have applied this instance's delta `seq`,
  // or with kOutcomeUnknown "outcome unknown: ..." after `timeout_ms`.
  void AwaitReplicas(uint64_t seq, int replicas, uint64_t now_ms, uint64_t timeout_ms,
                     AckDone done);

  // For `clustermgr members` (this instance first) and `status`.
  std::vector<net::MemberInfo> Members(uint64_t now_ms) const;
  std::vector<net::PeerStatus> Peers(uint64_t now_ms) const;
  // Unix ms of the last message heard from each peer instance, by instance name (the latest over
  // its endpoints). The token counts a manager alive only while it is heard from (mgr/token.h).
  std::map<std::string, uint64_t> LastContactByName() const;
  // The instance name and Unix ms of the last message heard from the peer at the gossip endpoint
  // Serf member `member` gave in its tags; nullopt when that peer was never heard from. Binds a
  // Serf member to what replication knows of it: a member whose tags name an instance that
  // does not answer at the member's endpoint is not that instance.
  struct Heard {
    std::string name;
    uint64_t last_contact_ms = 0;
  };
  std::optional<Heard> HeardThroughMember(const std::string& member) const;
  // True when this instance has applied everything the peer instance `name` last reported having
  // applied, and is not restoring a snapshot. False when it has no report from that peer yet.
  bool CaughtUpWith(const std::string& name) const;
  // Unix ms of the last completed exchange with any peer; 0 = never.
  uint64_t last_anti_entropy_ms() const { return last_anti_entropy_ms_; }
  const ReplicatorCounters& counters() const { return counters_; }
  // Gossip messages and bytes exchanged with each peer instance, by its name (published deltas,
  // which go to every subscriber at once, under kAllPeers).
  struct PeerTraffic {
    uint64_t messages_in = 0;
    uint64_t bytes_in = 0;
    uint64_t messages_out = 0;
    uint64_t bytes_out = 0;
  };
  static constexpr const char* kAllPeers = "*";
  const std::map<std::string, PeerTraffic>& traffic() const { return traffic_; }
  bool fetching_snapshot() const { return fetch_ != nullptr; }
  size_t buffered_deltas() const { return sequencer_.buffered(); }
  const std::string& endpoint() const { return transport_->endpoint(); }

 private:
  // Defined in replicator_internal.h.
  struct Peer;
  struct Fetch;

  Peer* FindPeer(const std::string& endpoint);
  Peer& EnsurePeer(const std::string& endpoint);
  void RemovePeer(const std::string& endpoint);
  // Drops learned peers (neither --peer nor Serf) silent for forget_learned_ms.
  void ForgetSilentPeers(uint64_t now_ms);
  // Learns name/origin/endpoints from a message's sender; returns the peer (or null when the
  // sender is this instance or unusable).
  // `peer_key`: the CURVE key the sender's request came with ("" otherwise).
  Peer* NoteSender(const net::GossipPeerInfo& sender, const std::string& endpoint,
                   const std::string& peer_key, uint64_t now_ms);
  // Tells the transport the CURVE server key of `endpoint`; true when the key changed (an
  // existing connection must be made again). Refused keys are logged.
  bool LearnPeerKey(const std::string& endpoint, const std::string& key, const std::string& via);
  void Reconnect(const std::string& endpoint);
  // A peer's applied vector and the part of it synced to its disk.
  void NoteReport(Peer& peer, const crdt::VersionVector& applied,
                  const crdt::VersionVector& durable);
  // Syncs what was applied from peers without a sync; counts a failure.
  void SyncApplied();

  void Handle(net::GossipIncoming in, uint64_t now_ms);
  // Sends and replies through these, so that traffic() counts them.
  bool SendTo(const std::string& endpoint, const net::GossipMessage& m);
  void ReplyTo(const std::string& identity, const std::string& name, const net::GossipMessage& m);
  PeerTraffic& TrafficOf(const std::string& name);
  void CountOut(const std::string& name, uint64_t bytes);
  void OnDelta(net::GossipDelta delta);
  void OnDeltaRun(const net::GossipDeltaRun& run, std::size_t bytes);
  // Counts a delta received from its origin and notes a report due when it asks for one.
  void NoteReceived(const std::string& origin, bool ack_wanted);
  // Publishes consecutive local deltas of one origin as one `deltaRun`.
  void PublishRun(std::span<const crdt::Delta> deltas);
  void OnSyncRequest(const std::string& identity, Peer& peer, const net::SyncRequest& request,
                     uint64_t now_ms);
  void OnSyncReply(Peer& peer, net::SyncReply reply, uint64_t now_ms);
  void OnSnapshotFetch(const std::string& identity, const std::string& requester,
                       const net::SnapshotFetch& fetch, uint64_t now_ms);
  void OnSnapshotChunk(Peer& peer, net::SnapshotChunk chunk, uint64_t now_ms);

  // Buffers a received delta (decoded lazily: duplicates are dropped before decoding).
  void Accept(net::GossipDelta delta);
  // Buffers a delta that arrived decoded (in a run).
  void Accept(crdt::Delta delta);
  void Count(DeltaSequencer::Accepted accepted);
  // Sends a syncRequest to every peer that asked for one at once (after a reply with `more`,
  // a finished snapshot, a report showing the peer ahead).
  void SendUrgentSyncs(uint64_t now_ms);
  // Commits every buffered delta that is next in its origin's order; asks for anti-entropy
  // when a gap remains.
  void Flush();
  void SendSync(Peer& peer, uint64_t now_ms);
  void SendFetches(uint64_t now_ms);
  // Re-asks for chunks unanswered for fetch_retry_ms; abandons a transfer idle too long.
  void RetryFetches(uint64_t now_ms);
  void AbandonFetch(const std::string& why);
  void CheckWaiters(uint64_t now_ms);
  void CollectTombstones();
  net::GossipPeerInfo Self() const;
  crdt::VersionVector Applied() const { return replica_->Applied(); }

  ReplicatorOptions options_;
  Replica* replica_;
  net::GossipTransport* transport_;
  std::map<std::string, std::unique_ptr<Peer>> peers_;  // by gossip endpoint
  std::map<std::string, std::string> serf_members_;     // Serf member -> endpoint it gave
  DeltaSequencer sequencer_;                            // received deltas waiting for their turn
  std::set<std::string> ack_origins_;                   // origins whose publishers want reports
  std::set<std::string> reports_due_;  // origins whose publishers get a report at Flush
  crdt::VersionVector applied_;        // the store's, as of the last Poll, Flush or Tick
  SnapshotSessions sessions_;          // snapshots we serve
  std::unique_ptr<Fetch> fetch_;       // the snapshot we pull
  TombstoneStability stability_;
  uint64_t next_collect_ms_ = 0;
  uint64_t last_anti_entropy_ms_ = 0;
  ReplicatorCounters counters_;
  std::map<std::string, PeerTraffic> traffic_;
  // Last, so that it is destroyed first: parked replies are answered while the rest is intact.
  AckWaiters waiters_;
};

}  // namespace clustermgr::mgr
