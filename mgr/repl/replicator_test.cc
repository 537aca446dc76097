// Unit tests of the replicator over FakeGossipNetwork: real replicas (LevelDB in temp dirs, not
// synced), a manual clock, and a network that drops, duplicates, reorders and partitions.
// Randomized tests print their seed; CLUSTERMGR_SEED replays one.
#include "mgr/repl/replicator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <span>

#include "net/testing/fake_gossip_transport.h"
#include "store/codec.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_seed.h"

namespace clustermgr::mgr {
namespace {

using crdt::ClusterState;
using net::FakeGossipNetwork;


constexpr uint64_t kStart = 1'700'000'000'000;

struct NodeOptions {
  uint64_t delta_log_limit = 10'000;
  ReplicatorOptions replicator;
  int64_t clock_offset_ms = 0;  // this instance's wall clock runs this far ahead
};

// One instance: replica + fake transport + replicator, restartable and wipeable.
class Node {
 public:
  Node(FakeGossipNetwork* net, std::string name, NodeOptions options, uint64_t now)
      : net_(net),
        name_(std::move(name)),
        options_(std::move(options)),
        clock_(now + options_.clock_offset_ms) {
    Open();
  }

  void Open() {
    Replica::Options ro;
    ro.name = name_;
    ro.data_dir = dir_->Sub("data");
    ro.sync = false;
    ro.delta_log_limit = options_.delta_log_limit;
    auto r = Replica::Open(ro, &clock_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    replica_ = std::move(r).value();
    transport_ = net_->Attach(endpoint());
    ReplicatorOptions o = options_.replicator;
    o.rpc_endpoint = "tcp://" + name_ + ":1";
    replicator_ = std::make_unique<Replicator>(o, replica_.get(), transport_.get());
    replica_->AddObserver([this](const crdt::Delta& d) { replicator_->OnLocalDelta(d); });
  }
  // A crash: everything in memory and in flight to it is lost; the data dir stays.
  void Close() {
    replicator_.reset();
    transport_.reset();
    replica_.reset();
  }
  void Restart() {
    Close();
    Open();
  }
  void Wipe() {
    Close();
    dir_ = std::make_unique<TempDir>("replicator-test");
    Open();
  }
  bool up() const { return replicator_ != nullptr; }
  // Copies the (closed) data dir to `to`, or back from it.
  void CopyDataTo(const std::string& to) {
    std::filesystem::copy(dir_->Sub("data"), to, std::filesystem::copy_options::recursive);
  }
  void RestoreDataFrom(const std::string& from) {
    std::filesystem::remove_all(dir_->Sub("data"));
    std::filesystem::copy(from, dir_->Sub("data"), std::filesystem::copy_options::recursive);
  }

  std::string endpoint() const { return "tcp://" + name_ + ":9008"; }
  Replica& replica() { return *replica_; }
  Replicator& replicator() { return *replicator_; }
  // Sets the wall clock to the cluster's time `now` plus this instance's offset.
  void SetTime(uint64_t now) { clock_.Set(now + options_.clock_offset_ms); }
  const std::string& name() const { return name_; }

  crdt::Delta Write(const std::function<void(crdt::DeltaBuilder&)>& build) {
    auto d = replica_->Write(build);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : crdt::Delta{};
  }

 private:
  FakeGossipNetwork* net_;
  std::string name_;
  NodeOptions options_;
  crdt::ManualClock clock_;
  std::unique_ptr<TempDir> dir_ = std::make_unique<TempDir>("replicator-test");
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<net::FakeGossipTransport> transport_;
  std::unique_ptr<Replicator> replicator_;
};

class Cluster {
 public:
  explicit Cluster(uint64_t seed) : net_(seed), rng_(seed) {}

  Node& Add(const std::string& name, NodeOptions options = {}) {
    nodes_.push_back(std::make_unique<Node>(&net_, name, std::move(options), now_));
    return *nodes_.back();
  }
  // Every node gets every other as --peer.
  void ConnectAll() {
    for (auto& a : nodes_) {
      for (auto& b : nodes_) {
        if (a == b) continue;
        ASSERT_TRUE(a->replicator().AddPeer(b->endpoint()).ok());
      }
    }
  }

