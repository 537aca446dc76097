#include <algorithm>
#include <utility>

#include "mgr/log/log.h"
#include "mgr/repl/replicator.h"
#include "mgr/repl/replicator_internal.h"
#include "net/gossip_endpoint.h"
#include "store/codec.h"

namespace clustermgr::mgr {

// ---- snapshots this instance serves ---------------------------------------------------------

void Replicator::OnSnapshotFetch(const std::string& identity, const std::string& requester,
                                 const net::SnapshotFetch& fetch, uint64_t now_ms) {
  net::SnapshotChunk chunk{fetch.id, fetch.index, "", false};
  if (auto state = sessions_.Chunk(fetch.id, fetch.index, now_ms)) {
    chunk.state = std::move(*state);
  } else {
    chunk.gone = true;
  }
  ReplyTo(identity, requester, net::GossipMessage{Self(), std::move(chunk)});
}

// ---- the snapshot this instance pulls -------------------------------------------------------

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

void Replicator::RetryFetches(uint64_t now_ms) {
  if (!fetch_) return;
  Fetch& f = *fetch_;
  if (now_ms - f.progress_ms >= options_.snapshot_idle_ms) {
    AbandonFetch("no progress for " + std::to_string(options_.snapshot_idle_ms) + " ms");
    return;
  }
  for (auto& [index, asked] : f.asked) {
    if (now_ms - asked < options_.fetch_retry_ms) continue;
    if (SendTo(f.peer, net::GossipMessage{Self(), net::SnapshotFetch{f.id, index}})) {
      asked = now_ms;
    }
  }
  SendFetches(now_ms);
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

}  // namespace clustermgr::mgr
