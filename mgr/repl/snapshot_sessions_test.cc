#include "mgr/repl/snapshot_sessions.h"

#include <gtest/gtest.h>

#include "store/codec.h"

namespace clustermgr::mgr {
namespace {

crdt::VersionVector At(uint64_t seq) {
  crdt::VersionVector v;
  v.Advance("a", seq);
  return v;
}

crdt::HlcTimestamp Hlc(uint64_t millis) { return crdt::HlcTimestamp::Make(millis, 1); }

TEST(SnapshotSessionsTest, ARequesterReaskingGetsItsSessionUntilItHasAllOfIt) {
  SnapshotSessions sessions(2, 10'000, ChunkLimits{});
  const crdt::ClusterState state;
  auto first = sessions.Offer("tcp://p:1", At(0), state, At(5), Hlc(700), 1000);
  ASSERT_NE(first.offer.id, 0u);
  EXPECT_TRUE(first.fresh);
  EXPECT_EQ(first.offer.covered, At(5));
  EXPECT_EQ(first.offer.hlc_high_water, Hlc(700).packed());  // the clock the snapshot was taken at
  EXPECT_GE(first.offer.chunks, 1u);

  auto again = sessions.Offer("tcp://p:1", At(3), state, At(6), Hlc(900), 2000);
  EXPECT_FALSE(again.fresh);
  EXPECT_EQ(again.offer, first.offer);

  auto newer = sessions.Offer("tcp://p:1", At(5), state, At(6), Hlc(900), 3000);
  EXPECT_TRUE(newer.fresh);
  EXPECT_NE(newer.offer.id, first.offer.id);
  EXPECT_EQ(newer.offer.covered, At(6));
  EXPECT_EQ(newer.offer.hlc_high_water, Hlc(900).packed());
  EXPECT_EQ(sessions.size(), 1u);
  EXPECT_FALSE(sessions.Chunk(first.offer.id, 0, 3000).has_value());
}

TEST(SnapshotSessionsTest, ServesAtMostMaxSessionsAtOnce) {
  SnapshotSessions sessions(1, 10'000, ChunkLimits{});
  const crdt::ClusterState state;
  ASSERT_NE(sessions.Offer("tcp://p:1", At(0), state, At(5), Hlc(700), 1000).offer.id, 0u);
  auto busy = sessions.Offer("tcp://q:1", At(0), state, At(5), Hlc(700), 1000);
  EXPECT_EQ(busy.offer.id, 0u);
  EXPECT_FALSE(busy.fresh);
}

TEST(SnapshotSessionsTest, ChunksDecodeToTheStateAndIdleSessionsExpire) {
  SnapshotSessions sessions(2, 10'000, ChunkLimits{});
  const crdt::ClusterState state;
  auto offered = sessions.Offer("tcp://p:1", At(0), state, At(5), Hlc(700), 1000);
  const uint64_t id = offered.offer.id;
  auto chunk = sessions.Chunk(id, 0, 5000);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_TRUE(store::DecodeState(*chunk).ok());
  EXPECT_FALSE(sessions.Chunk(id, offered.offer.chunks, 5000).has_value());
  EXPECT_FALSE(sessions.Chunk(id + 2, 0, 5000).has_value());

  sessions.Expire(14'999);  // used at 5000: not idle yet
  EXPECT_EQ(sessions.size(), 1u);
  sessions.Expire(15'000);
  EXPECT_EQ(sessions.size(), 0u);
  EXPECT_FALSE(sessions.Chunk(id, 0, 15'000).has_value());
}

}  // namespace
}  // namespace clustermgr::mgr
