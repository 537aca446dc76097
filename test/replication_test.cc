// Replication end to end: real clustermgrd processes on loopback gossiping over
// ZeroMQ, checked over RPC and, offline, in their data dirs.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "store/store.h"
#include "test/support/replicated_cluster_test.h"
#include "test/support/serf_agent.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kFast = {"--anti-entropy-ms=200"};

std::vector<std::string> With(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  return PollUntil(done, timeout);
}

std::string Globals(ReplicatedCluster::Instance& in) {
  auto g = in.client().GlobalGet();
  return g.ok() ? g.value() : "error: " + g.status().message();
}

uint64_t Counter(const net::StatusInfo& s, const std::string& name) {
  for (const auto& c : s.counters) {
    if (c.name == name) return c.value;
  }
  return 0;
}

// Runs `state-inspect diff a b`; returns its exit status and output.
int StateDiff(const std::string& dir, const std::string& a, const std::string& b,
              std::string* out) {
  ProcessOptions p;
  p.program = std::string(CLUSTERMGR_BIN_DIR) + "/state-inspect";
  p.args = {"diff", a, b};
  p.output_path = dir + "/diff.out";
  std::filesystem::remove(p.output_path);
  std::string error;
  auto proc = Process::Start(p, &error);
  if (!proc) {
    *out = error;
    return -1;
  }
  auto status = proc->Wait(30s);
  *out = proc->Output();
  return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

class ReplicationTest : public test::ReplicatedClusterTest {
 protected:
  std::string why_;
};

TEST_F(ReplicationTest, WritesAnywhereAreVisibleEverywhereAndConcurrentWritesConverge) {
  ASSERT_TRUE(cluster_.AddMany(3, kFast, &error_)) << error_;
  auto& m1 = cluster_.at(0);
  auto& m2 = cluster_.at(1);
  auto& m3 = cluster_.at(2);

  ASSERT_TRUE(m1.client().GlobalSet(R"({"from":"m1","n":1})").ok());
  for (auto* in : {&m2, &m3}) {
    EXPECT_TRUE(WaitUntil([&] { return Globals(*in) == Globals(m1); }, 10s))
        << in->name() << ": " << Globals(*in);
  }
  const std::string config = R"({"ansible":{"extra_variables":{"written_at":"m2"}}})";
  ASSERT_TRUE(m2.client().ConfigSet(config).ok());
  for (auto* in : {&m1, &m3}) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          auto c = in->client().ConfigGet();
          return c.ok() && c.value().find("\"written_at\":\"m2\"") != std::string::npos;
        },
        10s))
        << in->name();
  }

  // The same key written concurrently at all three: one winner, everywhere.
  std::vector<std::thread> writers;
  for (size_t i = 0; i < 3; ++i) {
    writers.emplace_back([&, i] {
      net::RpcClient client(cluster_.at(i).url());
      for (int n = 0; n < 20; ++n) {
        const std::string name = cluster_.at(i).name();
        auto r = client.GlobalSet("{\"race\":\"" + name + "-" + std::to_string(n) + "\",\"only-" +
                                  name + "\":" + std::to_string(n) + "}");
        EXPECT_TRUE(r.ok()) << r.status().message();
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_TRUE(cluster_.WaitConverged(20s, &why_, /*no_tombstones=*/true)) << why_;
  EXPECT_EQ(Globals(m1), Globals(m2));
  EXPECT_EQ(Globals(m1), Globals(m3));
  std::cout << "winner: " << Globals(m1) << "\n";

  // Everyone is a member, alive, not lagging.
  auto members = m1.client().Members();
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members.value().size(), 3u);
  for (const auto& m : members.value()) {
    EXPECT_TRUE(m.alive) << m.name;
    EXPECT_EQ(m.lag_deltas, 0) << m.name;
    EXPECT_FALSE(m.rpc_endpoint.empty()) << m.name;
  }
}

TEST_F(ReplicationTest, AKilledInstanceCatchesUpAndEveryAcknowledgedWriteIsEverywhere) {
  // --expect=3 with no Serf: no instance ever holds the token, so the offline comparison below
  // is not raced by lone holders raising the token epoch over one another.
  ASSERT_TRUE(cluster_.AddMany(3, With(kFast, {"--expect=3"}), &error_, /*sync=*/true)) << error_;
  std::mutex mu;
  std::map<std::string, std::string> acked;  // value -> writer
  std::atomic<bool> stop{false};
  std::atomic<int> total{0};
  std::vector<std::thread> writers;
  for (size_t i = 0; i < 3; ++i) {
    writers.emplace_back([&, i] {
      net::RpcClient::Options o;
      o.timeout = 2s;
      net::RpcClient client(cluster_.at(i).url(), o);
      const std::string name = cluster_.at(i).name();
      for (int n = 0; !stop; ++n) {
        const std::string value = name + "-" + std::to_string(n);
        if (client.GlobalSet("{\"w\":\"" + value + "\"}").ok()) {
          std::lock_guard lock(mu);
          acked[value] = name;
          ++total;
        }
      }
    });
  }
  auto& m3 = cluster_.at(2);
  ASSERT_TRUE(WaitUntil([&] { return total >= 150; }, 20s));
  m3.Kill();  // in the middle of the load
  const int at_kill = total;
  ASSERT_TRUE(WaitUntil([&] { return total >= at_kill + 150; }, 20s));
  ASSERT_TRUE(m3.Start(&error_)) << error_;
  const int at_restart = total;
  ASSERT_TRUE(WaitUntil([&] { return total >= at_restart + 60; }, 20s));
  stop = true;
  for (auto& t : writers) t.join();
  std::cout << total << " writes acknowledged, " << at_kill << " before the kill\n";

  ASSERT_TRUE(cluster_.WaitConverged(30s, &why_)) << why_;
  for (size_t i = 0; i < 3; ++i) cluster_.at(i).Stop();

  // Offline: every acknowledged write is in some delta log, and every instance applied it.
  std::map<std::string, std::pair<std::string, uint64_t>> where;  // value -> (origin, seq)
  std::vector<crdt::VersionVector> applied;
  for (size_t i = 0; i < 3; ++i) {
    auto st = store::Store::OpenReadOnly(cluster_.at(i).data_dir());
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    applied.push_back((*st)->Applied());
    for (const auto& [origin, range] : (*st)->DeltaLog()) {
      auto deltas = (*st)->DeltasSince(origin, range.first - 1, range.count);
      ASSERT_TRUE(deltas.ok()) << deltas.status().ToString();
      for (const crdt::Delta& d : *deltas) {
        if (const auto* e = d.state.globals.Find("w"); e && e->value) {
          where[*e->value] = {d.origin, d.seq};
        }
      }
    }
  }
  ASSERT_FALSE(acked.empty());
  for (const auto& [value, writer] : acked) {
    auto it = where.find("\"" + value + "\"");
    ASSERT_NE(it, where.end()) << "acknowledged write " << value << " is nowhere";
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_GE(applied[i].Get(it->second.first), it->second.second)
          << cluster_.at(i).name() << " lacks " << value;
    }
  }
  std::string out;
  EXPECT_EQ(StateDiff(cluster_.dir(), cluster_.at(0).data_dir(), cluster_.at(1).data_dir(), &out),
            0)
      << out;
  EXPECT_EQ(StateDiff(cluster_.dir(), cluster_.at(0).data_dir(), cluster_.at(2).data_dir(), &out),
            0)
      << out;
}

TEST_F(ReplicationTest, WipedAndCorruptInstancesRestoreEverythingFromPeers) {
  // A short delta log, so that a wiped instance needs a snapshot.
  ASSERT_TRUE(cluster_.AddMany(3, With(kFast, {"--delta-log-limit=20"}), &error_)) << error_;
  auto& m1 = cluster_.at(0);
  auto& m2 = cluster_.at(1);
  auto& m3 = cluster_.at(2);
  for (int n = 0; n < 60; ++n) {
    std::string vars = "{";
    for (int k = 0; k < 50; ++k) {
      vars += (k ? "," : "") + std::string("\"k") + std::to_string(k) + "\":" + std::to_string(n);
    }
    vars += "}";
    ASSERT_TRUE(cluster_.at(n % 2).client().GlobalSet(vars).ok());
  }
  ASSERT_TRUE(m2.client().ConfigSet(R"({"ansible":{"user":"ops"}})").ok());
  ASSERT_TRUE(cluster_.WaitConverged(20s, &why_)) << why_;

  // Wiped: restores through a snapshot.
  m3.Stop();
  m3.Wipe();
  ASSERT_TRUE(m3.Start(&error_)) << error_;
  ASSERT_TRUE(cluster_.WaitConverged(20s, &why_)) << why_;
  auto s3 = m3.client().Status();
  ASSERT_TRUE(s3.ok());
  EXPECT_GE(Counter(s3.value(), "snapshots_applied"), 1u);
  EXPECT_EQ(Globals(m3), Globals(m1));

  // Corrupt: refused with a clear error, then restored with --restore-from-peers.
  m2.Stop();
  {
    std::ofstream current(m2.data_dir() + "/CURRENT", std::ios::trunc);
    current << "not a manifest name";
  }
  EXPECT_FALSE(m2.Start(&error_));
  EXPECT_NE(error_.find("corrupt"), std::string::npos) << error_;
  ASSERT_TRUE(m2.Start(&error_, {"--restore-from-peers"})) << error_;
  ASSERT_TRUE(cluster_.WaitConverged(20s, &why_)) << why_;
  bool moved_aside = false;
  for (const auto& e : std::filesystem::directory_iterator(cluster_.dir())) {
    moved_aside |= e.path().filename().string().rfind("m2.discarded-", 0) == 0;
  }
  EXPECT_TRUE(moved_aside);
  auto c2 = m2.client().ConfigGet();
  ASSERT_TRUE(c2.ok());
  EXPECT_NE(c2.value().find("\"ops\""), std::string::npos) << c2.value();
}

TEST_F(ReplicationTest, DroppedGossipIsHealedByAntiEntropy) {
  ASSERT_TRUE(cluster_.AddMany(3, With(kFast, {"--test-drop-gossip=0.3"}), &error_)) << error_;
  for (int n = 0; n < 90; ++n) {
    auto& in = cluster_.at(n % 3);
    ASSERT_TRUE(in.client().GlobalSet("{\"" + in.name() + "\":" + std::to_string(n) + "}").ok());
  }
  ASSERT_TRUE(cluster_.WaitConverged(60s, &why_)) << why_;
  for (size_t i = 0; i < 3; ++i) {
    auto s = cluster_.at(i).client().Status();
    ASSERT_TRUE(s.ok());
    EXPECT_GT(Counter(s.value(), "messages_fault_dropped"), 0u) << cluster_.at(i).name();
  }
}

TEST_F(ReplicationTest, AFourthInstanceJoiningThroughSerfTagsAloneGetsTheWholeState) {
  std::vector<std::unique_ptr<SerfAgent>> agents;
  for (int i = 1; i <= 4; ++i) {
    SerfAgentOptions o;
    o.name = "host-" + std::to_string(i);
    if (!agents.empty()) o.join = {agents[0]->bind_address()};
    auto agent = SerfAgent::Start(o, &error_);
    ASSERT_TRUE(agent) << error_;
    agents.push_back(std::move(agent));
  }
  for (int i = 1; i <= 3; ++i) {
    InstanceOptions o;
    o.name = "m" + std::to_string(i);
    o.serf_rpc = agents[i - 1]->rpc_address();
    o.extra_args = kFast;
    ASSERT_TRUE(cluster_.Add(o, &error_)) << error_;
  }
  for (int n = 0; n < 30; ++n) {
    ASSERT_TRUE(cluster_.at(n % 3).client().GlobalSet("{\"n\":" + std::to_string(n) + "}").ok());
  }
  ASSERT_TRUE(cluster_.at(2).client().ConfigSet(R"({"ansible":{"user":"serf"}})").ok());
  ASSERT_TRUE(cluster_.WaitConverged(20s, &why_)) << why_;

  InstanceOptions o;
  o.name = "m4";
  o.serf_rpc = agents[3]->rpc_address();
  o.peer_with_earlier = false;  // no --peer at all
  o.extra_args = kFast;
  auto* m4 = cluster_.Add(o, &error_);
  ASSERT_TRUE(m4) << error_;
  ASSERT_TRUE(cluster_.WaitConverged(30s, &why_)) << why_;
  EXPECT_EQ(Globals(*m4), Globals(cluster_.at(0)));
  // And the others know it as a member.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto members = cluster_.at(0).client().Members();
        if (!members.ok()) return false;
        for (const auto& m : members.value()) {
          if (m.name == "m4" && m.alive) return true;
        }
        return false;
      },
      10s));
}

