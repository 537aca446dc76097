// A digest of the state a client can see, to compare instances over RPC (`status`).
#pragma once

#include <cstdint>

#include "crdt/cluster_state.h"

namespace clustermgr::mgr {

// FNV-1a 64 over every live LWW entry (section, key, stamp, seq, value), every host-group
// element with its dots, and the token epoch, in the state's deterministic order. Tombstones are
// left out, so instances that collected tombstones at different times still agree; the OR-set
// context is left out (it is not visible). Equal states give equal digests.
uint64_t LiveStateDigest(const crdt::ClusterState& state);

}  // namespace clustermgr::mgr
