#include "crdt/cluster_state.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace clustermgr::crdt {
namespace {

using Strings = std::vector<std::string>;
using StringMap = std::map<std::string, std::string>;

// One replica as the manager drives it: a clock, a sequence number, and a state that every
// delta is joined into after it is built.
class Replica {
 public:
  explicit Replica(std::string origin, uint64_t epoch = 1)
      : origin_(std::move(origin)), epoch_(epoch) {}

  WriteTag NextTag() { return WriteTag{{epoch_, clock_.Now(), origin_}, ++seq_}; }

  // Builds one delta with `fill`, joins it locally, and returns it.
  template <typename F>
  ClusterState Write(F&& fill) {
    DeltaBuilder b(state_, NextTag());
    fill(b);
    ClusterState delta = std::move(b).Take();
    state_.Join(delta);
    return delta;
  }

  ClusterState& state() { return state_; }
  uint64_t seq() const { return seq_; }

 private:
  std::string origin_;
  uint64_t epoch_;
  ManualClock physical_{1'000'000};
  HybridClock clock_{&physical_};
  uint64_t seq_ = 0;
  ClusterState state_;
};

TEST(ClusterStateTest, EmptyStateReadsAsEmpty) {
  const ClusterState s;
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.Globals().empty());
  EXPECT_TRUE(s.NodeVars("n1").empty());
  EXPECT_TRUE(s.HostGroups("n1").empty());
  EXPECT_EQ(s.Node("n1"), nullptr);
  EXPECT_EQ(s.Job("j1"), nullptr);
  EXPECT_TRUE(s.JobLog("j1").empty());
  EXPECT_TRUE(s.Config().empty());
  EXPECT_EQ(s.token_epoch.value(), 0u);
}

TEST(ClusterStateTest, GlobalsSetAndErase) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.SetGlobal("x", "1");
    b.SetGlobal("y", "\"two\"");
  });
  EXPECT_EQ(r.state().Globals(), (StringMap{{"x", "1"}, {"y", "\"two\""}}));
  const ClusterState d = r.Write([](DeltaBuilder& b) { b.EraseGlobal("x"); });
  EXPECT_EQ(r.state().Globals(), (StringMap{{"y", "\"two\""}}));
  EXPECT_TRUE(d.globals.Find("x")->tombstone());
  EXPECT_EQ(d.globals.Find("x")->tag.seq, 2u);
}

TEST(ClusterStateTest, ReplaceGlobalsTombstonesEveryAbsentLiveKey) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.SetGlobal("keep", "1");
    b.SetGlobal("drop", "2");
    b.SetGlobal("gone", "3");
  });
  (void)r.Write([](DeltaBuilder& b) { b.EraseGlobal("gone"); });
  const ClusterState d = r.Write([](DeltaBuilder& b) {
    b.ReplaceGlobals({{"keep", "10"}, {"new", "4"}});
  });
  EXPECT_EQ(r.state().Globals(), (StringMap{{"keep", "10"}, {"new", "4"}}));
  ASSERT_NE(d.globals.Find("drop"), nullptr);
  EXPECT_TRUE(d.globals.Find("drop")->tombstone());
  EXPECT_EQ(d.globals.Find("gone"), nullptr) << "an already deleted key needs no new tombstone";
  EXPECT_EQ(d.globals.size(), 3u);

  // A replica that had only seen the first write converges through the delta alone.
  Replica other("b");
  (void)other.Write([](DeltaBuilder& b) { b.SetGlobal("drop", "old"); });  // older than d
  other.state().Join(d);
  EXPECT_EQ(other.state().Globals(), (StringMap{{"keep", "10"}, {"new", "4"}}));
}

TEST(ClusterStateTest, ReplaceGlobalsAlsoReplacesWhatTheSameBuilderSetEarlier) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) { b.SetGlobal("base", "1"); });
  (void)r.Write([](DeltaBuilder& b) {
    b.SetGlobal("early", "2");
    b.ReplaceGlobals({{"final", "3"}});
  });
  EXPECT_EQ(r.state().Globals(), (StringMap{{"final", "3"}}));
}