  // Lets every up node handle its messages until the network is quiet (or `max_rounds`).
  void Pump(int max_rounds = 1000) {
    for (int i = 0; i < max_rounds; ++i) {
      for (auto& n : nodes_) {
        if (n->up()) n->replicator().Poll(now_);
      }
      if (net_.pending() == 0) return;
    }
  }
  // Time passes: clocks move, every node ticks, then messages flow.
  void Tick(uint64_t ms = 100) {
    now_ += ms;
    for (auto& n : nodes_) {
      n->SetTime(now_);
      if (n->up()) n->replicator().Tick(now_);
    }
    Pump();
  }
  // Ticks until every up node has the same applied vector and state, and no tombstones remain
  // (when `tombstones_gone`), or `max_ms` of simulated time passes.
  bool Settle(uint64_t max_ms = 60'000, bool tombstones_gone = true) {
    for (uint64_t t = 0; t < max_ms; t += 100) {
      Tick(100);
      if (Converged(tombstones_gone)) return true;
    }
    return false;
  }
  bool Converged(bool tombstones_gone = false) {
    Node* first = nullptr;
    for (auto& n : nodes_) {
      if (!n->up()) continue;
      if (n->replicator().fetching_snapshot() || n->replicator().buffered_deltas() > 0) {
        return false;
      }
      if (tombstones_gone && Tombstones(n->replica().state()) > 0) return false;
      if (!first) {
        first = n.get();
        continue;
      }
      if (!(n->replica().Applied() == first->replica().Applied())) return false;
      if (!(Live(n->replica().state()) == Live(first->replica().state()))) return false;
    }
    return true;
  }
  void ExpectConverged() {
    Node* first = nullptr;
    for (auto& n : nodes_) {
      if (!n->up()) continue;
      if (!first) {
        first = n.get();
        continue;
      }
      EXPECT_EQ(n->replica().Applied(), first->replica().Applied())
          << n->name() << " vs " << first->name();
      EXPECT_TRUE(n->replica().state() == first->replica().state())
          << n->name() << " vs " << first->name();
    }
  }

  static size_t Tombstones(const ClusterState& s) {
    return s.globals.tombstones() + s.node_vars.tombstones() + s.inventory.tombstones() +
           s.jobs.tombstones() + s.job_logs.tombstones() + s.config.tombstones();
  }
  // The state without tombstones (what a client can see).
  static ClusterState Live(ClusterState s) {
    crdt::VersionVector all;
    auto cover = [&](const auto& map) {
      for (const auto& [k, e] : map.entries()) all.Advance(e.tag.stamp.origin, e.tag.seq);
    };
    cover(s.globals);
    cover(s.node_vars);
    cover(s.inventory);
    cover(s.jobs);
    cover(s.job_logs);
    cover(s.config);
    s.CollectTombstones(all);
    return s;
  }

  // A random write at `n`: globals, node vars, host-groups, config, inventory.
  void RandomWrite(Node& n) {
    auto pick = [&](const char* p, int pool) {
      return std::string(p) + std::to_string(rng_() % static_cast<uint64_t>(pool));
    };
    const std::string value = "{\"v\":" + std::to_string(rng_() % 1000) + "}";
    const int op = static_cast<int>(rng_() % 9);
    const std::string node = pick("n", 6), group = rng_() % 2 ? "master" : "worker";
    const std::string g = pick("g", 12), var = pick("var", 4), c = pick("c", 4);
    n.Write([&](crdt::DeltaBuilder& b) {
      switch (op) {
        case 0:
        case 1:
          b.SetGlobal(g, value);
          break;
        case 2:
          b.EraseGlobal(g);
          break;
        case 3:
          b.SetNodeVar(node, var, value);
          break;
        case 4:
          b.EraseNodeVar(node, var);
          break;
        case 5:
          b.AddHostGroup(node, group);
          break;
        case 6:
          b.RemoveHostGroup(node, group);
          break;
        case 7:
          b.SetConfig(c, value);
          break;
        default: {
          crdt::InventoryRecord r;
          r.addr = "10.0.0." + std::to_string(rng_() % 250);
          b.PutNode(node, r);
        }
      }
    });
  }

  FakeGossipNetwork& net() { return net_; }
  Node& node(size_t i) { return *nodes_[i]; }
  uint64_t now() const { return now_; }
  uint64_t Rand(uint64_t n) { return rng_() % n; }

