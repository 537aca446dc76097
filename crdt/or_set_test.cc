#include "crdt/or_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace clustermgr::crdt {
namespace {

using Set = OrSet<std::string>;

// Applies an add at replica `origin` to `state` and returns the delta it shipped.
Set Add(Set& state, const std::string& e, const std::string& origin) {
  Set delta = state.AddDelta(e, origin, state.LastCounter(origin));
  state.Join(delta);
  return delta;
}
Set Remove(Set& state, const std::string& e) {
  Set delta = state.RemoveDelta(e);
  state.Join(delta);
  return delta;
}
Set Joined(Set a, const Set& b) {
  a.Join(b);
  return a;
}

TEST(OrSetTest, AddAndRemove) {
  Set s;
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.Contains("x"));
  const Set d = Add(s, "x", "a");
  EXPECT_TRUE(s.Contains("x"));
  EXPECT_EQ(s.DotsOf("x"), (std::set<Dot>{{"a", 1}}));
  EXPECT_EQ(d.DotsOf("x"), (std::set<Dot>{{"a", 1}}));
  EXPECT_TRUE(d.context().Contains({"a", 1}));
  (void)Add(s, "y", "a");
  EXPECT_EQ(s.Elements(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.LastCounter("a"), 2u);
  EXPECT_EQ(s.LastCounter("b"), 0u);

  const Set r = Remove(s, "x");
  EXPECT_FALSE(s.Contains("x"));
  EXPECT_TRUE(s.Contains("y"));
  EXPECT_TRUE(r.entries().empty()) << "a remove delta carries no elements";
  EXPECT_EQ(r.context().compact().Get("a"), 1u) << "...only the removed dots";
  EXPECT_TRUE(s.context().Contains({"a", 1})) << "the context remembers the removed dot";
  EXPECT_EQ(s.LastCounter("a"), 2u) << "removes do not give dots back";
}

TEST(OrSetTest, ReAddingAPresentElementSupersedesItsOlderDots) {
  Set s;
  (void)Add(s, "x", "a");
  const Set d = Add(s, "x", "a");
  EXPECT_EQ(s.DotsOf("x"), (std::set<Dot>{{"a", 2}}));
  EXPECT_TRUE(d.context().Contains({"a", 1}));
  EXPECT_EQ(d.DotsOf("x"), (std::set<Dot>{{"a", 2}}));
}

TEST(OrSetTest, RemoveOfAnUnseenElementIsANoOp) {
  Set s;
  (void)Add(s, "x", "a");
  const Set before = s;
  const Set r = s.RemoveDelta("never-added");
  EXPECT_TRUE(r.empty());
  s.Join(r);
  EXPECT_EQ(s, before);
  EXPECT_TRUE(Set().RemoveDelta("x").empty());
}

TEST(OrSetTest, ConcurrentAddAndRemoveAddWins) {
  Set a, b;
  const Set add1 = Add(a, "x", "a");
  b.Join(add1);  // b has seen a's add of x
  const Set rem = Remove(b, "x");
  const Set add2 = Add(a, "x", "a");  // concurrently, a adds x again (a dot b never saw)
  a.Join(rem);
  b.Join(add2);
  EXPECT_TRUE(a.Contains("x"));
  EXPECT_TRUE(b.Contains("x"));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.DotsOf("x"), (std::set<Dot>{{"a", 2}}));

  // The concurrent add comes from a third replica, which had also seen the removed add: its
  // add supersedes c:1 but carries a dot of its own that the remover never saw.
  Set c, d, e;
  const Set c1 = Add(c, "y", "c");
  d.Join(c1);
  e.Join(c1);
  const Set d_rem = Remove(d, "y");
  const Set e_add = Add(e, "y", "e");
  for (Set* r : {&c, &d, &e}) {
    r->Join(d_rem);
    r->Join(e_add);
  }
  EXPECT_TRUE(c.Contains("y"));
  EXPECT_EQ(c.DotsOf("y"), (std::set<Dot>{{"e", 1}}));
  EXPECT_EQ(c, d);
  EXPECT_EQ(d, e);
}

TEST(OrSetTest, ConcurrentAddsOfTheSameElementFromTwoReplicasBothSurviveOneRemove) {
  Set a, b;
  const Set from_a = Add(a, "x", "a");
  const Set from_b = Add(b, "x", "b");
  a.Join(from_b);
  const Set rem = Remove(a, "x");  // a saw both adds: removes both
  b.Join(from_a);
  b.Join(rem);
  EXPECT_FALSE(a.Contains("x"));
  EXPECT_FALSE(b.Contains("x"));
  EXPECT_EQ(a, b);
}

