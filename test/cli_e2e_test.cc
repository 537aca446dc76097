// The operator's tools end to end, through the real programs: `clustermgr --wait` following a
// real commission (ansible-playbook with a local connection), failover past an endpoint that is
// down, clusterctl's aliases and host:port endpoints, per-command help, the exit statuses, the
// daemon's --expect rule and log formats, and one version for every program.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clustermgr_version.h"
#include "net/testing/fake_rpc_handler.h"
#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using net::NodeStatus;
using nlohmann::json;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class CliEndToEndTest : public ClusterTest<CliEndToEndTest> {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions options;
    options.daemon_args = {"--log-format=json"};
    StartSharedCluster(options, [](Cluster& c) {
      return c.AddDiscoveredMachines("ox", {"1", "2"});
    });
  }

  std::string url() { return cluster()->manager().rpc_url(); }
};

TEST_F(CliEndToEndTest, WaitFollowsARealCommissionAndExitsWithItsOutcome) {
  CommandResult r = RunCommand(
      "clustermgr", {"node", "commission", "ox-1", "-g", "service-master", "--wait", "-u", url()},
      std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  // Not a terminal: one plain line per host and task, then the outcome.
  EXPECT_THAT(r.out, StartsWith("job "));
  EXPECT_THAT(r.out, HasSubstr("\nox-1: "));
  EXPECT_THAT(r.out, EndsWith(" Complete ---\n"));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo node, cluster()->rpc().NodeGet("ox-1"));
  EXPECT_EQ(node.status, NodeStatus::kAllocated);
  EXPECT_EQ(cluster()->CountRuns("ox-1", "site.yml"), 1);

  // A job the daemon refuses to start: exit 1 at once. One that fails: exit 1 after it ends.
  r = RunCommand("clustermgr",
                 {"a", "c", "ox-1", "--host-group", "service-master", "-w", "-u", url()});
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  ASSERT_TRUE(
      IsOk(cluster()->rpc().ConfigSet(R"({"ansible": {"configure_playbook": "no-such.yml"}})")));
  r = RunCommand("clustermgr",
                 {"n", "c", "ox-2", "-g", "service-worker", "--wait", "--json", "-u", url()},
                 std::chrono::seconds(120));
  ASSERT_TRUE(IsOk(cluster()->rpc().ConfigSet(R"({"ansible": {}})")));
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  EXPECT_EQ(json::parse(r.out).value("status", ""), "Errored") << r.out;
}

