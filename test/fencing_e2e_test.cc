// Fencing at the node, end to end: the shipped clustermgr_fence role (demo/playbooks/roles) run
// by the real ansible-playbook with a local connection, through the JobExecutor and through
// clustermgrd.
//
// Each local "host" keeps its fencing state in <markers>/fence/<host>/ (the test playbooks set
// clustermgr_fence_state_dir so): `epoch` (the highest epoch seen), `lock` and `history` (one line
// per check, "<time> applied|fenced epoch=E seen=S job=J").
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mgr/ansible/job_executor.h"
#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mgr::InventoryHost;
using mgr::JobEvent;
using mgr::JobExecutor;
using mgr::JobScript;
using mgr::PlaybookSpec;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// One history line of the role: "<time> applied|fenced epoch=E seen=S job=J".
struct Check {
  std::string what;
  uint64_t epoch = 0, seen = 0;
  std::string job;
};

std::vector<Check> History(const std::string& state_dir) {
  std::vector<Check> out;
  for (const std::string& line : Lines(ReadText(state_dir + "/history"))) {
    std::istringstream in(line);
    std::string time, epoch, seen, job;
    Check c;
    in >> time >> c.what >> epoch >> seen >> job;
    c.epoch = std::stoull(epoch.substr(epoch.find('=') + 1));
    c.seen = std::stoull(seen.substr(seen.find('=') + 1));
    c.job = job.substr(job.find('=') + 1);
    out.push_back(c);
  }
  return out;
}

// A JobExecutor whose events are collected for the test.
class ExecutorUnderTest {
 public:
  ExecutorUnderTest()
      : executor_([this](JobEvent e) {
          std::lock_guard lock(mu_);
          if (e.kind == JobEvent::Kind::kLine) {
            lines_.push_back(e.line);
          } else {
            finished_ = std::move(e);
          }
          cv_.notify_all();
        }) {}

  void Start(JobScript script) { executor_.Start(std::move(script)); }

  // The kFinished event; fails the test after `timeout`.
  std::optional<JobEvent> Wait(std::chrono::seconds timeout = 120s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return finished_.has_value(); });
    EXPECT_TRUE(finished_.has_value())
        << "the job did not finish within " << timeout.count() << " s; log:\n"
        << Text();
    return finished_;
  }
  std::string Text() const {
    std::string all;
    for (const auto& l : lines_) all += l + "\n";
    return all;
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::optional<JobEvent> finished_;
  JobExecutor executor_;  // last: joined before the fields its thread posts to go away
};

class FenceRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("clustermgr-fence");
    ASSERT_FALSE(dir_.empty());
    markers_ = dir_ + "/markers";
    runs_ = dir_ + "/runs";
    fs::create_directories(markers_);
    fs::create_directories(runs_);
    fs::create_directories(dir_ + "/home");
  }
  void TearDown() override { RemoveTree(dir_); }

  PlaybookSpec Spec(const std::string& playbook, uint64_t epoch, const std::string& job_id,
                    const std::vector<std::string>& hosts) {
    PlaybookSpec spec;
    spec.playbook_dir = TestPlaybookDir();
    spec.playbook = playbook;
    for (const std::string& h : hosts) spec.hosts.push_back({h, "127.0.0.1", {"service-master"}});
    spec.extra_vars = {
        {"marker_dir", markers_}, {"clustermgr_epoch", epoch}, {"clustermgr_job_id", job_id}};
    spec.roles_path = ShippedRolesDir();
    spec.temp_parent = runs_;
    spec.env = {{"HOME", dir_ + "/home"}};
    return spec;
  }
  JobScript Script(uint64_t epoch, const std::string& job_id, const std::vector<std::string>& hosts,
                   const std::vector<std::string>& playbooks = {"site.yml"}) {
    JobScript script{job_id, {}};
    for (const std::string& pb : playbooks) {
      script.steps.push_back({Spec(pb, epoch, job_id, hosts), {}});
    }
    return script;
  }

  std::string StateDir(const std::string& host) { return markers_ + "/fence/" + host; }
  void Mark(const std::string& host, const std::string& contents) {
    fs::create_directories(StateDir(host));
    std::ofstream(StateDir(host) + "/epoch") << contents;
  }
  std::string Epoch(const std::string& host) { return ReadText(StateDir(host) + "/epoch"); }
  std::string Marker(const std::string& host, const std::string& ext = ".log") {
    return ReadText(markers_ + "/" + host + ext);
  }

  std::string dir_, markers_, runs_;
};

