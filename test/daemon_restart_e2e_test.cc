// clustermgrd end to end: what survives a restart (SIGTERM or SIGKILL), what a crash during a
// job leaves behind, a second daemon on the same data dir, bad options, and a manager whose Serf
// agent goes away and comes back.
//
// Predecessor scenarios covered: restart keeps statuses; losing Serf on the manager host keeps it
// serving. And what it got wrong: globals, host-groups, remembered extra-vars, jobs and logs are
// kept too, and a job interrupted by a crash leaves no node stuck.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Every test here gets a fresh cluster: they restart and kill its daemon.
class RestartTest : public ::testing::Test {
 protected:
  void StartCluster(const std::string& label, int machines) {
    auto c = Cluster::Start();
    ASSERT_TRUE(IsOk(c));
    cluster_ = std::move(c).value();
    for (int i = 1; i <= machines; ++i) {
      ASSERT_TRUE(IsOk(cluster_->AddMachine(label, std::to_string(i))));
    }
    for (int i = 1; i <= machines; ++i) {
      ASSERT_TRUE(
          IsOk(cluster_->WaitForNode(label + "-" + std::to_string(i), NodeIs::Discovered())));
    }
  }
  void TearDown() override {
    if (HasFailure() && cluster_) std::cout << cluster_->Diagnostics() << std::flush;
    // A playbook a crashed daemon left behind would outlive the test otherwise.
    for (pid_t group : orphan_groups_) kill(-group, SIGKILL);
  }

  net::RpcClient& rpc() { return cluster_->rpc(); }

  net::JobDetail Finish(const clustermgr::Result<net::JobAccepted>& accepted) {
    if (!accepted.ok()) {
      ADD_FAILURE() << "request refused: " << accepted.status().message();
      return {};
    }
    auto done = cluster_->WaitForJobEnd(accepted.value().job_id);
    if (!done.ok()) {
      ADD_FAILURE() << done.status().message();
      return {};
    }
    return std::move(done).value();
  }

  // Waits until the daemon's playbook runs its `sleep` task; returns the playbook's process
  // group (remembered, so that TearDown kills it should it survive the daemon).
  pid_t WaitForSleepingPlaybook() {
    pid_t group = 0;
    Status s = Cluster::WaitUntil(
        "a playbook process group with a running sleep",
        [&](std::string*) {
          for (pid_t g : ChildProcessGroups(cluster_->manager().pid())) {
            for (const ProcInfo& p : ProcessGroupMembers(g)) {
              if (p.comm == "sleep") group = g;
            }
          }
          return group != 0;
        },
        30s);
    EXPECT_TRUE(IsOk(s));
    if (group != 0) orphan_groups_.push_back(group);
    return group;
  }

  // Everything a client can read, for before/after comparisons.
  struct Snapshot {
    std::vector<net::NodeInfo> nodes;
    json globals;
    json config;
    std::vector<net::JobInfo> jobs;
    std::vector<net::JobDetail> details;
  };
  Snapshot Read() {
    Snapshot s;
    auto nodes = rpc().NodesGet();
    EXPECT_TRUE(IsOk(nodes));
    if (nodes.ok()) s.nodes = nodes.value();
    auto globals = rpc().GlobalGet();
    EXPECT_TRUE(IsOk(globals));
    if (globals.ok()) s.globals = json::parse(globals.value());
    auto config = rpc().ConfigGet();
    EXPECT_TRUE(IsOk(config));
    if (config.ok()) s.config = json::parse(config.value());
    auto jobs = rpc().JobsList();
    EXPECT_TRUE(IsOk(jobs));
    if (jobs.ok()) s.jobs = jobs.value();
    for (const auto& j : s.jobs) {
      auto d = rpc().JobGet(j.id);
      EXPECT_TRUE(IsOk(d));
      if (d.ok()) s.details.push_back(d.value());
    }
    return s;
  }
  void ExpectSame(const Snapshot& a, const Snapshot& b) {
    EXPECT_EQ(a.nodes, b.nodes);
    EXPECT_EQ(a.globals, b.globals);
    EXPECT_EQ(a.config, b.config);
    EXPECT_EQ(a.jobs, b.jobs);
    EXPECT_EQ(a.details, b.details);
  }