 private:
  FakeGossipNetwork net_;
  std::mt19937_64 rng_;
  uint64_t now_ = kStart;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST(ReplicatorTest, ThreeInstancesConvergeOnWritesEverywhere) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b", "c"}) c.Add(name);
  c.ConnectAll();
  c.Tick();
  for (int i = 0; i < 300; ++i) {
    c.RandomWrite(c.node(c.Rand(3)));
    if (c.Rand(4) == 0) c.Pump();
    if (c.Rand(20) == 0) c.Tick(10);
  }
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  // Gossip did the work: few gaps, and the deltas were applied by the other two.
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(c.node(i).replicator().counters().deltas_applied, 0u);
    EXPECT_EQ(c.node(i).replicator().counters().bad_messages, 0u);
  }
}

TEST(ReplicatorTest, TrafficIsCountedPerPeerInstance) {
  Cluster c(TestSeed());
  Node& a = c.Add("a");
  Node& b = c.Add("b");
  c.ConnectAll();
  c.Tick();
  a.Write([](crdt::DeltaBuilder& d) { d.SetGlobal("k", "1"); });
  c.Pump();
  ASSERT_TRUE(c.Settle());
  // a published one delta to every subscriber; b counts it (and a's anti-entropy) under "a".
  const auto& out = a.replicator().traffic();
  ASSERT_TRUE(out.count(Replicator::kAllPeers));
  EXPECT_EQ(out.at(Replicator::kAllPeers).messages_out, 1u);
  ASSERT_TRUE(out.count("b"));
  EXPECT_GT(out.at("b").messages_out, 0u);  // anti-entropy requests and replies
  const auto& in = b.replicator().traffic();
  ASSERT_TRUE(in.count("a"));
  EXPECT_GT(in.at("a").messages_in, out.at(Replicator::kAllPeers).messages_out - 1);
  EXPECT_FALSE(in.count("unknown"));
}

TEST(ReplicatorTest, ConcurrentWritesToOneKeyPickTheSameWinnerEverywhere) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b", "c"}) c.Add(name);
  c.ConnectAll();
  c.Tick();
  // Same physical time everywhere: the HLC counters and then the origins decide.
  for (int i = 0; i < 3; ++i) {
    c.node(i).Write([&](crdt::DeltaBuilder& b) { b.SetGlobal("k", std::to_string(i)); });
  }
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  const std::string* winner = c.node(0).replica().state().globals.Get("k");
  ASSERT_NE(winner, nullptr);
  for (int i = 1; i < 3; ++i) EXPECT_EQ(*c.node(i).replica().state().globals.Get("k"), *winner);
}

TEST(ReplicatorTest, ConvergesDespiteDropsDuplicatesAndReordering) {
  Cluster c(TestSeed());
  NodeOptions o;
  o.replicator.sync_timeout_ms = 300;
  o.replicator.fetch_retry_ms = 200;
  for (const char* name : {"a", "b", "c"}) c.Add(name, o);
  c.ConnectAll();
  c.net().set_faults({0.3, 0.2, 0.3});
  for (int i = 0; i < 300; ++i) {
    c.RandomWrite(c.node(c.Rand(3)));
    if (c.Rand(3) == 0) c.Pump();
    if (c.Rand(10) == 0) c.Tick(50);
  }
  ASSERT_TRUE(c.Settle(120'000)) << "no convergence with faults on";
  c.ExpectConverged();
  EXPECT_GT(c.net().dropped(), 0u);
  EXPECT_GT(c.net().duplicated(), 0u);
  uint64_t duplicates = 0, gaps = 0;
  for (int i = 0; i < 3; ++i) {
    duplicates += c.node(i).replicator().counters().deltas_duplicate;
    gaps += c.node(i).replicator().counters().gaps;
  }
  EXPECT_GT(duplicates, 0u);
  EXPECT_GT(gaps, 0u);
}

TEST(ReplicatorTest, PartitionHeals) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b", "c"}) c.Add(name);
  c.ConnectAll();
  c.Tick();
  const std::string a = c.node(0).endpoint();
  c.net().Partition(a, c.node(1).endpoint());
  c.net().Partition(a, c.node(2).endpoint());
  for (int i = 0; i < 100; ++i) {
    c.RandomWrite(c.node(c.Rand(3)));
    if (c.Rand(5) == 0) c.Tick(50);
  }
  c.Tick(1000);
  EXPECT_FALSE(c.Converged());
  c.net().HealAll();
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
}

TEST(ReplicatorTest, AGapIsFilledAtOnceWithoutWaitingForTheNextRound) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b"}) c.Add(name);
  c.ConnectAll();
  ASSERT_TRUE(c.Settle());
  Node& a = c.node(0);
  Node& b = c.node(1);
  c.net().Partition(a.endpoint(), b.endpoint());
  a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("x", "1"); });  // b never hears of it
  c.Pump();
  c.net().HealAll();
  a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("y", "2"); });
  const uint64_t gaps = b.replicator().counters().gaps;
  c.Pump();  // no Tick: only the gap can trigger the sync
  EXPECT_GT(b.replicator().counters().gaps, gaps);
  ASSERT_NE(b.replica().state().globals.Get("x"), nullptr);
  ASSERT_NE(b.replica().state().globals.Get("y"), nullptr);
  EXPECT_EQ(b.replica().Applied().Get(a.replica().origin()), a.replica().last_seq());
}

TEST(ReplicatorTest, RestartedInstanceCatchesUpFromTheLog) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b", "c"}) c.Add(name);
  c.ConnectAll();
  ASSERT_TRUE(c.Settle());
  c.node(2).Close();  // crash
  for (int i = 0; i < 200; ++i) c.RandomWrite(c.node(c.Rand(2)));
  c.Tick();
  c.node(2).Open();
  ASSERT_TRUE(c.node(2).replicator().AddPeer(c.node(0).endpoint()).ok());
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  EXPECT_EQ(c.node(2).replicator().counters().snapshots_applied, 0u);
}

