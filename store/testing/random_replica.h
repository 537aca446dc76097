// RandomReplica: a replica that issues random deltas through crdt::DeltaBuilder, for the store's
// randomized tests, the crash test and the benchmark (seeded, so a failure replays).
//
// It keeps its own state (its deltas and whatever it Receive()s), as a real instance does, so
// its deltas are what the daemon would produce: OR-set dots never reused, removes of what it
// has seen, tags (epoch, HLC, origin) rising. Keys come from small pools, so writes overwrite,
// delete and race; some keys hold NUL and non-ASCII bytes.
//
// Thread-safety: none; one owner.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "crdt/cluster_state.h"
#include "crdt/hlc.h"

namespace clustermgr::store {

class RandomReplica {
 public:
  RandomReplica(std::string origin, uint64_t seed);

  // A delta of 1..max_ops random mutations, seq one above the last, joined locally.
  crdt::Delta Next(int max_ops = 4);
  // Joins a delta issued elsewhere (so later removes and overwrites may concern it).
  void Receive(const crdt::Delta& delta);

  const std::string& origin() const { return origin_; }
  uint64_t seq() const { return seq_; }
  crdt::HlcTimestamp hlc() const { return hlc_; }
  const crdt::ClusterState& state() const { return state_; }

 private:
  std::string Pick(const char* prefix, int pool);

  std::string origin_;
  std::mt19937_64 rng_;
  uint64_t seq_ = 0;
  uint64_t epoch_ = 0;
  crdt::HlcTimestamp hlc_;
  crdt::ClusterState state_;
};

}  // namespace clustermgr::store
