// Splitting a whole state into snapshot chunks for anti-entropy (net/gossip.capnp).
//
// LWW entries are spread over the chunks; every chunk joins on its own, in any order. The
// host-group OR-set cannot be split like that: its causal context covers the dots of every
// element, and a context joined without an element it covers deletes that element at the
// receiver (see store::Store::ApplySnapshot). So chunks carry host-group elements (each with all
// of its dots) without context, the LAST chunk carries the context (and the token epoch), and
// the receiver holds the elements back (SnapshotAssembly) and applies them all together with
// the context in the last chunk, after every other chunk.
//
// Bounds (Akka Distributed Data ships at most 500 entries per gossip message): a chunk holds at
// most `max_entries` entries, adding up to at most `max_bytes` by a conservative estimate of
// their Cap'n Proto encoding, except that an entry bigger than `max_bytes` goes alone. The last
// chunk adds the context: one counter per origin plus out-of-order dots.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <vector>

#include "crdt/cluster_state.h"

namespace clustermgr::mgr {

struct ChunkLimits {
  size_t max_entries = 500;
  size_t max_bytes = size_t{1} << 20;
};

// At least one chunk (an empty state gives one empty chunk).
std::vector<crdt::ClusterState> SplitSnapshot(const crdt::ClusterState& state,
                                              const ChunkLimits& limits);

// The receiving side: collects the host-group elements of the chunks as they arrive and puts
// them into the last chunk, with the context. Not thread-safe; one per snapshot transfer.
class SnapshotAssembly {
 public:
  // Takes the host-group elements out of a chunk that is not the last: apply the rest of it now.
  void TakeElements(crdt::ClusterState* chunk);
  // The last chunk with every element collected so far added: apply it after all others.
  crdt::ClusterState Finish(crdt::ClusterState last);
  size_t elements() const { return elements_.size(); }

 private:
  crdt::OrSet<crdt::HostGroupKey>::Entries elements_;
};

}  // namespace clustermgr::mgr