TEST(ReplicatorTest, ATrimmedLogIsBridgedByAChunkedSnapshot) {
  Cluster c(TestSeed());
  NodeOptions o;
  o.delta_log_limit = 5;
  o.replicator.chunk.max_entries = 7;
  o.replicator.chunk.max_bytes = 4096;
  o.replicator.snapshot_window = 2;
  for (const char* name : {"a", "b"}) c.Add(name, o);
  c.ConnectAll();
  Node& a = c.node(0);
  Node& b = c.node(1);
  // Shared history, including host-group elements b will have to drop.
  for (int i = 0; i < 20; ++i) {
    a.Write([&](crdt::DeltaBuilder& w) { w.AddHostGroup("n" + std::to_string(i), "master"); });
  }
  b.Write([](crdt::DeltaBuilder& w) { w.AddHostGroup("b-only", "worker"); });
  ASSERT_TRUE(c.Settle());
  b.Close();
  for (int i = 0; i < 10; ++i) {
    a.Write([&](crdt::DeltaBuilder& w) { w.RemoveHostGroup("n" + std::to_string(i), "master"); });
  }
  a.Write([](crdt::DeltaBuilder& w) { w.RemoveHostGroup("b-only", "worker"); });
  for (int i = 0; i < 100; ++i) {
    a.Write([&](crdt::DeltaBuilder& w) { w.SetGlobal("g" + std::to_string(i), "{}"); });
  }
  b.Open();
  ASSERT_TRUE(b.replicator().AddPeer(a.endpoint()).ok());
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  EXPECT_EQ(b.replicator().counters().snapshots_applied, 1u);
  EXPECT_GT(b.replicator().counters().chunks_applied, 10u);
  EXPECT_EQ(b.replica().state().HostGroups("n3").size(), 0u);
  EXPECT_EQ(b.replica().state().HostGroups("n15").size(), 1u);
  EXPECT_EQ(b.replica().state().HostGroups("b-only").size(), 0u);
  // Bounded messages: chunks within the byte target, replies within theirs.
  EXPECT_LE(c.net().largest().at("snapshotChunk"), 4096u + 1024u);
}

TEST(ReplicatorTest, SnapshotSurvivesLostChunksAndRequests) {
  Cluster c(TestSeed());
  NodeOptions o;
  o.delta_log_limit = 3;
  o.replicator.chunk.max_entries = 5;
  o.replicator.fetch_retry_ms = 200;
  o.replicator.sync_timeout_ms = 300;
  for (const char* name : {"a", "b"}) c.Add(name, o);
  Node& a = c.node(0);
  for (int i = 0; i < 200; ++i) {
    a.Write([&](crdt::DeltaBuilder& w) { w.SetGlobal("g" + std::to_string(i), "{}"); });
  }
  c.ConnectAll();
  c.net().set_faults({0.25, 0.1, 0.2});
  ASSERT_TRUE(c.Settle(120'000));
  c.ExpectConverged();
  EXPECT_GE(c.node(1).replicator().counters().snapshots_applied, 1u);
}

TEST(ReplicatorTest, AWipedInstanceRestoresEverything) {
  Cluster c(TestSeed());
  NodeOptions o;
  o.delta_log_limit = 50;
  for (const char* name : {"a", "b", "c"}) c.Add(name, o);
  c.ConnectAll();
  for (int i = 0; i < 300; ++i) {
    c.RandomWrite(c.node(c.Rand(3)));
    if (c.Rand(4) == 0) c.Pump();
  }
  ASSERT_TRUE(c.Settle());
  const std::string old_origin = c.node(2).replica().origin();
  c.node(2).Wipe();
  EXPECT_NE(c.node(2).replica().origin(), old_origin);
  ASSERT_TRUE(c.node(2).replicator().AddPeer(c.node(1).endpoint()).ok());
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  // The old incarnation's writes came back from the peers.
  EXPECT_GT(c.node(2).replica().Applied().Get(old_origin), 0u);
}

TEST(ReplicatorTest, RepliesAreBoundedAndMoreIsFetchedAtOnce) {
  Cluster c(TestSeed());
  NodeOptions o;
  o.replicator.max_reply_deltas = 10;
  o.replicator.max_reply_bytes = 2048;
  for (const char* name : {"a", "b"}) c.Add(name, o);
  Node& a = c.node(0);
  for (int i = 0; i < 100; ++i) {
    a.Write([&](crdt::DeltaBuilder& w) {
      w.SetGlobal("g" + std::to_string(i), "\"" + std::string(100, 'x') + "\"");
    });
  }
  c.ConnectAll();
  c.Tick();  // one round: `more` chains the rest without waiting for further rounds
  EXPECT_EQ(c.node(1).replica().Applied().Get(a.replica().origin()), 100u);
  EXPECT_LE(c.net().largest().at("syncReply"), 2048u + 1024u);
  EXPECT_GE(c.node(1).replicator().counters().syncs_answered, 10u);
}

TEST(ReplicatorTest, TombstonesAreCollectedOnlyOnceEveryInstanceHasThem) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b", "c"}) c.Add(name);
  c.ConnectAll();
  ASSERT_TRUE(c.Settle());
  Node& a = c.node(0);
  a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("gone", "1"); });
  ASSERT_TRUE(c.Settle());
  c.node(2).Close();  // c is down: known but silent
  a.Write([](crdt::DeltaBuilder& w) { w.EraseGlobal("gone"); });
  for (int i = 0; i < 50; ++i) c.Tick(100);
  EXPECT_EQ(Cluster::Tombstones(a.replica().state()), 1u);
  EXPECT_EQ(Cluster::Tombstones(c.node(1).replica().state()), 1u);
  c.node(2).Open();
  ASSERT_TRUE(c.node(2).replicator().AddPeer(a.endpoint()).ok());
  ASSERT_TRUE(c.Settle(60'000, /*tombstones_gone=*/true));
  EXPECT_GT(a.replicator().counters().tombstones_collected, 0u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.node(i).replica().state().globals.Find("gone"), nullptr);
  }
}

