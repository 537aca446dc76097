// The Cluster harness itself (test/support/cluster.h), so that suites with several daemons can
// rely on it: N instances each with their own agent, ports, data dir and client; restarts on the
// same ports; RunCommand; marker reading.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ClusterHarnessTest, ThreeInstancesWithTheirOwnAgentsPortsDirsAndClients) {
  ClusterOptions options;
  options.managers = 3;
  auto started = Cluster::Start(options);
  ASSERT_TRUE(IsOk(started));
  Cluster& c = *started.value();
  ASSERT_EQ(c.size(), 3u);

  std::set<std::string> urls, dirs;
  for (std::size_t i = 0; i < c.size(); ++i) {
    ManagerInstance& m = c.manager(i);
    EXPECT_EQ(m.name(), "manager-" + std::to_string(i + 1));
    urls.insert(m.rpc_url());
    dirs.insert(m.data_dir());
    ASSERT_OK_AND_ASSIGN(net::StatusInfo status, c.rpc(i).Status());
    EXPECT_EQ(status.name, m.name());
    EXPECT_EQ(status.data_dir, m.data_dir());
    // Every manager agent sees the other two.
    EXPECT_TRUE(m.serf().WaitForAliveMembers(3, 15s)) << m.name();
    // --expect 3: nobody holds the token alone.
    ASSERT_OK_AND_ASSIGN(net::TokenInfo token, c.rpc(i).Token());
    EXPECT_FALSE(token.self_holds);
    EXPECT_EQ(token.expected_managers, 3u);
  }
  EXPECT_EQ(urls.size(), 3u);
  EXPECT_EQ(dirs.size(), 3u);

  // A machine joins every instance's agent (by default), or the one it is told to.
  ASSERT_OK_AND_ASSIGN(Machine * m, c.AddMachine("h", "1"));
  EXPECT_EQ(m->name(), "h-1");
  EXPECT_EQ(m->addr(), "127.0.0.2");
  for (std::size_t i = 0; i < c.size(); ++i) {
    EXPECT_TRUE(c.manager(i).serf().WaitForMemberStatus("machine-h-1", "alive", 5s)) << i;
  }
  ASSERT_OK_AND_ASSIGN(Machine * m2, c.AddMachine("h", "2", "127.0.0.42", 2));
  EXPECT_EQ(m2->addr(), "127.0.0.42");
  EXPECT_TRUE(c.manager(2).serf().WaitForMemberStatus("machine-h-2", "alive", 5s));
  EXPECT_EQ(c.NextAddr(), "127.0.0.3");
  EXPECT_EQ(c.machine("h-1"), m);
  EXPECT_EQ(c.machine("nope"), nullptr);

  // Restarts keep the ports and the data dir; the client reconnects.
  const std::string url = c.manager(1).rpc_url();
  ASSERT_TRUE(IsOk(c.rpc(1).GlobalSet(R"({"kept": true})")));
  ASSERT_TRUE(IsOk(c.manager(1).Restart(SIGKILL)));
  EXPECT_EQ(c.manager(1).rpc_url(), url);
  ASSERT_OK_AND_ASSIGN(std::string globals, c.rpc(1).GlobalGet());
  EXPECT_EQ(globals, R"({"kept":true})");
  ASSERT_TRUE(IsOk(c.manager(1).Restart(SIGTERM)));
  EXPECT_EQ(c.manager(1).last_exit_status(), 0);
  EXPECT_THAT(c.manager(1).Log(), HasSubstr("stopping"));

  // Stopped, the instance refuses a restart; Start brings it back.
  c.manager(2).Stop();
  EXPECT_FALSE(c.manager(2).Running());
  EXPECT_FALSE(c.manager(2).Restart().ok());
  ASSERT_TRUE(IsOk(c.manager(2).Start()));
  EXPECT_TRUE(IsOk(c.rpc(2).Status()));

  EXPECT_THAT(c.Diagnostics(), HasSubstr("---- clustermgrd manager-3"));
}

TEST(ClusterHarnessTest, StartFailureCarriesTheDaemonsWords) {
  ClusterOptions options;
  options.daemon_args = {"--host-groups=,"};
  auto started = Cluster::Start(options);
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(started.status().message(), HasSubstr("exited with 2 during start"));
  EXPECT_THAT(started.status().message(),
              HasSubstr("--host-groups must name at least the master group"));
}

TEST(ClusterHarnessTest, MarkersAreReadPerNodeAndCountedPerPlaybook) {
  auto started = Cluster::Start();
  ASSERT_TRUE(IsOk(started));
  Cluster& c = *started.value();
  std::ofstream(c.marker_dir() + "/n-1.log")
      << "site.yml n-1\ncleanup.yml n-1 job-7 3\nsite.yml n-1 x\nsite.yml n-10\n";
  EXPECT_THAT(c.MarkerLines("n-1"), ElementsAre("site.yml n-1", "cleanup.yml n-1 job-7 3",
                                                "site.yml n-1 x", "site.yml n-10"));
  EXPECT_EQ(c.CountRuns("n-1", "site.yml"), 2);
  EXPECT_EQ(c.CountRuns("n-1", "cleanup.yml"), 1);
  EXPECT_TRUE(c.MarkerLines("n-2").empty());
  EXPECT_EQ(c.extra_vars()["marker_dir"], c.marker_dir());
  EXPECT_EQ(c.extra_vars()["ansible_connection"], "local");
}

TEST(ClusterHarnessTest, RunCommandSeparatesOutputsAndKillsOnTimeout) {
  CommandResult r = RunCommand("/bin/sh", {"-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);

  r = RunCommand("/bin/sh", {"-c", "echo $CLUSTER_HARNESS_VAR"}, 10s,
                 {{"CLUSTER_HARNESS_VAR", "set"}});
  EXPECT_EQ(r.out, "set\n");

  const auto t0 = std::chrono::steady_clock::now();
  r = RunCommand("/bin/sh", {"-c", "sleep 30 & wait"}, 300ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);

  r = RunCommand("clustermgr", {"--version"});  // a bare name is taken from the bin dir
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_THAT(r.out, HasSubstr("clustermgr"));
}

}  // namespace
}  // namespace clustermgr::test
