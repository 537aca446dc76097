#include "mgr/repl/delta_sequencer.h"

#include <gtest/gtest.h>

#include "store/codec.h"

namespace clustermgr::mgr {
namespace {

using Accepted = DeltaSequencer::Accepted;

net::GossipDelta Encoded(const std::string& origin, uint64_t seq) {
  return net::GossipDelta{origin, seq, store::EncodeDelta(crdt::Delta{origin, seq, {}}), false};
}

crdt::VersionVector Applied(const std::string& origin, uint64_t seq) {
  crdt::VersionVector v;
  v.Advance(origin, seq);
  return v;
}

std::vector<uint64_t> Seqs(const DeltaSequencer::Ready& ready) {
  std::vector<uint64_t> out;
  for (const crdt::Delta& d : ready.batch) out.push_back(d.seq);
  return out;
}

TEST(DeltaSequencerTest, HandsOverDeltasInSeqOrderOnceTheGapCloses) {
  DeltaSequencer s(100);
  EXPECT_EQ(s.Accept(Encoded("a", 3), 0), Accepted::kBuffered);
  EXPECT_EQ(s.Accept(Encoded("a", 2), 0), Accepted::kBuffered);
  EXPECT_TRUE(s.TakeReady({}).batch.empty());
  EXPECT_EQ(s.GapOrigins(), std::vector<std::string>{"a"});
  EXPECT_EQ(s.Accept(Encoded("a", 1), 0), Accepted::kBuffered);
  DeltaSequencer::Ready ready = s.TakeReady({});
  EXPECT_EQ(Seqs(ready), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(ready.origins, std::set<std::string>{"a"});
  EXPECT_EQ(s.buffered(), 0u);
  EXPECT_TRUE(s.GapOrigins().empty());
}

TEST(DeltaSequencerTest, RefusesDeltasAlreadyAppliedOrBuffered) {
  DeltaSequencer s(100);
  EXPECT_EQ(s.Accept(Encoded("a", 4), 4), Accepted::kDuplicate);
  EXPECT_EQ(s.Accept(Encoded("a", 6), 4), Accepted::kBuffered);
  EXPECT_EQ(s.Accept(Encoded("a", 6), 4), Accepted::kDuplicate);
  EXPECT_EQ(s.buffered(), 1u);
}

TEST(DeltaSequencerTest, DropsWhatWasAppliedMeanwhileAsDuplicates) {
  DeltaSequencer s(100);
  ASSERT_EQ(s.Accept(Encoded("a", 2), 0), Accepted::kBuffered);
  ASSERT_EQ(s.Accept(Encoded("a", 3), 0), Accepted::kBuffered);
  // A snapshot covered a:2 before the buffer was flushed.
  DeltaSequencer::Ready ready = s.TakeReady(Applied("a", 2));
  EXPECT_EQ(ready.duplicates, 1u);
  EXPECT_EQ(Seqs(ready), std::vector<uint64_t>{3});
}

TEST(DeltaSequencerTest, AFullBufferStillTakesTheNextDeltaInOrder) {
  DeltaSequencer s(1);
  ASSERT_EQ(s.Accept(Encoded("a", 5), 0), Accepted::kBuffered);
  EXPECT_EQ(s.Accept(Encoded("a", 6), 0), Accepted::kOverflow);
  EXPECT_EQ(s.Accept(Encoded("b", 1), 0), Accepted::kBuffered);
  EXPECT_EQ(s.buffered(), 2u);
  EXPECT_EQ(Seqs(s.TakeReady({})), std::vector<uint64_t>{1});
}

TEST(DeltaSequencerTest, ABadPayloadIsDroppedAndEndsItsOriginsRun) {
  DeltaSequencer s(100);
  net::GossipDelta garbage{"a", 1, "not a delta", false};
  ASSERT_EQ(s.Accept(garbage, 0), Accepted::kBuffered);
  ASSERT_EQ(s.Accept(Encoded("a", 2), 0), Accepted::kBuffered);
  // A payload that decodes but names another seq is as bad.
  ASSERT_EQ(s.Accept(net::GossipDelta{"b", 1, Encoded("b", 7).payload, false}, 0),
            Accepted::kBuffered);
  DeltaSequencer::Ready ready = s.TakeReady({});
  EXPECT_EQ(ready.bad, 2u);
  EXPECT_TRUE(ready.batch.empty());
  EXPECT_EQ(s.GapOrigins(), std::vector<std::string>{"a"});  // a:2 waits for a good a:1
}

// Deltas of a run arrive decoded; they queue with encoded ones under the same rules.
TEST(DeltaSequencerTest, TakesDecodedDeltasUnderTheSameRules) {
  DeltaSequencer s(100);
  crdt::Delta d2{"a", 2, {}};
  d2.state.token_epoch = crdt::MaxRegister::Of(7);
  EXPECT_EQ(s.Accept(d2, 0), Accepted::kBuffered);
  EXPECT_EQ(s.Accept(crdt::Delta{"a", 2, {}}, 0), Accepted::kDuplicate);
  EXPECT_EQ(s.Accept(crdt::Delta{"a", 1, {}}, 1), Accepted::kDuplicate);
  EXPECT_EQ(s.Accept(Encoded("a", 1), 0), Accepted::kBuffered);
  DeltaSequencer::Ready ready = s.TakeReady({});
  EXPECT_EQ(Seqs(ready), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(ready.batch[1] == d2);
  EXPECT_EQ(s.buffered(), 0u);
}

}  // namespace
}  // namespace clustermgr::mgr