TEST(ReplicatorTest, AnOlderConcurrentWriteDoesNotComeBackAfterCollection) {
  // b writes k while partitioned; a deletes k later (a higher stamp). a must not drop its
  // tombstone before b's older write has reached everyone, or it would come back.
  Cluster c(TestSeed());
  for (const char* name : {"a", "b", "c"}) c.Add(name);
  c.ConnectAll();
  ASSERT_TRUE(c.Settle());
  Node& a = c.node(0);
  Node& b = c.node(1);
  a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("k", "old"); });
  ASSERT_TRUE(c.Settle());
  c.net().Partition(b.endpoint(), a.endpoint());
  c.net().Partition(b.endpoint(), c.node(2).endpoint());
  b.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("k", "concurrent"); });
  c.Tick(1000);
  a.Write([](crdt::DeltaBuilder& w) { w.EraseGlobal("k"); });
  for (int i = 0; i < 30; ++i) c.Tick(100);
  ASSERT_NE(a.replica().state().globals.Find("k"), nullptr);
  EXPECT_TRUE(a.replica().state().globals.Find("k")->tombstone());  // kept: b is silent
  c.net().HealAll();
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.node(i).replica().state().globals.Find("k"), nullptr) << c.node(i).name();
  }
}

TEST(ReplicatorTest, AckReplicasWaitsForPeersOrReportsOutcomeUnknown) {
  Cluster c(TestSeed());
  NodeOptions o;
  o.replicator.ack_wanted = true;
  for (const char* name : {"a", "b", "c"}) c.Add(name, o);
  c.ConnectAll();
  ASSERT_TRUE(c.Settle());
  Node& a = c.node(0);
  std::optional<Status> result;
  auto d = a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("x", "1"); });
  a.replicator().AwaitReplicas(d.seq, 2, c.now(), 5000, [&](const Status& s) { result = s; });
  EXPECT_FALSE(result.has_value());
  c.Pump();  // publish, apply, report: no tick needed
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->ok()) << result->ToString();

  c.net().Partition(a.endpoint(), c.node(2).endpoint());
  result.reset();
  d = a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("x", "2"); });
  a.replicator().AwaitReplicas(d.seq, 2, c.now(), 1000, [&](const Status& s) { result = s; });
  c.Pump();
  EXPECT_FALSE(result.has_value());
  for (int i = 0; i < 11 && !result; ++i) c.Tick(100);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->code(), Code::kOutcomeUnknown);
  EXPECT_NE(result->message().find("only 1 of 2"), std::string::npos) << result->message();
}

