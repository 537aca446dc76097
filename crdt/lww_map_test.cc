#include "crdt/lww_map.h"

#include <gtest/gtest.h>

#include <string>

namespace clustermgr::crdt {
namespace {

using Map = LwwMap<std::string, std::string>;

WriteTag Tag(uint64_t epoch, uint64_t millis, uint64_t counter, std::string origin,
             uint64_t seq = 1) {
  return WriteTag{{epoch, HlcTimestamp::Make(millis, counter), std::move(origin)}, seq};
}

Map Joined(Map a, const Map& b) {
  a.Join(b);
  return a;
}

TEST(LwwStampTest, OrdersByEpochThenHlcThenOrigin) {
  // A higher epoch wins even with an older HLC: a fenced-off writer cannot overwrite.
  EXPECT_LT(Tag(1, 9000, 0, "z").stamp, Tag(2, 1000, 0, "a").stamp);
  EXPECT_LT(Tag(1, 1000, 5, "z").stamp, Tag(1, 1001, 0, "a").stamp);
  EXPECT_LT(Tag(1, 1000, 5, "z").stamp, Tag(1, 1000, 6, "a").stamp);
  EXPECT_LT(Tag(1, 1000, 5, "a").stamp, Tag(1, 1000, 5, "b").stamp);
  EXPECT_EQ(Tag(1, 1000, 5, "a", 1).stamp, Tag(1, 1000, 5, "a", 2).stamp)
      << "seq is not part of the order";
}

TEST(LwwMapTest, SetGetEraseThroughDeltas) {
  Map m;
  EXPECT_EQ(m.Get("k"), nullptr);
  EXPECT_EQ(m.Find("k"), nullptr);
  const Map d = Map::SetDelta("k", "v1", Tag(0, 100, 0, "a", 1));
  EXPECT_EQ(m.Get("k"), nullptr) << "a delta mutator does not touch the state";
  EXPECT_EQ(d.size(), 1u);
  m.Join(d);
  ASSERT_NE(m.Get("k"), nullptr);
  EXPECT_EQ(*m.Get("k"), "v1");

  m.Join(Map::EraseDelta("k", Tag(0, 101, 0, "a", 2)));
  EXPECT_EQ(m.Get("k"), nullptr);
  ASSERT_NE(m.Find("k"), nullptr);
  EXPECT_TRUE(m.Find("k")->tombstone());
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.tombstones(), 1u);
  EXPECT_FALSE(m.empty());
}

TEST(LwwMapTest, GreaterStampWinsInEitherJoinOrder) {
  const Map older = Map::SetDelta("k", "old", Tag(0, 100, 0, "a"));
  const Map newer = Map::SetDelta("k", "new", Tag(0, 200, 0, "b"));
  EXPECT_EQ(*Joined(older, newer).Get("k"), "new");
  EXPECT_EQ(*Joined(newer, older).Get("k"), "new");
  EXPECT_EQ(Joined(older, newer), Joined(newer, older));

  const Map high_epoch = Map::SetDelta("k", "fenced-in", Tag(3, 50, 0, "a"));
  EXPECT_EQ(*Joined(newer, high_epoch).Get("k"), "fenced-in");
  EXPECT_EQ(*Joined(high_epoch, newer).Get("k"), "fenced-in");
}

TEST(LwwMapTest, EqualEpochAndHlcIsBrokenByOriginWhateverTheMergeDirection) {
  // The known bug in some libraries: on a tie, keep "our own" value, so two replicas keep
  // different values forever. The origin must decide, on every replica.
  const Map from_a = Map::SetDelta("k", "from-a", Tag(1, 100, 3, "a"));
  const Map from_b = Map::SetDelta("k", "from-b", Tag(1, 100, 3, "b"));
  Map at_a = from_a;
  at_a.Join(from_b);
  Map at_b = from_b;
  at_b.Join(from_a);
  EXPECT_EQ(*at_a.Get("k"), "from-b");
  EXPECT_EQ(*at_b.Get("k"), "from-b");
  EXPECT_EQ(at_a, at_b);

  // JoinEntry reports whether the incoming entry won.
  Map m = from_b;
  EXPECT_FALSE(m.JoinEntry("k", *from_a.Find("k")));
  EXPECT_FALSE(m.JoinEntry("k", *from_b.Find("k"))) << "an equal entry changes nothing";
  Map n = from_a;
  EXPECT_TRUE(n.JoinEntry("k", *from_b.Find("k")));
  EXPECT_TRUE(n.JoinEntry("new", *from_a.Find("k")));
}

TEST(LwwMapTest, TombstoneBeatsAnOlderWriteAndLosesToANewerOne) {
  const Map write1 = Map::SetDelta("k", "v1", Tag(0, 100, 0, "a", 1));
  const Map erase = Map::EraseDelta("k", Tag(0, 150, 0, "b", 1));
  const Map write2 = Map::SetDelta("k", "v2", Tag(0, 200, 0, "a", 2));

  EXPECT_EQ(Joined(write1, erase).Get("k"), nullptr);
  EXPECT_EQ(Joined(erase, write1).Get("k"), nullptr);
  EXPECT_EQ(*Joined(erase, write2).Get("k"), "v2");
  EXPECT_EQ(*Joined(write2, erase).Get("k"), "v2");
}

TEST(LwwMapTest, ALateOlderWriteAfterATombstoneLoses) {
  // The tombstone arrives first; the write it deleted (or any older one) arrives later, by a
  // slow path. It must not resurrect the key.
  Map m;
  m.Join(Map::EraseDelta("k", Tag(0, 150, 0, "b", 4)));
  m.Join(Map::SetDelta("k", "stale", Tag(0, 100, 0, "a", 1)));
  EXPECT_EQ(m.Get("k"), nullptr);
  EXPECT_TRUE(m.Find("k")->tombstone());
  EXPECT_EQ(m.Find("k")->tag.stamp.origin, "b");
}

TEST(LwwMapTest, OverwriteReplacesWhateverTheStamp) {
  Map m = Map::SetDelta("k", "v", Tag(0, 200, 0, "a"));
  m.Overwrite("k", {Tag(0, 100, 0, "a"), std::nullopt});
  EXPECT_TRUE(m.Find("k")->tombstone());
  EXPECT_EQ(m.Find("k")->tag.stamp.hlc, HlcTimestamp::Make(100, 0));
}

TEST(LwwMapTest, JoinIsIdempotentAndMergesDisjointKeys) {
  Map a = Map::SetDelta("x", "1", Tag(0, 100, 0, "a"));
  a.Join(Map::SetDelta("y", "2", Tag(0, 101, 0, "a", 2)));
  const Map b = Map::EraseDelta("z", Tag(0, 100, 0, "b"));
  const Map ab = Joined(a, b);
  EXPECT_EQ(ab.size(), 3u);
  EXPECT_EQ(ab.tombstones(), 1u);
  EXPECT_EQ(Joined(ab, ab), ab);
  EXPECT_EQ(Joined(ab, a), ab);
  EXPECT_EQ(Joined(b, a), ab);
}

TEST(LwwMapTest, CollectTombstonesDropsOnlyCoveredTombstones) {
  Map m;
  m.Join(Map::EraseDelta("covered", Tag(0, 100, 0, "a", 2)));
  m.Join(Map::EraseDelta("beyond", Tag(0, 100, 0, "a", 3)));
  m.Join(Map::EraseDelta("other-origin", Tag(0, 100, 0, "b", 1)));
  m.Join(Map::SetDelta("live", "v", Tag(0, 100, 0, "a", 1)));
  ASSERT_EQ(m.tombstones(), 3u);

  VersionVector stable;
  EXPECT_EQ(m.CollectTombstones(stable), 0u);
  stable.Advance("a", 2);
  EXPECT_EQ(m.CollectTombstones(stable), 1u);
  EXPECT_EQ(m.Find("covered"), nullptr);
  EXPECT_NE(m.Find("beyond"), nullptr);
  EXPECT_NE(m.Find("other-origin"), nullptr);
  ASSERT_NE(m.Get("live"), nullptr) << "live entries are never collected, covered or not";

  stable.Advance("a", 10);
  stable.Advance("b", 1);
  EXPECT_EQ(m.CollectTombstones(stable), 2u);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.tombstones(), 0u);
  EXPECT_EQ(*m.Get("live"), "v");
}

TEST(LwwMapTest, WriteTagDotIsOriginAndSeq) {
  EXPECT_EQ(Tag(7, 1, 2, "inst-1", 42).dot(), (Dot{"inst-1", 42}));
}

TEST(LwwMapTest, WorksWithCompositeKeys) {
  LwwMap<std::pair<std::string, uint64_t>, int> m;
  using M = decltype(m);
  m.Join(M::SetDelta({"job", 1}, 10, Tag(0, 1, 0, "a")));
  m.Join(M::SetDelta({"job", 0}, 5, Tag(0, 1, 0, "a")));
  ASSERT_NE(m.Get({"job", 0}), nullptr);
  EXPECT_EQ(*m.Get({"job", 0}), 5);
  EXPECT_EQ(m.entries().begin()->first.second, 0u) << "iteration is ordered";
}

}  // namespace
}  // namespace clustermgr::crdt
