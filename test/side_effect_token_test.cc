// The side-effect token across three real clustermgrd instances, each beside its own Serf agent:
// one holder, side effects forwarded to it and run once, quorum loss and failover.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <set>

#include "test/support/cluster.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

constexpr auto kElection = 30s;

class SideEffectTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.managers = 3;
    options.daemon_args = {"--token-settle-ms", "500"};  // the harness passes --expect=3
    auto cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status().message();
    cluster_ = std::move(cluster).value();
  }

  // Waits until every instance in `alive` agrees on one holder that says it holds the token;
  // returns its index.
  Result<std::size_t> WaitForOneHolder(const std::set<std::size_t>& alive) {
    std::size_t holder = 0;
    Status s = Cluster::WaitUntil(
        "one holder agreed by every live instance",
        [&](std::string* last) {
          std::set<std::string> named;
          int self_holders = 0;
          *last = "";
          for (std::size_t i : alive) {
            auto t = cluster_->rpc(i).Token();
            if (!t.ok()) return false;
            *last += cluster_->manager(i).name() + ": holder=" + t.value().holder +
                     " epoch=" + std::to_string(t.value().epoch) +
                     " self=" + std::to_string(t.value().self_holds) + "; ";
            named.insert(t.value().holder);
            if (t.value().self_holds) {
              ++self_holders;
              holder = i;
            }
          }
          return named.size() == 1 && !named.begin()->empty() && self_holders == 1;
        },
        kElection, 50ms);
    if (!s.ok()) return Status(s.code(), s.message() + "\n" + cluster_->Diagnostics());
    return holder;
  }

  uint64_t EpochOf(std::size_t i) {
    auto t = cluster_->rpc(i).Token();
    return t.ok() ? t.value().epoch : 0;
  }

  std::unique_ptr<Cluster> cluster_;
};

TEST_F(SideEffectTokenTest, ExactlyOneHolderAndSideEffectsRunOnItOnce) {
  auto holder = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(holder.ok()) << holder.status().message();
  const std::string holder_name = cluster_->manager(*holder).name();
  const uint64_t epoch = EpochOf(*holder);
  ASSERT_GT(epoch, 0u);

  // One machine per instance; each commission is sent to a different instance.
  for (std::size_t i = 0; i < 3; ++i) {
    auto m = cluster_->AddMachine("tok", std::to_string(i));
    ASSERT_TRUE(m.ok()) << m.status().message();
    // Only the holder applies Serf events to the inventory it validates requests against.
    ASSERT_TRUE(cluster_->WaitForNode((*m)->name(), NodeIs::Discovered(), 30s, *holder).ok());
  }
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string node = "tok-" + std::to_string(i);
    auto job = cluster_->rpc(i).Commission({node}, "service-master", "");
    ASSERT_TRUE(job.ok()) << "via " << cluster_->manager(i).name() << ": "
                          << job.status().message();
    EXPECT_EQ(job.value().job_id.rfind(holder_name + "-", 0), 0u)
        << "job " << job.value().job_id << " did not run on the holder " << holder_name;
    auto done = cluster_->WaitForJobEnd(job.value().job_id, 120s, *holder);
    ASSERT_TRUE(done.ok()) << done.status().message();
    EXPECT_EQ(done.value().job.status, net::JobStatus::kComplete);
    EXPECT_EQ(done.value().job.epoch, epoch);
    // Exactly one run, stamped with this job and epoch.
    EXPECT_EQ(cluster_->CountRuns(node, "site.yml"), 1) << "runs of " << node;
    EXPECT_EQ(ReadFile(cluster_->marker_dir() + "/" + node + ".jobs"),
              "site.yml " + job.value().job_id + " " + std::to_string(epoch) +
                  " 1\n");  // the host's first fencing check
  }
  // A forwarded refusal comes back verbatim.
  auto refused = cluster_->rpc((*holder + 1) % 3).Commission({"nope"}, "service-master", "");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "node with name or address \"nope\" doesn't exists");
}