  std::unique_ptr<Cluster> cluster_;
  std::vector<pid_t> orphan_groups_;
};

TEST_F(RestartTest, RestartKeepsStatusesGlobalsGroupsVarsConfigAndJobsWithLogs) {
  StartCluster("r", 3);
  net::JobDetail job = Finish(rpc().Commission({"r-1"}, "service-master", R"({"site": "a"})"));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  job = Finish(rpc().Commission({"r-2"}, "service-worker", R"({"job_id": "remembered"})"));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  ASSERT_TRUE(IsOk(rpc().GlobalSet(R"({"ntp": "pool.ntp.org", "n": [1, 2]})")));
  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {"upgrade_playbook": "site.yml"}})")));

  const Snapshot before = Read();
  ASSERT_EQ(before.jobs.size(), 2u);
  EXPECT_FALSE(before.details[0].log_lines.empty());
  ASSERT_EQ(before.nodes.size(), 3u);
  EXPECT_EQ(before.nodes[0].status, NodeStatus::kAllocated);
  EXPECT_THAT(before.nodes[1].host_groups, ElementsAre("service-worker"));

  ASSERT_TRUE(IsOk(cluster_->manager().Restart(SIGTERM)));
  {
    SCOPED_TRACE("after SIGTERM");
    ExpectSame(before, Read());
  }
  ASSERT_TRUE(IsOk(cluster_->manager().Restart(SIGKILL)));
  {
    SCOPED_TRACE("after SIGKILL");
    ExpectSame(before, Read());
  }

  // Serf events still reach the restarted daemon.
  ASSERT_TRUE(cluster_->machine("r-3")->serf().Leave().ok());
  ASSERT_TRUE(IsOk(cluster_->WaitForNode("r-3", NodeIs::Disappeared())));

  // The remembered extra-vars reach the next run: the marker's job_id comes from them.
  job = Finish(rpc().Update({"r-2"}, "", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_THAT(cluster_->MarkerLines("r-2"),
              ElementsAre("site.yml r-2 remembered", "cleanup.yml r-2 remembered",
                          "site.yml r-2 remembered"));
  // Job ids continue after the restart.
  EXPECT_EQ(job.job.id, "manager-1-3");
}

TEST_F(RestartTest, SigkillDuringAJobLeavesNoNodeStuck) {
  StartCluster("k", 2);
  net::JobDetail job = Finish(rpc().Commission({"k-2"}, "service-master", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);

  // A commission killed mid-playbook: Provisioning -> Unallocated.
  auto accepted = rpc().Commission({"k-1"}, "service-worker", R"({"slow": 300})");
  ASSERT_TRUE(IsOk(accepted));
  const std::string commission = accepted.value().job_id;
  // The line is in the store once a follower sees it (lines are written every 100 ms; the ones
  // not written yet die with the daemon).
  ASSERT_TRUE(IsOk(cluster_->WaitForLogLine(commission, "TASK [slow]")));
  const pid_t group = WaitForSleepingPlaybook();
  ASSERT_GT(group, 0);
  ASSERT_TRUE(IsOk(cluster_->manager().Restart(SIGKILL)));

  ASSERT_OK_AND_ASSIGN(net::JobDetail interrupted, rpc().JobGet(commission));
  EXPECT_EQ(interrupted.job.status, JobStatus::kInterrupted) << Describe(interrupted);
  EXPECT_EQ(interrupted.job.error,
            "interrupted: the instance running it stopped or lost the side-effect token");
  EXPECT_GT(interrupted.job.ended_ms, 0);
  EXPECT_THAT(interrupted.log_lines, ::testing::Contains(HasSubstr("TASK [slow]")));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo k1, rpc().NodeGet("k-1"));
  EXPECT_EQ(k1.status, NodeStatus::kUnallocated);
  EXPECT_EQ(k1.prev_status, NodeStatus::kProvisioning);
  EXPECT_TRUE(
      IsRpcError(rpc().JobGet("active"), Code::kNotFound, "info for \"active\" job doesn't exist"));
  // The crashed daemon's playbook does not run on: ansible-playbook dies with its parent
  // (PR_SET_PDEATHSIG) and its workers and tasks with it.
  EXPECT_TRUE(IsOk(Cluster::WaitUntil(
      "the crashed daemon's playbook process group to be gone",
      [&](std::string* last) {
        *last = "group " + std::to_string(group) + ": ";
        auto left = ProcessGroupMembers(group);
        for (const auto& p : left) {
          *last += p.comm + "(" + std::to_string(p.pid) + " ppid " + std::to_string(p.ppid) + ") ";
        }
        return left.empty();
      },
      15s)));

  // A decommission killed mid-playbook: Cancelled -> Decommissioned.
  accepted = rpc().Decommission({"k-2"}, R"({"slow": 300})");
  ASSERT_TRUE(IsOk(accepted));
  const std::string decommission = accepted.value().job_id;
  ASSERT_GT(WaitForSleepingPlaybook(), 0);
  ASSERT_TRUE(IsOk(cluster_->manager().Restart(SIGKILL)));
  ASSERT_OK_AND_ASSIGN(interrupted, rpc().JobGet(decommission));
  EXPECT_EQ(interrupted.job.status, JobStatus::kInterrupted) << Describe(interrupted);
  ASSERT_OK_AND_ASSIGN(net::NodeInfo k2, rpc().NodeGet("k-2"));
  EXPECT_EQ(k2.status, NodeStatus::kDecommissioned);
  EXPECT_EQ(k2.prev_status, NodeStatus::kCancelled);

  // Nothing is stuck: the next job runs.
  job = Finish(rpc().Commission({"k-1"}, "service-master", R"({"slow": 0})"));
  EXPECT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(rpc().NodeGet("k-1").value().status, NodeStatus::kAllocated);

  // A graceful stop during an update: the daemon cancels the playbook and exits 0 at once; the
  // job is Interrupted on restart and the node goes Maintenance -> Unallocated.
  accepted = rpc().Update({"k-1"}, "", R"({"slow": 300})");
  ASSERT_TRUE(IsOk(accepted));
  const pid_t update_group = WaitForSleepingPlaybook();
  ASSERT_GT(update_group, 0);
  const auto stop_started = std::chrono::steady_clock::now();
  ASSERT_TRUE(IsOk(cluster_->manager().Restart(SIGTERM)));
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, 15s);
  EXPECT_TRUE(ProcessGroupMembers(update_group).empty());
  ASSERT_OK_AND_ASSIGN(interrupted, rpc().JobGet(accepted.value().job_id));
  EXPECT_EQ(interrupted.job.status, JobStatus::kInterrupted) << Describe(interrupted);
  ASSERT_OK_AND_ASSIGN(net::NodeInfo k1_after, rpc().NodeGet("k-1"));
  EXPECT_EQ(k1_after.status, NodeStatus::kUnallocated);
  EXPECT_EQ(k1_after.prev_status, NodeStatus::kMaintenance);
}

