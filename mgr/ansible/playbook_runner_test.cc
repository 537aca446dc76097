// Unit tests of the runner's pieces: path confinement and the process handling
// with a fake ansible-playbook (a /bin/sh script), which is fast and can misbehave on purpose.
// test/playbook_runner_test.cc runs the real ansible-playbook.

#include "mgr/ansible/playbook_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "base/testing/temp_dir.h"
#include "mgr/ansible/job_executor.h"
#include "mgr/testing/line_log_test_util.h"

namespace clustermgr::mgr {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

void WriteFile(const std::string& path, const std::string& text,
               fs::perms perms = fs::perms(0644)) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
  fs::permissions(path, perms);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---------------------------------------------------------------- ResolvePlaybookPath

class ResolvePlaybookPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/playbooks";
    WriteFile(dir_ + "/site.yml", "- hosts: all\n");
    WriteFile(dir_ + "/sub/up.yml", "- hosts: all\n");
    WriteFile(tmp_.path() + "/outside.yml", "- hosts: all\n");
  }
  TempDir tmp_{"runner-test"};
  std::string dir_;
};

TEST_F(ResolvePlaybookPathTest, AcceptsFilesInsideTheDirectory) {
  PlaybookPath p = ResolvePlaybookPath(dir_, "site.yml");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.path, dir_ + "/site.yml");
  EXPECT_EQ(p.dir, dir_);
  p = ResolvePlaybookPath(dir_ + "/", "./sub/up.yml");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.path, dir_ + "/sub/up.yml");
}

TEST_F(ResolvePlaybookPathTest, RejectsEscapesByName) {
  EXPECT_EQ(ResolvePlaybookPath(dir_, "").error, "no playbook specified");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "/etc/passwd").error,
            "playbook \"/etc/passwd\" must be a path relative to the playbook directory");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "../outside.yml").error,
            "playbook \"../outside.yml\" must not contain \"..\" or control characters");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "sub/../site.yml").error,
            "playbook \"sub/../site.yml\" must not contain \"..\" or control characters");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "sub/..").error,
            "playbook \"sub/..\" must not contain \"..\" or control characters");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "site.yml\n").error,
            "playbook \"site.yml\\n\" must not contain \"..\" or control characters");
  // A name that merely contains dots is fine.
  WriteFile(dir_ + "/..x.yml", "");
  EXPECT_TRUE(ResolvePlaybookPath(dir_, "..x.yml").ok());
}

TEST_F(ResolvePlaybookPathTest, RejectsSymlinkEscapes) {
  fs::create_symlink(tmp_.path() + "/outside.yml", dir_ + "/escape.yml");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "escape.yml").error,
            "playbook \"escape.yml\" resolves outside the playbook directory \"" + dir_ + "\"");
  fs::create_directory_symlink(tmp_.path(), dir_ + "/up");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "up/outside.yml").error,
            "playbook \"up/outside.yml\" resolves outside the playbook directory \"" + dir_ + "\"");
  // A sibling directory whose name extends the playbook directory's is still outside.
  WriteFile(dir_ + "2/x.yml", "");
  fs::create_symlink(dir_ + "2/x.yml", dir_ + "/sibling.yml");
  EXPECT_THAT(ResolvePlaybookPath(dir_, "sibling.yml").error, HasSubstr("resolves outside"));
  // A link that stays inside is fine, and keeps its own name.
  fs::create_symlink("sub/up.yml", dir_ + "/alias.yml");
  PlaybookPath p = ResolvePlaybookPath(dir_, "alias.yml");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.path, dir_ + "/alias.yml");
}

TEST_F(ResolvePlaybookPathTest, TheDirectoryItselfMayBeALink) {
  fs::create_directory_symlink(dir_, tmp_.path() + "/current");
  PlaybookPath p = ResolvePlaybookPath(tmp_.path() + "/current", "site.yml");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.dir, dir_);
  EXPECT_EQ(p.path, dir_ + "/site.yml");
}