TEST_F(FenceRunTest, StaleRunIsFencedAndChangesNothingNewerRunProceeds) {
  Mark("node1", "4\n");

  // An update-like job at epoch 3: cleanup, then configure. node1 has seen epoch 4.
  ExecutorUnderTest stale;
  stale.Start(Script(3, "job-3", {"node1", "node2"}, {"cleanup.yml", "site.yml"}));
  std::optional<JobEvent> done = stale.Wait();
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->succeeded) << stale.Text();  // a fenced host is not a failure
  EXPECT_FALSE(done->cancelled);
  ASSERT_EQ(done->fenced.size(), 1u) << stale.Text();
  EXPECT_EQ(done->fenced.at("node1"), "fenced: host has seen epoch 4, this run carries 3");
  EXPECT_EQ(done->error, "node1 fenced: host has seen epoch 4, this run carries 3");
  EXPECT_THAT(stale.lines(),
              Contains("clustermgr: hosts: node1 fenced (host has seen epoch 4, this run "
                       "carries 3), node2 ok"));
  EXPECT_THAT(stale.Text(), HasSubstr("fatal: [node1]: FAILED! => {\"changed\": false, \"msg\": "
                                      "\"fenced: host has seen epoch 4, this run carries 3\"}"));

  // node1: nothing beyond the check - no playbook task ran (no marker of either playbook), the
  // epoch is still 4, and the only new file content is the check's history line.
  EXPECT_FALSE(fs::exists(markers_ + "/node1.log"));
  EXPECT_FALSE(fs::exists(markers_ + "/node1.jobs"));
  EXPECT_EQ(Epoch("node1"), "4\n");
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(StateDir("node1"))) {
    files.insert(e.path().filename().string());
  }
  EXPECT_EQ(files, (std::set<std::string>{"epoch", "history", "lock"}));
  std::vector<Check> h = History(StateDir("node1"));
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].what, "fenced");
  EXPECT_EQ(h[0].epoch, 3u);
  EXPECT_EQ(h[0].seen, 4u);
  EXPECT_EQ(h[0].job, "job-3");
  // The configure step ran without node1; node2 got both playbooks at epoch 3.
  EXPECT_THAT(stale.lines(), Contains("clustermgr: running playbook site.yml"));
  EXPECT_EQ(Marker("node2"), "cleanup.yml node2\nsite.yml node2\n");
  EXPECT_EQ(Epoch("node2"), "3\n");

  // A run at epoch 5 proceeds on both and raises them to 5.
  ExecutorUnderTest newer;
  newer.Start(Script(5, "job-5", {"node1", "node2"}));
  done = newer.Wait();
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->succeeded) << newer.Text();
  EXPECT_TRUE(done->fenced.empty());
  EXPECT_EQ(done->error, "");
  EXPECT_EQ(Marker("node1"), "site.yml node1\n");
  EXPECT_THAT(Lines(Marker("node1", ".jobs")), ElementsAre("site.yml job-5 5 2"));
  EXPECT_EQ(Epoch("node1"), "5\n");
  EXPECT_EQ(Epoch("node2"), "5\n");
  h = History(StateDir("node1"));
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].what, "applied");
  EXPECT_EQ(h[1].epoch, 5u);
  EXPECT_EQ(h[1].seen, 4u);
}

TEST_F(FenceRunTest, AFailureBesideAFenceIsAFailure) {
  Mark("node1", "9\n");
  ExecutorUnderTest run;
  JobScript script = Script(2, "job-2", {"node1", "node2"});
  script.steps[0].playbook.extra_vars["fail_nodes"] = json::array({"node2"});
  run.Start(std::move(script));
  std::optional<JobEvent> done = run.Wait();
  ASSERT_TRUE(done.has_value());
  EXPECT_FALSE(done->succeeded);
  EXPECT_EQ(done->fenced.size(), 1u);
  EXPECT_THAT(done->error, HasSubstr("site.yml: ansible-playbook exited with status 2"));
  EXPECT_THAT(run.lines(), Contains("clustermgr: hosts: node1 fenced (host has seen epoch 9, "
                                    "this run carries 2), node2 failed"));
}