TEST_F(SideEffectTokenTest, AnIsolatedHolderDropsTheTokenAndTheMajorityElectsAHigherEpoch) {
  auto holder = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(holder.ok()) << holder.status().message();
  const uint64_t old_epoch = EpochOf(*holder);

  // Cut the holder off: without its Serf agent it sees no other manager, and the others see it
  // fail.
  cluster_->manager(*holder).serf().Kill();
  const auto cut = std::chrono::steady_clock::now();
  Status dropped = Cluster::WaitUntil(
      "the isolated holder drops the token",
      [&](std::string* last) {
        auto t = cluster_->rpc(*holder).Token();
        if (!t.ok()) return false;
        *last = t.value().reason;
        return !t.value().self_holds;
      },
      10s);
  ASSERT_TRUE(dropped.ok()) << dropped.message();
  auto t = cluster_->rpc(*holder).Token();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value().reason,
            "no manager holds the side-effect token: sees 1 of 2 required managers");
  // Side effects sent to it are refused with that reason.
  auto refused = cluster_->rpc(*holder).Commission({"x"}, "service-master", "");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), clustermgr::Code::kUnavailable);

  std::set<std::size_t> majority = {0, 1, 2};
  majority.erase(*holder);
  auto next = WaitForOneHolder(majority);
  ASSERT_TRUE(next.ok()) << next.status().message();
  const auto elected = std::chrono::steady_clock::now();
  const uint64_t new_epoch = EpochOf(*next);
  EXPECT_GT(new_epoch, old_epoch);
  std::cout << "[token-timing] isolation -> new holder: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elected - cut).count()
            << " ms\n";
  ASSERT_TRUE(cluster_->rpc(*next).GlobalSet(R"({"written_during_the_cut": true})").ok());

  // Heal: the isolated instance's agent comes back. States converge and epochs only grew: the
  // old holder does not take the token back.
  std::string error;
  // Rejoin through a majority agent: the first manager's agent joined nobody when it started.
  ASSERT_TRUE(cluster_->manager(*holder).serf().Restart(
      &error, std::vector<std::string>{cluster_->manager(*next).serf().bind_address()}))
      << error;
  Status converged = Cluster::WaitUntil(
      "every instance holds the same state",
      [&](std::string* last) {
        std::set<uint64_t> digests;
        *last = "";
        for (std::size_t i = 0; i < 3; ++i) {
          auto st = cluster_->rpc(i).Status();
          if (!st.ok()) return false;
          digests.insert(st.value().state_digest);
          *last += std::to_string(st.value().state_digest) + " ";
        }
        return digests.size() == 1;
      },
      60s, 100ms);
  ASSERT_TRUE(converged.ok()) << converged.message() << cluster_->Diagnostics();
  auto globals = cluster_->rpc(*holder).GlobalGet();
  ASSERT_TRUE(globals.ok());
  EXPECT_NE(globals.value().find("written_during_the_cut"), std::string::npos);
  auto healed = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(healed.ok()) << healed.status().message();
  EXPECT_GE(EpochOf(*healed), new_epoch);
  auto t2 = cluster_->rpc(*holder).Token();
  ASSERT_TRUE(t2.ok());
  EXPECT_GE(t2.value().highest_epoch, new_epoch);
}

