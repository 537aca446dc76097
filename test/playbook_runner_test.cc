// PlaybookRun with the real ansible-playbook and the test playbooks in test/playbooks/ (local
// connection, no ssh). Each test works in its own temp dir, with HOME pointed there too, so
// nothing of a run lands in the real ~/.ansible.

#include "mgr/ansible/playbook_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/testing/temp_dir.h"
#include "mgr/ansible/extra_vars.h"
#include "mgr/testing/line_log_test_util.h"

namespace clustermgr::mgr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kPlaybookDir = std::string(CLUSTERMGR_SOURCE_DIR) + "/test/playbooks";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Proc {
  int pid;
  std::string comm;
};

// Live (non-zombie) processes of a process group.
std::vector<Proc> LiveGroupMembers(int pgid) {
  std::vector<Proc> procs;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(entry.path().string() + "/stat");
    std::size_t open = stat.find('(');
    std::size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    int ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') {
      procs.push_back({std::stoi(name), stat.substr(open + 1, close - open - 1)});
    }
  }
  return procs;
}

class PlaybookRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    markers_ = tmp_.path() + "/markers";
    runs_ = tmp_.path() + "/runs";
    home_ = tmp_.path() + "/home";
    fs::create_directories(runs_);
    fs::create_directories(home_);
  }

  PlaybookSpec Spec(const std::string& playbook, json extra = json::object()) {
    PlaybookSpec spec;
    spec.playbook_dir = kPlaybookDir;
    spec.playbook = playbook;
    spec.hosts = {{"node1", "127.0.0.1", {"service-master"}},
                  {"node2", "127.0.0.2", {"service-worker"}}};
    if (!extra.contains("marker_dir")) extra["marker_dir"] = markers_;
    // The test playbooks apply the fencing role, which needs the run's epoch.
    if (!extra.contains("clustermgr_epoch")) extra["clustermgr_epoch"] = 1;
    spec.roles_path = std::string(CLUSTERMGR_SOURCE_DIR) + "/demo/playbooks/roles";
    spec.extra_vars = extra;
    spec.temp_parent = runs_;
    spec.env = {{"HOME", home_}};
    spec.kill_grace = std::chrono::seconds(3);
    return spec;
  }

  std::string Marker(const std::string& node) { return ReadFile(markers_ + "/" + node + ".log"); }
  bool RunsDirEmpty() { return fs::is_empty(runs_); }

  TempDir tmp_{"playbook-runner-test"};
  std::string markers_, runs_, home_;
};

TEST_F(PlaybookRunnerTest, SiteRunWritesMarkersAndStreamsLines) {
  LineLog log;
  PlaybookRun run(Spec("site.yml", {{"job_id", "job-1"}, {"epoch", 7}}));
  auto t0 = std::chrono::steady_clock::now();
  PlaybookResult r = run.Run(log.callback());
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf("[ timing   ] site.yml on 2 local hosts took %lld ms\n", static_cast<long long>(ms));
  RecordProperty("site_run_ms", static_cast<int>(ms));

  ASSERT_TRUE(r.ok()) << r.error << "\n" << log.text();
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(Marker("node1"), "site.yml node1 job-1 7\n");
  EXPECT_EQ(Marker("node2"), "site.yml node2 job-1 7\n");
  std::vector<std::string> lines = log.lines();
  EXPECT_THAT(lines, Contains(StartsWith("PLAY [site]")));
  EXPECT_THAT(lines, Contains(StartsWith("TASK [record run]")));
  EXPECT_THAT(lines, Contains(StartsWith("PLAY RECAP")));
  EXPECT_THAT(lines, Contains(StartsWith("node1 ")));
  // The inventory's group names are intended; ansible must not warn about them (or anything).
  EXPECT_THAT(log.text(), ::testing::Not(HasSubstr("WARNING")));
  EXPECT_TRUE(RunsDirEmpty());
}