TEST(OrSetTest, RemoveThenReAdd) {
  Set a, b;
  std::vector<Set> deltas;
  deltas.push_back(Add(a, "x", "a"));
  deltas.push_back(Remove(a, "x"));
  deltas.push_back(Add(a, "x", "a"));
  EXPECT_TRUE(a.Contains("x"));
  EXPECT_EQ(a.DotsOf("x"), (std::set<Dot>{{"a", 2}}));
  for (const Set& d : deltas) b.Join(d);
  EXPECT_EQ(a, b);
  deltas.push_back(Remove(a, "x"));
  b.Join(deltas.back());
  EXPECT_FALSE(b.Contains("x"));
  EXPECT_EQ(a, b);
}

TEST(OrSetTest, DeltasJoinedInAnyOrderWithDuplicatesGiveTheSameState) {
  Set a;
  Set other;
  std::vector<Set> deltas;
  deltas.push_back(Add(a, "x", "a"));
  deltas.push_back(Add(a, "y", "a"));
  deltas.push_back(Remove(a, "x"));
  deltas.push_back(Add(a, "z", "a"));
  deltas.push_back(Add(a, "y", "a"));
  deltas.push_back(Remove(a, "z"));
  deltas.push_back(Add(a, "x", "a"));
  // A delta from b that a never saw.
  deltas.push_back(Add(other, "w", "b"));
  Set expected = a;
  expected.Join(deltas.back());

  std::vector<size_t> order(deltas.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  int permutations = 0;
  do {
    Set r;
    for (size_t i : order) r.Join(deltas[i]);
    r.Join(deltas[order[0]]);  // a duplicate, late
    ASSERT_EQ(r, expected) << "permutation " << permutations;
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()) && permutations < 5000);
  EXPECT_EQ(expected.Elements(), (std::vector<std::string>{"w", "x", "y"}));
}

TEST(OrSetTest, ARemoveDeltaArrivingBeforeItsAddStillRemoves) {
  Set a;
  const Set add = Add(a, "x", "a");
  const Set rem = Remove(a, "x");
  Set b;
  b.Join(rem);
  EXPECT_FALSE(b.Contains("x"));
  b.Join(add);
  EXPECT_FALSE(b.Contains("x")) << "the add's dot is already in the context";
  EXPECT_EQ(a, b);
}

TEST(OrSetTest, DeltaAndFullStateJoinsAreEquivalent) {
  Set a, b;
  std::vector<Set> a_deltas, b_deltas;
  a_deltas.push_back(Add(a, "x", "a"));
  b_deltas.push_back(Add(b, "x", "b"));
  b_deltas.push_back(Add(b, "y", "b"));
  a_deltas.push_back(Add(a, "z", "a"));
  a.Join(b_deltas[0]);
  a_deltas.push_back(Remove(a, "x"));  // removes a:1 and b:1
  b_deltas.push_back(Remove(b, "y"));

  Set by_deltas;
  for (const Set& d : b_deltas) by_deltas.Join(d);
  for (const Set& d : a_deltas) by_deltas.Join(d);
  Set by_states = a;
  by_states.Join(b);
  Set by_states_rev = b;
  by_states_rev.Join(a);
  EXPECT_EQ(by_deltas, by_states);
  EXPECT_EQ(by_states, by_states_rev);
  EXPECT_EQ(by_states.Elements(), (std::vector<std::string>{"z"}));

  // A delta interval (deltas joined together first) is as good as the deltas one by one.
  Set interval;
  for (const Set& d : a_deltas) interval.Join(d);
  Set via_interval = b;
  via_interval.Join(interval);
  EXPECT_EQ(via_interval, by_states);
}

TEST(OrSetTest, JoinKeepsADotOnlyTheOtherSideHasNotSeen) {
  // The core rule: a dot present on one side only survives unless the other side's context
  // covers it.
  Set a;
  (void)Add(a, "x", "a");
  Set b = a;
  (void)Remove(b, "x");
  EXPECT_FALSE(Joined(a, b).Contains("x"));
  EXPECT_FALSE(Joined(b, a).Contains("x"));
  Set fresh;
  EXPECT_TRUE(Joined(fresh, a).Contains("x"));
  EXPECT_TRUE(Joined(a, fresh).Contains("x"));
}

TEST(OrSetTest, LastCounterSeesCloudDots) {
  Set s;
  Set far;
  const Set d3 = far.AddDelta("x", "a", 2);  // dot a:3, a:1..2 never seen here
  s.Join(d3);
  EXPECT_EQ(s.LastCounter("a"), 3u);
  EXPECT_FALSE(s.context().cloud().empty());
}

TEST(OrSetTest, JoinWithItselfChangesNothing) {
  Set s;
  (void)Add(s, "x", "a");
  (void)Add(s, "y", "a");
  (void)Remove(s, "x");
  const Set copy = s;
  s.Join(s);  // aliasing: the in-place join must not trip over itself
  EXPECT_EQ(s, copy);
}

TEST(OrSetTest, FromPartsRoundTrips) {
  Set s;
  (void)Add(s, "x", "a");
  (void)Add(s, "y", "b");
  (void)Remove(s, "x");
  const Set copy = Set::FromParts(s.entries(), s.context());
  EXPECT_EQ(copy, s);
}

}  // namespace
}  // namespace clustermgr::crdt