TEST_F(CliEndToEndTest, FailsOverPastAnEndpointThatIsDown) {
  net::DeadEndpoint down;
  const std::string host_port = url().substr(std::string("tcp://").size());
  CommandResult r = RunCommand("clustermgr", {"-u", down.endpoint() + "," + host_port, "--json",
                                              "node", "get", "ox-2", "--timeout", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  json doc = json::parse(r.out);
  EXPECT_EQ(doc.value("name", ""), "ox-2");
  EXPECT_EQ(doc.value("endpoint", ""), url());
  EXPECT_THAT(r.err, HasSubstr("answered by " + url()));

  // From the environment; and nothing reachable at all exits 3.
  r = RunCommand("clustermgr", {"a", "g", "--timeout", "3"}, std::chrono::seconds(60),
                 {{"CLUSTERMGR_URL", down.endpoint() + "," + url()}});
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  r = RunCommand("clustermgr", {"status", "-u", down.endpoint(), "--timeout", "0.5"});
  EXPECT_EQ(r.exit_code, 3) << r.ToString();
}

TEST_F(CliEndToEndTest, HelpPerCommandAndUsageErrors) {
  CommandResult r = RunCommand("clustermgr", {"node", "commission", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_THAT(r.out, StartsWith("usage: clustermgr node commission NAME -g GROUP"));
  EXPECT_THAT(r.out, HasSubstr("example:"));
  EXPECT_THAT(r.out, HasSubstr("4 outcome unknown"));
  r = RunCommand("clustermgr", {"node", "commission", "ox-1", "--frob"});
  EXPECT_EQ(r.exit_code, 2) << r.ToString();
  r = RunCommand("clustermgrd", {"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_THAT(r.out, HasSubstr("--data-dir DIR"));
  EXPECT_THAT(r.out, HasSubstr("Security:"));
}

TEST_F(CliEndToEndTest, DaemonLogsJsonLinesAndTokenHasNoWarningWhenExpectCountsRight) {
  // This suite's daemon runs with --log-format=json: every line one object.
  const std::string log = cluster()->manager().Log();
  ASSERT_FALSE(log.empty());
  std::size_t lines = 0;
  for (std::size_t start = 0; start < log.size();) {
    const std::size_t end = log.find('\n', start);
    const std::string line = log.substr(start, end - start);
    start = end == std::string::npos ? log.size() : end + 1;
    if (line.empty() || line[0] != '{') continue;  // the harness's own lines, if any
    json j = json::parse(line);
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("message")) << line;
    ++lines;
  }
  EXPECT_GT(lines, 0u);
  // One instance counted by --expect 1 and alone: no warning.
  CommandResult r = RunCommand("clustermgr", {"token", "-u", url()});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("WARNING")));
}

// Two managers, each told --expect 1: each could hold a quorum alone. The daemons say so in
// their logs, and `token` and `status` say so to the operator.
TEST(DaemonExpectTest, MoreManagersThanExpectCountsAreWarnedAbout) {
  ClusterOptions options;
  options.managers = 2;
  options.daemon_args = {"--expect=1"};
  auto started = Cluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Cluster& cluster = **started;
  const std::string warning = "WARNING: 2 manager instances are visible but --expect is 1";
  ASSERT_TRUE(IsOk(Cluster::WaitUntil(
      "the undercount warning in the log",
      [&](std::string*) { return cluster.manager(0).Log().find(warning) != std::string::npos; },
      std::chrono::seconds(30))))
      << cluster.Diagnostics();
  const std::string url = cluster.manager(0).rpc_url();
  CommandResult r = RunCommand("clustermgr", {"token", "-u", url});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_THAT(r.out, HasSubstr("WARNING: 2 manager instances are visible but --expect counts 1"));
  r = RunCommand("clustermgr", {"status", "--json", "-u", url});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_THAT(json::parse(r.out).value("warning", ""), HasSubstr("--expect 2"));
}

TEST(DaemonExpectTest, PeersWithoutExpectAreRefused) {
  CommandResult r = RunCommand("clustermgrd", {"--insecure", "--name=x", "--data-dir=/nonexistent",
                                               "--peer=tcp://127.0.0.1:9"});
  EXPECT_EQ(r.exit_code, 2) << r.ToString();
  EXPECT_THAT(r.err, StartsWith("clustermgrd: --peer given without --expect"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(FaultSuiteHelpTest, ListsEveryFaultKind) {
  CommandResult r = RunCommand("fault-suite", {"--help"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  for (const char* kind : {"kill", "wipe", "isolate", "serf-restart", "loss", "delay"}) {
    EXPECT_THAT(r.out, HasSubstr("\n  " + std::string(kind) + " ")) << kind;
  }
  EXPECT_EQ(RunCommand("fault-suite", {"--schedules"}).exit_code, 2);
}

TEST(VersionTest, EveryProgramReportsTheOneVersion) {
  for (const char* program : {"clustermgrd", "clustermgr", "state-inspect", "serf-events"}) {
    CommandResult r = RunCommand(program, {"--version"});
    EXPECT_EQ(r.exit_code, 0) << program << r.ToString();
    EXPECT_THAT(r.out, StartsWith(std::string(program) + " " CLUSTERMGR_VERSION)) << r.out;
  }
}

}  // namespace
}  // namespace clustermgr::test