TEST_F(PlaybookRunnerTest, EveryTestPlaybookRecordsItsRun) {
  for (const std::string pb : {"cleanup.yml", "rolling-upgrade.yml", "site.yml"}) {
    LineLog log;
    PlaybookRun run(Spec(pb));
    PlaybookResult r = run.Run(log.callback());
    ASSERT_TRUE(r.ok()) << pb << ": " << r.error << "\n" << log.text();
  }
  EXPECT_EQ(Marker("node1"), "cleanup.yml node1\nrolling-upgrade.yml node1\nsite.yml node1\n");
  EXPECT_EQ(Marker("node2"), "cleanup.yml node2\nrolling-upgrade.yml node2\nsite.yml node2\n");
}

TEST_F(PlaybookRunnerTest, FailingPlaybooksGiveANonZeroResult) {
  struct Case {
    std::string playbook;
    json vars;
  };
  for (const Case& c : std::vector<Case>{{"site.yml", {{"fail_configure", true}}},
                                         {"cleanup.yml", {{"fail_cleanup", true}}},
                                         {"rolling-upgrade.yml", {{"fail_upgrade", true}}},
                                         {"fail.yml", json::object()}}) {
    LineLog log;
    PlaybookRun run(Spec(c.playbook, c.vars));
    PlaybookResult r = run.Run(log.callback());
    EXPECT_EQ(r.outcome, PlaybookOutcome::kFailed) << c.playbook << "\n" << log.text();
    EXPECT_EQ(r.exit_code, 2) << c.playbook;
    EXPECT_EQ(r.error, "ansible-playbook exited with status 2 (one or more hosts failed)");
    EXPECT_THAT(log.text(), HasSubstr(c.playbook + " failed on node1 as requested"));
  }
  // Each still recorded that it ran.
  EXPECT_EQ(Marker("node1"),
            "site.yml node1\ncleanup.yml node1\nrolling-upgrade.yml node1\n"
            "fail.yml node1\n");
}

TEST_F(PlaybookRunnerTest, FailNodesFailsOnlyThoseNodes) {
  LineLog log;
  PlaybookRun run(Spec("site.yml", {{"fail_nodes", {"node2"}}}));
  PlaybookResult r = run.Run(log.callback());
  EXPECT_EQ(r.outcome, PlaybookOutcome::kFailed);
  EXPECT_THAT(log.text(), HasSubstr("site.yml failed on node2 as requested"));
  EXPECT_THAT(log.text(), ::testing::Not(HasSubstr("failed on node1")));
}

TEST_F(PlaybookRunnerTest, MissingPlaybookErrorsWithALogLine) {
  LineLog log;
  PlaybookRun run(Spec("no-such-playbook.yml"));
  PlaybookResult r = run.Run(log.callback());
  EXPECT_EQ(r.outcome, PlaybookOutcome::kSetupFailed);
  EXPECT_FALSE(r.ok());
  const std::string error = "playbook \"no-such-playbook.yml\" not found in \"" +
                            fs::canonical(kPlaybookDir).string() + "\"";
  EXPECT_EQ(r.error, error);
  EXPECT_EQ(log.lines(), std::vector<std::string>{"clustermgr: " + error});
  EXPECT_FALSE(fs::exists(markers_));
}