TEST(ReplicatorTest, BadPeerMessagesAreCountedAndDropped) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b"}) c.Add(name);
  c.ConnectAll();
  ASSERT_TRUE(c.Settle());
  Node& a = c.node(0);
  Node& b = c.node(1);
  // An "evil" peer that a subscribes to, publishing garbage and lies.
  auto evil = c.net().Attach("tcp://evil:9008");
  ASSERT_TRUE(a.replicator().AddPeer("tcp://evil:9008").ok());
  ASSERT_TRUE(evil->Connect(a.endpoint()).ok());
  evil->Publish({{}, net::GossipDelta{"evil/1", 1, "garbage!", false}});
  crdt::Delta other{"evil/1", 1, {}};
  other.state.globals = crdt::LwwMap<std::string, std::string>::SetDelta(
      "z", "1", crdt::WriteTag{{0, crdt::HlcTimestamp::Make(kStart, 0), "evil/1"}, 1});
  // The payload says seq 1, the envelope seq 2 ... and then a mismatched origin.
  evil->Publish({{}, net::GossipDelta{"evil/1", 2, store::EncodeDelta(other), false}});
  evil->Publish({{}, net::GossipDelta{"evil/2", 1, store::EncodeDelta(other), false}});
  evil->Send(a.endpoint(), {{"evil", "evil/1", "tcp://evil:9008", ""}, net::SnapshotChunk{}});
  // A run that does not decode, and one cut short.
  evil->Publish({{}, net::GossipDeltaRun{"garbage run", false}});
  const std::string run = store::EncodeDeltaRun(std::span(&other, 1));
  evil->Publish({{}, net::GossipDeltaRun{run.substr(0, run.size() - 3), false}});
  c.Pump();
  EXPECT_GE(a.replicator().counters().bad_messages, 4u);
  EXPECT_EQ(a.replica().state().globals.Get("z"), nullptr);
  // Still working.
  b.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("fine", "1"); });
  c.Pump();
  EXPECT_NE(a.replica().state().globals.Get("fine"), nullptr);
}

TEST(ReplicatorTest, MembersReportLagPerOrigin) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b"}) c.Add(name);
  c.ConnectAll();
  ASSERT_TRUE(c.Settle());
  Node& a = c.node(0);
  Node& b = c.node(1);
  auto members = a.replicator().Members(c.now());
  ASSERT_EQ(members.size(), 2u);
  EXPECT_TRUE(members[0].self);
  EXPECT_EQ(members[1].name, "b");
  EXPECT_TRUE(members[1].alive);
  EXPECT_EQ(members[1].lag_deltas, 0);
  EXPECT_EQ(members[1].rpc_endpoint, "tcp://b:1");

  c.net().Partition(a.endpoint(), b.endpoint());
  for (int i = 0; i < 5; ++i) a.Write([&](crdt::DeltaBuilder& w) { w.SetGlobal("x", "1"); });
  for (int i = 0; i < 40; ++i) c.Tick(100);
  members = a.replicator().Members(c.now());
  EXPECT_FALSE(members[1].alive);
  ASSERT_EQ(members[1].lag_by_origin.size(), 1u);
  EXPECT_EQ(members[1].lag_by_origin[0].origin, a.replica().origin());
  EXPECT_EQ(members[1].lag_by_origin[0].count, 5u);
  auto peers = a.replicator().Peers(c.now());
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_FALSE(peers[0].connected);
}

TEST(ReplicatorTest, PeersFoundThroughSerfTagsAndInboundSyncs) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b", "c"}) c.Add(name);
  Node& a = c.node(0);
  // a learns b through Serf; c has a as --peer, so a learns c when c asks it for a sync.
  net::SerfNodeEvent e;
  e.kind = net::SerfNodeEvent::Kind::kDiscovered;
  e.subject = net::SerfNodeEvent::Subject::kManager;
  e.name = e.member = "b-serf";
  e.address = "10.1.1.1";
  e.tags = {{"role", "clustermgr"}, {"gossip", c.node(1).endpoint()}, {"rpc", "tcp://*:7"}};
  a.replicator().OnManagerEvent(e);
  ASSERT_TRUE(c.node(2).replicator().AddPeer(a.endpoint()).ok());
  c.node(1).Write([](crdt::DeltaBuilder& w) { w.SetGlobal("from-b", "1"); });
  c.node(2).Write([](crdt::DeltaBuilder& w) { w.SetGlobal("from-c", "1"); });
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  auto members = a.replicator().Members(c.now());
  ASSERT_EQ(members.size(), 3u);
  // A member that left is dropped.
  e.kind = net::SerfNodeEvent::Kind::kDisappeared;
  e.status = "left";
  a.replicator().OnManagerEvent(e);
  EXPECT_EQ(a.replicator().Members(c.now()).size(), 2u);
}

