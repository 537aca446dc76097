// Last-writer-wins register map with tombstones.
//
// Every write carries a WriteTag. Entries are ordered by LwwStamp = (epoch, HLC, origin): a total
// order with no ties between distinct writes (an origin never issues the same HLC twice), so
// join picks the same winner on every replica whatever the delivery order. Delete writes a
// tombstone, which wins over every older write and is dropped only by CollectTombstones.
//
// Thread-safety: a plain value; no internal synchronization.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "crdt/hlc.h"
#include "crdt/version_vector.h"

namespace clustermgr::crdt {

struct LwwStamp {
  uint64_t epoch = 0;  // fencing epoch of the writer: a lower epoch never overwrites a higher one
  HlcTimestamp hlc;    // causal and roughly wall-clock order within an epoch
  std::string origin;  // instance incarnation id: breaks the last possible tie

  friend auto operator<=>(const LwwStamp&, const LwwStamp&) = default;
  friend bool operator==(const LwwStamp&, const LwwStamp&) = default;
};

// What a mutation stamps on its entries: the order stamp, plus the replication sequence number
// (the dot (stamp.origin, seq)) of the delta that carries it, used to collect tombstones.
struct WriteTag {
  LwwStamp stamp;
  uint64_t seq = 0;

  Dot dot() const { return Dot{stamp.origin, seq}; }
  // Needed by LwwEntry's and so ClusterState's defaulted ==, which are silently deleted without
  // it.
  friend bool operator==(const WriteTag&, const WriteTag&) = default;
};

template <typename V>
struct LwwEntry {
  WriteTag tag;
  std::optional<V> value;  // nullopt: a tombstone

  bool tombstone() const { return !value.has_value(); }
  friend bool operator==(const LwwEntry&, const LwwEntry&) = default;
};

template <typename K, typename V>
class LwwMap {
 public:
  using Entry = LwwEntry<V>;
  using Entries = std::map<K, Entry>;

  // The live value, or nullptr when absent or deleted.
  const V* Get(const K& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() || it->second.tombstone() ? nullptr : &*it->second.value;
  }
  // The entry including tombstones, or nullptr.
  const Entry* Find(const K& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second;
  }

  // Delta mutators: return the one-entry delta of writing `value` (or a tombstone) under `tag`.
  // They do not modify *this; join the delta to apply it.
  static LwwMap SetDelta(const K& key, V value, const WriteTag& tag) {
    LwwMap delta;
    delta.entries_.emplace(key, Entry{tag, std::move(value)});
    return delta;
  }
  static LwwMap EraseDelta(const K& key, const WriteTag& tag) {
    LwwMap delta;
    delta.entries_.emplace(key, Entry{tag, std::nullopt});
    return delta;
  }

  // Replaces the entry for `key` whatever its stamp: for building a delta in which a later
  // mutation supersedes an earlier one under the same tag.
  void Overwrite(const K& key, Entry entry) { entries_.insert_or_assign(key, std::move(entry)); }

  // Joins one entry; returns true when it won (the map changed).
  bool JoinEntry(const K& key, const Entry& entry) {
    auto [it, inserted] = entries_.try_emplace(key, entry);
    if (inserted) return true;
    if (it->second.tag.stamp < entry.tag.stamp) {
      it->second = entry;
      return true;
    }
    return false;
  }
  // Joins a state or a delta: per key, the entry with the greater stamp wins.
  void Join(const LwwMap& other) {
    for (const auto& [key, entry] : other.entries_) JoinEntry(key, entry);
  }

  // Drops tombstones whose write is covered by `stable`. The caller guarantees that `stable` is
  // causally stable: every instance has applied every delta it covers, and every delta any
  // instance issued before applying those (so no older write to the same key is in flight, which
  // a dropped tombstone could no longer beat); and that no instance stamps a write below a stamp
  // it has applied (writers use their state's token epoch, see DeltaBuilder), so no older write
  // can be issued later either. Receivers must drop deltas they have already applied: a late
  // duplicate of a beaten write would otherwise come back. Returns how many were dropped.
  size_t CollectTombstones(const VersionVector& stable) {
    size_t dropped = 0;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.tombstone() && stable.Covers(it->second.tag.dot())) {
        it = entries_.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    return dropped;
  }

  // Drops the entries whose write `covered` covers but whose key `keep` lacks: applying a
  // complete snapshot of a replica that had applied those writes (and so holds them, or
  // collected the tombstone that beat them). Returns how many were dropped.
  size_t DropCoveredAbsent(const VersionVector& covered, const std::set<K>& keep) {
    size_t dropped = 0;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (covered.Covers(it->second.tag.dot()) && !keep.count(it->first)) {
        it = entries_.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    return dropped;
  }

  const Entries& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }  // including tombstones
  size_t tombstones() const {
    size_t n = 0;
    for (const auto& kv : entries_) n += kv.second.tombstone() ? 1 : 0;
    return n;
  }
  bool empty() const { return entries_.empty(); }

  friend bool operator==(const LwwMap&, const LwwMap&) = default;

 private:
  Entries entries_;
};

}  // namespace clustermgr::crdt
