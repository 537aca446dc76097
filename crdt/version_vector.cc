#include "crdt/version_vector.h"

#include <algorithm>

namespace clustermgr::crdt {

uint64_t VersionVector::Get(const std::string& origin) const {
  auto it = counters_.find(origin);
  return it == counters_.end() ? 0 : it->second;
}

bool VersionVector::Dominates(const VersionVector& other) const {
  for (const auto& [origin, counter] : other.counters_) {
    if (Get(origin) < counter) return false;
  }
  return true;
}

void VersionVector::Advance(const std::string& origin, uint64_t counter) {
  if (counter == 0) return;
  uint64_t& mine = counters_[origin];
  mine = std::max(mine, counter);
}

void VersionVector::Merge(const VersionVector& other) {
  for (const auto& [origin, counter] : other.counters_) Advance(origin, counter);
}

VersionVector VersionVector::Meet(const VersionVector& a, const VersionVector& b) {
  VersionVector out;
  for (const auto& [origin, counter] : a.counters_) {
    out.Advance(origin, std::min(counter, b.Get(origin)));
  }
  return out;
}

std::string VersionVector::ToString() const {
  std::string out = "{";
  for (const auto& [origin, counter] : counters_) {
    if (out.size() > 1) out += ", ";
    out += origin + ":" + std::to_string(counter);
  }
  return out + "}";
}

bool CausalContext::Contains(const Dot& dot) const {
  return compact_.Covers(dot) || cloud_.count(dot) > 0;
}

Dot CausalContext::Next(const std::string& origin) {
  Dot dot{origin, compact_.Get(origin) + 1};
  Add(dot);
  return dot;
}

void CausalContext::Add(const Dot& dot) {
  if (Contains(dot)) return;
  cloud_.insert(dot);
  Compact();
}

void CausalContext::Merge(const CausalContext& other) {
  compact_.Merge(other.compact_);
  cloud_.insert(other.cloud_.begin(), other.cloud_.end());
  Compact();
}

CausalContext CausalContext::FromParts(VersionVector compact, std::set<Dot> cloud) {
  CausalContext out;
  out.compact_ = std::move(compact);
  out.cloud_ = std::move(cloud);
  out.Compact();
  return out;
}

void CausalContext::Compact() {
  // The cloud is ordered by (origin, counter), so one pass folds every run that has become
  // contiguous with the compact vector.
  for (auto it = cloud_.begin(); it != cloud_.end();) {
    const uint64_t have = compact_.Get(it->origin);
    if (it->counter <= have) {
      it = cloud_.erase(it);
    } else if (it->counter == have + 1) {
      compact_.Advance(it->origin, it->counter);
      it = cloud_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace clustermgr::crdt
