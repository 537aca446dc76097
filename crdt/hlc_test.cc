#include "crdt/hlc.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace clustermgr::crdt {
namespace {

using Ts = HlcTimestamp;

TEST(HlcTimestampTest, PacksFortyEightBitMillisAndSixteenBitCounter) {
  const Ts t = Ts::Make(0x123456789ABC, 0xDEF0);
  EXPECT_EQ(t.packed(), uint64_t{0x123456789ABCDEF0});
  EXPECT_EQ(t.millis(), uint64_t{0x123456789ABC});
  EXPECT_EQ(t.counter(), uint64_t{0xDEF0});
  EXPECT_EQ(Ts::FromPacked(t.packed()), t);

  const Ts max = Ts::Make(Ts::kMaxMillis, Ts::kMaxCounter);
  EXPECT_EQ(max.packed(), ~uint64_t{0});
  EXPECT_EQ(max.millis(), Ts::kMaxMillis);
  EXPECT_EQ(max.counter(), Ts::kMaxCounter);
  EXPECT_EQ(Ts().packed(), 0u);
}

TEST(HlcTimestampTest, OrdersByMillisThenCounter) {
  EXPECT_LT(Ts::Make(5, 9), Ts::Make(6, 0));
  EXPECT_LT(Ts::Make(5, 0), Ts::Make(5, 1));
  EXPECT_LT(Ts::Make(5, Ts::kMaxCounter), Ts::Make(6, 0));
  EXPECT_EQ(Ts::Make(5, 1), Ts::Make(5, 1));
}

TEST(HlcTimestampTest, ToString) { EXPECT_EQ(Ts::Make(1234, 7).ToString(), "1234.7"); }

TEST(HybridClockTest, NowFollowsPhysicalTimeAndResetsTheCounter) {
  ManualClock pt(1000);
  HybridClock clock(&pt);
  EXPECT_EQ(clock.Now(), Ts::Make(1000, 0));
  EXPECT_EQ(clock.Now(), Ts::Make(1000, 1));
  EXPECT_EQ(clock.Now(), Ts::Make(1000, 2));
  pt.Advance(5);
  EXPECT_EQ(clock.Now(), Ts::Make(1005, 0));
  EXPECT_EQ(clock.last(), Ts::Make(1005, 0));
}

TEST(HybridClockTest, NowStrictlyIncreasesWhenThePhysicalClockGoesBackwards) {
  ManualClock pt(10'000);
  HybridClock clock(&pt);
  Ts prev = clock.Now();
  pt.Set(9'000);  // NTP stepped the clock back a second
  for (int i = 0; i < 100; ++i) {
    const Ts t = clock.Now();
    EXPECT_GT(t, prev);
    EXPECT_EQ(t.millis(), 10'000u) << "l stays at the highest physical time seen";
    prev = t;
  }
  pt.Set(10'001);
  EXPECT_EQ(clock.Now(), Ts::Make(10'001, 0));
}

TEST(HybridClockTest, ObserveRemoteAheadTakesItsMillisAndBumpsItsCounter) {
  ManualClock pt(1000);
  HybridClock clock(&pt);
  (void)clock.Now();  // 1000.0
  Result<Ts> r = clock.Observe(Ts::Make(1200, 7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, Ts::Make(1200, 8));
  EXPECT_EQ(clock.last(), Ts::Make(1200, 8));
  // Later local events stay above the observed timestamp while physical time lags behind.
  EXPECT_EQ(clock.Now(), Ts::Make(1200, 9));
}

TEST(HybridClockTest, ObserveRemoteBehindKeepsLocalMillisAndBumpsLocalCounter) {
  ManualClock pt(1000);
  HybridClock clock(&pt);
  (void)clock.Now();
  (void)clock.Now();  // 1000.1
  Result<Ts> r = clock.Observe(Ts::Make(900, 50));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Ts::Make(1000, 2));
}

TEST(HybridClockTest, ObserveEqualMillisTakesTheGreaterCounterPlusOne) {
  ManualClock pt(1000);
  HybridClock clock(&pt);
  (void)clock.Now();
  (void)clock.Now();
  (void)clock.Now();  // 1000.2
  Result<Ts> r = clock.Observe(Ts::Make(1000, 40));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Ts::Make(1000, 41));
  r = clock.Observe(Ts::Make(1000, 3));  // remote counter below ours now
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Ts::Make(1000, 42));
}

TEST(HybridClockTest, ObservePhysicalTimeAheadOfBothResetsTheCounter) {
  ManualClock pt(1000);
  HybridClock clock(&pt);
  (void)clock.Now();
  pt.Set(2000);
  Result<Ts> r = clock.Observe(Ts::Make(1500, 9));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Ts::Make(2000, 0));
}

TEST(HybridClockTest, CounterOverflowBorrowsTheNextMillisecond) {
  ManualClock pt(1000);
  HybridClock clock(&pt);
  Ts prev = clock.Now();
  for (uint64_t i = 0; i < Ts::kMaxCounter; ++i) prev = clock.Now();
  EXPECT_EQ(prev, Ts::Make(1000, Ts::kMaxCounter));
  const Ts next = clock.Now();
  EXPECT_EQ(next, Ts::Make(1001, 0)) << "the counter must not wrap to 1000.0";
  EXPECT_GT(next, prev);
  // Physical time catching up to the borrowed millisecond does not reissue 1001.0.
  pt.Set(1001);
  EXPECT_EQ(clock.Now(), Ts::Make(1001, 1));

  // The same through the receive rule.
  ManualClock pt2(1000);
  HybridClock clock2(&pt2);
  Result<Ts> r = clock2.Observe(Ts::Make(1000, Ts::kMaxCounter));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Ts::Make(1001, 0));
}

TEST(HybridClockTest, RefusesARemoteTimestampTooFarAheadAndStaysUnchanged) {
  ManualClock pt(10'000);
  HybridClock clock(&pt, /*max_offset_millis=*/500);
  EXPECT_EQ(clock.max_offset_millis(), 500u);
  const Ts before = clock.Now();

  Result<Ts> r = clock.Observe(Ts::Make(10'501, 0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("501 ms ahead"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("limit 500 ms"), std::string::npos) << r.status().message();
  EXPECT_EQ(clock.last(), before) << "a refused timestamp must not move the clock";
  EXPECT_EQ(clock.Now(), Ts::Make(10'000, 1));

  // Exactly at the bound is accepted.
  r = clock.Observe(Ts::Make(10'500, 3));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, Ts::Make(10'500, 4));
}

TEST(HybridClockTest, TheBoundIsMeasuredFromPhysicalTimeNotFromTheLogicalClock) {
  ManualClock pt(10'000);
  HybridClock clock(&pt, 500);
  ASSERT_TRUE(clock.Observe(Ts::Make(10'400, 0)).ok());
  // Our logical clock is at 10'400 now, but 10'700 is still 700 ms ahead of physical time.
  EXPECT_FALSE(clock.Observe(Ts::Make(10'700, 0)).ok());
  EXPECT_EQ(clock.last(), Ts::Make(10'400, 1));
}

TEST(HybridClockTest, RestoreAtLeastRaisesButNeverLowers) {
  ManualClock pt(1000);
  HybridClock clock(&pt, 500);
  // The persisted high-water mark may be far ahead of physical time: no offset check.
  clock.RestoreAtLeast(Ts::Make(50'000, 3));
  EXPECT_EQ(clock.last(), Ts::Make(50'000, 3));
  EXPECT_EQ(clock.Now(), Ts::Make(50'000, 4));
  clock.RestoreAtLeast(Ts::Make(20'000, 0));
  EXPECT_EQ(clock.last(), Ts::Make(50'000, 4));
  EXPECT_EQ(clock.Now(), Ts::Make(50'000, 5));
}

TEST(HybridClockTest, EveryIssuedTimestampExceedsEveryObservedOne) {
  ManualClock pt(1000);
  HybridClock clock(&pt);
  Ts high;
  uint64_t x = 88172645463325252ull;  // xorshift: deterministic without a seed
  for (int i = 0; i < 10'000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    switch (x % 4) {
      case 0:
        pt.Set(pt.NowMillis() + x % 7 - 3);  // jitter, sometimes backwards
        break;
      case 1: {
        const Ts remote = Ts::Make(pt.NowMillis() + (x >> 8) % 400 - 200, (x >> 20) % 5);
        Result<Ts> r = clock.Observe(remote);
        ASSERT_TRUE(r.ok());
        ASSERT_GT(*r, remote);
        ASSERT_GT(*r, high);
        high = *r;
        break;
      }
      default: {
        const Ts t = clock.Now();
        ASSERT_GT(t, high);
        high = t;
      }
    }
  }
}

TEST(SystemClockTest, IsPlausibleWallTime) {
  SystemClock system_clock;
  const uint64_t ms = system_clock.NowMillis();
  EXPECT_GT(ms, uint64_t{1'600'000'000'000});  // after 2020
  EXPECT_LT(ms, HlcTimestamp::kMaxMillis);
}

}  // namespace
}  // namespace clustermgr::crdt
