// NodeInfoCache against a real Replica (LevelDB in a temp dir, not synced): after every kind of
// change the state can take - local writes, peers' deltas, snapshot chunks, a reopened store -
// each read equals a fresh build from the state. The randomized test prints its seed;
// CLUSTERMGR_SEED replays one.
#include "mgr/reads/node_info_cache.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <random>
#include <vector>

#include "crdt/hlc.h"
#include "store/testing/random_replica.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_seed.h"

namespace clustermgr::mgr {
namespace {


// Every live node built afresh from the state: what the cache must answer.
net::NodeList Rebuilt(const crdt::ClusterState& state) {
  net::NodeList list;
  for (const auto& [name, entry] : state.inventory.entries()) {
    if (!entry.tombstone()) list.nodes.push_back(BuildNodeInfo(state, name, *entry.value));
  }
  return list;
}

class NodeInfoCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Replica::Options o;
    o.name = "m1";
    o.data_dir = dir_.Sub("data");
    o.sync = false;
    auto r = Replica::Open(o, &clock_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    replica_ = std::move(r).value();
  }

  void Write(const std::function<void(crdt::DeltaBuilder&)>& build) {
    auto w = replica_->Write(build);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
  }

  static crdt::InventoryRecord Record(const std::string& addr, const std::string& serf) {
    crdt::InventoryRecord rec;
    rec.addr = addr;
    rec.state = crdt::NodeState::kDiscovered;
    rec.tags = {{"NodeLabel", "web"}, {"NodeSerial", "1"}};
    rec.serf_status = serf;
    return rec;
  }

  TempDir dir_;
  crdt::ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Replica> replica_;
};

TEST_F(NodeInfoCacheTest, BuildsTheReadFormOfANode) {
  Write([](crdt::DeltaBuilder& b) {
    b.PutNode("web-1", Record("10.0.0.1", "alive"));
    b.AddHostGroup("web-1", "service-worker");
    b.AddHostGroup("web-1", "base");
    b.SetNodeVar("web-1", "dns", "\"10.0.0.53\"");
    b.SetNodeVar("web-1", "rack", "{\"row\":4}");
  });
  NodeInfoCache cache(replica_.get());
  const net::NodeInfo* info = cache.Find("web-1");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "web-1");
  EXPECT_EQ(info->addr, "10.0.0.1");
  EXPECT_EQ(info->state, net::NodeState::kDiscovered);
  EXPECT_EQ(info->status, net::NodeStatus::kUnallocated);
  EXPECT_EQ(info->host_groups, (std::vector<std::string>{"base", "service-worker"}));
  EXPECT_EQ(info->monitoring,
            (std::vector<std::pair<std::string, std::string>>{
                {"NodeLabel", "web"}, {"NodeSerial", "1"}, {"serf_status", "alive"}}));
  EXPECT_EQ(info->extra_vars, R"({"dns":"10.0.0.53","rack":{"row":4}})");
  EXPECT_EQ(cache.Find("web-2"), nullptr);
}

TEST_F(NodeInfoCacheTest, AVarNameThatIsNotUtf8DoesNotFailTheRead) {
  Write([](crdt::DeltaBuilder& b) {
    b.PutNode("a", Record("10.0.0.1", "alive"));
    b.SetNodeVar("a", std::string("v\xff", 2), "1");
  });
  NodeInfoCache cache(replica_.get());
  const net::NodeInfo* info = cache.Find("a");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->extra_vars, "{\"v\xef\xbf\xbd\":1}");
}

TEST_F(NodeInfoCacheTest, AReadWithoutAChangeCopiesAndAChangeRebuildsOnlyItsNode) {
  Write([](crdt::DeltaBuilder& b) {
    for (int i = 0; i < 50; ++i) b.PutNode("n" + std::to_string(i), Record("10.0.0.1", "alive"));
  });
  NodeInfoCache cache(replica_.get());
  EXPECT_EQ(cache.List(), Rebuilt(replica_->state()));
  EXPECT_EQ(cache.builds(), 50u);
  EXPECT_EQ(cache.List(), Rebuilt(replica_->state()));
  ASSERT_NE(cache.Find("n7"), nullptr);
  EXPECT_EQ(cache.builds(), 50u) << "nothing changed: nothing rebuilt";

  Write([](crdt::DeltaBuilder& b) { b.SetNodeVar("n7", "dns", "\"x\""); });
  Write([](crdt::DeltaBuilder& b) { b.SetGlobal("ntp", "\"y\""); });  // no node's
  EXPECT_EQ(*cache.Find("n7"),
            BuildNodeInfo(replica_->state(), "n7", *replica_->state().Node("n7")));
  EXPECT_EQ(cache.List(), Rebuilt(replica_->state()));
  EXPECT_EQ(cache.builds(), 51u);

  // A host-group removed by a peer's delta (which names no node, only the dots it removes).
  Write([](crdt::DeltaBuilder& b) { b.AddHostGroup("n3", "web"); });
  ASSERT_EQ(cache.Find("n3")->host_groups, std::vector<std::string>{"web"});
  crdt::ClusterState seen = replica_->state();
  crdt::DeltaBuilder remove(
      seen, crdt::WriteTag{{1, crdt::HlcTimestamp::Make(1'800'000'000'000, 0), "peer/1"}, 1});
  remove.RemoveHostGroup("n3", "web");
  ASSERT_TRUE(replica_->ApplyRemote({crdt::Delta{"peer/1", 1, std::move(remove).Take()}}).ok());
  EXPECT_TRUE(cache.Find("n3")->host_groups.empty());
  EXPECT_EQ(cache.List(), Rebuilt(replica_->state()));
}

