// One fault schedule: a fresh FaultCluster, a seeded random list of faults applied one after
// another for `duration`, client threads writing meanwhile, then heal, a quiet period, and the
// checks (see RunSchedule). The fault list depends only on the seed; client timing does not
// (real processes), so a replay repeats the faults, not the exact interleaving.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "test/faults/netlab.h"

namespace clustermgr::faults {

struct ScheduleOptions {
  uint64_t seed = 0;  // this schedule's own seed
  int index = 0;
  std::chrono::seconds duration{20};
  int machines = 4;
  bool keep = false;
  bool verbose = false;
};

// Totals over schedules, for the summary.
struct Tally {
  int schedules = 0;
  std::map<std::string, int> faults;  // by kind
  int acknowledged = 0, refused = 0, unknown = 0;
  int writes_lost = 0;
  int64_t worst_convergence_ms = 0;
  int duplicates_in_partitions = 0;
  int duplicates_outside = 0;
  int jobs_checked = 0;
  // Node fencing (the clustermgr_fence role in the test playbooks): checks a host refused, and
  // playbook runs at a lower epoch that reached a host after a higher one because their check
  // had passed first (the window the role cannot close; see docs/operations.md).
  int fenced_checks = 0;
  int stale_after_newer = 0;
  int64_t dual_holder_ms = 0;  // time two instances both said they held the token
  // Playbook runs of different epochs alive at the same time on one node (the runs' busy
  // markers), outside and inside partition windows; runs checked.
  int overlaps_outside = 0;
  int overlaps_in_partitions = 0;
  int runs_checked = 0;
  // Healed faults after which the token was held again, and the longest that took.
  int token_moves = 0;
  int64_t worst_token_move_ms = 0;
  int failed = 0;  // schedules with a failed check (--keep-going)
  void Add(const Tally& t);
};

struct ScheduleResult {
  bool ok = true;
  bool infra_error = false;  // the cluster would not start (not a finding about the product)
  std::string failure;       // the failed check, with the history excerpt that proves it
  std::string plan;          // the fault list, for the failure message
  Tally tally;
};

// Set by the SIGINT/SIGTERM handler: every wait returns early and the schedule unwinds.
extern std::atomic<bool> g_stop;

ScheduleResult RunSchedule(NetLab& lab, const ScheduleOptions& options);

// The faults a schedule draws from: name and what it does (fault-suite --help lists them).
const std::vector<std::pair<std::string, std::string>>& FaultKinds();

}  // namespace clustermgr::faults