// Reads /proc/locks: how many processes wait for a flock on the file with inode `ino`.
int FlockWaiters(ino_t ino) {
  int waiting = 0;
  const std::string suffix = ":" + std::to_string(ino);
  for (const std::string& line : Lines(ReadText("/proc/locks"))) {
    // "1: -> FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF" for a blocked waiter.
    if (line.find("-> FLOCK") == std::string::npos) continue;
    std::istringstream in(line);
    std::string field;
    while (in >> field) {
      if (field.size() > suffix.size() && field.ends_with(suffix)) ++waiting;
    }
  }
  return waiting;
}

TEST_F(FenceRunTest, ConcurrentRunsOnOneHostSerializeThroughTheLock) {
  // Hold the host's lock, start runs at epochs 3 and 5, see both block on it, release: they
  // then pass the check one after the other in whatever order the kernel grants the lock.
  fs::create_directories(StateDir("node1"));
  const std::string lock_path = StateDir("node1") + "/lock";
  int fd = ::open(lock_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);

  ExecutorUnderTest low, high;
  low.Start(Script(3, "job-3", {"node1"}));
  high.Start(Script(5, "job-5", {"node1"}));
  const Status blocked = Cluster::WaitUntil(
      "both runs waiting for the host's fencing lock",
      [&](std::string* last) {
        const int n = FlockWaiters(st.st_ino);
        *last = std::to_string(n) + " waiter(s)";
        return n == 2;
      },
      90s);
  EXPECT_TRUE(IsOk(blocked)) << low.Text() << high.Text();
  EXPECT_FALSE(fs::exists(StateDir("node1") + "/history"));  // neither got past the lock
  ::flock(fd, LOCK_UN);
  ::close(fd);

  std::optional<JobEvent> low_done = low.Wait();
  std::optional<JobEvent> high_done = high.Wait();
  ASSERT_TRUE(low_done && high_done);
  EXPECT_TRUE(high_done->succeeded && high_done->fenced.empty()) << high.Text();
  EXPECT_EQ(Epoch("node1"), "5\n");

  // The checks did not interleave: each saw what the previous one recorded.
  const std::vector<Check> h = History(StateDir("node1"));
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].seen, 0u);
  EXPECT_EQ(h[1].seen, h[0].epoch);
  if (h[0].epoch == 5) {
    // 5 went first: 3 was fenced and did nothing.
    EXPECT_EQ(h[1].what, "fenced");
    EXPECT_EQ(low_done->fenced.size(), 1u) << low.Text();
    EXPECT_THAT(Lines(Marker("node1", ".jobs")), ElementsAre("site.yml job-5 5 1"));
  } else {
    // 3 went first and was recorded, then 5: both ran, in check order.
    EXPECT_EQ(h[0].what, "applied");
    EXPECT_EQ(h[1].what, "applied");
    EXPECT_TRUE(low_done->succeeded && low_done->fenced.empty()) << low.Text();
    const auto jobs = Lines(Marker("node1", ".jobs"));
    EXPECT_THAT(jobs, Contains("site.yml job-3 3 1"));
    EXPECT_THAT(jobs, Contains("site.yml job-5 5 2"));
  }
  std::printf("[ order    ] epoch %llu checked first, then %llu (%s)\n",
              static_cast<unsigned long long>(h[0].epoch),
              static_cast<unsigned long long>(h[1].epoch), h[1].what.c_str());
}

TEST_F(FenceRunTest, MissingOrCorruptStateFileCountsAsEpochZeroAndIsRewritten) {
  fs::create_directories(StateDir("missing"));  // the directory, but no epoch file
  Mark("garbage", "not a number\n");
  Mark("empty", "");
  Mark("huge", "123456789012345678901234567890\n");
  ExecutorUnderTest run;
  run.Start(Script(1, "job-1", {"missing", "garbage", "empty", "huge"}));
  std::optional<JobEvent> done = run.Wait();
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->succeeded) << run.Text();
  EXPECT_TRUE(done->fenced.empty());
  for (const char* host : {"missing", "garbage", "empty", "huge"}) {
    SCOPED_TRACE(host);
    EXPECT_EQ(Epoch(host), "1\n");
    EXPECT_EQ(Marker(host), std::string("site.yml ") + host + "\n");
    const std::vector<Check> h = History(StateDir(host));
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].what, "applied");
    EXPECT_EQ(h[0].seen, 0u);
  }
  // No state directory at all: made.
  ExecutorUnderTest fresh;
  fresh.Start(Script(7, "job-7", {"new"}));
  done = fresh.Wait();
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->succeeded) << fresh.Text();
  EXPECT_EQ(Epoch("new"), "7\n");
}