TEST(ClusterStateTest, NodeVarsArePerNode) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.SetNodeVar("n1", "ntp", "\"a\"");
    b.SetNodeVar("n1", "dns", "\"b\"");
    b.SetNodeVar("n2", "ntp", "\"c\"");
    b.SetNodeVar("n10", "ntp", "\"d\"");
  });
  EXPECT_EQ(r.state().NodeVars("n1"), (StringMap{{"dns", "\"b\""}, {"ntp", "\"a\""}}));
  EXPECT_EQ(r.state().NodeVars("n2"), (StringMap{{"ntp", "\"c\""}}));
  EXPECT_EQ(r.state().NodeVars("n"), StringMap{}) << "no prefix matching";
  (void)r.Write([](DeltaBuilder& b) { b.EraseNodeVar("n1", "ntp"); });
  EXPECT_EQ(r.state().NodeVars("n1"), (StringMap{{"dns", "\"b\""}}));
}

TEST(ClusterStateTest, HostGroupsAddRemoveAndSet) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.AddHostGroup("n1", "web");
    b.AddHostGroup("n1", "db");
    b.AddHostGroup("n2", "web");
  });
  EXPECT_EQ(r.state().HostGroups("n1"), (Strings{"db", "web"}));
  EXPECT_EQ(r.state().HostGroups("n2"), (Strings{"web"}));

  (void)r.Write([](DeltaBuilder& b) { b.RemoveHostGroup("n1", "db"); });
  EXPECT_EQ(r.state().HostGroups("n1"), (Strings{"web"}));

  const ClusterState d = r.Write([](DeltaBuilder& b) {
    b.SetHostGroups("n1", {"cache", "web", "cache"});
  });
  EXPECT_EQ(r.state().HostGroups("n1"), (Strings{"cache", "web"}));
  EXPECT_EQ(d.host_groups.DotsOf({"n1", "web"}), std::set<Dot>{})
      << "an element already present is left alone, not re-added";
  (void)r.Write([](DeltaBuilder& b) { b.SetHostGroups("n1", {}); });
  EXPECT_TRUE(r.state().HostGroups("n1").empty());
  EXPECT_EQ(r.state().HostGroups("n2"), (Strings{"web"}));
}

TEST(ClusterStateTest, RemoveOfAnAbsentHostGroupIsAnEmptyDelta) {
  Replica r("a");
  DeltaBuilder b(r.state(), r.NextTag());
  b.RemoveHostGroup("n1", "web");
  EXPECT_TRUE(b.empty());
}

TEST(ClusterStateTest, AddThenRemoveOfAHostGroupInOneBuilder) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) { b.AddHostGroup("n1", "web"); });
  Replica peer("b");
  peer.state().Join(r.state());

  // Re-add (supersedes a:1) then remove within one delta: the element ends absent, and the delta
  // alone removes it from a peer that holds the old dot.
  const ClusterState d = r.Write([](DeltaBuilder& b) {
    b.AddHostGroup("n1", "web");
    b.RemoveHostGroup("n1", "web");
  });
  EXPECT_TRUE(r.state().HostGroups("n1").empty());
  EXPECT_TRUE(d.host_groups.entries().empty());
  peer.state().Join(d);
  EXPECT_TRUE(peer.state().HostGroups("n1").empty());
  EXPECT_EQ(peer.state(), r.state());

  // Remove then re-add in one builder: present, with one fresh dot.
  const ClusterState d2 = r.Write([](DeltaBuilder& b) {
    b.AddHostGroup("n2", "db");
    b.RemoveHostGroup("n2", "db");
    b.AddHostGroup("n2", "db");
  });
  EXPECT_EQ(r.state().HostGroups("n2"), (Strings{"db"}));
  EXPECT_EQ(d2.host_groups.DotsOf({"n2", "db"}).size(), 1u);
  peer.state().Join(d2);
  EXPECT_EQ(peer.state(), r.state());
}