TEST_F(SideEffectTokenTest, AKilledHoldersJobIsInterruptedAndTheNewHolderCarriesOn) {
  auto holder = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(holder.ok()) << holder.status().message();
  const uint64_t old_epoch = EpochOf(*holder);
  for (const char* serial : {"1", "2"}) {
    auto m = cluster_->AddMachine("fo", serial);
    ASSERT_TRUE(m.ok()) << m.status().message();
    ASSERT_TRUE(cluster_->WaitForNode((*m)->name(), NodeIs::Discovered(), 30s, *holder).ok());
  }
  // A job that is still running when its holder dies.
  auto slow = cluster_->rpc(*holder).Commission({"fo-1"}, "service-master", R"({"slow": 120})");
  ASSERT_TRUE(slow.ok()) << slow.status().message();
  ASSERT_TRUE(cluster_->WaitForLogLine(slow.value().job_id, "TASK [slow]", 60s, *holder).ok())
      << cluster_->Diagnostics();

  cluster_->manager(*holder).Kill();
  cluster_->manager(*holder).serf().Kill();
  const auto killed = std::chrono::steady_clock::now();
  std::set<std::size_t> rest = {0, 1, 2};
  rest.erase(*holder);
  auto next = WaitForOneHolder(rest);
  ASSERT_TRUE(next.ok()) << next.status().message();
  const auto elected = std::chrono::steady_clock::now();
  const uint64_t new_epoch = EpochOf(*next);
  EXPECT_GT(new_epoch, old_epoch);
  std::cout << "[token-timing] holder killed -> new holder acting: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elected - killed).count()
            << " ms\n";

  // The new holder saw the job by replication and interrupted it, at its own epoch, and the node
  // is back to a safe status on every survivor.
  for (std::size_t i : rest) {
    Status interrupted = Cluster::WaitUntil(
        "the dead holder's job is Interrupted at " + cluster_->manager(i).name(),
        [&](std::string* last) {
          auto j = cluster_->rpc(i).JobGet(slow.value().job_id);
          if (!j.ok()) return false;
          *last = std::string(net::ToString(j.value().job.status));
          return j.value().job.status == net::JobStatus::kInterrupted;
        },
        30s);
    ASSERT_TRUE(interrupted.ok()) << interrupted.message() << cluster_->Diagnostics();
    auto node =
        cluster_->WaitForNode("fo-1", NodeIs::Status(net::NodeStatus::kUnallocated), 30s, i);
    ASSERT_TRUE(node.ok()) << node.status().message();
  }
  // A new commission, sent to the survivor that does not hold the token, runs on the holder.
  const std::size_t other = *rest.begin() == *next ? *rest.rbegin() : *rest.begin();
  auto job = cluster_->rpc(other).Commission({"fo-2"}, "service-master", "");
  ASSERT_TRUE(job.ok()) << job.status().message();
  auto done = cluster_->WaitForJobEnd(job.value().job_id, 120s, *next);
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_EQ(done.value().job.status, net::JobStatus::kComplete);
  EXPECT_EQ(done.value().job.epoch, new_epoch);
  EXPECT_EQ(ReadFile(cluster_->marker_dir() + "/fo-2.jobs"),
            "site.yml " + job.value().job_id + " " + std::to_string(new_epoch) +
                " 1\n");  // the host's first fencing check
}

// Serf's "alive" is the agent's: a holder whose daemon crashed or hangs while its Serf agent
// lives keeps its epoch tag. Replication silence must still move the token, and a hung holder
// that wakes up must find itself deposed, not a second holder.
TEST_F(SideEffectTokenTest, ADeadOrHungHolderDaemonBesideALiveSerfAgentLosesTheToken) {
  auto holder = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(holder.ok()) << holder.status().message();
  const uint64_t first_epoch = EpochOf(*holder);
  std::set<std::size_t> rest = {0, 1, 2};
  rest.erase(*holder);

  // Hung: SIGSTOP the holder's clustermgrd; its Serf agent goes on answering for it.
  const pid_t hung = cluster_->manager(*holder).pid();
  ASSERT_EQ(::kill(hung, SIGSTOP), 0);
  auto next = WaitForOneHolder(rest);
  if (!next.ok()) ::kill(hung, SIGCONT);
  ASSERT_TRUE(next.ok()) << next.status().message();
  const uint64_t second_epoch = EpochOf(*next);
  EXPECT_GT(second_epoch, first_epoch);
  // Woken up, the old holder sees the higher claim and stands down: one holder for all three.
  ASSERT_EQ(::kill(hung, SIGCONT), 0);
  auto after_wake = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(after_wake.ok()) << after_wake.status().message();
  EXPECT_EQ(*after_wake, *next);
  EXPECT_EQ(EpochOf(*after_wake), second_epoch);

  // Dead: SIGKILL the new holder's clustermgrd only; the token moves again, to a higher epoch.
  const std::size_t second = *next;
  cluster_->manager(second).Kill();
  std::set<std::size_t> survivors = {0, 1, 2};
  survivors.erase(second);
  auto third = WaitForOneHolder(survivors);
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_GT(EpochOf(*third), second_epoch);
  // Restarted, it comes back as a follower of the current holder.
  ASSERT_TRUE(cluster_->manager(second).Start().ok());
  auto last = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_EQ(*last, *third);
}