TEST_F(PlaybookRunnerTest, MergedExtraVarsReachThePlaybook) {
  json config = {{"job_id", "from-config"}, {"epoch", 1}, {"marker_dir", "/nonexistent"}};
  json globals = {{"job_id", "from-globals"}, {"epoch", 3}};
  json node = {{"job_id", "from-node"}};
  json request = {{"job_id", "from-request"}, {"epoch", nullptr}, {"marker_dir", markers_}};
  ExtraVarsParse parsed = ParseExtraVars(request.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.error;
  PlaybookSpec spec = Spec("site.yml");
  spec.extra_vars = MergeExtraVars(config, globals, node, parsed.vars);
  spec.extra_vars["clustermgr_epoch"] = 1;  // set after the merge, as clustermgrd does
  LineLog log;
  PlaybookRun run(spec);
  PlaybookResult r = run.Run(log.callback());
  ASSERT_TRUE(r.ok()) << r.error << "\n" << log.text();
  // job_id from the request, epoch from globals (the request's null does not override).
  EXPECT_EQ(Marker("node1"), "site.yml node1 from-request 3\n");
}

TEST_F(PlaybookRunnerTest, CancelOfASlowRunKillsTheWholeProcessGroup) {
  LineLog log;
  PlaybookRun run(Spec("site.yml", {{"slow", 600}}));
  PlaybookResult r;
  std::thread runner([&] { r = run.Run(log.callback()); });

  // Wait until the slow task's `sleep` (a grandchild of ansible-playbook) is running.
  ASSERT_TRUE(log.WaitFor("TASK [slow]", std::chrono::seconds(60))) << log.text();
  int pgid = run.pid();
  ASSERT_GT(pgid, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool sleeping = false;
  while (!sleeping && std::chrono::steady_clock::now() < deadline) {
    for (const Proc& p : LiveGroupMembers(pgid)) sleeping |= p.comm == "sleep";
    if (!sleeping) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling /proc
  }
  ASSERT_TRUE(sleeping) << "no sleep process in group " << pgid;
  EXPECT_GE(LiveGroupMembers(pgid).size(), 3u);  // ansible-playbook, its workers, modules

  auto t0 = std::chrono::steady_clock::now();
  run.Cancel();
  runner.join();
  auto took = std::chrono::steady_clock::now() - t0;

  EXPECT_EQ(r.outcome, PlaybookOutcome::kCancelled);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.error, "cancelled");
  EXPECT_EQ(r.pid, pgid);
  EXPECT_LT(took, std::chrono::seconds(10));
  std::vector<Proc> left = LiveGroupMembers(pgid);
  for (const Proc& p : left) ADD_FAILURE() << "left alive: " << p.pid << " " << p.comm;
  for (const Proc& p : left) ::kill(p.pid, SIGKILL);
  EXPECT_TRUE(RunsDirEmpty());
  // It recorded its start, and did not get past the slow task.
  EXPECT_EQ(Marker("node1"), "site.yml node1\n");
  EXPECT_THAT(log.text(), ::testing::Not(HasSubstr("PLAY RECAP")));
}

TEST_F(PlaybookRunnerTest, TwoRunsInParallelDoNotInterfere) {
  const std::string other_markers = tmp_.path() + "/markers-b";
  PlaybookSpec a = Spec("site.yml", {{"job_id", "a"}});
  PlaybookSpec b = Spec("cleanup.yml", {{"job_id", "b"}, {"marker_dir", other_markers}});
  b.hosts = {{"node1", "127.0.0.1", {"cluster-node"}}, {"node3", "127.0.0.3", {"cluster-node"}}};
  LineLog log_a, log_b;
  PlaybookRun run_a(a), run_b(b);
  PlaybookResult ra, rb;
  std::thread ta([&] { ra = run_a.Run(log_a.callback()); });
  std::thread tb([&] { rb = run_b.Run(log_b.callback()); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra.ok()) << ra.error << "\n" << log_a.text();
  ASSERT_TRUE(rb.ok()) << rb.error << "\n" << log_b.text();
  EXPECT_EQ(Marker("node1"), "site.yml node1 a\n");
  EXPECT_EQ(Marker("node2"), "site.yml node2 a\n");
  EXPECT_FALSE(fs::exists(markers_ + "/node3.log"));
  EXPECT_EQ(ReadFile(other_markers + "/node1.log"), "cleanup.yml node1 b\n");
  EXPECT_EQ(ReadFile(other_markers + "/node3.log"), "cleanup.yml node3 b\n");
  EXPECT_THAT(log_a.text(), ::testing::Not(HasSubstr("node3")));
  EXPECT_THAT(log_b.text(), ::testing::Not(HasSubstr("node2")));
  EXPECT_TRUE(RunsDirEmpty());
}

}  // namespace
}  // namespace clustermgr::mgr
