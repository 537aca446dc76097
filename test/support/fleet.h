// Fleet scenarios: clustermgr instances watching many machines, measured. The fleet benchmark
// (bench/fleet_bench.cc, scripts/bench-fleet.sh) runs them at full size; integration tests run
// small forms of each (test/fleet_test.cc).
//
//   RunRealSerfFleet    N real `serf agent -profile=local` processes as machines (each on its own
//                       127.1.x.y address), started at once and joined to the managers' agents,
//                       watched by M clustermgrd instances; then a mass departure.
//   RunSimulatedFleet   M clustermgrd instances whose Serf agents are endpoints of one
//                       FakeSerfAgent (net/testing/serf_fake_agent.h) serving a simulated fleet: a
//                       storm of N member joins, reads of the inventory, memory, a restart; then a
//                       job over many of those hosts (a trivial playbook with a local connection)
//                       and a second one cancelled while it runs.
//
// Each returns its figures (key, value, unit) in the order measured; keys are those of
// fleet.csv. Keys of the simulated fleet end in the fleet's size ("_10k" for 10,000, "_1k" for
// 1,000). Progress lines go to `progress` when it is set.
//
// Threading: one thread runs a scenario; it owns every process it starts and stops them all
// before returning (also on errors).
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"

namespace clustermgr::test {

struct FleetFigure {
  std::string key;
  double value = 0;
  std::string unit;
};
using FleetFigures = std::vector<FleetFigure>;

// "10k" for 10000, "1k" for 1000, "250" for 250.
std::string FleetSizeSuffix(std::size_t members);
// The value of `key` in `figures`, or -1.
double FleetValue(const FleetFigures& figures, const std::string& key);

struct RealSerfFleetOptions {
  std::size_t agents = 200;
  std::size_t managers = 3;
  double leave_fraction = 0.10;               // of the agents, leaving gracefully at once
  std::chrono::milliseconds timeout{120000};  // for each phase
};

// Keys: serf_agents, serf_converged_s (from starting the agents until every manager's agent
// lists all of them alive: Serf's own convergence, as `serf members` reports it),
// serf_discovered_after_converged_s (from that moment until every instance lists every machine
// as Discovered; 0 when they were all listed by then), serf_leave_detected_s (from the leave of
// leave_fraction of the agents until every instance lists them as Disappeared).
Result<FleetFigures> RunRealSerfFleet(const RealSerfFleetOptions& options,
                                      std::ostream* progress = nullptr);

struct SimulatedFleetOptions {
  std::size_t members = 10000;
  std::size_t managers = 3;
  std::chrono::milliseconds storm_window{10000};  // the joins are spread over this
  std::size_t storm_batches = 100;                // member-join records in the storm
  std::size_t read_samples = 200;                 // nodes get / node get calls measured
  // Hosts of the commission job (0: no jobs), run with --ansible-forks=forks.
  std::size_t job_hosts = 500;
  int forks = 50;
  // The instances' --playbook-dir (empty: the test playbooks); its site.yml must take the extra
  // var `slow` (seconds to sleep on each host), which the cancelled job sets.
  std::string playbook_dir{};
  std::chrono::milliseconds timeout{180000};  // for each phase
};

// Keys (S = FleetSizeSuffix(members)): storm_S_replicated_s (from the last join record until
// every instance lists every member as Discovered), nodes_get_p50_ms_S, nodes_get_p99_ms_S,
// node_get_p99_ms_S (on an instance that does not hold the token), rss_mb_S (the largest
// resident set of the instances), restart_s_S (an instance stopped with SIGTERM and started
// again: until it answers with every node); with job_hosts: job_hosts, job_s (commission of
// job_hosts nodes in one job, from the request until the job ended Complete with a per-host
// summary of every host), job_cancel_s (from `job cancel` while a job of job_hosts hosts runs
// until the job has ended Cancelled).
Result<FleetFigures> RunSimulatedFleet(const SimulatedFleetOptions& options,
                                       std::ostream* progress = nullptr);

}  // namespace clustermgr::test
