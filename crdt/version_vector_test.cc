#include "crdt/version_vector.h"

#include <gtest/gtest.h>

#include <set>

namespace clustermgr::crdt {
namespace {

VersionVector Vv(std::initializer_list<std::pair<const char*, uint64_t>> entries) {
  VersionVector v;
  for (const auto& [o, n] : entries) v.Advance(o, n);
  return v;
}

TEST(DotTest, OrdersByOriginThenCounter) {
  EXPECT_LT((Dot{"a", 9}), (Dot{"b", 1}));
  EXPECT_LT((Dot{"a", 1}), (Dot{"a", 2}));
  EXPECT_EQ((Dot{"a", 1}), (Dot{"a", 1}));
  EXPECT_EQ((Dot{"a", 3}).ToString(), "a:3");
}

TEST(VersionVectorTest, CoversIsPerOriginPrefix) {
  const VersionVector v = Vv({{"a", 3}, {"b", 1}});
  EXPECT_TRUE(v.Covers({"a", 1}));
  EXPECT_TRUE(v.Covers({"a", 3}));
  EXPECT_FALSE(v.Covers({"a", 4}));
  EXPECT_TRUE(v.Covers({"b", 1}));
  EXPECT_FALSE(v.Covers({"c", 1}));
  EXPECT_EQ(v.Get("a"), 3u);
  EXPECT_EQ(v.Get("c"), 0u);
  EXPECT_EQ(v.ToString(), "{a:3, b:1}");
  EXPECT_EQ(VersionVector().ToString(), "{}");
}

TEST(VersionVectorTest, AdvanceNeverLowersAndIgnoresZero) {
  VersionVector v;
  v.Advance("a", 0);
  EXPECT_TRUE(v.empty()) << "a zero entry would make equal vectors compare unequal";
  v.Advance("a", 5);
  v.Advance("a", 2);
  EXPECT_EQ(v.Get("a"), 5u);
  EXPECT_EQ(v, Vv({{"a", 5}}));
}

TEST(VersionVectorTest, Dominates) {
  const VersionVector a = Vv({{"a", 3}, {"b", 2}});
  EXPECT_TRUE(a.Dominates(a));
  EXPECT_TRUE(a.Dominates(VersionVector()));
  EXPECT_TRUE(a.Dominates(Vv({{"a", 1}})));
  EXPECT_TRUE(a.Dominates(Vv({{"a", 3}, {"b", 2}})));
  EXPECT_FALSE(a.Dominates(Vv({{"a", 4}})));
  EXPECT_FALSE(a.Dominates(Vv({{"c", 1}})));
  EXPECT_FALSE(VersionVector().Dominates(a));
  // Concurrent vectors: neither dominates.
  const VersionVector b = Vv({{"a", 1}, {"b", 5}});
  EXPECT_FALSE(a.Dominates(b));
  EXPECT_FALSE(b.Dominates(a));
}

TEST(VersionVectorTest, MergeIsPointwiseMax) {
  VersionVector a = Vv({{"a", 3}, {"b", 2}});
  a.Merge(Vv({{"a", 1}, {"b", 7}, {"c", 4}}));
  EXPECT_EQ(a, Vv({{"a", 3}, {"b", 7}, {"c", 4}}));
  VersionVector e;
  e.Merge(a);
  EXPECT_EQ(e, a);
}

TEST(VersionVectorTest, MeetIsPointwiseMinWithAbsentAsZero) {
  const VersionVector a = Vv({{"a", 3}, {"b", 2}, {"x", 9}});
  const VersionVector b = Vv({{"a", 1}, {"b", 7}, {"c", 4}});
  const VersionVector m = VersionVector::Meet(a, b);
  EXPECT_EQ(m, Vv({{"a", 1}, {"b", 2}}));
  EXPECT_EQ(m.entries().count("x"), 0u) << "no zero entries";
  EXPECT_EQ(m.entries().count("c"), 0u);
  EXPECT_EQ(VersionVector::Meet(b, a), m);
  EXPECT_TRUE(a.Dominates(m));
  EXPECT_TRUE(b.Dominates(m));
  EXPECT_TRUE(VersionVector::Meet(a, VersionVector()).empty());
}

TEST(CausalContextTest, OutOfOrderDotsWaitInTheCloudUntilContiguous) {
  CausalContext c;
  c.Add({"a", 3});
  c.Add({"a", 5});
  EXPECT_TRUE(c.compact().empty());
  EXPECT_EQ(c.cloud(), (std::set<Dot>{{"a", 3}, {"a", 5}}));
  EXPECT_TRUE(c.Contains({"a", 3}));
  EXPECT_FALSE(c.Contains({"a", 4}));
  EXPECT_FALSE(c.Contains({"a", 1}));

  c.Add({"a", 1});
  EXPECT_EQ(c.compact(), Vv({{"a", 1}}));
  EXPECT_EQ(c.cloud().size(), 2u);

  c.Add({"a", 2});  // 1..3 now contiguous; 5 still waits for 4
  EXPECT_EQ(c.compact(), Vv({{"a", 3}}));
  EXPECT_EQ(c.cloud(), (std::set<Dot>{{"a", 5}}));

  c.Add({"a", 4});
  EXPECT_EQ(c.compact(), Vv({{"a", 5}}));
  EXPECT_TRUE(c.cloud().empty());

  c.Add({"a", 2});  // already covered: no change
  EXPECT_EQ(c.compact(), Vv({{"a", 5}}));
  EXPECT_TRUE(c.cloud().empty());
}

TEST(CausalContextTest, CloudsOfSeveralOriginsFoldIndependently) {
  CausalContext c;
  c.Add({"b", 2});
  c.Add({"a", 2});
  c.Add({"c", 1});
  EXPECT_EQ(c.compact(), Vv({{"c", 1}}));
  c.Add({"b", 1});
  EXPECT_EQ(c.compact(), Vv({{"b", 2}, {"c", 1}}));
  EXPECT_EQ(c.cloud(), (std::set<Dot>{{"a", 2}}));
}

TEST(CausalContextTest, NextIssuesTheNextDotOfTheOwner) {
  CausalContext c;
  EXPECT_EQ(c.Next("a"), (Dot{"a", 1}));
  EXPECT_EQ(c.Next("a"), (Dot{"a", 2}));
  EXPECT_EQ(c.Next("b"), (Dot{"b", 1}));
  EXPECT_TRUE(c.Contains({"a", 2}));
  EXPECT_EQ(c.compact(), Vv({{"a", 2}, {"b", 1}}));
}

TEST(CausalContextTest, MergeFoldsCloudsThatBecomeContiguous) {
  CausalContext x;
  x.Add({"a", 1});
  x.Add({"a", 3});
  CausalContext y;
  y.Add({"a", 2});
  y.Add({"b", 2});
  CausalContext xy = x;
  xy.Merge(y);
  EXPECT_EQ(xy.compact(), Vv({{"a", 3}}));
  EXPECT_EQ(xy.cloud(), (std::set<Dot>{{"b", 2}}));
  CausalContext yx = y;
  yx.Merge(x);
  EXPECT_EQ(xy, yx);
  CausalContext xx = x;
  xx.Merge(x);
  EXPECT_EQ(xx, x);
}

TEST(CausalContextTest, MergeOfACompactVectorSwallowsCoveredCloudDots) {
  CausalContext x;
  x.Add({"a", 4});
  x.Add({"a", 9});
  const CausalContext y = CausalContext::FromParts(Vv({{"a", 6}}), {});
  x.Merge(y);
  EXPECT_EQ(x.compact(), Vv({{"a", 6}}));
  EXPECT_EQ(x.cloud(), (std::set<Dot>{{"a", 9}}));
}

TEST(CausalContextTest, FromPartsCompacts) {
  const CausalContext c =
      CausalContext::FromParts(Vv({{"a", 2}}), {{"a", 1}, {"a", 3}, {"a", 4}, {"a", 6}, {"b", 1}});
  EXPECT_EQ(c.compact(), Vv({{"a", 4}, {"b", 1}}));
  EXPECT_EQ(c.cloud(), (std::set<Dot>{{"a", 6}}));
  // Same set of dots built another way compares equal: the representation is canonical.
  CausalContext d;
  for (const Dot& dot : std::set<Dot>{{"b", 1}, {"a", 6}, {"a", 4}, {"a", 3}, {"a", 2}, {"a", 1}}) {
    d.Add(dot);
  }
  EXPECT_EQ(c, d);
  EXPECT_TRUE(CausalContext::FromParts({}, {}).empty());
  EXPECT_FALSE(c.empty());
}

}  // namespace
}  // namespace clustermgr::crdt