TEST(ReplicatorTest, PartialPeerListsGrowIntoAFullMeshAndSilentLearnedPeersAreForgotten) {
  Cluster c(TestSeed());
  NodeOptions o;
  o.replicator.forget_learned_ms = 5000;
  for (const char* name : {"a", "b", "c"}) c.Add(name, o);
  // a -> b -> c only.
  ASSERT_TRUE(c.node(0).replicator().AddPeer(c.node(1).endpoint()).ok());
  ASSERT_TRUE(c.node(1).replicator().AddPeer(c.node(2).endpoint()).ok());
  c.node(2).Write([](crdt::DeltaBuilder& w) { w.SetGlobal("from-c", "1"); });
  ASSERT_TRUE(c.Settle());
  for (int i = 0; i < 5; ++i) c.Tick(100);
  EXPECT_EQ(c.node(0).replicator().Members(c.now()).size(), 3u);
  EXPECT_EQ(c.node(2).replicator().Members(c.now()).size(), 3u);
  // Gossip now flows directly from c to a.
  const uint64_t before = c.node(0).replicator().counters().deltas_received;
  c.node(2).Write([](crdt::DeltaBuilder& w) { w.SetGlobal("direct", "1"); });
  c.Pump();
  EXPECT_NE(c.node(0).replica().state().globals.Get("direct"), nullptr);
  EXPECT_GT(c.node(0).replicator().counters().deltas_received, before);
  // c goes away for good: a forgets it (learned), b keeps it (configured).
  c.node(2).Close();
  for (int i = 0; i < 80; ++i) c.Tick(100);
  EXPECT_EQ(c.node(0).replicator().Members(c.now()).size(), 2u);
  EXPECT_EQ(c.node(1).replicator().Members(c.now()).size(), 3u);
}

TEST(ReplicatorTest, AnInstanceRestoredFromAnOlderCopyTakesItsLostDeltasBackBeforeWritingOn) {
  Cluster c(TestSeed());
  for (const char* name : {"a", "b"}) c.Add(name);
  c.ConnectAll();
  Node& a = c.node(0);
  for (int i = 0; i < 3; ++i) a.Write([&](crdt::DeltaBuilder& w) { w.SetGlobal("x", "1"); });
  ASSERT_TRUE(c.Settle());
  TempDir backup("replicator-backup");
  a.Close();
  a.CopyDataTo(backup.Sub("copy"));
  a.Open();
  ASSERT_TRUE(a.replicator().AddPeer(c.node(1).endpoint()).ok());
  for (int i = 0; i < 3; ++i) a.Write([&](crdt::DeltaBuilder& w) { w.SetGlobal("y", "2"); });
  ASSERT_TRUE(c.Settle());
  a.Close();
  a.RestoreDataFrom(backup.Sub("copy"));  // three deltas older than b knows
  a.Open();
  ASSERT_TRUE(a.replicator().AddPeer(c.node(1).endpoint()).ok());
  ASSERT_TRUE(c.Settle());
  EXPECT_EQ(a.replica().last_seq(), 6u);
  auto d = a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("z", "3"); });
  EXPECT_EQ(d.seq, 7u);
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  EXPECT_NE(c.node(1).replica().state().globals.Get("z"), nullptr);
}

// Two peers: a, its wall clock on time, and b, 3 s fast (beyond the 500 ms offset limit).
std::pair<Node&, Node&> OnTimeAndFast(Cluster& c) {
  NodeOptions fast;
  fast.clock_offset_ms = 3000;
  Node& a = c.Add("a");
  Node& b = c.Add("b", fast);
  c.ConnectAll();
  return {a, b};
}

TEST(ReplicatorTest, AWriteMadeAfterSeeingAFastPeersWriteWinsOverIt) {
  // b's wall clock runs 3 s ahead, beyond the 500 ms offset limit. a writes the key after it
  // has applied b's write: its write must order above, whatever a's wall clock says.
  Cluster c(TestSeed());
  auto [a, b] = OnTimeAndFast(c);
  ASSERT_TRUE(c.Settle());
  b.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("k", "\"fromB\""); });
  c.Pump();
  ASSERT_NE(a.replica().state().globals.Get("k"), nullptr);
  ASSERT_EQ(*a.replica().state().globals.Get("k"), "\"fromB\"");
  a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("k", "\"fromA\""); });
  ASSERT_TRUE(c.Settle());
  for (Node* n : {&a, &b}) {
    ASSERT_NE(n->replica().state().globals.Get("k"), nullptr) << n->name();
    EXPECT_EQ(*n->replica().state().globals.Get("k"), "\"fromA\"") << n->name();
  }
  // The skew is reported, not silently absorbed.
  EXPECT_GT(a.replica().clock_refusals(), 0u);
  EXPECT_GE(a.replica().clock_skew_ms(), 2500u);
}

TEST(ReplicatorTest, AppliedPeerStampsRaiseThePersistedClockHighWater) {
  // After a restart the clock starts at the persisted high-water: it must cover the stamps of
  // peers' entries this instance applied (deltas and snapshots), not only its own.
  Cluster c(TestSeed());
  auto [a, b] = OnTimeAndFast(c);
  b.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("k", "1"); });
  ASSERT_TRUE(c.Settle());
  const crdt::HlcTimestamp peer = b.replica().state().globals.Find("k")->tag.stamp.hlc;
  EXPECT_GE(a.replica().store().metadata().hlc_high_water, peer);
  a.Restart();
  EXPECT_GT(a.replica().clock().Now(), peer);
}