TEST_F(ResolvePlaybookPathTest, MissingOrUnusable) {
  EXPECT_EQ(ResolvePlaybookPath(dir_, "nope.yml").error,
            "playbook \"nope.yml\" not found in \"" + dir_ + "\"");
  fs::create_symlink(dir_ + "/gone.yml", dir_ + "/dangling.yml");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "dangling.yml").error,
            "playbook \"dangling.yml\" not found in \"" + dir_ + "\"");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "sub").error,
            "playbook \"sub\" in \"" + dir_ + "\" is not a regular file");
  EXPECT_EQ(ResolvePlaybookPath(dir_, "site.yml/x").error,
            "playbook \"site.yml/x\" in \"" + dir_ + "\" is not usable: Not a directory");
  EXPECT_EQ(
      ResolvePlaybookPath(tmp_.path() + "/none", "site.yml").error,
      "playbook directory \"" + tmp_.path() + "/none\" is not usable: No such file or directory");
  EXPECT_EQ(ResolvePlaybookPath(dir_ + "/site.yml", "x.yml").error,
            "playbook directory \"" + dir_ + "/site.yml\" is not usable: Not a directory");
}

// ---------------------------------------------------------------- runs with a fake program

// Processes of a process group that are not zombies (zombies are dead; their parent - init or
// a subreaper, for orphans - reaps them when it gets to it).
std::vector<int> LiveGroupMembers(int pgid) {
  std::vector<int> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(entry.path().string() + "/stat");
    std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 2));
    char state = 0;
    int ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') pids.push_back(std::stoi(name));
  }
  return pids;
}

class FakeAnsibleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(tmp_.path() + "/playbooks/site.yml", "- hosts: all\n");
    fs::create_directory(tmp_.path() + "/runs");
  }

  // A spec running `script` (sh code) as ansible-playbook.
  PlaybookSpec Spec(const std::string& script) {
    std::string program = tmp_.path() + "/fake-ansible-" + std::to_string(++scripts_);
    WriteFile(program, "#!/bin/sh\n" + script, fs::perms(0755));
    PlaybookSpec spec;
    spec.playbook_dir = tmp_.path() + "/playbooks";
    spec.playbook = "site.yml";
    spec.hosts = {{"node1", "10.0.0.1", {"service-master"}}};
    spec.extra_vars = {{"b", 2}, {"a", "x y"}};
    spec.ansible_playbook = program;
    spec.temp_parent = tmp_.path() + "/runs";
    return spec;
  }

  bool RunsDirEmpty() { return fs::is_empty(tmp_.path() + "/runs"); }

  TempDir tmp_{"runner-test"};
  int scripts_ = 0;
};

