#include "mgr/repl/ack_waiters.h"

#include <gtest/gtest.h>

#include <optional>

namespace clustermgr::mgr {
namespace {

TEST(AckWaitersTest, NoReplicasWantedIsDoneAtOnce) {
  AckWaiters w;
  std::optional<Status> got;
  w.Add(1, 0, 1000, 500, [&](const Status& s) { got = s; });
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->ok());
  EXPECT_TRUE(w.empty());
}

TEST(AckWaitersTest, DoneOnceEnoughPeersConfirmTheSeq) {
  AckWaiters w;
  std::optional<Status> got;
  w.Add(7, 2, 1000, 500, [&](const Status& s) { got = s; });
  int confirmed = 1;
  auto confirmations = [&](uint64_t seq) { return seq == 7 ? confirmed : 0; };
  w.Check(1100, confirmations);
  EXPECT_FALSE(got.has_value());
  confirmed = 2;
  w.Check(1200, confirmations);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->ok());
  EXPECT_TRUE(w.empty());
}

TEST(AckWaitersTest, TheDeadlineGivesOutcomeUnknownWithTheCount) {
  AckWaiters w;
  std::optional<Status> got;
  w.Add(7, 3, 1000, 500, [&](const Status& s) { got = s; });
  w.Check(1499, [](uint64_t) { return 1; });
  EXPECT_FALSE(got.has_value());
  w.Check(1500, [](uint64_t) { return 1; });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->code(), Code::kOutcomeUnknown);
  EXPECT_EQ(got->message(),
            "outcome unknown: the write is durable on this instance, but only 1 of 3 required "
            "peers confirmed it within 500 ms");
}

TEST(AckWaitersTest, WaitersLeftAtDestructionAreAnswered) {
  std::optional<Status> got;
  {
    AckWaiters w;
    w.Add(7, 2, 1000, 500, [&](const Status& s) { got = s; });
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->code(), Code::kOutcomeUnknown);
  EXPECT_EQ(got->message(), "outcome unknown: shutting down before 2 peers confirmed the write");
}

}  // namespace
}  // namespace clustermgr::mgr