TEST(ClusterStateTest, SetHostGroupsSeesWhatTheSameBuilderDidEarlier) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) { b.AddHostGroup("n1", "base"); });
  (void)r.Write([](DeltaBuilder& b) {
    b.AddHostGroup("n1", "early");    // not in base: Set must still remove it
    b.RemoveHostGroup("n1", "base");  // removed in this delta: Set must add it back
    b.SetHostGroups("n1", {"base", "final"});
  });
  EXPECT_EQ(r.state().HostGroups("n1"), (Strings{"base", "final"}));
}

TEST(ClusterStateTest, ConcurrentHostGroupAddAndRemoveAddWins) {
  Replica a("a"), b("b");
  const ClusterState add = a.Write([](DeltaBuilder& x) { x.AddHostGroup("n1", "web"); });
  b.state().Join(add);
  const ClusterState rem = b.Write([](DeltaBuilder& x) { x.RemoveHostGroup("n1", "web"); });
  const ClusterState readd = a.Write([](DeltaBuilder& x) { x.AddHostGroup("n1", "web"); });
  a.state().Join(rem);
  b.state().Join(readd);
  EXPECT_EQ(a.state().HostGroups("n1"), (Strings{"web"}));
  EXPECT_EQ(a.state(), b.state());
}

TEST(ClusterStateTest, ReAddingAHostGroupSupersedesItsOlderDotsEverywhere) {
  Replica a("a"), b("b");
  const ClusterState from_a = a.Write([](DeltaBuilder& x) { x.AddHostGroup("n1", "web"); });
  b.state().Join(from_a);
  const ClusterState readd = b.Write([](DeltaBuilder& x) { x.AddHostGroup("n1", "web"); });
  EXPECT_EQ(b.state().host_groups.DotsOf({"n1", "web"}), (std::set<Dot>{{"b", 1}}));
  EXPECT_TRUE(readd.host_groups.context().Contains({"a", 1})) << "the delta names what it replaces";
  a.state().Join(readd);
  EXPECT_EQ(a.state().host_groups.DotsOf({"n1", "web"}), (std::set<Dot>{{"b", 1}}));
  // So a later remove at b, which only sees b:1, removes the element everywhere.
  const ClusterState rem = b.Write([](DeltaBuilder& x) { x.RemoveHostGroup("n1", "web"); });
  a.state().Join(rem);
  EXPECT_TRUE(a.state().HostGroups("n1").empty());
  EXPECT_EQ(a.state(), b.state());
}

TEST(ClusterStateTest, HostGroupDotsContinueAcrossDeltas) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.AddHostGroup("n1", "x");
    b.AddHostGroup("n1", "y");
  });
  const ClusterState d = r.Write([](DeltaBuilder& b) { b.AddHostGroup("n1", "z"); });
  EXPECT_EQ(d.host_groups.DotsOf({"n1", "z"}), (std::set<Dot>{{"a", 3}}));
  EXPECT_EQ(r.state().host_groups.context().compact().Get("a"), 3u);
}

TEST(ClusterStateTest, ALaterMutationOfAKeyInOneBuilderSupersedesAnEarlierOne) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.SetGlobal("x", "1");
    b.EraseGlobal("x");
    b.SetGlobal("y", "1");
    b.SetGlobal("y", "2");
    b.SetNodeVar("n", "v", "1");
    b.EraseNodeVar("n", "v");
    b.SetConfig("forks", "5");
    b.SetConfig("forks", "10");
    b.PutJobLogChunk("j", 0, "a");
    b.PutJobLogChunk("j", 0, "b");
  });
  EXPECT_EQ(r.state().Globals(), (StringMap{{"y", "2"}}));
  EXPECT_TRUE(r.state().NodeVars("n").empty());
  EXPECT_EQ(r.state().Config(), (StringMap{{"forks", "10"}}));
  EXPECT_EQ(r.state().JobLog("j"), (Strings{"b"}));
  (void)r.Write([](DeltaBuilder& b) {
    b.EraseGlobal("y");
    b.SetGlobal("y", "3");
  });
  EXPECT_EQ(r.state().Globals(), (StringMap{{"y", "3"}}));
}