TEST_F(FakeAnsibleTest, PassesArgumentsFilesEnvironmentAndWorkingDirectory) {
  PlaybookSpec spec = Spec(
      "for a in \"$@\"; do echo \"arg: $a\"; done\n"
      "echo \"cwd: $(pwd)\"\n"
      "echo \"hosts: $(cat \"$2\")\"\n"
      "echo \"vars: $(cat \"${4#@}\")\"\n"
      "echo \"modes: $(stat -c %a \"$(dirname \"$2\")\" \"$2\" \"${4#@}\" | tr '\\n' ' ')\"\n"
      "env | sort | sed 's/^/env: /'\n"
      "read x && echo \"stdin: $x\" || echo 'stdin: eof'\n"
      "printf 'no newline at the end'\n");
  spec.user = "deploy";
  spec.forks = 50;
  spec.private_key = "/keys/id_ed25519";
  spec.env = {{"EXTRA_THING", "1"}, {"ANSIBLE_NOCOLOR", "0"}};
  ::setenv("CLUSTERMGR_TEST_SECRET", "must-not-leak", 1);
  ::setenv("ANSIBLE_ROLES_PATH", "/roles", 1);

  LineLog log;
  PlaybookRun run(spec);
  PlaybookResult r = run.Run(log.callback());
  ::unsetenv("CLUSTERMGR_TEST_SECRET");
  ::unsetenv("ANSIBLE_ROLES_PATH");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.outcome, PlaybookOutcome::kSucceeded);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_GT(r.pid, 0);
  EXPECT_EQ(r.error, "");

  std::vector<std::string> lines = log.lines();
  std::vector<std::string> args;
  std::string run_dir;
  for (const auto& l : lines) {
    if (l.starts_with("arg: ")) args.push_back(l.substr(5));
  }
  ASSERT_EQ(args.size(), 11u) << ::testing::PrintToString(lines);
  run_dir = fs::path(args[1]).parent_path().string();
  EXPECT_THAT(run_dir, StartsWith(tmp_.path() + "/runs/clustermgr-ansible-"));
  EXPECT_EQ(args, (std::vector<std::string>{"-i", run_dir + "/hosts", "--extra-vars",
                                            "@" + run_dir + "/extra-vars.json", "--user", "deploy",
                                            "--forks", "50", "--private-key", "/keys/id_ed25519",
                                            tmp_.path() + "/playbooks/site.yml"}));
  EXPECT_THAT(lines, Contains("cwd: " + tmp_.path() + "/playbooks"));
  EXPECT_THAT(lines, Contains("hosts: [service-master]"));
  EXPECT_THAT(lines, Contains("node1 ansible_host=10.0.0.1 ansible_ssh_host=10.0.0.1 "
                              "node_name=node1 node_addr=10.0.0.1"));
  EXPECT_THAT(lines, Contains("vars: {\"a\":\"x y\",\"b\":2}"));
  EXPECT_THAT(lines, Contains("modes: 700 600 600 "));
  EXPECT_THAT(lines, Contains("stdin: eof"));
  EXPECT_EQ(lines.back(), "no newline at the end");

  EXPECT_THAT(lines, Contains("env: ANSIBLE_HOST_KEY_CHECKING=False"));
  EXPECT_THAT(lines, Contains("env: ANSIBLE_FORCE_COLOR=0"));
  EXPECT_THAT(lines, Contains("env: PYTHONUNBUFFERED=1"));
  EXPECT_THAT(lines, Contains("env: ANSIBLE_LOCAL_TEMP=" + run_dir + "/tmp"));
  EXPECT_THAT(lines, Contains("env: ANSIBLE_NOCOLOR=0"));  // the spec overrides defaults
  EXPECT_THAT(lines, Contains("env: EXTRA_THING=1"));
  EXPECT_THAT(lines, Contains("env: ANSIBLE_ROLES_PATH=/roles"));
  EXPECT_THAT(lines, Contains(StartsWith("env: PATH=")));
  for (const auto& l : lines) EXPECT_EQ(l.find("must-not-leak"), std::string::npos) << l;

  EXPECT_FALSE(fs::exists(run_dir));
  EXPECT_TRUE(RunsDirEmpty());
}

// --ansible-user and --ansible-private-key reach ansible-playbook as single argv elements, never
// through a shell, and a private key path is made absolute so that it can never pass for an
// option ("-oProxyCommand=...").
TEST_F(FakeAnsibleTest, UserAndPrivateKeyAreSingleArgumentsNeverShellText) {
  PlaybookSpec spec = Spec("for a in \"$@\"; do echo \"arg: $a\"; done\n");
  const std::string marker = tmp_.path() + "/pwned";
  spec.user = "u$(touch " + marker + ")";
  LineLog log;
  PlaybookResult user_refused = PlaybookRun(spec).Run(log.callback());
  EXPECT_FALSE(user_refused.ok());
  EXPECT_EQ(user_refused.error,
            "invalid ansible user \"" + spec.user +
                "\": use letters, digits, '_', '-', '.', not starting with '-'");
  spec.user = "deploy";
  spec.private_key = "-oProxyCommand=touch " + marker + ";`touch " + marker + "`";
  PlaybookRun run(spec);
  PlaybookResult r = run.Run(log.callback());
  ASSERT_TRUE(r.ok()) << r.error;
  std::vector<std::string> args;
  for (const auto& l : log.lines()) {
    if (l.starts_with("arg: ")) args.push_back(l.substr(5));
  }
  ASSERT_EQ(args.size(), 9u) << ::testing::PrintToString(log.lines());
  EXPECT_EQ(args[4], "--user");
  EXPECT_EQ(args[5], spec.user);
  EXPECT_EQ(args[6], "--private-key");
  EXPECT_EQ(args[7], (fs::current_path() / spec.private_key).string());
  EXPECT_EQ(args[7].front(), '/');
  EXPECT_FALSE(fs::exists(marker));

  spec.private_key = "/keys/id\nrm -rf /";
  PlaybookRun bad(spec);
  PlaybookResult refused = bad.Run(log.callback());
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.error.find("invalid private key path"), std::string::npos) << refused.error;
}

