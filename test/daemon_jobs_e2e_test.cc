// clustermgrd end to end: jobs. One active job at a time, `job get active|last`, `job cancel`
// (the playbook's whole process group goes), `job get -f` through the real `clustermgr` binary
// following a live log, a missing playbook, and discover bringing a new address in.
//
// Predecessor scenarios covered: second job while one runs is refused; job get active during a
// job and last after; missing playbook -> node back to Unallocated with cleanup run; discover of
// a new address brings the node in.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;
using net::JobStatus;
using net::NodeState;
using net::NodeStatus;
using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;

class JobsTest : public ClusterTest<JobsTest> {
 protected:
  static void SetUpTestSuite() {
    StartSharedCluster({}, [](Cluster& c) {
      return c.AddDiscoveredMachines("j", {"1", "2", "3"});
    });
  }

  net::RpcClient& rpc() { return cluster()->rpc(); }

  // The process group of the daemon's running playbook, once its `sleep` task runs.
  pid_t WaitForSleepingPlaybook() {
    pid_t group = 0;
    Status s = Cluster::WaitUntil(
        "a playbook process group with a running sleep",
        [&](std::string* last) {
          const std::vector<pid_t> groups = ChildProcessGroups(cluster()->manager().pid());
          *last = std::to_string(groups.size()) + " playbook group(s)";
          for (pid_t g : groups) {
            for (const ProcInfo& p : ProcessGroupMembers(g)) {
              if (p.comm == "sleep") {
                group = g;
                return true;
              }
            }
          }
          return false;
        },
        30s);
    EXPECT_TRUE(IsOk(s));
    return group;
  }
};

TEST_F(JobsTest, SecondJobIsRefusedWhileOneRunsAndCancelStopsIt) {
  auto accepted = rpc().Commission({"j-1"}, "service-master", R"({"slow": 300})");
  ASSERT_TRUE(IsOk(accepted));
  const std::string id = accepted.value().job_id;
  ASSERT_TRUE(IsOk(cluster()->WaitForLogLine(id, "TASK [slow]")));
  const pid_t group = WaitForSleepingPlaybook();
  ASSERT_GT(group, 0);

  ASSERT_OK_AND_ASSIGN(net::JobDetail active, rpc().JobGet("active"));
  EXPECT_EQ(active.job.id, id);
  EXPECT_EQ(active.job.status, JobStatus::kRunning);
  EXPECT_THAT(active.job.nodes, ElementsAre("j-1"));
  EXPECT_THAT(active.log_lines, Contains(HasSubstr("TASK [slow]")));

  const std::string busy = "there is already an active job, please try in sometime. Job: " + id +
                           " (commission [j-1], Running)";
  EXPECT_TRUE(
      IsRpcError(rpc().Commission({"j-2"}, "service-master", ""), Code::kFailedPrecondition, busy));
  EXPECT_TRUE(IsRpcError(rpc().Decommission({"j-2"}, ""), Code::kFailedPrecondition, busy));
  EXPECT_TRUE(IsRpcError(rpc().Update({"j-2"}, "", ""), Code::kFailedPrecondition, busy));
  EXPECT_TRUE(IsRpcError(rpc().Discover({"127.0.0.250"}, ""), Code::kFailedPrecondition, busy));
  EXPECT_EQ(rpc().NodeGet("j-2").value().status, NodeStatus::kUnallocated);
  EXPECT_EQ(rpc().NodeGet("j-1").value().status, NodeStatus::kProvisioning);

  // Cancel through the CLI, without an id: the active job.
  CommandResult r =
      RunCommand("clustermgr", {"-u", cluster()->manager().rpc_url(), "job", "cancel"});
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(r.out, "job " + id + " cancelled\n");

  ASSERT_OK_AND_ASSIGN(net::JobDetail done, cluster()->WaitForJobEnd(id, 30s));
  EXPECT_EQ(done.job.status, JobStatus::kCancelled) << Describe(done);
  EXPECT_EQ(done.job.error, "cancelled");
  EXPECT_GT(done.job.ended_ms, 0);
  // The node is safe, and nothing of the playbook is left running.
  ASSERT_OK_AND_ASSIGN(net::NodeInfo j1, rpc().NodeGet("j-1"));
  EXPECT_EQ(j1.status, NodeStatus::kUnallocated);
  EXPECT_EQ(j1.prev_status, NodeStatus::kProvisioning);
  EXPECT_TRUE(IsOk(Cluster::WaitUntil(
      "the playbook's process group to be gone",
      [&](std::string* last) {
        auto left = ProcessGroupMembers(group);
        for (const auto& p : left) *last += p.comm + "(" + std::to_string(p.pid) + ") ";
        return left.empty();
      },
      10s)));
  // No cleanup runs after a cancel.
  EXPECT_THAT(cluster()->MarkerLines("j-1"), ElementsAre("site.yml j-1"));

  // A cancelled job is no longer active; it is the last one.
  EXPECT_TRUE(
      IsRpcError(rpc().JobGet("active"), Code::kNotFound, "info for \"active\" job doesn't exist"));
  ASSERT_OK_AND_ASSIGN(net::JobDetail last, rpc().JobGet("last"));
  EXPECT_EQ(last.job.id, id);
  EXPECT_EQ(last.job.status, JobStatus::kCancelled);
  EXPECT_THAT(last.log_lines, Contains(HasSubstr("TASK [slow]")));
  EXPECT_TRUE(IsRpcError(rpc().JobCancel(id), Code::kFailedPrecondition,
                         "job \"" + id + "\" is not active: Cancelled"));
  EXPECT_TRUE(
      IsRpcError(rpc().JobCancel(""), Code::kNotFound, "info for \"active\" job doesn't exist"));

  // The next job runs (the remembered slow is overridden).
  auto next = rpc().Commission({"j-1"}, "service-master", R"({"slow": 0})");
  ASSERT_TRUE(IsOk(next));
  ASSERT_OK_AND_ASSIGN(done, cluster()->WaitForJobEnd(next.value().job_id));
  EXPECT_EQ(done.job.status, JobStatus::kComplete) << Describe(done);
}

