#include "mgr/repl/tombstone_stability.h"

namespace clustermgr::mgr {

void TombstoneStability::Report(const std::string& id, const std::string& origin,
                                const crdt::VersionVector& applied) {
  auto [it, inserted] = latest_.try_emplace(id, Latest{origin, applied});
  if (inserted) return;
  if (it->second.origin != origin) {
    // A new incarnation: its vector starts over (a wiped instance restoring from peers).
    it->second = Latest{origin, applied};
    if (round_ && round_->members.count(id)) round_.reset();
    return;
  }
  it->second.applied.Merge(applied);  // reports of one incarnation only grow
}

void TombstoneStability::Forget(const std::string& id) {
  latest_.erase(id);
  if (round_ && round_->members.count(id)) round_.reset();
}

bool TombstoneStability::Open(const std::set<std::string>& known) {
  Round round;
  round.members = known;
  bool first = true;
  for (const std::string& id : known) {
    auto it = latest_.find(id);
    if (it == latest_.end()) return false;
    const crdt::VersionVector& r = it->second.applied;
    round.meet = first ? r : crdt::VersionVector::Meet(round.meet, r);
    round.join.Merge(r);
    first = false;
  }
  if (first) return false;
  round_ = std::move(round);
  return true;
}

std::optional<crdt::VersionVector> TombstoneStability::Advance(const std::set<std::string>& known) {
  if (!round_ || round_->members != known) {
    round_.reset();
    Open(known);
    return std::nullopt;
  }
  for (const std::string& id : known) {
    auto it = latest_.find(id);
    if (it == latest_.end() || !it->second.applied.Dominates(round_->join)) return std::nullopt;
  }
  crdt::VersionVector stable = std::move(round_->meet);
  round_.reset();
  Open(known);  // the round-2 reports open the next round
  return stable;
}

}  // namespace clustermgr::mgr