TEST(ClusterStateTest, InventoryAndJobsAreRecords) {
  Replica r("a");
  InventoryRecord node;
  node.status = NodeStatus::kAllocated;
  node.state = NodeState::kDiscovered;
  node.prev_status = NodeStatus::kProvisioning;
  node.addr = "10.0.0.1";
  node.tags = {{"role", "worker"}};
  node.serf_status = "alive";
  node.updated_ms = 1234;
  JobRecord job;
  job.id = "job-1";
  job.desc = "commission";
  job.nodes = {"n1", "n2"};
  job.host_group = "web";
  job.status = JobStatus::kRunning;
  job.epoch = 3;
  job.owner = "mgr-1";
  (void)r.Write([&](DeltaBuilder& b) {
    b.PutNode("n1", node);
    b.PutJob(job);
  });
  ASSERT_NE(r.state().Node("n1"), nullptr);
  EXPECT_EQ(*r.state().Node("n1"), node);
  ASSERT_NE(r.state().Job("job-1"), nullptr);
  EXPECT_EQ(*r.state().Job("job-1"), job);
  EXPECT_EQ(r.state().Node("n2"), nullptr);

  job.status = JobStatus::kComplete;
  job.ended_ms = 99;
  (void)r.Write([&](DeltaBuilder& b) { b.PutJob(job); });
  EXPECT_EQ(r.state().Job("job-1")->status, JobStatus::kComplete);
  EXPECT_EQ(r.state().jobs.size(), 1u);
}

TEST(ClusterStateTest, JobLogStopsAtAMissingChunk) {
  Replica r("a");
  const ClusterState c0 =
      r.Write([](DeltaBuilder& b) { b.PutJobLogChunk("j", 0, "line 1\nline 2\n"); });
  const ClusterState c1 = r.Write([](DeltaBuilder& b) { b.PutJobLogChunk("j", 1, "line 3"); });
  const ClusterState c2 = r.Write([](DeltaBuilder& b) { b.PutJobLogChunk("j", 2, "line 4\n"); });
  (void)r.Write([](DeltaBuilder& b) { b.PutJobLogChunk("j2", 0, "other job"); });
  EXPECT_EQ(r.state().JobLog("j"), (Strings{"line 1", "line 2", "line 3", "line 4"}));
  EXPECT_EQ(r.state().JobLog("j2"), (Strings{"other job"}));
  EXPECT_TRUE(r.state().JobLog("j1").empty());

  // A receiver that got chunks 0 and 2 but not yet 1 shows only chunk 0.
  ClusterState peer;
  peer.Join(c2);
  EXPECT_TRUE(peer.JobLog("j").empty()) << "chunk 0 is missing";
  peer.Join(c0);
  EXPECT_EQ(peer.JobLog("j"), (Strings{"line 1", "line 2"}));
  peer.Join(c1);
  EXPECT_EQ(peer.JobLog("j"), (Strings{"line 1", "line 2", "line 3", "line 4"}));
}

TEST(ClusterStateTest, ConfigSetAndReplace) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.SetConfig("forks", "5");
    b.SetConfig("timeout", "30");
  });
  EXPECT_EQ(r.state().Config(), (StringMap{{"forks", "5"}, {"timeout", "30"}}));
  const ClusterState d = r.Write([](DeltaBuilder& b) {
    b.SetConfig("early", "1");
    b.ReplaceConfig({{"forks", "20"}});
  });
  EXPECT_EQ(r.state().Config(), (StringMap{{"forks", "20"}}));
  EXPECT_TRUE(d.config.Find("timeout")->tombstone());
}

TEST(ClusterStateTest, RaiseEpochIsAMaximum) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) { b.RaiseEpoch(5); });
  EXPECT_EQ(r.state().token_epoch.value(), 5u);
  const ClusterState d = r.Write([](DeltaBuilder& b) { b.RaiseEpoch(3); });
  EXPECT_EQ(r.state().token_epoch.value(), 5u);
  EXPECT_EQ(d.token_epoch.value(), 3u);
  ClusterState peer;
  peer.Join(d);
  EXPECT_EQ(peer.token_epoch.value(), 3u);
  peer.Join(r.state());
  EXPECT_EQ(peer.token_epoch.value(), 5u);
}

