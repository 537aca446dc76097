// SnapshotSessions: the snapshots this instance serves to peers whose delta log no longer
// reaches back far enough.
//
// A session is the state, applied vector and hybrid clock at offer time, already split into encoded
// chunks (SplitSnapshot) so that every chunk a peer pulls belongs to the same snapshot. A requester
// has at most one session: re-asking returns it while it still covers something the requester
// lacks; once the requester has all of it, a newer one is made. At most `max_sessions` are
// served at once (Offer returns id 0 when busy: the requester asks again next round); a session
// unused for `idle_ms` is dropped. Session ids start at a random odd value, so that a restarted
// instance's new ids are not mistaken for its old ones.
//
// Thread-safety: none; owned by the replicator (the event loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crdt/cluster_state.h"
#include "crdt/hlc.h"
#include "crdt/version_vector.h"
#include "mgr/repl/snapshot_chunks.h"
#include "net/gossip_types.h"

namespace clustermgr::mgr {

class SnapshotSessions {
 public:
  SnapshotSessions(size_t max_sessions, uint64_t idle_ms, ChunkLimits chunk);

  struct Offered {
    net::SnapshotOffer offer;  // id 0: too many sessions are being served
    bool fresh = false;        // a new session was made for it
  };
  // The session for `requester` (its gossip endpoint), whose applied vector is `theirs`: its
  // current one, or a new one of `state` as covered by `applied`, taken when the clock read
  // `hlc` (the three must belong together: the replica's state, applied vector and clock at the
  // same moment).
  Offered Offer(const std::string& requester, const crdt::VersionVector& theirs,
                const crdt::ClusterState& state, const crdt::VersionVector& applied,
                crdt::HlcTimestamp hlc, uint64_t now_ms);
  // Chunk `index` of session `id` (and the session is used); nullopt when the session is gone
  // or has no such chunk.
  std::optional<std::string> Chunk(uint64_t id, uint32_t index, uint64_t now_ms);
  // Drops the sessions unused for idle_ms.
  void Expire(uint64_t now_ms);
  size_t size() const { return sessions_.size(); }

 private:
  struct Session {
    uint64_t id = 0;
    std::string requester;
    std::vector<std::string> chunks;
    crdt::VersionVector covered;
    crdt::HlcTimestamp hlc;  // the clock when the snapshot was taken
    uint64_t last_used_ms = 0;
  };

  size_t max_sessions_;
  uint64_t idle_ms_;
  ChunkLimits chunk_;
  uint64_t next_id_;
  std::map<uint64_t, std::unique_ptr<Session>> sessions_;  // by id
};

}  // namespace clustermgr::mgr
