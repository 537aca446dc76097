#include "mgr/repl/snapshot_sessions.h"

#include <random>
#include <utility>

#include "mgr/log/log.h"
#include "store/codec.h"

namespace clustermgr::mgr {

SnapshotSessions::SnapshotSessions(size_t max_sessions, uint64_t idle_ms, ChunkLimits chunk)
    : max_sessions_(max_sessions), idle_ms_(idle_ms), chunk_(chunk) {
  std::random_device rd;
  next_id_ = ((uint64_t{rd()} << 32) ^ rd()) | 1;
}

SnapshotSessions::Offered SnapshotSessions::Offer(const std::string& requester,
                                                  const crdt::VersionVector& theirs,
                                                  const crdt::ClusterState& state,
                                                  const crdt::VersionVector& applied,
                                                  crdt::HlcTimestamp hlc, uint64_t now_ms) {
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    Session& s = *it->second;
    if (s.requester != requester) continue;
    if (!theirs.Dominates(s.covered)) {  // still useful: a transfer in progress, or re-asked
      s.last_used_ms = now_ms;
      return {net::SnapshotOffer{s.id, static_cast<uint32_t>(s.chunks.size()), s.covered,
                                 s.hlc.packed()},
              false};
    }
    sessions_.erase(it);  // it has all of that: a newer snapshot is needed
    break;
  }
  Expire(now_ms);
  if (sessions_.size() >= max_sessions_) return {};  // busy: asked again next round
  auto s = std::make_unique<Session>();
  s->id = next_id_++;
  s->requester = requester;
  s->covered = applied;
  s->hlc = hlc;
  for (const crdt::ClusterState& chunk : SplitSnapshot(state, chunk_)) {
    s->chunks.push_back(store::EncodeState(chunk));
  }
  s->last_used_ms = now_ms;
  CM_LOG(kInfo) << "replication: serving a snapshot of " << s->chunks.size() << " chunks to "
                << requester << " covering " << s->covered.ToString();
  net::SnapshotOffer offer{s->id, static_cast<uint32_t>(s->chunks.size()), s->covered,
                           s->hlc.packed()};
  sessions_.emplace(s->id, std::move(s));
  return {offer, true};
}

std::optional<std::string> SnapshotSessions::Chunk(uint64_t id, uint32_t index, uint64_t now_ms) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || index >= it->second->chunks.size()) return std::nullopt;
  it->second->last_used_ms = now_ms;
  return it->second->chunks[index];
}

void SnapshotSessions::Expire(uint64_t now_ms) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now_ms - it->second->last_used_ms >= idle_ms_) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace clustermgr::mgr
