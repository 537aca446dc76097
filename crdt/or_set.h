// Optimized observed-remove set (add-wins), after Bieniusa et al. 2012 and Riak's ORSWOT, in
// delta-state form (Almeida, Shoker, Baquero 2016).
//
// Each present element keeps the dots of the adds that put it there; one causal context records
// every add ever seen. Remove drops the element and leaves no tombstone: the context remembers
// its dots, so a join drops the element on the side that has not seen the remove. A concurrent
// add carries a dot the remover never saw, so it survives (add wins). Remove of an element not
// present is a no-op.
//
// Thread-safety: a plain value; no internal synchronization.
#pragma once

#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crdt/version_vector.h"

namespace clustermgr::crdt {

template <typename E>
class OrSet {
 public:
  using Entries = std::map<E, std::set<Dot>>;

  bool Contains(const E& element) const { return entries_.count(element) > 0; }
  std::vector<E> Elements() const {
    std::vector<E> out;
    out.reserve(entries_.size());
    for (const auto& kv : entries_) out.push_back(kv.first);
    return out;
  }

  // The dots that put `element` in the set (empty when absent).
  std::set<Dot> DotsOf(const E& element) const {
    auto it = entries_.find(element);
    return it == entries_.end() ? std::set<Dot>{} : it->second;
  }

  // The delta of adding `element` at replica `origin` with a fresh dot, one above `after` (the
  // highest dot of `origin` already used, in this state or in a delta being built on it). The
  // delta's context also holds the element's older dots, which the add supersedes.
  OrSet AddDelta(const E& element, const std::string& origin, uint64_t after) const {
    OrSet delta;
    const Dot dot{origin, after + 1};
    delta.entries_[element].insert(dot);
    delta.context_.Add(dot);
    if (auto it = entries_.find(element); it != entries_.end()) {
      for (const Dot& old : it->second) delta.context_.Add(old);
    }
    return delta;
  }
  // The delta of removing `element`: no entries, a context of exactly its dots. Empty when the
  // element is absent.
  OrSet RemoveDelta(const E& element) const {
    OrSet delta;
    if (auto it = entries_.find(element); it != entries_.end()) {
      for (const Dot& old : it->second) delta.context_.Add(old);
    }
    return delta;
  }
  // The highest dot counter `origin` has issued that this set has seen.
  uint64_t LastCounter(const std::string& origin) const {
    uint64_t last = context_.compact().Get(origin);
    for (const Dot& d : context_.cloud()) {
      if (d.origin == origin && d.counter > last) last = d.counter;
    }
    return last;
  }

  // Joins a state or a delta. A dot survives if both sides have it, or if one side has it and
  // the other side's context has never seen it. In place: O(|this| + |other|) steps without
  // copying this side, so joining a small delta into a large state allocates only for what the
  // delta adds.
  void Join(const OrSet& other) {
    // This side's dots: drop those the other side has seen and no longer holds. Both maps are
    // ordered, so one walk pairs each element with its counterpart.
    auto b = other.entries_.begin();
    for (auto a = entries_.begin(); a != entries_.end();) {
      while (b != other.entries_.end() && b->first < a->first) ++b;
      const std::set<Dot>* theirs =
          b != other.entries_.end() && !(a->first < b->first) ? &b->second : nullptr;
      for (auto d = a->second.begin(); d != a->second.end();) {
        if ((theirs && theirs->count(*d)) || !other.context_.Contains(*d)) {
          ++d;
        } else {
          d = a->second.erase(d);
        }
      }
      a = a->second.empty() ? entries_.erase(a) : std::next(a);
    }
    // The other side's dots this side has never seen (checked against this side's context
    // before the merge below).
    auto hint = entries_.begin();
    for (const auto& [e, dots] : other.entries_) {
      std::set<Dot>* mine = nullptr;
      for (const Dot& d : dots) {
        if (context_.Contains(d)) continue;
        if (mine == nullptr) {
          hint = entries_.try_emplace(hint, e);
          mine = &hint->second;
        }
        mine->insert(d);
      }
    }
    context_.Merge(other.context_);
  }

  const Entries& entries() const { return entries_; }
  const CausalContext& context() const { return context_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty() && context_.empty(); }

  // Rebuilds a set from its parts (decoders use this).
  static OrSet FromParts(Entries entries, CausalContext context) {
    OrSet out;
    out.entries_ = std::move(entries);
    out.context_ = std::move(context);
    return out;
  }

  friend bool operator==(const OrSet&, const OrSet&) = default;

 private:
  Entries entries_;
  CausalContext context_;
};

}  // namespace clustermgr::crdt
