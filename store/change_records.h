// The records one change to the state puts into (or deletes from) a LevelDB write batch, for
// the host groups, the delta log and the applied vector. Store::WriteChange (store/store.cc)
// builds each batch with these; they read the store's current state and change nothing else.
#pragma once

#include <leveldb/write_batch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crdt/cluster_state.h"
#include "crdt/or_set.h"
#include "crdt/version_vector.h"

namespace clustermgr::store {

// The host-group records that change when `incoming` joins `current`, put into (or deleted
// from) `batch`; returns the joined set when it differs from `current`. Memory is joined only
// after durability, so the new set is built on a copy here, outside the state lock, diffed
// against the old one, and swapped in once durable. (The copy is O(set); host-group changes
// are rare: commissions and updates.)
std::optional<crdt::OrSet<crdt::HostGroupKey>> PutHostGroups(
    const crdt::OrSet<crdt::HostGroupKey>& current, const crdt::OrSet<crdt::HostGroupKey>& incoming,
    leveldb::WriteBatch* batch);

// What a change does to the delta log and the applied vector (see PutDeltaLog).
struct LogUpdate {
  std::map<std::string, uint64_t> applied;               // origin -> new applied seq
  std::map<std::string, std::vector<uint64_t>> added;    // origin -> seqs
  std::map<std::string, std::vector<uint64_t>> dropped;  // origin -> seqs
};

// Logs the deltas not yet applied nor logged (keeping the `limit` highest seqs of each origin)
// and advances the applied vector over every seq now contiguous, counting what the snapshot
// `covered` (if any) covers; the records go into `batch`.
LogUpdate PutDeltaLog(const std::vector<std::pair<const crdt::Delta*, const std::string*>>& deltas,
                      const crdt::VersionVector* covered,
                      const std::map<std::string, std::set<uint64_t>>& log_index,
                      const crdt::VersionVector& applied, uint64_t limit,
                      leveldb::WriteBatch* batch);

}  // namespace clustermgr::store
