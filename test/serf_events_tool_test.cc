// The serf-events debugging tool against a real agent: one line per member event, a clear
// error and exit 1 for a bad auth key.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "test/support/process.h"
#include "test/support/serf_agent.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;

const std::string kTool = std::string(CLUSTERMGR_BIN_DIR) + "/serf-events";

// The child's output through a FIFO, read line by line with poll and a deadline. Only for
// programs that print little: an undrained FIFO blocks its writer once the pipe is full.
class FifoLines {
 public:
  explicit FifoLines(const std::string& path) : path_(path) {
    mkfifo(path_.c_str(), 0600);
    fd_ = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  }
  ~FifoLines() {
    if (fd_ >= 0) close(fd_);
  }
  const std::string& path() const { return path_; }

  // The first complete line for which `match` holds; earlier lines are consumed.
  std::optional<std::string> WaitFor(const std::function<bool(const std::string&)>& match,
                                     std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (auto nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n')) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        seen_ += line + "\n";
        if (match(line)) return line;
      }
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n > 0) {
        pending_.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0) {
        return std::nullopt;  // the writer closed: nothing more will come
      }
    }
  }
  const std::string& seen() const { return seen_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::string pending_;
  std::string seen_;
};

class SerfEventsToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kTool)) GTEST_SKIP() << kTool << " is not built";
    dir_ = MakeTempDir("clustermgr-serf-events");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { RemoveTree(dir_); }
  std::string dir_;
};

TEST_F(SerfEventsToolTest, PrintsOneLinePerMemberEvent) {
  std::string error;
  auto a0 = SerfAgent::Start(
      {.name = "ev0", .tags = {{"NodeLabel", "n"}, {"NodeSerial", "0"}}, .rpc_auth = "k3y"},
      &error);
  ASSERT_TRUE(a0) << error;
  FifoLines out(dir_ + "/out");
  auto tool = Process::Start({.program = kTool,
                              .args = {"--serf-rpc", a0->rpc_address(), "--serf-auth-key", "k3y"},
                              .output_path = out.path()},
                             &error);
  ASSERT_TRUE(tool) << error;
  auto resync =
      out.WaitFor([](const std::string& l) { return l.rfind("resync ev0 ", 0) == 0; }, 10s);
  ASSERT_TRUE(resync) << out.seen();
  EXPECT_EQ(*resync, "resync ev0 " + a0->bind_address() + " alive NodeLabel=n,NodeSerial=0");

  auto a1 = SerfAgent::Start({.name = "ev1", .join = {a0->bind_address()}}, &error);
  ASSERT_TRUE(a1) << error;
  auto join =
      out.WaitFor([](const std::string& l) { return l.rfind("member-join ev1 ", 0) == 0; }, 10s);
  ASSERT_TRUE(join) << out.seen();

  const int st = tool->Stop(5s);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << Process::DescribeStatus(st);
}

TEST_F(SerfEventsToolTest, BadAuthKeyIsAClearErrorAndExit1) {
  std::string error;
  auto a0 = SerfAgent::Start({.name = "ev2", .rpc_auth = "k3y"}, &error);
  ASSERT_TRUE(a0) << error;
  auto tool = Process::Start({.program = kTool,
                              .args = {"--serf-rpc", a0->rpc_address(), "--serf-auth-key", "nope"},
                              .output_path = dir_ + "/out.log"},
                             &error);
  ASSERT_TRUE(tool) << error;
  auto st = tool->Wait(20s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 1) << Process::DescribeStatus(*st);
  EXPECT_EQ(tool->Output(), "serf-events: serf rpc auth failed: Invalid authentication token\n");
}

TEST_F(SerfEventsToolTest, UsageErrorsExit2) {
  std::string error;
  auto tool =
      Process::Start({.program = kTool, .args = {"--bogus"}, .output_path = dir_ + "/u"}, &error);
  ASSERT_TRUE(tool) << error;
  auto st = tool->Wait(10s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 2) << Process::DescribeStatus(*st);
  EXPECT_NE(tool->Output().find("usage: serf-events"), std::string::npos);
}

}  // namespace
}  // namespace clustermgr::test
