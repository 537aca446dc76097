// The test harness itself (test/support/process.h, serf_agent.h), so that later integration
// tests can rely on it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>

#include "test/support/process.h"
#include "test/support/serf_agent.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("clustermgr-process-test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { RemoveTree(dir_); }

  std::string MakeFifo() {
    const std::string path = dir_ + "/fifo" + std::to_string(fifos_++);
    EXPECT_EQ(mkfifo(path.c_str(), 0600), 0);
    return path;
  }

  // One line written to a FIFO by the child, waiting on poll with a deadline.
  static std::optional<std::string> ReadLine(const std::string& fifo,
                                             std::chrono::milliseconds timeout) {
    const int fd = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string got;
    while (got.find('\n') == std::string::npos) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd pf{fd, POLLIN, 0};
      if (left.count() <= 0 || poll(&pf, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[256];
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
      if (n == 0 && !got.empty()) break;
    }
    close(fd);
    if (got.find('\n') == std::string::npos) return std::nullopt;
    return got.substr(0, got.find('\n'));
  }

  std::string dir_;
  int fifos_ = 0;
};

TEST_F(ProcessTest, CapturesOutputEnvironmentAndExitStatus) {
  std::string error;
  auto p = Process::Start({.program = "sh",
                           .args = {"-c", "echo out-$GREETING; echo err >&2; pwd; exit 3"},
                           .env = {{"GREETING", "hello"}},
                           .output_path = dir_ + "/out.log",
                           .working_dir = dir_},
                          &error);
  ASSERT_TRUE(p) << error;
  auto st = p->Wait(10s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st));
  EXPECT_EQ(WEXITSTATUS(*st), 3);
  EXPECT_EQ(Process::DescribeStatus(*st), "exited with 3");
  EXPECT_EQ(p->Output(), "out-hello\nerr\n" + dir_ + "\n");
  EXPECT_FALSE(p->Running());
}

TEST_F(ProcessTest, MissingProgramIsAnErrorNotAnExit127) {
  std::string error;
  auto p = Process::Start({.program = dir_ + "/no-such-program"}, &error);
  EXPECT_FALSE(p);
  EXPECT_NE(error.find("cannot execute"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
}

TEST_F(ProcessTest, StopTerminatesTheWholeGroup) {
  // The shell starts a child in its group and reports the child's pid through a FIFO.
  const std::string fifo = MakeFifo();
  std::string error;
  auto p = Process::Start(
      {.program = "sh", .args = {"-c", "sleep 60 & echo $! > " + fifo + "; wait"}}, &error);
  ASSERT_TRUE(p) << error;
  auto line = ReadLine(fifo, 10s);
  ASSERT_TRUE(line);
  const pid_t child = static_cast<pid_t>(std::stol(*line));
  // Hold a pidfd on the grandchild so that its exit is observable without polling.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  ASSERT_GE(pidfd, 0);
  EXPECT_TRUE(p->Running());
  EXPECT_FALSE(p->Wait(50ms));
  const int st = p->Stop(5s);
  EXPECT_TRUE(WIFSIGNALED(st)) << Process::DescribeStatus(st);
  pollfd pf{pidfd, POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 5000), 1) << "the child in the group survived Stop";
  close(pidfd);
}

TEST_F(ProcessTest, StopEscalatesToKillAfterTheGrace) {
  const std::string fifo = MakeFifo();
  std::string error;
  auto p = Process::Start(
      {.program = "sh",
       .args = {"-c", "trap '' TERM; echo ready > " + fifo + "; while :; do :; done"}},
      &error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(ReadLine(fifo, 10s));  // the trap is set
  const auto start = std::chrono::steady_clock::now();
  const int st = p->Stop(300ms);
  EXPECT_EQ(Process::DescribeStatus(st), "killed by SIGKILL");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
}

TEST_F(ProcessTest, DestructorKillsARunningChild) {
  std::string error;
  pid_t pid = 0;
  {
    auto p = Process::Start({.program = "sleep", .args = {"60"}}, &error);
    ASSERT_TRUE(p) << error;
    pid = p->pid();
  }
  EXPECT_EQ(kill(pid, 0), -1);
}

TEST(FreeLoopbackPortTest, PortsAreDistinct) {
  const int a = FreeLoopbackPort();
  const int b = FreeLoopbackPort();
  EXPECT_GT(a, 0);
  EXPECT_GT(b, 0);
  EXPECT_NE(a, b);
}

TEST(SerfAgentHarnessTest, StartSetTagsAndMembers) {
  std::string error;
  auto agent = SerfAgent::Start({.tags = {{"k", "v"}}}, &error);
  ASSERT_TRUE(agent) << error;
  EXPECT_EQ(agent->name().rfind("agent-", 0), 0u);
  ASSERT_TRUE(agent->SetTags({{"k2", "v2"}}, {"k"}).ok());
  auto members = agent->Members();
  ASSERT_TRUE(members.ok()) << members.status().message();
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].tags, (std::map<std::string, std::string>{{"k2", "v2"}}));
  EXPECT_EQ((*members)[0].Endpoint(), agent->bind_address());
  EXPECT_EQ(agent->tags(), (std::map<std::string, std::string>{{"k2", "v2"}}));
  EXPECT_NE(agent->Log().find("Serf agent running"), std::string::npos);

  // Serf refuses a tag set over 512 bytes; the error arrives as the agent's text.
  Status big = agent->SetTags({{"big", std::string(600, 'x')}});
  EXPECT_EQ(big.code(), Code::kFailedPrecondition);
  EXPECT_EQ(big.message(),
            "serf rpc tags failed: Encoded length of tags exceeds limit of 512 bytes");
  EXPECT_EQ(agent->tags(), (std::map<std::string, std::string>{{"k2", "v2"}}));
}

TEST(SerfAgentHarnessTest, JoiningAnAbsentAgentFailsClearly) {
  std::string error;
  const std::string nobody = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  auto agent = SerfAgent::Start({.join = {nobody}}, &error);
  EXPECT_FALSE(agent);
  EXPECT_NE(error.find("exited during start"), std::string::npos) << error;
}

}  // namespace
}  // namespace clustermgr::test