TEST_F(FakeAnsibleTest, NonZeroExitIsAFailure) {
  LineLog log;
  PlaybookRun run(Spec("echo failing\nexit 2\n"));
  PlaybookResult r = run.Run(log.callback());
  EXPECT_EQ(r.outcome, PlaybookOutcome::kFailed);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.error, "ansible-playbook exited with status 2 (one or more hosts failed)");
  EXPECT_FALSE(r.cancelled);
  EXPECT_THAT(log.lines(), Contains("failing"));
  EXPECT_TRUE(RunsDirEmpty());

  PlaybookRun run7(Spec("exit 7\n"));
  EXPECT_EQ(run7.Run(log.callback()).error, "ansible-playbook exited with status 7");
}

TEST_F(FakeAnsibleTest, DeathBySignalIsAFailure) {
  LineLog log;
  PlaybookRun run(Spec("kill -9 $$\n"));
  PlaybookResult r = run.Run(log.callback());
  EXPECT_EQ(r.outcome, PlaybookOutcome::kFailed);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_EQ(r.error, "ansible-playbook was killed by signal 9");
}

TEST_F(FakeAnsibleTest, CancelTerminatesTheWholeGroup) {
  LineLog log;
  PlaybookRun run(Spec("sleep 600 &\necho started $!\nwait\n"));
  PlaybookResult r;
  std::thread runner([&] { r = run.Run(log.callback()); });
  ASSERT_TRUE(log.WaitFor("started", std::chrono::seconds(10)));
  auto t0 = std::chrono::steady_clock::now();
  run.Cancel();
  run.Cancel();  // idempotent
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
  EXPECT_EQ(r.outcome, PlaybookOutcome::kCancelled);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.error, "cancelled");
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_EQ(LiveGroupMembers(r.pid), std::vector<int>{});
  EXPECT_TRUE(RunsDirEmpty());
  run.Cancel();  // after the end: nothing happens
}

TEST_F(FakeAnsibleTest, CancelEscalatesToSigkillAfterTheGrace) {
  LineLog log;
  // Ignores SIGTERM (and so does its child, which inherits the disposition).
  PlaybookSpec spec = Spec("trap '' TERM\nsleep 600 &\necho started\nwait\n");
  spec.kill_grace = std::chrono::milliseconds(300);
  PlaybookRun run(spec);
  PlaybookResult r;
  std::thread runner([&] { r = run.Run(log.callback()); });
  ASSERT_TRUE(log.WaitFor("started", std::chrono::seconds(10)));
  auto t0 = std::chrono::steady_clock::now();
  run.Cancel();
  runner.join();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(r.outcome, PlaybookOutcome::kCancelled);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_EQ(LiveGroupMembers(r.pid), std::vector<int>{});
}

TEST_F(FakeAnsibleTest, ALapsedLeaseStopsTheWholeGroup) {
  LineLog log;
  // Both ignore SIGTERM: the grace ends with SIGKILL for the whole group.
  PlaybookSpec spec = Spec("trap '' TERM\nsleep 600 &\necho started\nwhile :; do wait; done\n");
  spec.lease = std::chrono::milliseconds(300);
  spec.kill_grace = std::chrono::milliseconds(200);
  PlaybookRun run(spec);
  const auto t0 = std::chrono::steady_clock::now();
  PlaybookResult r = run.Run(log.callback());  // nobody renews the lease
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(r.outcome, PlaybookOutcome::kCancelled);
  EXPECT_TRUE(r.lease_lapsed);
  EXPECT_EQ(r.error, "stopped: the side-effect token's lease lapsed (not renewed for 300 ms)");
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_EQ(LiveGroupMembers(r.pid), std::vector<int>{});
  EXPECT_TRUE(RunsDirEmpty());
}

