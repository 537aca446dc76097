#include "crdt/records.h"

#include <gtest/gtest.h>

namespace clustermgr::crdt {
namespace {

TEST(RecordsTest, NamesRoundTrip) {
  for (uint8_t v = 0; v <= 5; ++v) {
    const auto s = static_cast<NodeStatus>(v);
    EXPECT_EQ(ParseNodeStatus(ToString(s)), s);
    const auto j = static_cast<JobStatus>(v);
    EXPECT_EQ(ParseJobStatus(ToString(j)), j);
  }
  for (uint8_t v = 0; v <= 2; ++v) {
    const auto s = static_cast<NodeState>(v);
    EXPECT_EQ(ParseNodeState(ToString(s)), s);
  }
  EXPECT_EQ(ToString(NodeStatus::kDecommissioned), "Decommissioned");
  EXPECT_EQ(ToString(NodeState::kDisappeared), "Disappeared");
  EXPECT_EQ(ToString(JobStatus::kInterrupted), "Interrupted");
}

TEST(RecordsTest, UnknownNamesAndValues) {
  EXPECT_EQ(ParseNodeStatus("allocated"), std::nullopt) << "names are case-sensitive";
  EXPECT_EQ(ParseNodeState(""), std::nullopt);
  EXPECT_EQ(ParseJobStatus("Done"), std::nullopt);
  EXPECT_EQ(ToString(static_cast<NodeStatus>(42)), "Invalid");
  EXPECT_EQ(ToString(static_cast<JobStatus>(42)), "Invalid");
}

TEST(RecordsTest, FinalJobStatuses) {
  EXPECT_FALSE(IsFinal(JobStatus::kQueued));
  EXPECT_FALSE(IsFinal(JobStatus::kRunning));
  EXPECT_TRUE(IsFinal(JobStatus::kComplete));
  EXPECT_TRUE(IsFinal(JobStatus::kErrored));
  EXPECT_TRUE(IsFinal(JobStatus::kCancelled));
  EXPECT_TRUE(IsFinal(JobStatus::kInterrupted));
}

}  // namespace
}  // namespace clustermgr::crdt
