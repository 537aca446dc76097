#include "mgr/repl/tombstone_stability.h"

#include <gtest/gtest.h>

namespace clustermgr::mgr {
namespace {

crdt::VersionVector V(std::initializer_list<std::pair<const char*, uint64_t>> entries) {
  crdt::VersionVector v;
  for (const auto& [o, s] : entries) v.Advance(o, s);
  return v;
}

const std::set<std::string> kAbc{"a", "b", "c"};

TEST(TombstoneStabilityTest, NeedsAReportFromEveryKnownInstance) {
  TombstoneStability t;
  t.Report("a", "a/1", V({{"a/1", 5}}));
  t.Report("b", "b/1", V({{"a/1", 5}}));
  EXPECT_FALSE(t.Advance(kAbc));
  EXPECT_FALSE(t.round_open());
  EXPECT_FALSE(t.Advance(kAbc));
}

TEST(TombstoneStabilityTest, TwoRoundsMakeTheMeetStable) {
  TombstoneStability t;
  // Round 1: everyone has applied a:5; b had issued b:4 by then, which a and c lack.
  t.Report("a", "a/1", V({{"a/1", 5}, {"b/1", 3}}));
  t.Report("b", "b/1", V({{"a/1", 5}, {"b/1", 4}}));
  t.Report("c", "c/1", V({{"a/1", 5}, {"b/1", 3}}));
  EXPECT_FALSE(t.Advance(kAbc));
  ASSERT_TRUE(t.round_open());
  EXPECT_EQ(*t.round_meet(), V({{"a/1", 5}, {"b/1", 3}}));
  EXPECT_EQ(*t.round_join(), V({{"a/1", 5}, {"b/1", 4}}));
  // b:4 may be a write issued before b applied a:5: not stable until everyone has it.
  EXPECT_FALSE(t.Advance(kAbc));
  t.Report("a", "a/1", V({{"a/1", 5}, {"b/1", 4}}));
  EXPECT_FALSE(t.Advance(kAbc));
  t.Report("c", "c/1", V({{"a/1", 5}, {"b/1", 4}}));
  auto stable = t.Advance(kAbc);
  ASSERT_TRUE(stable);
  EXPECT_EQ(*stable, V({{"a/1", 5}, {"b/1", 3}}));
  // The round-2 reports opened the next round at once.
  ASSERT_TRUE(t.round_open());
  EXPECT_EQ(*t.round_meet(), V({{"a/1", 5}, {"b/1", 4}}));
  stable = t.Advance(kAbc);
  ASSERT_TRUE(stable);
  EXPECT_EQ(*stable, V({{"a/1", 5}, {"b/1", 4}}));
}

TEST(TombstoneStabilityTest, ReportsArrivingOutOfOrderOnlyGrow) {
  TombstoneStability t;
  t.Report("a", "a/1", V({{"a/1", 9}}));
  t.Report("a", "a/1", V({{"a/1", 4}}));  // an older report, late
  t.Report("b", "b/1", V({{"a/1", 9}}));
  EXPECT_FALSE(t.Advance({"a", "b"}));
  EXPECT_EQ(*t.round_meet(), V({{"a/1", 9}}));
}

TEST(TombstoneStabilityTest, MembershipChangesAndNewIncarnationsRestartTheRound) {
  TombstoneStability t;
  t.Report("a", "a/1", V({{"a/1", 5}}));
  t.Report("b", "b/1", V({{"a/1", 5}}));
  EXPECT_FALSE(t.Advance({"a", "b"}));
  ASSERT_TRUE(t.round_open());
  // c appears: its earlier writes are not in the round's join.
  t.Report("c", "c/1", V({{"a/1", 5}, {"c/1", 2}}));
  EXPECT_FALSE(t.Advance(kAbc));
  EXPECT_EQ(*t.round_join(), V({{"a/1", 5}, {"c/1", 2}}));
  // b is wiped and comes back empty: its old vector no longer counts.
  t.Report("b", "b/2", V({}));
  EXPECT_FALSE(t.round_open());
  EXPECT_FALSE(t.Advance(kAbc));
  EXPECT_TRUE(t.round_meet()->empty());
  t.Forget("c");
  EXPECT_FALSE(t.round_open());
}

}  // namespace
}  // namespace clustermgr::mgr