TEST_F(ReplicationTest, AckReplicasWaitsForPeersToPersistOrSaysOutcomeUnknown) {
  ASSERT_TRUE(
      cluster_.AddMany(3, With(kFast, {"--ack-replicas=2", "--ack-timeout-ms=1000"}), &error_))
      << error_;
  auto& m1 = cluster_.at(0);
  ASSERT_TRUE(cluster_.WaitConverged(10s, &why_)) << why_;
  ASSERT_TRUE(m1.client().GlobalSet(R"({"acked":1})").ok());
  // Acknowledged means persisted by two peers: readable there at once.
  EXPECT_EQ(Globals(cluster_.at(1)), Globals(m1));
  EXPECT_EQ(Globals(cluster_.at(2)), Globals(m1));

  cluster_.at(2).Kill();
  auto r = m1.client().GlobalSet(R"({"acked":2})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), clustermgr::Code::kOutcomeUnknown);
  EXPECT_NE(r.status().message().find("outcome unknown"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(WaitUntil([&] { return Globals(cluster_.at(1)) == Globals(m1); }, 5s));
}

// One instance's wall clock runs 3 s fast (libfaketime), beyond --max-clock-offset-ms. A write
// made at another instance after it showed the fast one's write must win everywhere.
TEST_F(ReplicationTest, AWriteAfterAFastInstancesWriteWinsDespiteClockSkew) {
  const std::string faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  if (!std::filesystem::exists(faketime)) GTEST_SKIP() << "libfaketime is not installed";
  ASSERT_TRUE(cluster_.AddMany(1, kFast, &error_)) << error_;
  InstanceOptions fast;
  fast.name = "fast";
  fast.extra_args = kFast;
  fast.env = {{"LD_PRELOAD", faketime}, {"FAKETIME", "+3s"}, {"DONT_FAKE_MONOTONIC", "1"}};
  ASSERT_TRUE(cluster_.Add(fast, &error_)) << error_;
  InstanceOptions third;
  third.name = "m3";
  third.extra_args = kFast;
  ASSERT_TRUE(cluster_.Add(third, &error_)) << error_;
  auto& a = cluster_.at(0);
  auto& b = cluster_.at(1);
  ASSERT_TRUE(cluster_.WaitConverged(10s, &why_)) << why_;

  ASSERT_TRUE(b.client().GlobalSet(R"({"k":"fromB"})").ok());
  ASSERT_TRUE(WaitUntil([&] { return Globals(a) == Globals(b); }, 10s)) << Globals(a);
  ASSERT_TRUE(a.client().GlobalSet(R"({"k":"fromA"})").ok());
  ASSERT_TRUE(cluster_.WaitConverged(10s, &why_)) << why_;
  for (size_t i = 0; i < cluster_.size(); ++i) {
    EXPECT_EQ(Globals(cluster_.at(i)), R"({"k":"fromA"})") << cluster_.at(i).name();
  }
  // The skew is reported by the instances that saw it.
  auto status = a.client().Status();
  ASSERT_TRUE(status.ok());
  EXPECT_GT(Counter(status.value(), "clock_refusals"), 0u);
  EXPECT_GE(Counter(status.value(), "clock_skew_ms"), 2000u);
}

// A wildcard --gossip-bind is not an address peers can dial: messages carry the advertised
// endpoint instead, given (--gossip-advertise) or else the interface's address.
TEST_F(ReplicationTest, AWildcardGossipBindIsAdvertisedAsAReachableEndpoint) {
  ASSERT_TRUE(cluster_.AddMany(1, kFast, &error_)) << error_;
  InstanceOptions wild;
  wild.name = "wild";
  wild.extra_args = kFast;
  wild.gossip_bind = "tcp://0.0.0.0:PORT";
  ASSERT_TRUE(cluster_.Add(wild, &error_)) << error_;
  InstanceOptions told;
  told.name = "told";
  told.extra_args = kFast;
  told.gossip_bind = "tcp://*:PORT";
  told.gossip_advertise = "tcp://127.0.0.1:PORT";
  ASSERT_TRUE(cluster_.Add(told, &error_)) << error_;
  auto& m1 = cluster_.at(0);
  std::map<std::string, std::string> seen;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto members = m1.client().Members();
        if (!members.ok()) return false;
        seen.clear();
        for (const auto& m : members.value()) seen[m.name] = m.gossip_endpoint;
        return seen.count("wild") && seen.count("told");
      },
      10s));
  EXPECT_EQ(seen["wild"].find("0.0.0.0"), std::string::npos) << seen["wild"];
  EXPECT_EQ(seen["wild"].find('*'), std::string::npos) << seen["wild"];
  EXPECT_EQ(seen["told"], cluster_.at(2).gossip_endpoint());
  ASSERT_TRUE(m1.client().GlobalSet(R"({"x":1})").ok());
  ASSERT_TRUE(cluster_.WaitConverged(10s, &why_)) << why_;
}

}  // namespace
}  // namespace clustermgr::test
