// DeltaSequencer: the gap buffer between deltas received from peers and the replica.
//
// Deltas of one origin must be joined in seq order, each exactly once (LwwMap's tombstone
// collection requires it). Received deltas wait here (one that came alone still encoded, those
// of a run decoded), keyed by origin and seq:
// one at or below the origin's applied seq is a duplicate and refused; the next one in order is
// always taken; later ones (behind a gap) only while fewer than `max_buffered` wait, so that a
// peer far ahead cannot fill memory (anti-entropy fetches what is refused). TakeReady decodes
// and hands over every delta that is next in its origin's order.
//
// Thread-safety: none; owned by the replicator (the event loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crdt/cluster_state.h"
#include "crdt/version_vector.h"
#include "net/gossip_types.h"

namespace clustermgr::mgr {

class DeltaSequencer {
 public:
  explicit DeltaSequencer(size_t max_buffered) : max_buffered_(max_buffered) {}

  enum class Accepted { kBuffered, kDuplicate, kOverflow };
  // Buffers `delta` unless it is a duplicate (at or below `applied_seq`, its origin's applied
  // seq, or already buffered) or lies behind a gap while the buffer is full. Not decoded here:
  // duplicates are dropped before decoding.
  Accepted Accept(net::GossipDelta delta, uint64_t applied_seq);
  // The same for a delta already decoded (from a run, store::DecodeDeltaRun).
  Accepted Accept(crdt::Delta delta, uint64_t applied_seq);

  struct Ready {
    std::vector<crdt::Delta> batch;  // in seq order per origin
    std::set<std::string> origins;   // the origins `batch` holds deltas of
    uint64_t duplicates = 0;         // buffered, but applied meanwhile: dropped
    uint64_t bad = 0;                // undecodable, or naming another origin/seq: dropped
  };
  // Removes and decodes, per origin, every buffered delta that follows `applied` without a gap.
  // A bad delta ends its origin's run (anti-entropy brings a good copy).
  Ready TakeReady(const crdt::VersionVector& applied);

  // The origins whose deltas still wait behind a gap (after TakeReady).
  std::vector<std::string> GapOrigins();

  size_t buffered() const { return buffered_; }

 private:
  // A buffered delta: its encoding, or the delta itself when it arrived decoded.
  struct Item {
    std::string payload;
    std::optional<crdt::Delta> decoded;
  };
  Accepted Admit(const std::string& origin, uint64_t seq, uint64_t applied_seq, Item item);

  size_t max_buffered_;
  std::map<std::string, std::map<uint64_t, Item>> buffer_;  // origin -> seq -> delta
  size_t buffered_ = 0;
};

}  // namespace clustermgr::mgr
