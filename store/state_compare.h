// Equality of states, deltas and LWW entries, entry by entry.
//
// Why here and not operator==: crdt::WriteTag declares no operator==, so the defaulted
// operator== of crdt::LwwEntry, LwwMap, ClusterState and Delta is deleted (reported to the crdt
// owner). These compare every field, tags included, and stay correct once crdt gains them.
#pragma once

#include "crdt/cluster_state.h"

namespace clustermgr::store {

inline bool TagEqual(const crdt::WriteTag& a, const crdt::WriteTag& b) {
  return a.stamp == b.stamp && a.seq == b.seq;
}

template <typename V>
bool EntryEqual(const crdt::LwwEntry<V>& a, const crdt::LwwEntry<V>& b) {
  return TagEqual(a.tag, b.tag) && a.value == b.value;
}

template <typename K, typename V>
bool MapEqual(const crdt::LwwMap<K, V>& a, const crdt::LwwMap<K, V>& b) {
  if (a.size() != b.size()) return false;
  auto x = a.entries().begin();
  for (auto y = b.entries().begin(); y != b.entries().end(); ++x, ++y) {
    if (!(x->first == y->first) || !EntryEqual(x->second, y->second)) return false;
  }
  return true;
}

inline bool StateEqual(const crdt::ClusterState& a, const crdt::ClusterState& b) {
  return MapEqual(a.globals, b.globals) && MapEqual(a.node_vars, b.node_vars) &&
         a.host_groups == b.host_groups && MapEqual(a.inventory, b.inventory) &&
         MapEqual(a.jobs, b.jobs) && MapEqual(a.job_logs, b.job_logs) &&
         MapEqual(a.config, b.config) && a.token_epoch == b.token_epoch;
}

inline bool DeltaEqual(const crdt::Delta& a, const crdt::Delta& b) {
  return a.origin == b.origin && a.seq == b.seq && StateEqual(a.state, b.state);
}

}  // namespace clustermgr::store
