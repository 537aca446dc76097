// Small forms of the fleet scenarios (test/support/fleet.h; the full sizes are the fleet
// benchmark, scripts/bench-fleet.sh): 20 real Serf agents as machines, 1,000 simulated members
// in a storm of joins, a 20-host commission with its per-host summary, a cancel mid-job.
#include "test/support/fleet.h"

#include <gtest/gtest.h>

#include <iostream>

#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;

TEST(FleetTest, TwentyRealAgentsAreDiscoveredAndTheirDepartureSeenByEveryInstance) {
  RealSerfFleetOptions o;
  o.agents = 20;
  o.timeout = 60s;
  auto figures = RunRealSerfFleet(o, &std::cerr);
  ASSERT_TRUE(IsOk(figures));
  EXPECT_EQ(FleetValue(*figures, "serf_agents"), 20);
  EXPECT_GE(FleetValue(*figures, "serf_discovered_after_converged_s"), 0);
  EXPECT_GT(FleetValue(*figures, "serf_leave_detected_s"), 0);
}

TEST(FleetTest, AThousandSimulatedMembersAndTwentyHostJobs) {
  SimulatedFleetOptions o;
  o.members = 1000;
  o.storm_window = 2s;
  o.storm_batches = 20;
  o.read_samples = 20;
  o.job_hosts = 20;
  o.forks = 20;
  o.timeout = 90s;
  auto figures = RunSimulatedFleet(o, &std::cerr);
  ASSERT_TRUE(IsOk(figures));
  for (const char* key :
       {"storm_1k_replicated_s", "nodes_get_p50_ms_1k", "nodes_get_p99_ms_1k", "node_get_p99_ms_1k",
        "rss_mb_1k", "restart_s_1k", "job_s", "job_cancel_s"}) {
    EXPECT_GT(FleetValue(*figures, key), 0) << key;
  }
  // RunSimulatedFleet checked that the job ended Complete with an ok summary of every host.
  EXPECT_EQ(FleetValue(*figures, "job_hosts"), 20);
}

}  // namespace
}  // namespace clustermgr::test
