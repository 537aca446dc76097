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
    delta.Insert(element, dot);
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
  // the other side's context has never seen it. In place, and in O(|other| + our dots that
  // `other`'s context covers) map steps: only those dots can be removed, and the dot index finds
  // them, so a small delta joins a large state without a walk over the state.
  void Join(const OrSet& other) {
    if (other.empty()) return;
    // This side's dots that the other side has seen and no longer holds: removed there.
    std::vector<std::pair<Dot, E>> gone;
    auto consider = [&](const Dot& dot, const E& element) {
      auto theirs = other.entries_.find(element);
      if (theirs == other.entries_.end() || !theirs->second.count(dot)) {
        gone.emplace_back(dot, element);
      }
    };
    for (const auto& [origin, counter] : other.context_.compact().entries()) {
      for (auto it = index_.lower_bound(Dot{origin, 0});
           it != index_.end() && it->first.origin == origin && it->first.counter <= counter; ++it) {
        consider(it->first, it->second);
      }
    }
    for (const Dot& dot : other.context_.cloud()) {
      auto [from, to] = index_.equal_range(dot);
      for (auto it = from; it != to; ++it) consider(it->first, it->second);
    }
    for (const auto& [dot, element] : gone) Erase(element, dot);
    // The other side's dots this side has never seen (checked against this side's context
    // before the merge below).
    for (const auto& [e, dots] : other.entries_) {
      for (const Dot& d : dots) {
        if (!context_.Contains(d)) Insert(e, d);
      }
    }
    context_.Merge(other.context_);
  }

  // The elements holding a dot that `context` covers: those a join with a set of that context may
  // remove (found through the dot index, as Join finds them, without a walk over the set).
  std::set<E> CoveredBy(const CausalContext& context) const {
    std::set<E> out;
    for (const auto& [origin, counter] : context.compact().entries()) {
      for (auto it = index_.lower_bound(Dot{origin, 0});
           it != index_.end() && it->first.origin == origin && it->first.counter <= counter; ++it) {
        out.insert(it->second);
      }
    }
    for (const Dot& dot : context.cloud()) {
      auto [from, to] = index_.equal_range(dot);
      for (auto it = from; it != to; ++it) out.insert(it->second);
    }
    return out;
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
    for (const auto& [e, dots] : out.entries_) {
      for (const Dot& d : dots) out.index_.emplace(d, e);
    }
    return out;
  }

  // The index is derived from the entries: equal entries and contexts are equal sets.
  friend bool operator==(const OrSet& a, const OrSet& b) {
    return a.entries_ == b.entries_ && a.context_ == b.context_;
  }

 private:
  void Insert(const E& element, const Dot& dot) {
    if (entries_[element].insert(dot).second) index_.emplace(dot, element);
  }
  void Erase(const E& element, const Dot& dot) {
    auto it = entries_.find(element);
    if (it == entries_.end() || it->second.erase(dot) == 0) return;
    if (it->second.empty()) entries_.erase(it);
    auto [from, to] = index_.equal_range(dot);
    for (auto i = from; i != to; ++i) {
      if (i->second == element) {
        index_.erase(i);
        break;
      }
    }
  }

  Entries entries_;
  CausalContext context_;
  // Every (dot, element) of entries_, by dot: finds the elements a context's dots touch. A
  // multimap only because hostile input may put one dot under two elements.
  std::multimap<Dot, E> index_;
};

}  // namespace clustermgr::crdt