// Any agent that joins the Serf cluster can carry manager tags. Such members are never heard
// by replication: they must neither block nor steer an election, whatever epoch they claim, and
// one that reuses a live manager's instance name must not mark that manager dead when it goes.
TEST_F(SideEffectTokenTest, RogueSerfMembersWithManagerTagsDoNotBlockFailover) {
  auto holder = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(holder.ok()) << holder.status().message();
  const uint64_t first_epoch = EpochOf(*holder);
  std::set<std::size_t> rest = {0, 1, 2};
  rest.erase(*holder);
  const std::size_t named = *rest.begin();  // its name is reused by an impostor

  std::vector<std::string> join;
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    join.push_back(cluster_->manager(i).serf().bind_address());
  }
  auto rogue = [&](const std::string& agent, std::map<std::string, std::string> tags) {
    SerfAgentOptions o;
    o.name = agent;
    o.tags = std::move(tags);
    o.tags["role"] = "clustermgr";
    o.join = join;
    std::string error;
    auto a = SerfAgent::Start(o, &error);
    EXPECT_NE(a, nullptr) << error;
    return a;
  };
  auto top = rogue("rogue-top", {{"instance", "zz"}, {"epoch", "18446744073709551615"}});
  auto minus = rogue("rogue-minus", {{"instance", "zy"}, {"epoch", "-1"}});
  auto impostor = rogue("rogue-impostor", {{"instance", cluster_->manager(named).name()},
                                           {"epoch", std::to_string(first_epoch + 1)}});
  ASSERT_TRUE(top && minus && impostor);
  // The others see the impostor, then see it fail.
  Status seen = Cluster::WaitUntil(
      "every manager agent sees the rogue members",
      [&](std::string* last) {
        for (std::size_t i = 0; i < cluster_->size(); ++i) {
          auto members = cluster_->manager(i).serf().Members();
          if (!members.ok()) return false;
          int rogues = 0;
          for (const auto& m : *members) rogues += m.name.rfind("rogue-", 0) == 0 ? 1 : 0;
          *last = cluster_->manager(i).name() + " sees " + std::to_string(rogues);
          if (rogues < 3) return false;
        }
        return true;
      },
      30s);
  ASSERT_TRUE(seen.ok()) << seen.message();
  impostor->Kill();
  // The holder stays the holder meanwhile.
  auto still = WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(still.ok()) << still.status().message();
  EXPECT_EQ(*still, *holder);

  // The holder dies, daemon and agent: a survivor takes over at the next epoch.
  cluster_->manager(*holder).Kill();
  cluster_->manager(*holder).serf().Kill();
  auto next = WaitForOneHolder(rest);
  ASSERT_TRUE(next.ok()) << next.status().message();
  // Above the dead holder's epoch and near it: the rogue tags neither raised nor wrapped the
  // claim (a contested round on a loaded machine may take one epoch more).
  EXPECT_GT(EpochOf(*next), first_epoch);
  EXPECT_LE(EpochOf(*next), first_epoch + 3);
}

}  // namespace
}  // namespace clustermgr::test