TEST(ClusterStateTest, TheBuilderReadsOnlyItsBaseAndLeavesItUntouched) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) { b.SetGlobal("x", "1"); });
  const ClusterState before = r.state();
  DeltaBuilder b(r.state(), r.NextTag());
  EXPECT_TRUE(b.empty());
  b.SetGlobal("x", "2");
  b.AddHostGroup("n", "g");
  b.RaiseEpoch(4);
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(r.state(), before) << "the owner persists the delta first, then joins it";
  EXPECT_EQ(b.tag().seq, 2u);
  EXPECT_EQ(*b.delta().globals.Get("x"), "2");
}

TEST(ClusterStateTest, CollectTombstonesCoversEveryLwwSection) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.SetGlobal("g", "1");
    b.SetNodeVar("n", "v", "1");
    b.PutJobLogChunk("j", 0, "x");
    b.SetConfig("c", "1");
    b.AddHostGroup("n", "web");
  });
  (void)r.Write([](DeltaBuilder& b) {
    b.EraseGlobal("g");
    b.EraseNodeVar("n", "v");
    b.ReplaceConfig({});
    b.RemoveHostGroup("n", "web");
  });
  ClusterState s = r.state();
  VersionVector stable;
  stable.Advance("a", 1);
  EXPECT_EQ(s.CollectTombstones(stable), 0u) << "the tombstones were written by delta a:2";
  stable.Advance("a", 2);
  EXPECT_EQ(s.CollectTombstones(stable), 3u);
  EXPECT_EQ(s.globals.size(), 0u);
  EXPECT_EQ(s.node_vars.size(), 0u);
  EXPECT_EQ(s.config.size(), 0u);
  EXPECT_EQ(s.job_logs.size(), 1u);
  EXPECT_FALSE(s.host_groups.empty()) << "the OR-set has no tombstones, only its context";
}

TEST(ClusterStateTest, DeltasInAnyOrderEqualTheFullState) {
  Replica r("a");
  std::vector<ClusterState> deltas;
  deltas.push_back(r.Write([](DeltaBuilder& b) {
    b.SetGlobal("g", "1");
    b.AddHostGroup("n", "web");
    b.RaiseEpoch(1);
  }));
  deltas.push_back(r.Write([](DeltaBuilder& b) {
    b.EraseGlobal("g");
    b.SetHostGroups("n", {"db"});
    b.PutJobLogChunk("j", 0, "a");
  }));
  deltas.push_back(r.Write([](DeltaBuilder& b) {
    b.SetGlobal("g", "2");
    b.RaiseEpoch(2);
    b.PutNode("n", InventoryRecord{});
  }));
  for (int rot = 0; rot < 3; ++rot) {
    ClusterState s;
    for (int i = 0; i < 3; ++i) s.Join(deltas[(rot + i) % 3]);
    for (int i = 2; i >= 0; --i) s.Join(deltas[(rot + i) % 3]);  // duplicates
    EXPECT_EQ(s, r.state()) << "rotation " << rot;
  }
}

