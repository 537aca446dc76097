// A deterministic simulation of the replication protocol, in the spirit of FoundationDB's
// simulation testing: N replicas — the real Replica (LevelDB in temp dirs, not synced) and
// Replicator — over FakeGossipNetwork, driven by one scheduler seeded from one number. Each run
// draws random writes and deletes at random replicas, time steps, message deliveries, crashes
// and restarts, wipes (a new incarnation), backups and restores of a data dir, wall-clock
// offsets (beyond --max-clock-offset-ms too), message loss, duplication and reordering, and
// partitions; small delta logs force snapshots, and tombstones are collected as the protocol
// decides. Then every fault heals, every replica comes back, and the run checks:
//   * causality: every write is stamped above the entry its replica held for that key;
//   * convergence: every replica has the same applied vector and the same live state, and
//     every tombstone is collected everywhere;
//   * no loss, no resurrection: each key holds the value of the highest-stamped write ever
//     made to it (absent when that write is a delete).
// A second round of faults follows the first heal, so wipes and restores meet collected
// tombstones and trimmed logs. Writes are never lost by the faults drawn: a replica is wiped or
// restored from its backup only while other live replicas hold everything it has applied, and
// it writes again only once it has caught up with what they held (before that its writes are
// concurrent with history it has not seen — a delete there may be collected already, an old
// backup's seqs used already; an operator uses --restore-from-peers and waits for readiness for
// the same reasons).
//
// Everything (scheduler, network, clocks) runs on the calling thread; a seed replays exactly.
#pragma once

#include <cstdint>
#include <string>

namespace clustermgr::sim {

struct SimOptions {
  uint64_t seed = 1;
  int replicas = 3;
  int steps = 100;       // scheduler steps per round (two rounds, each ending in a heal)
  bool verbose = false;  // print each step (for replaying a failing seed)
};

struct SimResult {
  bool ok = true;
  std::string failure;  // what was violated, when !ok
  uint64_t writes = 0;
  uint64_t deletes = 0;
  uint64_t crashes = 0;
  uint64_t wipes = 0;
  uint64_t restores = 0;
  uint64_t snapshots = 0;  // applied, over all replicas
  uint64_t collected = 0;  // tombstones collected, over all replicas
  uint64_t settle_ms = 0;  // simulated time from healing to convergence
};

// Runs one simulation. Never throws for a protocol failure: it is reported in the result.
SimResult RunSimulation(const SimOptions& options);

}  // namespace clustermgr::sim