TEST_F(NodeInfoCacheTest, ASnapshotChunkThatDropsNodesEmptiesTheCache) {
  Write([](crdt::DeltaBuilder& b) {
    b.PutNode("a", Record("10.0.0.1", "alive"));
    b.PutNode("b", Record("10.0.0.2", "alive"));
  });
  NodeInfoCache cache(replica_.get());
  ASSERT_EQ(cache.List().nodes.size(), 2u);
  // A peer's whole snapshot covers this instance's writes and holds none of them: they go.
  crdt::VersionVector covered;
  covered.Advance(replica_->origin(), replica_->last_seq());
  crdt::StateKeys none;
  ASSERT_TRUE(replica_->ApplySnapshotChunk(crdt::ClusterState{}, covered, {}, &none).ok());
  ASSERT_EQ(replica_->state().Node("a"), nullptr);
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_TRUE(cache.List().nodes.empty());
}

// Random changes of every kind, random reads between them: every read equals a fresh build.
TEST_F(NodeInfoCacheTest, EqualsAFreshBuildAfterEveryKindOfChange) {
  const uint64_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  NodeInfoCache cache(replica_.get());
  std::vector<store::RandomReplica> peers;
  peers.emplace_back("p1/1", seed + 1);
  peers.emplace_back("p2/1", seed + 2);
  auto node = [&] { return "n" + std::to_string(rng() % 8); };  // RandomReplica's pool too
  auto check = [&](int step) {
    const crdt::ClusterState& state = replica_->state();
    for (int k = 0; k < 3; ++k) {
      const std::string name = node();
      const crdt::InventoryRecord* rec = state.Node(name);
      const net::NodeInfo* got = cache.Find(name);
      if (rec == nullptr) {
        ASSERT_EQ(got, nullptr) << "step " << step << " node " << name;
      } else {
        ASSERT_NE(got, nullptr) << "step " << step << " node " << name;
        ASSERT_EQ(*got, BuildNodeInfo(state, name, *rec)) << "step " << step << " node " << name;
      }
    }
    if (rng() % 2) {
      ASSERT_EQ(cache.List(), Rebuilt(state)) << "step " << step;
    }
  };
  for (int step = 0; step < 400; ++step) {
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2: {  // a local write of node sections (and now and then of something else)
        Write([&](crdt::DeltaBuilder& b) {
          const int ops = 1 + static_cast<int>(rng() % 4);
          for (int i = 0; i < ops; ++i) {
            const std::string n = node();
            switch (rng() % 7) {
              case 0:
                b.PutNode(n, Record("10.0.0." + std::to_string(rng() % 9),
                                    rng() % 2 ? "alive" : "failed"));
                break;
              case 1:
                b.SetNodeVar(n, "v" + std::to_string(rng() % 3), std::to_string(rng() % 100));
                break;
              case 2:
                b.EraseNodeVar(n, "v" + std::to_string(rng() % 3));
                break;
              case 3:
                b.AddHostGroup(n, rng() % 2 ? "service-master" : "service-worker");
                break;
              case 4:
                b.RemoveHostGroup(n, rng() % 2 ? "service-master" : "service-worker");
                break;
              case 5:
                b.SetHostGroups(
                    n, rng() % 2 ? std::vector<std::string>{"base"} : std::vector<std::string>{});
                break;
              default:
                b.SetGlobal("g", "1");
                break;
            }
          }
        });
        break;
      }
      case 3:
      case 4:
      case 5: {  // a batch of peers' deltas; the peers also learn of this instance's writes, so
                 // their removes cover its dots
        std::vector<crdt::Delta> batch;
        const int n = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < n; ++i) {
          store::RandomReplica& p = peers[rng() % peers.size()];
          p.Receive(crdt::Delta{replica_->origin(), 0, replica_->state()});
          batch.push_back(p.Next());
        }
        ASSERT_TRUE(replica_->ApplyRemote(batch).ok());
        break;
      }
      case 6: {  // a snapshot chunk from a peer, now and then the whole snapshot covering this
                 // instance's writes it lacks (they are dropped)
        store::RandomReplica& p = peers[rng() % peers.size()];
        crdt::VersionVector covered;
        covered.Advance(p.origin(), p.seq());
        crdt::StateKeys keys;
        keys.Add(p.state());
        const bool whole = rng() % 2;
        if (whole) covered.Advance(replica_->origin(), replica_->last_seq());
        ASSERT_TRUE(
            replica_->ApplySnapshotChunk(p.state(), covered, p.hlc(), whole ? &keys : nullptr)
                .ok());
        break;
      }
      default:
        ASSERT_TRUE(replica_->Recover().ok());
        break;
    }
    check(step);
  }
}

TEST_F(NodeInfoCacheTest, StopsObservingWhenDestroyed) {
  { NodeInfoCache cache(replica_.get()); }
  Write([](crdt::DeltaBuilder& b) { b.PutNode("a", Record("10.0.0.1", "alive")); });
  NodeInfoCache cache(replica_.get());
  EXPECT_EQ(cache.List().nodes.size(), 1u);
}

}  // namespace
}  // namespace clustermgr::mgr