// A delta teaches the epoch its entries were written at. Otherwise an instance that missed the
// RaiseEpoch delta but applied a later write of that epoch stamps its own next write of the same
// key below it: a causally later write that loses, and, once the tombstone is collected under
// CollectTombstones' precondition, comes back as a zombie on the replicas it reaches late.
TEST(ClusterStateTest, AWriterLearnsTheEpochOfEveryEntryItApplies) {
  ManualClock pa(1'000'000), pc(1'000'000);
  HybridClock ca(&pa), cc(&pc);
  ClusterState a, c;
  auto write = [](ClusterState& s, HybridClock& clock, const std::string& origin, uint64_t seq,
                  auto&& fill) {
    DeltaBuilder b(s, WriteTag{{s.token_epoch.value(), clock.Now(), origin}, seq});
    fill(b);
    ClusterState d = std::move(b).Take();
    s.Join(d);
    return d;
  };
  // a takes the token at epoch 2; that delta never reaches c.
  (void)write(a, ca, "a", 1, [](DeltaBuilder& b) { b.RaiseEpoch(2); });
  // a deletes k at epoch 2; c applies that delta.
  const ClusterState tombstone = write(a, ca, "a", 2, [](DeltaBuilder& b) { b.EraseGlobal("k"); });
  ASSERT_TRUE(cc.Observe(tombstone.globals.Find("k")->tag.stamp.hlc).ok());
  c.Join(tombstone);
  EXPECT_EQ(c.token_epoch.value(), 2u);
  // c then sets k, stamped with the highest epoch it knows: causally after the delete, it wins.
  const ClusterState later = write(c, cc, "c", 1, [](DeltaBuilder& b) { b.SetGlobal("k", "1"); });
  EXPECT_EQ(c.Globals(), (StringMap{{"k", "1"}}));

  // Everyone has applied a:1..2, and nobody issued anything before applying them: the
  // precondition of CollectTombstones holds for {a:2} while `later` is still in flight.
  VersionVector stable;
  stable.Advance("a", 2);
  (void)a.CollectTombstones(stable);
  (void)c.CollectTombstones(stable);
  a.Join(later);
  EXPECT_EQ(a.Globals(), c.Globals());
  EXPECT_TRUE(a == c);
}

TEST(ClusterStateTest, JoinWithItselfChangesNothing) {
  Replica r("a");
  (void)r.Write([](DeltaBuilder& b) {
    b.SetGlobal("g", "1");
    b.EraseNodeVar("n", "v");
    b.AddHostGroup("n", "web");
    b.AddHostGroup("n", "db");
    b.RaiseEpoch(3);
  });
  (void)r.Write([](DeltaBuilder& b) { b.RemoveHostGroup("n", "db"); });
  const ClusterState copy = r.state();
  r.state().Join(r.state());
  EXPECT_EQ(r.state(), copy);
}

TEST(ClusterStateTest, NodesTouchedNamesWhatADeltaMayChangeOfEachNode) {
  Replica a("a");
  const ClusterState base_before = a.state();
  ClusterState d1 = a.Write([](DeltaBuilder& b) {
    b.PutNode("n1", InventoryRecord{});
    b.SetNodeVar("n2", "dns", "\"x\"");
    b.AddHostGroup("n3", "web");
    b.SetGlobal("ntp", "\"y\"");  // not a node's
  });
  EXPECT_EQ(NodesTouched(base_before, d1), (std::set<std::string>{"n1", "n2", "n3"}));

  // A remove carries no element, only the dots it saw: the node is found in the base.
  Replica b("b");
  b.state().Join(a.state());
  const ClusterState base = b.state();
  ClusterState removal = b.Write([](DeltaBuilder& w) { w.RemoveHostGroup("n3", "web"); });
  ASSERT_TRUE(removal.host_groups.entries().empty());
  EXPECT_EQ(NodesTouched(base, removal), std::set<std::string>{"n3"});
  EXPECT_TRUE(NodesTouched(ClusterState{}, removal).empty()) << "nothing there to remove";

  // Erasing a remembered var names its node; a job or a log chunk names none.
  ClusterState erase = b.Write([](DeltaBuilder& w) {
    w.EraseNodeVar("n2", "dns");
    JobRecord job;
    job.id = "j1";
    job.nodes = {"n1"};
    w.PutJob(job);
    w.PutJobLogChunk("j1", 0, "line");
  });
  EXPECT_EQ(NodesTouched(b.state(), erase), std::set<std::string>{"n2"});
}

TEST(DeltaTest, CarriesOriginAndSeq) {
  Delta d{"a", 3, {}};
  EXPECT_EQ(d, (Delta{"a", 3, {}}));
  EXPECT_NE(d, (Delta{"a", 4, {}}));
}

}  // namespace
}  // namespace clustermgr::crdt
