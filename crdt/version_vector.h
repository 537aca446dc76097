// Dots and version vectors: the causal bookkeeping shared by every section.
//
// A Dot names one event: the `counter`-th event issued by `origin`. A VersionVector summarizes a
// contiguous history: it covers (o, n) iff counter[o] >= n. Origins are instance incarnation
// ids (strings); iteration is ordered, so encodings and comparisons are deterministic.
//
// Thread-safety: plain values; no internal synchronization.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace clustermgr::crdt {

struct Dot {
  std::string origin;
  uint64_t counter = 0;

  friend auto operator<=>(const Dot&, const Dot&) = default;
  friend bool operator==(const Dot&, const Dot&) = default;
  std::string ToString() const { return origin + ":" + std::to_string(counter); }
};

class VersionVector {
 public:
  uint64_t Get(const std::string& origin) const;
  bool Covers(const Dot& dot) const { return dot.counter <= Get(dot.origin); }
  // True when every event covered by `other` is covered here.
  bool Dominates(const VersionVector& other) const;

  // Raises origin's counter to at least `counter` (never lowers it).
  void Advance(const std::string& origin, uint64_t counter);
  // Pointwise max: the join of the lattice.
  void Merge(const VersionVector& other);
  // Pointwise min over origins present in either (absent counts as 0): what both have seen.
  static VersionVector Meet(const VersionVector& a, const VersionVector& b);

  const std::map<std::string, uint64_t>& entries() const { return counters_; }
  bool empty() const { return counters_.empty(); }
  std::string ToString() const;  // "{a:3, b:5}"

  friend bool operator==(const VersionVector&, const VersionVector&) = default;

 private:
  std::map<std::string, uint64_t> counters_;  // no zero entries
};

// The causal context of an OR-set: a compact version vector plus the "dot cloud" of events
// seen out of order. Deltas carry clouds (a remove delta's context holds exactly the removed
// dots), so joins in any order stay correct; Compact() folds the cloud back into the vector.
class CausalContext {
 public:
  bool Contains(const Dot& dot) const;
  // A new dot for `origin`, recorded as seen. Only valid at the replica that owns `origin`,
  // which has seen all of its own earlier dots.
  Dot Next(const std::string& origin);
  void Add(const Dot& dot);
  void Merge(const CausalContext& other);

  const VersionVector& compact() const { return compact_; }
  // Dots seen beyond compact(), in order.
  const std::set<Dot>& cloud() const { return cloud_; }
  // Rebuilds a context from its parts (decoders use this); compacts.
  static CausalContext FromParts(VersionVector compact, std::set<Dot> cloud);
  bool empty() const { return compact_.empty() && cloud_.empty(); }

  friend bool operator==(const CausalContext&, const CausalContext&) = default;

 private:
  void Compact();

  VersionVector compact_;
  std::set<Dot> cloud_;  // every dot here is beyond compact_ and not contiguous with it
};

}  // namespace clustermgr::crdt
