// When LWW tombstones may be dropped: once every known instance has seen them.
//
// crdt::LwwMap::CollectTombstones needs a causally stable vector S: every instance has applied
// every delta S covers, AND every delta any instance issued before it applied those (otherwise
// an older write to the key, still in flight, would arrive after its tombstone is gone and come
// back to life). The first half is what everyone reports; the second needs a second round.
//
// The two-round rule. Instances report their applied version vectors (their own origin's entry
// is how many deltas they have issued). Round 1 takes the latest report of every known
// instance, R1(i), and forms
//     S = meet_i R1(i)        what every instance has applied
//     C = join_i R1(i)        everything any instance had applied or issued by then.
// Each instance i had applied S when it made R1(i), so whatever i issued before applying (a
// delta of) S is at most R1(i)[i's origin] <= C; and every delta of an older incarnation or a
// relayed origin that anyone held then is also <= C. Round 2: once the latest report of every
// known instance dominates C (so every instance, this one included, has applied all of C),
// nothing issued before S was applied anywhere is still missing anywhere, and S is stable. The
// round-2 reports then open the next round, so S advances every round while writes flow.
//
// Reports only grow within one incarnation (applied vectors are durable and monotonic), so the
// content of a report says all that matters, whatever order reports arrive in; a report from a
// new incarnation of an instance (wiped and restored) replaces the old one. A change in the set
// of known instances abandons the open round: a new instance's earlier writes are not in C.
//
// Known instances are this one plus every peer the replicator knows (from --peer, Serf or an
// inbound connection). An instance that is known but silent (down, unreachable) blocks
// collection: that is the price of safety. An instance nobody knows about when S is declared
// stable (a partitioned stranger) is outside the guarantee: let every manager be a peer of the
// others (--peer or Serf tags).
//
// Thread-safety: none; owned by the replicator on the event loop thread.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include "crdt/version_vector.h"

namespace clustermgr::mgr {

class TombstoneStability {
 public:
  // Records instance `id`'s applied vector, reported by its incarnation `origin`.
  void Report(const std::string& id, const std::string& origin, const crdt::VersionVector& applied);
  // Drops what is known of `id` (it left for good).
  void Forget(const std::string& id);

  // Advances the rounds over the instances `known` (this one included: report it first).
  // Returns a stable vector when a round completes, else nullopt.
  std::optional<crdt::VersionVector> Advance(const std::set<std::string>& known);

  // The open round's S (meet) and C (join), for status and tests.
  bool round_open() const { return round_.has_value(); }
  const crdt::VersionVector* round_meet() const { return round_ ? &round_->meet : nullptr; }
  const crdt::VersionVector* round_join() const { return round_ ? &round_->join : nullptr; }

 private:
  struct Latest {
    std::string origin;
    crdt::VersionVector applied;
  };
  struct Round {
    std::set<std::string> members;
    crdt::VersionVector meet;
    crdt::VersionVector join;
  };
  // Opens a round from the latest reports of `known`; false if one of them has none.
  bool Open(const std::set<std::string>& known);

  std::map<std::string, Latest> latest_;
  std::optional<Round> round_;
};

}  // namespace clustermgr::mgr