TEST_F(FenceRunTest, RunWithoutAnEpochFailsClosed) {
  ExecutorUnderTest run;
  JobScript script = Script(1, "job-1", {"node1"});
  script.steps[0].playbook.extra_vars.erase("clustermgr_epoch");
  run.Start(std::move(script));
  std::optional<JobEvent> done = run.Wait();
  ASSERT_TRUE(done.has_value());
  EXPECT_FALSE(done->succeeded);
  EXPECT_TRUE(done->fenced.empty());
  EXPECT_THAT(run.Text(), HasSubstr("clustermgr_fence: clustermgr_epoch is not set"));
  EXPECT_FALSE(fs::exists(markers_ + "/node1.log"));
}

// Whether `dir` can be made read-only for one process tree here: a private mount namespace with
// a read-only bind mount (root, and a kernel that allows it).
bool ReadOnlyBindWorks(const std::string& dir) {
  CommandResult r = RunCommand("/usr/bin/unshare",
                               {"-m", "/bin/sh", "-c",
                                "mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\" && "
                                "! touch \"$0/probe\" 2>/dev/null",
                                dir},
                               20s);
  return r.exit_code == 0 && !fs::exists(dir + "/probe");
}

TEST_F(FenceRunTest, ReadOnlyStateDirFailsClosed) {
  Mark("node1", "2\n");
  if (::geteuid() != 0 || !fs::exists("/usr/bin/unshare") ||
      !ReadOnlyBindWorks(StateDir("node1"))) {
    GTEST_SKIP() << "cannot make a read-only bind mount in a private mount namespace here "
                    "(needs root and unshare -m)";
  }
  // ansible-playbook runs in its own mount namespace where node1's state dir is read-only.
  const std::string wrapper = dir_ + "/ansible-playbook-ro";
  std::ofstream(wrapper) << "#!/bin/sh\n"
                            "exec /usr/bin/unshare -m /bin/sh -c 'mount --bind \"$0\" \"$0\" && "
                            "mount -o remount,bind,ro \"$0\" && exec ansible-playbook \"$@\"' "
                            "\"$FENCE_RO_DIR\" \"$@\"\n";
  fs::permissions(wrapper, fs::perms::owner_all);
  JobScript script = Script(3, "job-3", {"node1", "node2"});
  script.steps[0].playbook.ansible_playbook = wrapper;
  script.steps[0].playbook.env.push_back({"FENCE_RO_DIR", StateDir("node1")});
  ExecutorUnderTest run;
  run.Start(std::move(script));
  std::optional<JobEvent> done = run.Wait();
  ASSERT_TRUE(done.has_value());
  // Failed, not fenced: the check could not be made.
  EXPECT_FALSE(done->succeeded);
  EXPECT_TRUE(done->fenced.empty());
  EXPECT_THAT(run.Text(),
              HasSubstr("clustermgr-fence: error: cannot write the lock file " + StateDir("node1") +
                        "/lock (read-only state directory?): fencing fails closed"));
  EXPECT_FALSE(fs::exists(markers_ + "/node1.log"));
  EXPECT_EQ(Epoch("node1"), "2\n");
  EXPECT_EQ(Marker("node2"), "site.yml node2\n");  // other hosts are not held back
}

// ---- through clustermgrd ----------------------------------------------------------------------

class FencingDaemonTest : public ClusterTest<FencingDaemonTest> {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions options;
    options.daemon_args = {"--node-fencing=require"};
    StartSharedCluster(options, [](Cluster& c) {
      return c.AddDiscoveredMachines("fd", {"1", "2"});
    });
  }
  net::RpcClient& rpc() { return cluster()->rpc(); }
};