// `clustermgr job get ID -f` follows the log while the job runs and ends with the job.
TEST_F(JobsTest, JobGetFollowThroughTheCliFollowsALiveLog) {
  auto accepted = rpc().Commission({"j-2"}, "service-master", R"({"slow": 3})");
  ASSERT_TRUE(IsOk(accepted));
  const std::string id = accepted.value().job_id;
  const std::string url = cluster()->manager().rpc_url();

  ProcessOptions p;
  p.program = BinDir() + "/clustermgr";
  p.args = {"-u", url, "job", "get", id, "-f"};
  p.output_path = cluster()->dir() + "/follow-" + id + ".out";
  std::string error;
  auto follower = Process::Start(p, &error);
  ASSERT_NE(follower, nullptr) << error;

  // The follower prints the slow task while the job still runs...
  ASSERT_TRUE(IsOk(Cluster::WaitUntil(
      "the follower to print the slow task",
      [&](std::string* last) {
        *last = follower->Output();
        return last->find("TASK [slow]") != std::string::npos;
      },
      60s)));
  ASSERT_OK_AND_ASSIGN(net::JobDetail running, rpc().JobGet(id));
  EXPECT_EQ(running.job.status, JobStatus::kRunning);
  EXPECT_EQ(follower->Output().find("PLAY RECAP"), std::string::npos);

  // ...and the rest when it comes, then exits 0 with the job's end.
  std::optional<int> status = follower->Wait(60s);
  ASSERT_TRUE(status.has_value()) << follower->Output();
  EXPECT_EQ(*status, 0) << Process::DescribeStatus(*status) << "\n" << follower->Output();
  const std::string out = follower->Output();
  EXPECT_THAT(out, HasSubstr("PLAY RECAP"));
  EXPECT_THAT(out, EndsWith("--- job " + id + " Complete ---\n"));
  ASSERT_OK_AND_ASSIGN(net::JobDetail done, rpc().JobGet(id));
  EXPECT_EQ(done.job.status, JobStatus::kComplete);
  // Every log line was printed once, in order.
  std::string expected;
  for (const auto& line : done.log_lines) expected += line + "\n";
  EXPECT_EQ(out, expected + "--- job " + id + " Complete ---\n");

  // --json: one document with the whole log.
  CommandResult r = RunCommand("clustermgr", {"-u", url, "--json", "job", "get", id, "-f"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  json doc = json::parse(r.out);
  EXPECT_EQ(doc.value("status", ""), "Complete") << r.out;
  EXPECT_EQ(doc["log"].size(), done.log_lines.size()) << r.out;

  r = RunCommand("clustermgr", {"-u", url, "job", "get", "last"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_THAT(r.out, HasSubstr(id));
}

TEST_F(JobsTest, MissingPlaybookSendsTheNodeBackToUnallocatedAfterACleanup) {
  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {"configure_playbook": "no-such.yml"}})")));
  auto accepted = rpc().Commission({"j-3"}, "service-master", "");
  ASSERT_TRUE(IsOk(accepted));
  ASSERT_OK_AND_ASSIGN(net::JobDetail done, cluster()->WaitForJobEnd(accepted.value().job_id));
  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {}})")));

  EXPECT_EQ(done.job.status, JobStatus::kErrored) << Describe(done);
  const std::string missing =
      "playbook \"no-such.yml\" not found in \"" + cluster()->playbook_dir() + "\"";
  EXPECT_THAT(done.job.error, HasSubstr(missing));
  EXPECT_THAT(done.log_lines, Contains("clustermgr: " + missing));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo j3, rpc().NodeGet("j-3"));
  EXPECT_EQ(j3.status, NodeStatus::kUnallocated);
  EXPECT_EQ(j3.prev_status, NodeStatus::kProvisioning);
  EXPECT_THAT(cluster()->MarkerLines("j-3"), ElementsAre("cleanup.yml j-3"));

  // Following a job that did not complete exits 1; with --json still one document.
  const std::string url = cluster()->manager().rpc_url();
  const std::string id = accepted.value().job_id;
  CommandResult r = RunCommand("clustermgr", {"-u", url, "job", "get", id, "-f"});
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  EXPECT_THAT(r.out, EndsWith("--- job " + id + " Errored: " + done.job.error + " ---\n"));
  EXPECT_EQ(r.err, "clustermgr: job " + id + " Errored: " + done.job.error + "\n");
  r = RunCommand("clustermgr", {"-u", url, "job", "get", id, "-f", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  EXPECT_EQ(json::parse(r.out).value("status", ""), "Errored") << r.out;
}

TEST_F(JobsTest, DiscoverRunsTheConfigurePlaybookAndTheNodeComesIn) {
  const std::string addr = cluster()->NextAddr();
  auto accepted = rpc().Discover({addr}, R"({"show_groups": true})");
  ASSERT_TRUE(IsOk(accepted));
  ASSERT_OK_AND_ASSIGN(net::JobDetail done, cluster()->WaitForJobEnd(accepted.value().job_id));
  EXPECT_EQ(done.job.status, JobStatus::kComplete) << Describe(done);
  EXPECT_EQ(done.job.desc, "discover");
  EXPECT_THAT(done.job.nodes, ElementsAre(addr));
  // The configure playbook ran on host node1 of group cluster-node.
  EXPECT_THAT(cluster()->MarkerLines("node1"), ElementsAre("site.yml node1 cluster-node"));

  // The playbook would make the node join Serf; here a Serf agent for that address does.
  ASSERT_TRUE(IsOk(cluster()->AddMachine("j-new", "1", addr)));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo node, cluster()->WaitForNode("j-new-1", NodeIs::Discovered()));
  EXPECT_EQ(node.addr, addr);
  EXPECT_EQ(node.status, NodeStatus::kUnallocated);
  EXPECT_TRUE(IsRpcError(rpc().Discover({addr}, ""), Code::kFailedPrecondition,
                         "one or more nodes already exist with the specified management "
                         "addresses. Existing nodes: [j-new-1:" +
                             addr + "]"));
}

}  // namespace
}  // namespace clustermgr::test
