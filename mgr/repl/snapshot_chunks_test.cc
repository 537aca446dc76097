#include "mgr/repl/snapshot_chunks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <random>

#include "store/codec.h"
#include "store/testing/random_replica.h"
#include "base/testing/test_seed.h"

namespace clustermgr::mgr {
namespace {


size_t Entries(const crdt::ClusterState& s) {
  return s.globals.size() + s.node_vars.size() + s.host_groups.size() + s.inventory.size() +
         s.jobs.size() + s.job_logs.size() + s.config.size();
}

TEST(SnapshotChunksTest, AnEmptyStateIsOneEmptyChunk) {
  auto chunks = SplitSnapshot({}, {});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_TRUE(chunks[0].empty());
}

TEST(SnapshotChunksTest, ChunksAreBoundedAndOnlyTheLastCarriesTheContext) {
  crdt::ClusterState s;
  for (int i = 0; i < 1000; ++i) {
    crdt::WriteTag tag{{0, crdt::HlcTimestamp::Make(1000 + i, 0), "m/1"}, uint64_t(i + 1)};
    s.globals.Join(crdt::LwwMap<std::string, std::string>::SetDelta(
        "key" + std::to_string(i), std::string(i % 200, 'v'), tag));
  }
  for (int i = 0; i < 300; ++i) {
    s.host_groups.Join(s.host_groups.AddDelta({"n" + std::to_string(i), "master"}, "m/1",
                                              s.host_groups.LastCounter("m/1")));
  }
  // A huge entry goes alone.
  s.config.Join(crdt::LwwMap<std::string, std::string>::SetDelta(
      "big", std::string(50'000, 'b'), {{0, crdt::HlcTimestamp::Make(5, 0), "m/1"}, 2000}));
  ChunkLimits limits{100, 8192};
  auto chunks = SplitSnapshot(s, limits);
  ASSERT_GT(chunks.size(), 13u);
  crdt::ClusterState joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto& c = chunks[i];
    EXPECT_LE(Entries(c), limits.max_entries) << i;
    const size_t bytes = store::EncodeState(c).size();
    if (c.config.size() == 0) {
      EXPECT_LE(bytes, limits.max_bytes + 256) << i;
    }
    if (i + 1 < chunks.size()) {
      EXPECT_TRUE(c.host_groups.context().empty()) << i;
      EXPECT_EQ(c.token_epoch.value(), 0u);
    }
  }
  EXPECT_FALSE(chunks.back().host_groups.context().empty());
}

// A receiver applying the chunks (any order, the last one last, host-group elements held back)
// ends where joining the whole state would have taken it.
TEST(SnapshotChunksTest, ReassembledChunksJoinLikeTheWholeState) {
  const uint64_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 40; ++round) {
    store::RandomReplica sender("s/1", rng()), receiver("r/1", rng());
    // Shared history, then each goes its own way (removes included).
    for (int i = 0; i < 60; ++i) {
      auto d = sender.Next(4);
      receiver.Receive(d);
    }
    for (int i = 0; i < 80; ++i) sender.Next(4);
    for (int i = 0; i < 40; ++i) receiver.Next(4);
    crdt::ClusterState expect = receiver.state();
    expect.Join(sender.state());

    auto chunks = SplitSnapshot(sender.state(), ChunkLimits{1 + rng() % 9, 4096});
    std::vector<size_t> order(chunks.size() - 1);
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    crdt::ClusterState got = receiver.state();
    SnapshotAssembly assembly;
    for (size_t i : order) {
      crdt::ClusterState c = chunks[i];
      assembly.TakeElements(&c);
      EXPECT_TRUE(c.host_groups.empty());
      got.Join(c);
    }
    got.Join(assembly.Finish(chunks.back()));
    ASSERT_TRUE(got == expect) << "round " << round << " seed " << seed;
  }
}

}  // namespace
}  // namespace clustermgr::mgr