TEST_F(FencingDaemonTest, RequireRefusesAPlaybookWithoutTheRoleAndChangesNothing) {
  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {"configure_playbook": "unfenced.yml"}})")));
  auto refused = rpc().Commission({"fd-1"}, "service-master", "{}");
  EXPECT_TRUE(IsRpcError(refused, clustermgr::Code::kFailedPrecondition,
                         "--node-fencing=require: playbook \"unfenced.yml\": play \"unfenced\" "
                         "does not apply the clustermgr_fence role first (it starts with a "
                         "\"ansible.builtin.import_tasks\" task); put \"- "
                         "ansible.builtin.import_role: {name: clustermgr_fence}\" first in its "
                         "tasks, or the role first in its roles"));
  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {}})")));
  auto node = rpc().NodeGet("fd-1");
  ASSERT_TRUE(IsOk(node));
  EXPECT_EQ(node.value().status, net::NodeStatus::kUnallocated);
  auto jobs = rpc().JobsList();
  ASSERT_TRUE(IsOk(jobs));
  EXPECT_TRUE(jobs.value().empty());
  EXPECT_EQ(cluster()->CountRuns("fd-1", "unfenced.yml"), 0);
}

TEST_F(FencingDaemonTest, FencedHostEndsTheJobFencedAndKeepsItsStatus) {
  // fd-2 has seen an epoch far above this cluster's: to this daemon, a newer holder touched it.
  const std::string state = cluster()->marker_dir() + "/fence/fd-2";
  fs::create_directories(state);
  std::ofstream(state + "/epoch") << "1000\n";
  auto accepted = rpc().Commission({"fd-1", "fd-2"}, "service-master", "{}");
  ASSERT_TRUE(IsOk(accepted));
  auto job = cluster()->WaitForJobEnd(accepted.value().job_id);
  ASSERT_TRUE(IsOk(job));
  EXPECT_EQ(job.value().job.status, net::JobStatus::kFenced) << Describe(job.value());
  EXPECT_THAT(job.value().job.error, HasSubstr("fd-2 fenced: host has seen epoch 1000, this run "
                                               "carries "));
  EXPECT_THAT(job.value().log_lines,
              Contains(HasSubstr("clustermgr: hosts: fd-1 ok, fd-2 fenced (host has seen epoch "
                                 "1000, this run carries ")));
  // fd-1 was configured; fd-2 is left where the job found it, for the newer holder to set.
  auto one = rpc().NodeGet("fd-1");
  auto two = rpc().NodeGet("fd-2");
  ASSERT_TRUE(IsOk(one) && IsOk(two));
  EXPECT_EQ(one.value().status, net::NodeStatus::kAllocated);
  EXPECT_EQ(two.value().status, net::NodeStatus::kProvisioning);
  EXPECT_EQ(cluster()->CountRuns("fd-1", "site.yml"), 1);
  EXPECT_EQ(cluster()->CountRuns("fd-2", "site.yml"), 0);
  EXPECT_EQ(cluster()->CountRuns("fd-2", "cleanup.yml"), 0);
}

class FencingWarnTest : public ClusterTest<FencingWarnTest> {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions options;
    StartSharedCluster(options, [](Cluster& c) -> Status {
      auto m = c.AddMachine("fw", "1");
      if (!m.ok()) return m.status();
      return c.WaitForNode("fw-1", NodeIs::Discovered()).status();
    });
  }
};

TEST_F(FencingWarnTest, WarnRunsAnUnfencedPlaybookAndSaysSoInTheJobLog) {
  net::RpcClient& rpc = cluster()->rpc();
  ASSERT_TRUE(IsOk(rpc.ConfigSet(R"({"ansible": {"configure_playbook": "unfenced.yml"}})")));
  auto accepted = rpc.Commission({"fw-1"}, "service-master", "{}");
  ASSERT_TRUE(IsOk(accepted));
  auto job = cluster()->WaitForJobEnd(accepted.value().job_id);
  ASSERT_TRUE(IsOk(job));
  EXPECT_EQ(job.value().job.status, net::JobStatus::kComplete) << Describe(job.value());
  EXPECT_THAT(job.value().log_lines,
              Contains(AllOf(HasSubstr("clustermgr: warning: playbook \"unfenced.yml\": play "
                                       "\"unfenced\" does not apply the clustermgr_fence role "
                                       "first"),
                             HasSubstr("--node-fencing=warn: it runs unfenced"))));
  EXPECT_EQ(cluster()->CountRuns("fw-1", "unfenced.yml"), 1);
}

}  // namespace
}  // namespace clustermgr::test