TEST_F(FakeAnsibleTest, ARenewedLeaseLetsTheRunFinish) {
  LineLog log;
  PlaybookSpec spec = Spec("sleep 1\necho done\n");
  spec.lease = std::chrono::milliseconds(300);
  PlaybookRun run(spec);
  std::mutex mu;
  std::condition_variable cv;
  bool over = false;
  std::thread renewer([&] {  // the event loop, ticking every 50 ms
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return over; })) {
      run.RenewLease();
    }
  });
  PlaybookResult r = run.Run(log.callback());
  {
    std::lock_guard<std::mutex> lock(mu);
    over = true;
  }
  cv.notify_one();
  renewer.join();
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_FALSE(r.lease_lapsed);
  EXPECT_THAT(log.lines(), Contains("done"));
}

// Collects what a JobExecutor posts; waits for its kFinished.
class ExecutorEvents {
 public:
  JobExecutor::Post post() {
    return [this](JobEvent e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
      cv_.notify_all();
    };
  }
  std::optional<JobEvent> WaitFinished(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<JobEvent> done;
    cv_.wait_for(lock, timeout, [&] {
      for (const JobEvent& e : events_) {
        if (e.kind == JobEvent::Kind::kFinished) done = e;
      }
      return done.has_value();
    });
    return done;
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const JobEvent& e : events_) {
      if (e.kind == JobEvent::Kind::kLine) out.push_back(e.line);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<JobEvent> events_;
};

TEST_F(FakeAnsibleTest, AJobStartsNoStepWithoutACurrentLease) {
  ExecutorEvents events;
  JobExecutor executor(events.post(), std::chrono::milliseconds(300));
  // Never renewed (the token was never held, or the loop stopped vouching for it).
  executor.Start(JobScript{"j1", {{Spec("echo step-1\n"), {Spec("echo recovery\n")}}}});
  std::optional<JobEvent> done = events.WaitFinished(std::chrono::seconds(10));
  ASSERT_TRUE(done);
  EXPECT_FALSE(done->succeeded);
  EXPECT_TRUE(done->cancelled);
  EXPECT_EQ(done->error,
            "not running playbook site.yml: this instance's side-effect token lease lapsed");
  EXPECT_THAT(events.lines(), Not(Contains("step-1")));
  EXPECT_THAT(events.lines(), Not(Contains("recovery")));
}

TEST_F(FakeAnsibleTest, ALeaseThatLapsesMidStepStopsTheJobWithoutFurtherSteps) {
  ExecutorEvents events;
  JobExecutor executor(events.post(), std::chrono::milliseconds(300));
  executor.RenewLease();  // once: the step starts, then nobody renews
  PlaybookSpec slow = Spec("echo step-1\nsleep 30\n");
  slow.kill_grace = std::chrono::milliseconds(200);
  executor.Start(JobScript{"j2", {{slow, {Spec("echo recovery\n")}}, {Spec("echo step-2\n"), {}}}});
  std::optional<JobEvent> done = events.WaitFinished(std::chrono::seconds(10));
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->cancelled);
  EXPECT_EQ(done->error,
            "site.yml: stopped: the side-effect token's lease lapsed (not renewed for 300 ms)");
  EXPECT_THAT(events.lines(), Contains("step-1"));
  EXPECT_THAT(events.lines(), Not(Contains("step-2")));
  EXPECT_THAT(events.lines(), Not(Contains("recovery")));
}

TEST_F(FakeAnsibleTest, CancelBeforeRunDoesNotStartAnything) {
  LineLog log;
  PlaybookRun run(Spec("echo should-not-run\n"));
  run.Cancel();
  PlaybookResult r = run.Run(log.callback());
  EXPECT_EQ(r.outcome, PlaybookOutcome::kCancelled);
  EXPECT_EQ(r.error, "cancelled before the playbook started");
  EXPECT_EQ(r.pid, 0);
  EXPECT_EQ(log.lines(),
            std::vector<std::string>{"clustermgr: cancelled before the playbook started"});
}

TEST_F(FakeAnsibleTest, AStragglerHoldingTheOutputDoesNotHangTheRun) {
  // The leader exits while a background child keeps the output pipe open.
  LineLog log;
  PlaybookRun run(Spec("sleep 600 &\necho straggler $!\nexit 0\n"));
  auto t0 = std::chrono::steady_clock::now();
  PlaybookResult r = run.Run(log.callback());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(r.ok()) << r.error;
  int straggler = 0;
  for (const auto& l : log.lines()) {
    if (l.starts_with("straggler ")) straggler = std::stoi(l.substr(10));
  }
  ASSERT_GT(straggler, 0);
  // A run that ends by itself leaves its group alone; the test cleans up after itself.
  EXPECT_EQ(::kill(straggler, SIGKILL), 0);
}

