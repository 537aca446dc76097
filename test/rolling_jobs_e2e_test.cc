// clustermgrd end to end: rolling jobs and the per-host summary. `nodes upgrade --serial N` runs
// the upgrade playbook N nodes at a time, so the fleet is never all in Maintenance; a failed batch
// of a rolling update stops the job and the later batches never run; `job get` summarizes every
// host's results.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;
using net::JobStatus;
using net::NodeStatus;
using ::testing::HasSubstr;

class RollingJobsTest : public ClusterTest<RollingJobsTest> {
 protected:
  static void SetUpTestSuite() {
    StartSharedCluster({}, [](Cluster& c) {
      return c.AddDiscoveredMachines("r", {"1", "2", "3", "4"});
    });
  }
  net::RpcClient& rpc() { return cluster()->rpc(); }

  // How many of the nodes are in `status` now; -1 when the read failed.
  int Count(NodeStatus status) {
    auto nodes = rpc().NodesGet();
    if (!nodes.ok()) return -1;
    int n = 0;
    for (const net::NodeInfo& node : nodes.value()) n += node.status == status;
    return n;
  }
};

TEST_F(RollingJobsTest, UpgradeRollsOneAtATimeAndAFailedUpdateBatchStopsTheRest) {
  const std::vector<std::string> all = {"r-1", "r-2", "r-3", "r-4"};
  ASSERT_OK_AND_ASSIGN(net::JobAccepted commission, rpc().Commission(all, "service-master", ""));
  ASSERT_OK_AND_ASSIGN(net::JobDetail done, cluster()->WaitForJobEnd(commission.job_id));
  ASSERT_EQ(done.job.status, JobStatus::kComplete) << done.job.error;
  ASSERT_EQ(done.job.hosts.size(), 4u);
  for (const net::HostSummary& h : done.job.hosts) {
    EXPECT_GT(h.ok, 0u) << h.host;
    EXPECT_EQ(h.failed + h.unreachable, 0u) << h.host;
  }
  EXPECT_EQ(done.job.hosts[0].host, "r-1");

  // Rolling upgrade, one node at a time (each run takes a second): while it runs, never more
  // than one node is in Maintenance, and the others stay Allocated.
  ASSERT_OK_AND_ASSIGN(net::JobAccepted upgrade, rpc().Upgrade(all, R"({"slow": 1})", 1));
  int most_in_maintenance = 0;
  bool saw_rolling = false;
  Status ended = Cluster::WaitUntil(
      "the rolling upgrade ends",
      [&](std::string* last) {
        const int maintenance = Count(NodeStatus::kMaintenance);
        const int allocated = Count(NodeStatus::kAllocated);
        most_in_maintenance = std::max(most_in_maintenance, maintenance);
        saw_rolling |= maintenance == 1 && allocated == 3;
        auto job = rpc().JobGet(upgrade.job_id);
        *last = job.ok() ? std::string(net::ToString(job.value().job.status)) : job.status().message();
        return job.ok() && job.value().job.status != JobStatus::kRunning;
      },
      120s, 50ms);
  ASSERT_TRUE(IsOk(ended));
  EXPECT_EQ(most_in_maintenance, 1);
  EXPECT_TRUE(saw_rolling);
  ASSERT_OK_AND_ASSIGN(net::JobDetail upgraded, rpc().JobGet(upgrade.job_id));
  ASSERT_EQ(upgraded.job.status, JobStatus::kComplete) << upgraded.job.error;
  EXPECT_EQ(upgraded.job.desc, "upgrade");
  EXPECT_EQ(Count(NodeStatus::kAllocated), 4);
  std::vector<std::size_t> batch_lines;
  for (int b = 1; b <= 4; ++b) {
    const std::string want = "clustermgr: batch " + std::to_string(b) + " of 4: 1 host(s)";
    for (std::size_t i = 0; i < upgraded.log_lines.size(); ++i) {
      if (upgraded.log_lines[i] == want) batch_lines.push_back(i);
    }
  }
  ASSERT_EQ(batch_lines.size(), 4u);
  EXPECT_TRUE(std::is_sorted(batch_lines.begin(), batch_lines.end()));
  ASSERT_EQ(upgraded.job.hosts.size(), 4u);
  for (const std::string& node : all) {
    EXPECT_EQ(cluster()->CountRuns(node, "rolling-upgrade.yml"), 1) << node;
  }

  // A rolling update, two at a time, whose first batch fails on r-1: the job ends there, the
  // first batch goes to Unallocated, the second was never touched and stays Allocated.
  ASSERT_OK_AND_ASSIGN(net::JobAccepted update,
                       rpc().Update(all, "", R"({"fail_nodes": ["r-1"]})", 2));
  ASSERT_OK_AND_ASSIGN(net::JobDetail failed, cluster()->WaitForJobEnd(update.job_id));
  EXPECT_EQ(failed.job.status, JobStatus::kErrored);
  EXPECT_THAT(failed.job.error, HasSubstr("cleanup.yml"));
  for (const char* node : {"r-1", "r-2"}) {
    ASSERT_OK_AND_ASSIGN(net::NodeInfo n, rpc().NodeGet(node));
    EXPECT_EQ(n.status, NodeStatus::kUnallocated) << node;
  }
  for (const char* node : {"r-3", "r-4"}) {
    ASSERT_OK_AND_ASSIGN(net::NodeInfo n, rpc().NodeGet(node));
    EXPECT_EQ(n.status, NodeStatus::kAllocated) << node;
    EXPECT_EQ(cluster()->CountRuns(node, "cleanup.yml"), 0) << node;
  }
  std::size_t summarized_failed = 0;
  for (const net::HostSummary& h : failed.job.hosts) summarized_failed += h.failed;
  EXPECT_EQ(summarized_failed, 1u);        // r-1's record-run task
  EXPECT_EQ(failed.job.hosts.size(), 2u);  // the hosts that ran
}

}  // namespace
}  // namespace clustermgr::test
