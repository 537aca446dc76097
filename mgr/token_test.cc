#include "mgr/token.h"

#include <gtest/gtest.h>

#include <limits>

namespace clustermgr::mgr {
namespace {

TokenElection Make(const std::string& self, int expect, uint64_t settle = 1000) {
  return TokenElection({self, expect, settle});
}

TEST(TokenElectionTest, AloneHoldsAtOnceWithANewEpoch) {
  TokenElection e = Make("a", 1);
  auto act = e.Tick(0, 7);
  EXPECT_TRUE(act.became_holder);
  ASSERT_TRUE(act.record_epoch);
  EXPECT_EQ(*act.record_epoch, 8u);
  EXPECT_EQ(*act.publish_epoch, 8u);
  EXPECT_TRUE(e.Status().self_holds);
  EXPECT_EQ(e.Status().epoch, 8u);
}

TEST(TokenElectionTest, AnUnfitInstanceStandsDownAndClaimsAgainOnceFit) {
  TokenElection e = Make("a", 1);
  ASSERT_TRUE(e.Tick(0, 0).became_holder);
  e.SetUnfit("its store refuses writes (disk full)");
  auto act = e.Tick(100, 1);
  EXPECT_TRUE(act.lost_holder);
  EXPECT_EQ(act.reason, "stands down: its store refuses writes (disk full)");
  EXPECT_FALSE(e.Tick(200, 1).record_epoch) << "no claim while unfit";
  EXPECT_FALSE(e.Status().self_holds);
  EXPECT_EQ(e.Status().why_not,
            "no manager holds the side-effect token yet; this instance stands down: its store "
            "refuses writes (disk full)");
  e.SetUnfit("");
  act = e.Tick(300, 1);
  EXPECT_TRUE(act.became_holder);
  EXPECT_EQ(e.Status().epoch, 2u);
}

// A holder whose ticks stop for longer than the contact window (its daemon was stopped or
// starved) may have been replaced meanwhile by a holder it has not heard of yet: at its next
// tick it gives the token up, and in between it does not count as holding. Shorter stalls
// cannot have cost it the token (the others still counted it): it keeps it.
TEST(TokenElectionTest, AHolderWhoseTicksStoppedLongerThanTheContactWindowGivesTheTokenUp) {
  TokenElection a({"a", 3, 1000, /*contact_ms=*/400});
  a.SetManagers({{"b", {true, 0, ""}}, {"c", {true, 0, ""}}});
  ASSERT_TRUE(a.Tick(0, 4).publish_epoch);
  ASSERT_TRUE(a.Tick(1000, 4).became_holder);
  for (uint64_t t = 1100; t <= 2000; t += 100) ASSERT_FALSE(a.Tick(t, 4).lost_holder) << t;
  EXPECT_TRUE(a.InContact(2400));
  EXPECT_FALSE(a.InContact(2401)) << "silent for longer than the contact window";
  ASSERT_FALSE(a.Tick(2400, 4).lost_holder) << "a stall within the contact window";
  EXPECT_TRUE(a.Status().self_holds);

  auto act = a.Tick(9400, 4);  // stopped for 7 s: the others' claim has not reached it yet
  EXPECT_TRUE(act.lost_holder);
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 0u) << "its claim tag is withdrawn";
  EXPECT_EQ(act.reason,
            "did not tick for 7000 ms, longer than the contact window (400 ms): gives the token "
            "up, another instance may hold it now");
  EXPECT_FALSE(a.Status().self_holds);
  // It claims again like any other instance: a new epoch, after the settle period.
  act = a.Tick(9500, 5);
  EXPECT_FALSE(a.Status().self_holds);
}

TEST(TokenElectionTest, TheContactRuleDoesNotApplyAlone) {
  TokenElection a({"a", 1, 1000, /*contact_ms=*/400});
  ASSERT_TRUE(a.Tick(0, 0).became_holder);
  EXPECT_TRUE(a.InContact(100'000));
  EXPECT_FALSE(a.Tick(100'000, 1).lost_holder) << "nobody else can have taken it over";
}

TEST(TokenElectionTest, NoQuorumNoClaimAndTheReasonSaysWhy) {
  TokenElection e = Make("a", 2);
  e.SetManagers({{"b", {false, 0, ""}}});
  EXPECT_FALSE(e.Tick(0, 0).record_epoch);
  EXPECT_FALSE(e.Tick(100'000, 0).record_epoch);
  EXPECT_FALSE(e.Status().self_holds);
  EXPECT_EQ(e.Status().why_not,
            "no manager holds the side-effect token: sees 1 of 2 required managers");
}

TEST(TokenElectionTest, LowestNameClaimsFirstAndHoldsAfterTheSettlePeriod) {
  TokenElection a = Make("a", 3);
  TokenElection b = Make("b", 3);
  a.SetManagers({{"b", {true, 0, ""}}, {"c", {true, 0, ""}}});
  b.SetManagers({{"a", {true, 0, ""}}, {"c", {true, 0, ""}}});
  auto act = a.Tick(0, 4);
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 5u);
  EXPECT_FALSE(act.became_holder);
  EXPECT_FALSE(b.Tick(0, 4).publish_epoch);  // rank 1: waits one settle period
  EXPECT_FALSE(a.Tick(999, 4).became_holder);
  EXPECT_TRUE(a.Tick(1000, 4).became_holder);
  // b now sees a's claim and never claims.
  b.SetManagers({{"a", {true, 5, "tcp://a"}}, {"c", {true, 0, ""}}});
  EXPECT_FALSE(b.Tick(5000, 5).publish_epoch);
  EXPECT_EQ(b.Status().holder, "a");
  EXPECT_EQ(b.Status().holder_rpc, "tcp://a");
  EXPECT_EQ(b.Status().why_not, "the side-effect token is held by a (epoch 5)");
}

TEST(TokenElectionTest, DuellingClaimsResolveToTheHigherEpochAndName) {
  TokenElection a = Make("a", 3);
  a.SetManagers({{"b", {true, 0, ""}}, {"c", {true, 0, ""}}});
  ASSERT_EQ(*a.Tick(0, 0).publish_epoch, 1u);
  a.SetManagers({{"b", {true, 1, ""}}, {"c", {true, 0, ""}}});  // same epoch, higher name
  auto act = a.Tick(10, 1);
  EXPECT_FALSE(act.became_holder);
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 0u);  // the claim is withdrawn
  EXPECT_FALSE(a.Status().self_holds);
}

TEST(TokenElectionTest, HolderDropsAtOnceOnQuorumLossOrAHigherClaim) {
  TokenElection a = Make("a", 3);
  a.SetManagers({{"b", {true, 0, ""}}, {"c", {true, 0, ""}}});
  a.Tick(0, 0);
  ASSERT_TRUE(a.Tick(1000, 1).became_holder);
  a.SetManagers({{"b", {false, 0, ""}}, {"c", {false, 0, ""}}});
  auto lost = a.Tick(1100, 1);
  EXPECT_TRUE(lost.lost_holder);
  EXPECT_EQ(lost.reason, "lost quorum: sees 1 of 2 required managers");
  EXPECT_FALSE(a.Status().self_holds);

  TokenElection b = Make("b", 3);
  b.SetManagers({{"a", {true, 0, ""}}, {"c", {false, 0, ""}}});
  b.Tick(0, 0);     // rank 1
  b.Tick(1000, 0);  // claims epoch 1
  ASSERT_TRUE(b.Tick(2000, 1).became_holder);
  b.SetManagers({{"a", {true, 2, ""}}, {"c", {false, 0, ""}}});
  EXPECT_TRUE(b.Tick(2100, 2).lost_holder);
}

TEST(TokenElectionTest, AFailedHoldersStaleTagIsIgnoredAndTheNextEpochIsHigher) {
  TokenElection b = Make("b", 3);
  b.SetManagers({{"a", {false, 9, ""}}, {"c", {true, 0, ""}}});
  auto act = b.Tick(0, 3);  // rank 0 among alive managers: a is dead
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 10u);  // above the dead holder's tag, not just the register
}

TEST(TokenElectionTest, AFreshEpochInTheReplicatedStateHoldsClaimsBack) {
  // b's claim reached c by gossip (the epoch register) before b's Serf tag did.
  TokenElection c = Make("c", 3);
  c.SetManagers({{"b", {true, 0, ""}}, {"a", {false, 0, ""}}});
  EXPECT_FALSE(c.Tick(0, 4).publish_epoch);     // rank 1: waits
  EXPECT_FALSE(c.Tick(500, 5).publish_epoch);   // the register rose: someone claims
  EXPECT_FALSE(c.Tick(2400, 5).publish_epoch);  // still within 2 x settle of the rise
  c.SetManagers({{"b", {true, 5, ""}}, {"a", {false, 0, ""}}});  // the tag arrives
  EXPECT_FALSE(c.Tick(2600, 5).publish_epoch);
  EXPECT_EQ(c.Status().holder, "b");
}

// A wiped or restarted instance must not build a claim on an epoch register it has not caught up:
// it would claim an epoch below one already used, and its writes would lose to older jobs'.
TEST(TokenElectionTest, AnInstanceBehindACountedManagerDoesNotClaimUntilCaughtUp) {
  TokenElection a = Make("a", 3);
  ManagerSighting behind{true, 0, "", true};
  ManagerSighting level{true, 0, "", false};
  a.SetManagers({{"b", behind}, {"c", level}});
  EXPECT_FALSE(a.Tick(0, 0).publish_epoch);
  EXPECT_FALSE(a.Tick(60'000, 0).publish_epoch);
  // Caught up, the register it now has (9) is the base of its claim (after the 2 x settle a fresh
  // rise of the register holds claims back).
  a.SetManagers({{"b", level}, {"c", level}});
  EXPECT_FALSE(a.Tick(61'000, 9).publish_epoch);
  auto act = a.Tick(63'000, 9);
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 10u);
  // Behind a manager that is not alive does not matter.
  TokenElection b = Make("b", 3);
  b.SetManagers({{"a", {false, 0, "", true}}, {"c", level}});
  EXPECT_TRUE(b.Tick(0, 0).publish_epoch);
}

TEST(TokenElectionTest, AHolderStandsDownWhenTheEpochRegisterPassesItsEpoch) {
  TokenElection a = Make("a", 3);
  a.SetManagers({{"b", {true, 0, ""}}, {"c", {true, 0, ""}}});
  ASSERT_EQ(*a.Tick(0, 4).publish_epoch, 5u);
  ASSERT_TRUE(a.Tick(1000, 5).became_holder);
  EXPECT_FALSE(a.Tick(2000, 5).lost_holder);
  // A higher claim reached it by replication before its tag did.
  auto act = a.Tick(3000, 6);
  EXPECT_TRUE(act.lost_holder);
  EXPECT_EQ(act.reason, "the replicated epoch register is at 6, above this instance's epoch 5");
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 0u);
  EXPECT_FALSE(a.Status().self_holds);
}

TEST(TokenElectionTest, AClaimBelowTheEpochRegisterIsStaleAndIgnored) {
  TokenElection b = Make("b", 3);
  b.SetManagers({{"a", {true, 3, "tcp://a"}}, {"c", {true, 0, ""}}});
  EXPECT_FALSE(b.Tick(0, 3).publish_epoch);
  EXPECT_EQ(b.Status().holder, "a");
  // The register passes a's epoch: its claim no longer counts, and b may claim above both.
  EXPECT_FALSE(b.Tick(1000, 5).publish_epoch);  // a fresh rise holds claims back 2 x settle
  EXPECT_EQ(b.Status().holder, "");
  EXPECT_FALSE(b.Tick(4000, 5).publish_epoch);  // rank 1 (a is alive): one more settle period
  auto act = b.Tick(5000, 5);
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 6u);
}

TEST(TokenElectionTest, AnUnbelievableEpochDoesNotRaiseTheClaimAndNeverWrapsIt) {
  constexpr uint64_t kTop = std::numeric_limits<uint64_t>::max();
  TokenElection a = Make("a", 3);
  a.SetManagers({{"b", {true, 0, ""}}, {"c", {true, 0, ""}}, {"zz", {false, kTop, ""}}});
  auto act = a.Tick(0, 3);
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 4u);
  EXPECT_TRUE(a.Tick(1000, 4).became_holder);
}

TEST(TokenElectionTest, AnAliveClaimFarAboveTheRegisterIsIgnored) {
  constexpr uint64_t kTop = std::numeric_limits<uint64_t>::max();
  TokenElection a = Make("a", 3);
  a.SetManagers({{"b", {true, kTop, ""}}, {"c", {true, 0, ""}}});
  auto act = a.Tick(0, 3);
  ASSERT_TRUE(act.publish_epoch);
  EXPECT_EQ(*act.publish_epoch, 4u);
  EXPECT_TRUE(a.Tick(1000, 4).became_holder);
  EXPECT_FALSE(a.Tick(2000, 4).lost_holder);
}

TEST(TokenElectionTest, EpochTagsAreParsedStrictly) {
  EXPECT_EQ(ParseEpochTag("0"), 0u);
  EXPECT_EQ(ParseEpochTag("42"), 42u);
  EXPECT_EQ(ParseEpochTag("18446744073709551615"), std::numeric_limits<uint64_t>::max());
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "18446744073709551616",
                          "99999999999999999999", "000000000000000000001"}) {
    EXPECT_EQ(ParseEpochTag(bad), std::nullopt) << bad;
  }
}

TEST(TokenElectionTest, WithTheRegisterAtTheTopNobodyClaimsAndStatusSaysWhy) {
  constexpr uint64_t kTop = std::numeric_limits<uint64_t>::max();
  TokenElection a = Make("a", 3);
  a.SetManagers({{"b", {true, 0, ""}}, {"c", {true, 0, ""}}});
  EXPECT_FALSE(a.Tick(0, kTop).publish_epoch);
  EXPECT_FALSE(a.Tick(10'000, kTop).publish_epoch);
  EXPECT_EQ(a.Status().why_not,
            "no manager holds the side-effect token: the epoch register is at the top of its "
            "range");
}

}  // namespace
}  // namespace clustermgr::mgr