TEST(ReplicatorTest, AValueDeletedLongAgoDoesNotComeBackToARestoringInstance) {
  // w writes k; d deletes it; the tombstone is collected and d's log trimmed. A new instance
  // that asks w for the state gets w's still-logged old write of k in one reply and a snapshot
  // (which lacks k) in the next: k must stay deleted.
  Cluster c(TestSeed());
  NodeOptions o;
  o.delta_log_limit = 3;
  o.replicator.max_reply_deltas = 1;
  Node& w = c.Add("a-writer", o);
  Node& d = c.Add("b-deleter", o);
  c.ConnectAll();
  w.Write([](crdt::DeltaBuilder& b) { b.SetGlobal("k", "\"old\""); });
  ASSERT_TRUE(c.Settle());
  d.Write([](crdt::DeltaBuilder& b) { b.EraseGlobal("k"); });
  for (int i = 0; i < 10; ++i) {
    d.Write([&](crdt::DeltaBuilder& b) { b.SetGlobal("d" + std::to_string(i), "1"); });
  }
  ASSERT_TRUE(c.Settle());  // tombstones collected
  ASSERT_EQ(d.replica().state().globals.Find("k"), nullptr);
  Node& n = c.Add("c-new", o);
  ASSERT_TRUE(n.replicator().AddPeer(w.endpoint()).ok());
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  EXPECT_EQ(n.replica().state().globals.Get("k"), nullptr);
}

TEST(ReplicatorTest, ASnapshotRemovesEntriesItCoversButNoLongerHolds) {
  // An entry this instance applied long ago whose delete the snapshot's sender has applied and
  // collected: the snapshot covers its write but no longer holds it, so it goes.
  Cluster c(TestSeed());
  NodeOptions o;
  o.delta_log_limit = 2;
  Node& a = c.Add("a", o);
  Node& b = c.Add("b", o);
  c.ConnectAll();
  a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("k", "\"v\""); });
  ASSERT_TRUE(c.Settle());
  b.Close();
  a.Write([](crdt::DeltaBuilder& w) { w.EraseGlobal("k"); });
  for (int i = 0; i < 5; ++i) {
    a.Write([&](crdt::DeltaBuilder& w) { w.SetGlobal("g" + std::to_string(i), "1"); });
  }
  // a collects without b, as it does once b, silent for long, is no longer among its peers.
  ASSERT_TRUE(a.replica().store().CollectTombstones(a.replica().Applied()).ok());
  ASSERT_EQ(a.replica().state().globals.Find("k"), nullptr);
  b.Open();
  ASSERT_TRUE(b.replicator().AddPeer(a.endpoint()).ok());
  ASSERT_TRUE(c.Settle());
  EXPECT_EQ(b.replicator().counters().snapshots_applied, 1u);
  EXPECT_EQ(b.replica().state().globals.Get("k"), nullptr);
  c.ExpectConverged();
}

TEST(ReplicatorTest, AnInstanceRestoredFromAnOlderCopyRaisesItsSeqFromASnapshot) {
  // As above, but b's log of a's deltas no longer reaches back: a learns its own history from
  // a snapshot, and its next write must take a seq above it (or b drops it as a duplicate).
  Cluster c(TestSeed());
  NodeOptions o;
  o.delta_log_limit = 2;
  Node& a = c.Add("a", o);
  c.Add("b", o);
  c.ConnectAll();
  a.Write([&](crdt::DeltaBuilder& w) { w.SetGlobal("x", "1"); });
  ASSERT_TRUE(c.Settle());
  TempDir backup("replicator-backup");
  a.Close();
  a.CopyDataTo(backup.Sub("copy"));
  a.Open();
  ASSERT_TRUE(a.replicator().AddPeer(c.node(1).endpoint()).ok());
  for (int i = 0; i < 6; ++i) {
    a.Write([&](crdt::DeltaBuilder& w) { w.SetGlobal("y" + std::to_string(i), "2"); });
  }
  ASSERT_TRUE(c.Settle());
  a.Close();
  a.RestoreDataFrom(backup.Sub("copy"));
  a.Open();
  ASSERT_TRUE(a.replicator().AddPeer(c.node(1).endpoint()).ok());
  ASSERT_TRUE(c.Settle());
  EXPECT_EQ(a.replicator().counters().snapshots_applied, 1u);
  EXPECT_EQ(a.replica().last_seq(), 7u);
  EXPECT_EQ(a.replica().store().metadata().local_seq, 7u);
  auto d = a.Write([](crdt::DeltaBuilder& w) { w.SetGlobal("z", "3"); });
  EXPECT_EQ(d.seq, 8u);
  ASSERT_TRUE(c.Settle());
  c.ExpectConverged();
  EXPECT_NE(c.node(1).replica().state().globals.Get("z"), nullptr);
}

}  // namespace
}  // namespace clustermgr::mgr