TEST_F(RestartTest, SecondDaemonOnTheSameDataDirIsRefused) {
  StartCluster("x", 0);
  ManagerInstance& m = cluster_->manager();
  std::vector<std::string> argv = m.CommandLine();
  for (auto& a : argv) {
    if (a.rfind("--rpc-bind=", 0) == 0) {
      a = "--rpc-bind=tcp://127.0.0.1:" + std::to_string(FreeLoopbackPort());
    }
  }
  CommandResult r = RunCommand(argv[0], {argv.begin() + 1, argv.end()}, 30s, m.Environment());
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  EXPECT_THAT(r.err, StartsWith("clustermgrd: "));
  EXPECT_THAT(r.err, HasSubstr(m.data_dir()));
  EXPECT_THAT(r.err, HasSubstr("in use"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");
  // The first one is unaffected.
  EXPECT_TRUE(IsOk(rpc().Status()));
  EXPECT_TRUE(m.Running());
}

TEST(DaemonOptionsTest, BadOptionsExitTwoWithOneLine) {
  const std::string dir = MakeTempDir("clustermgr-options");
  struct Case {
    std::vector<std::string> args;
    std::string err;  // exact; empty: only its shape is checked
  };
  const std::string data = "--data-dir=" + dir + "/data";
  const std::vector<Case> cases = {
      {{"--bogus"}, ""},
      {{"--expect"}, ""},
      {{data, "--expect=zero"}, ""},
      {{}, "clustermgrd: --data-dir is required\n"},
      {{data, "--expect=0"}, "clustermgrd: --expect must be at least 1\n"},
      {{data, "--extra-vars=[1]"}, "clustermgrd: --extra-vars must be a JSON object: [1]\n"},
      {{data, "--rpc-bind=127.0.0.1:9"},
       "clustermgrd: --rpc-bind: not a ZeroMQ endpoint: 127.0.0.1:9\n"},
      {{data, "--log-level=loud"}, "clustermgrd: --log-level must be debug, info, warn or error\n"},
  };
  for (const Case& c : cases) {
    CommandResult r = RunCommand("clustermgrd", c.args, 30s);
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << r.ToString();
    EXPECT_EQ(r.out, "") << joined;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << joined << r.err;
    EXPECT_THAT(r.err, StartsWith("clustermgrd: ")) << joined;
    if (!c.err.empty()) {
      EXPECT_EQ(r.err, c.err) << joined;
    }
  }
  // Nothing was created for options that were refused.
  EXPECT_FALSE(std::filesystem::exists(dir + "/data"));

  CommandResult help = RunCommand("clustermgrd", {"--help"}, 30s);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, StartsWith("usage: clustermgrd [options]"));
  RemoveTree(dir);
}

TEST_F(RestartTest, LosingSerfOnTheManagerHostKeepsItServing) {
  StartCluster("s", 2);
  SerfAgent& serf = cluster_->manager().serf();
  serf.Kill();

  // Reads and writes, side effects included, go on without Serf.
  ASSERT_TRUE(IsOk(rpc().Status()));
  ASSERT_OK_AND_ASSIGN(std::vector<net::NodeInfo> nodes, rpc().NodesGet());
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].state, NodeState::kDiscovered);
  ASSERT_TRUE(IsOk(rpc().GlobalSet(R"({"during": "outage"})")));
  ASSERT_OK_AND_ASSIGN(std::string globals, rpc().GlobalGet());
  EXPECT_EQ(json::parse(globals), json({{"during", "outage"}}));
  net::JobDetail job = Finish(rpc().Commission({"s-1"}, "service-master", ""));
  EXPECT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);

  // The daemon also starts without its agent.
  ASSERT_TRUE(IsOk(cluster_->manager().Restart(SIGTERM)));
  ASSERT_OK_AND_ASSIGN(nodes, rpc().NodesGet());
  EXPECT_EQ(nodes.size(), 2u);

  // s-2 leaves while nobody is listening on the manager host.
  ASSERT_TRUE(cluster_->machine("s-2")->serf().Leave().ok());
  EXPECT_EQ(rpc().NodeGet("s-2").value().state, NodeState::kDiscovered);

  // The agent comes back (joining the remaining machine): the daemon reconnects, catches up
  // with what it missed, and events flow again.
  std::string error;
  ASSERT_TRUE(serf.Restart(
      &error, std::vector<std::string>{cluster_->machine("s-1")->serf().bind_address()}))
      << error;
  ASSERT_TRUE(IsOk(cluster_->WaitForNode("s-2", NodeIs::Disappeared())));
  EXPECT_EQ(rpc().NodeGet("s-1").value().state, NodeState::kDiscovered);
  ASSERT_TRUE(IsOk(cluster_->AddMachine("s", "3")));
  ASSERT_TRUE(IsOk(cluster_->WaitForNode("s-3", NodeIs::Discovered())));
  ASSERT_TRUE(cluster_->machine("s-1")->serf().Leave().ok());
  ASSERT_OK_AND_ASSIGN(net::NodeInfo s1, cluster_->WaitForNode("s-1", NodeIs::Disappeared()));
  EXPECT_EQ(s1.status, NodeStatus::kAllocated);
}

}  // namespace
}  // namespace clustermgr::test
