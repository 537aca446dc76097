// A real crash test of the store: a child process (tools/store_crash_child_main.cc) commits
// deltas from several threads and acknowledges each one on a pipe once Commit has returned; the
// test SIGKILLs it at a random moment, reopens the store, and checks that every acknowledged
// write is there and that the store verifies. Several rounds on the same data dir. The seed is
// printed and taken from CLUSTERMGR_SEED when set.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/inspect.h"
#include "store/store.h"
#include "base/testing/temp_dir.h"
#include "test/support/process.h"

namespace clustermgr {
namespace {

// The child process, whose stdout (its acknowledgements) goes to a file read as it grows;
// killed and reaped on destruction if still running.
class Child {
 public:
  // Its output goes to `prefix`.out and `prefix`.err.
  Child(const std::string& prefix, const std::vector<std::string>& argv) {
    std::string error;
    process_ = test::Process::Start({.program = argv[0],
                                     .args = std::vector<std::string>(argv.begin() + 1, argv.end()),
                                     .output_path = prefix + ".out",
                                     .error_path = prefix + ".err"},
                                    &error);
    if (!process_) ADD_FAILURE() << error;
  }

  bool started() const { return process_ != nullptr; }

  // Appends what the child wrote since the last call, waiting up to `timeout` for something;
  // false once the child has exited and all it wrote was read.
  bool Read(std::string* buf, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const bool running = process_->Running();  // before reading: nothing is missed at exit
      const std::string all = process_->Output();
      if (all.size() > taken_) {
        buf->append(all, taken_);
        taken_ = all.size();
        return true;
      }
      if (!running) return false;
      if (std::chrono::steady_clock::now() >= deadline) return true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // polling, with deadline
    }
  }

  // SIGKILL and reap; returns the wait status.
  int Kill() { return process_->Kill(); }

 private:
  std::unique_ptr<test::Process> process_;
  std::size_t taken_ = 0;
};

struct Acks {
  std::map<std::string, std::vector<uint64_t>> by_origin;
  size_t count = 0;
};

// Parses the complete lines in *buf (leaving a partial last line there).
void TakeAcks(std::string* buf, Acks* acks) {
  size_t start = 0;
  for (size_t nl; (nl = buf->find('\n', start)) != std::string::npos; start = nl + 1) {
    std::istringstream line(buf->substr(start, nl - start));
    std::string origin;
    uint64_t seq = 0;
    line >> origin >> seq;
    acks->by_origin[origin].push_back(seq);
    ++acks->count;
  }
  buf->erase(0, start);
}

TEST(StoreCrashTest, EveryAcknowledgedWriteSurvivesSigkill) {
  uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("CLUSTERMGR_SEED")) seed = std::strtoull(env, nullptr, 10);
  std::cout << "seed " << seed << " (replay with CLUSTERMGR_SEED=" << seed << ")\n";
  std::mt19937_64 rng(seed);

  const std::string child_bin = std::string(CLUSTERMGR_BIN_DIR) + "/store-crash-child";
  ASSERT_EQ(::access(child_bin.c_str(), X_OK), 0) << child_bin << " is not built";
  TempDir tmp("store-crash");
  const std::string dir = tmp.Sub("data");
  constexpr int kRounds = 6;
  uint64_t own_acked = 0;  // the highest acknowledged seq of the store's own origin
  for (int round = 0; round < kRounds; ++round) {
    // Kill after a random number of acknowledgements (sometimes none: mid-open), then after a
    // random extra delay, so the kill lands anywhere in the commit path.
    const size_t kill_after = round > 0 && rng() % 4 == 0 ? rng() % 3 : 5 + rng() % 300;
    const auto extra = std::chrono::microseconds(rng() % 3000);
    Acks acks;
    int wait_status = 0;
    {
      Child child(tmp.Sub("round-" + std::to_string(round)),
                  {child_bin, dir, std::to_string(round), "4", std::to_string(rng())});
      ASSERT_TRUE(child.started());
      std::string buf;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (acks.count < kill_after) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "child stalled, round " << round;
        ASSERT_TRUE(child.Read(&buf, std::chrono::milliseconds(100)))
            << "child exited early, round " << round;
        TakeAcks(&buf, &acks);
      }
      if (round == 0) {
        // While the child holds the dir, a second opener fails at once, naming the dir.
        auto second = store::Store::Open(dir, store::Options{});
        ASSERT_FALSE(second.ok());
        EXPECT_EQ(second.status().code(), Code::kUnavailable);
        EXPECT_EQ(second.status().message(),
                  "data dir " + dir + " is in use by another clustermgrd (LevelDB lock held)");
        // And it can still be inspected.
        auto live = store::InspectDir(dir);
        ASSERT_TRUE(live.ok()) << live.status().ToString();
        EXPECT_TRUE(live->problems.empty());
      }
      const auto until = std::chrono::steady_clock::now() + extra;
      while (std::chrono::steady_clock::now() < until) {
        // Busy-wait a few microseconds: this is the random kill moment, not a synchronization.
      }
      wait_status = child.Kill();
      // Acknowledgements already in the pipe count too: they were written after a Commit.
      while (child.Read(&buf, std::chrono::milliseconds(1000))) TakeAcks(&buf, &acks);
      TakeAcks(&buf, &acks);
    }
    ASSERT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL)
        << "child did not die by SIGKILL in round " << round << " (status " << wait_status << ")";

    auto opened = store::Store::Open(dir, store::Options{});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString() << " (round " << round << ")";
    store::Store& st = **opened;
    size_t checked = 0;
    st.Read([&](const crdt::ClusterState& state) {
      for (const auto& [origin, seqs] : acks.by_origin) {
        for (uint64_t seq : seqs) {
          const std::string* v = state.globals.Get(origin + "#" + std::to_string(seq));
          EXPECT_TRUE(v && *v == std::to_string(seq))
              << "acknowledged " << origin << ":" << seq << " lost in round " << round;
          ++checked;
        }
      }
      return 0;
    });
    const crdt::VersionVector applied = st.Applied();
    for (const auto& [origin, seqs] : acks.by_origin) {
      // One thread per origin, in seq order: an acknowledged seq has all below it applied.
      const uint64_t top = *std::max_element(seqs.begin(), seqs.end());
      EXPECT_GE(applied.Get(origin), top) << origin << " round " << round;
      if (origin == st.origin()) own_acked = std::max(own_acked, top);
    }
    EXPECT_GE(st.metadata().local_seq, own_acked);
    EXPECT_EQ(checked, acks.count);
    std::cout << "round " << round << ": killed after " << acks.count << " acknowledgements\n";
    opened->reset();

    auto inspection = store::InspectDir(dir);
    ASSERT_TRUE(inspection.ok()) << inspection.status().ToString();
    for (const store::Problem& p : inspection->problems) {
      ADD_FAILURE() << "verify, round " << round << ": " << p.ToString();
    }
  }
}

}  // namespace
}  // namespace clustermgr