TEST_F(FakeAnsibleTest, SetupErrorsAreReportedAndLogged) {
  struct Case {
    std::function<void(PlaybookSpec&)> change;
    std::string error;
  };
  std::vector<Case> cases = {
      {[](PlaybookSpec& s) { s.playbook = "../x.yml"; },
       "playbook \"../x.yml\" must not contain \"..\" or control characters"},
      {[](PlaybookSpec& s) { s.playbook = "missing.yml"; },
       "playbook \"missing.yml\" not found in \"" + tmp_.path() + "/playbooks\""},
      {[](PlaybookSpec& s) { s.hosts = {}; }, "no nodes to run the playbook on"},
      {[](PlaybookSpec& s) { s.hosts[0].name = "a b"; },
       "invalid node name \"a b\": use 1 to 253 letters, digits, '_', '-', '.', starting with a "
       "letter, digit or '_'"},
      {[](PlaybookSpec& s) { s.user = "-oProxyCommand=x"; },
       "invalid ansible user \"-oProxyCommand=x\": use letters, digits, '_', '-', '.', not "
       "starting with '-'"},
      {[](PlaybookSpec& s) { s.extra_vars = nlohmann::json::array(); },
       "extra-vars must be a JSON object"},
      {[](PlaybookSpec& s) {
         s.env = {{"BAD NAME", "x"}};
       },
       "invalid environment variable \"BAD NAME\""},
      {[](PlaybookSpec& s) { s.ansible_playbook = "no-such-ansible-playbook-here"; },
       "cannot find \"no-such-ansible-playbook-here\" in PATH"},
      {[this](PlaybookSpec& s) { s.ansible_playbook = tmp_.path() + "/playbooks/site.yml"; },
       "cannot run \"" + tmp_.path() + "/playbooks/site.yml\": Permission denied"},
      {[this](PlaybookSpec& s) { s.temp_parent = tmp_.path() + "/none"; },
       "cannot create a temp dir in \"" + tmp_.path() + "/none\": No such file or directory"},
  };
  for (const Case& c : cases) {
    PlaybookSpec spec = Spec("echo should-not-run\n");
    c.change(spec);
    LineLog log;
    PlaybookRun run(spec);
    PlaybookResult r = run.Run(log.callback());
    EXPECT_EQ(r.outcome, PlaybookOutcome::kSetupFailed) << c.error;
    EXPECT_THAT(r.error, StartsWith(c.error));
    ASSERT_EQ(log.lines().size(), 1u) << c.error;
    EXPECT_EQ(log.lines()[0], "clustermgr: " + r.error);
    EXPECT_TRUE(RunsDirEmpty()) << c.error;
  }
}

TEST_F(FakeAnsibleTest, ExecFailureIsASetupError) {
  // Executable but not runnable: a script with a missing interpreter.
  PlaybookSpec spec = Spec("");
  WriteFile(spec.ansible_playbook, "#!/nonexistent/interpreter\n", fs::perms(0755));
  LineLog log;
  PlaybookRun run(spec);
  PlaybookResult r = run.Run(log.callback());
  EXPECT_EQ(r.outcome, PlaybookOutcome::kSetupFailed);
  EXPECT_EQ(r.error, "cannot run \"" + spec.ansible_playbook + "\": No such file or directory");
  EXPECT_TRUE(RunsDirEmpty());
}

TEST_F(FakeAnsibleTest, LongOutputLinesAreTruncated) {
  PlaybookSpec spec = Spec("head -c 5000 /dev/zero | tr '\\0' x; echo; echo short\n");
  spec.max_line_bytes = 100;
  LineLog log;
  PlaybookRun run(spec);
  ASSERT_TRUE(run.Run(log.callback()).ok());
  EXPECT_EQ(
      log.lines(),
      (std::vector<std::string>{
          std::string(100, 'x') + " [clustermgr: line truncated, 4900 bytes dropped]", "short"}));
}

}  // namespace
}  // namespace clustermgr::mgr
