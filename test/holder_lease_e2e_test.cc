// The token holder's lease, end to end: three real clustermgrd instances beside their Serf
// agents, the real ansible-playbook with a local connection. A holder whose daemon is stopped
// (SIGSTOP) mid-playbook keeps its Serf agent; the others stop counting it after the contact
// window and elect a new holder. The stopped daemon's playbook must be gone before the new
// holder's run on the same node starts.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test/support/cluster.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;

// One line of <node>.busy: a run of epoch `epoch` was alive at `ms`.
struct BusyMark {
  uint64_t epoch = 0;
  std::string job;
  uint64_t ms = 0;
};

std::vector<BusyMark> ReadBusy(const std::string& path) {
  std::vector<BusyMark> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    BusyMark m;
    if (words >> m.epoch >> m.job >> m.ms) out.push_back(m);
  }
  return out;
}

// Resumes a stopped process when the test ends, however it ends.
class ResumeOnExit {
 public:
  explicit ResumeOnExit(pid_t pid) : pid_(pid) {}
  ~ResumeOnExit() { ::kill(pid_, SIGCONT); }
  ResumeOnExit(const ResumeOnExit&) = delete;
  ResumeOnExit& operator=(const ResumeOnExit&) = delete;

 private:
  pid_t pid_;
};

// Three managers with a 2 s settle period: a lease of 750 ms and a kill grace of 1000 ms (3/8
// and 1/2 of it).
Result<std::unique_ptr<Cluster>> StartThree() {
  ClusterOptions options;
  options.managers = 3;
  options.daemon_args = {"--token-settle-ms", "2000"};
  return Cluster::Start(options);
}

// The managers other than `holder`.
std::vector<std::size_t> OthersThan(std::size_t holder) {
  std::vector<std::size_t> others;
  for (std::size_t i = 0; i < 3; ++i) {
    if (i != holder) others.push_back(i);
  }
  return others;
}

TEST(HolderLeaseTest, AStoppedHoldersPlaybookIsGoneBeforeTheNextHoldersRunStarts) {
  auto started = StartThree();
  ASSERT_TRUE(started.ok()) << started.status().message();
  std::unique_ptr<Cluster> cluster = std::move(started).value();

  auto first = cluster->WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status().message();
  const std::size_t old_holder = first->index;
  const uint64_t old_epoch = first->epoch;
  ASSERT_TRUE(cluster->AddDiscoveredMachines("lease", {"0"}).ok());
  const std::string node = "lease-0";
  ASSERT_TRUE(cluster->WaitForNode(node, NodeIs::Discovered(), 30s, old_holder).ok());

  // A long playbook on the node at the holder.
  auto job = cluster->rpc(old_holder).Commission({node}, "service-master", R"({"busy": 30})");
  ASSERT_TRUE(job.ok()) << job.status().message();
  const std::string busy_file = cluster->marker_dir() + "/" + node + ".busy";
  ASSERT_TRUE(Cluster::WaitUntil(
                  "the playbook is busy on " + node,
                  [&](std::string*) { return !ReadBusy(busy_file).empty(); }, 120s)
                  .ok())
      << cluster->Diagnostics();

  // Stop the holder's daemon; its Serf agent and its playbook's processes go on.
  const pid_t stopped = cluster->manager(old_holder).pid();
  ASSERT_EQ(::kill(stopped, SIGSTOP), 0);
  ResumeOnExit resume(stopped);

  auto next = cluster->WaitForOneHolder(OthersThan(old_holder), old_epoch);
  ASSERT_TRUE(next.ok()) << next.status().message();
  const std::size_t new_holder = next->index;
  const uint64_t new_epoch = next->epoch;

  // The new holder interrupts the stopped one's job; the node becomes free again.
  ASSERT_TRUE(
      cluster->WaitForNode(node, NodeIs::Status(net::NodeStatus::kUnallocated), 60s, new_holder)
          .ok())
      << cluster->Diagnostics();
  auto again = cluster->rpc(new_holder).Commission({node}, "service-master", R"({"busy": 2})");
  ASSERT_TRUE(again.ok()) << again.status().message();
  auto done = cluster->WaitForJobEnd(again.value().job_id, 120s, new_holder);
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_EQ(done.value().job.status, net::JobStatus::kComplete);

  // Markers: the old run's last sign of life comes before the new run's first.
  uint64_t old_last = 0, new_first = UINT64_MAX;
  for (const BusyMark& m : ReadBusy(busy_file)) {
    if (m.epoch == old_epoch) old_last = std::max(old_last, m.ms);
    if (m.epoch == new_epoch) new_first = std::min(new_first, m.ms);
  }
  ASSERT_GT(old_last, 0u);
  ASSERT_NE(new_first, UINT64_MAX) << "the new holder's run left no marker";
  EXPECT_LT(old_last, new_first) << "the runs of epochs " << old_epoch << " and " << new_epoch
                                 << " overlapped on " << node << " for " << (old_last - new_first)
                                 << " ms";
}

// A holder stopped beyond the contact window was replaced. When it resumes, the requests that
// queued up meanwhile reach its loop before anything tells it so: it must not answer them as the
// holder (it was silent for longer than the contact window), nor hold again at its old epoch.
TEST(HolderLeaseTest, AResumedHolderDoesNotActOnTheTokenItLostWhileStopped) {
  auto started = StartThree();
  ASSERT_TRUE(started.ok()) << started.status().message();
  std::unique_ptr<Cluster> cluster = std::move(started).value();

  auto first = cluster->WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status().message();
  const std::size_t old_holder = first->index;
  const pid_t stopped = cluster->manager(old_holder).pid();
  ASSERT_EQ(::kill(stopped, SIGSTOP), 0);
  ResumeOnExit resume(stopped);
  auto next = cluster->WaitForOneHolder(OthersThan(old_holder), first->epoch);
  ASSERT_TRUE(next.ok()) << next.status().message();

  // Token requests wait in the stopped daemon's sockets; then it resumes.
  auto queued = std::async(std::launch::async, [&] { return cluster->rpc(old_holder).Token(); });
  std::this_thread::sleep_for(300ms);  // the request reaches the stopped process's socket
  ASSERT_EQ(::kill(stopped, SIGCONT), 0);
  auto answer = queued.get();
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_FALSE(answer.value().self_holds)
      << "the resumed instance answered as the holder at epoch " << answer.value().epoch
      << " while " << cluster->manager(next->index).name() << " holds epoch " << next->epoch;

  // Nor does it take the token back at its old epoch afterwards.
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    auto t = cluster->rpc(old_holder).Token();
    ASSERT_TRUE(t.ok()) << t.status().message();
    if (t.value().self_holds) {
      EXPECT_GT(t.value().epoch, next->epoch) << "holds again at its old epoch";
    }
    std::this_thread::sleep_for(20ms);  // polling the status RPC
  }
}

}  // namespace
}  // namespace clustermgr::test
