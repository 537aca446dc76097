// Durability of Store under injected I/O faults and lost unsynced data (FaultInjectionEnv).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "store/inspect.h"
#include "store/store.h"
#include "store/testing/fault_injection_env.h"
#include "store/testing/random_replica.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_seed.h"

namespace clustermgr::store {
namespace {

using crdt::ClusterState;
using crdt::Delta;


class FaultInjectionTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open(bool sync = true) {
    Options o;
    o.instance_name = "m1";
    o.env = &env_;
    o.sync = sync;
    auto s = Store::Open(tmp_.Sub("data"), o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  void ExpectVerifies() {
    auto inspection = InspectDir(tmp_.Sub("data"));
    ASSERT_TRUE(inspection.ok()) << inspection.status().ToString();
    for (const Problem& p : inspection->problems) ADD_FAILURE() << p.ToString();
  }

  // Commits `n` random deltas of `r`, one per call, all expected to succeed.
  void CommitSome(Store& store, RandomReplica& r, int n) {
    for (int i = 0; i < n; ++i) {
      Delta d = r.Next(4);
      ASSERT_TRUE(store.Commit({d}, r.hlc(), r.seq()).ok());
    }
  }

  TempDir tmp_;
  FaultInjectionEnv env_;
};

TEST_F(FaultInjectionTest, WriteErrorLeavesMemoryAndRefusesWritesUntilReopen) {
  auto store = Open();
  ASSERT_TRUE(store);
  RandomReplica r(store->origin(), TestSeed());
  CommitSome(*store, r, 20);
  const ClusterState before = store->State();
  const crdt::VersionVector applied = store->Applied();
  const Metadata meta = store->metadata();

  env_.SetWriteError(true);
  Delta failed = r.Next(4);
  Status s = store->Commit({failed}, r.hlc(), r.seq());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kOutcomeUnknown);
  EXPECT_NE(s.message().find("injected write error"), std::string::npos) << s.message();
  EXPECT_GT(env_.injected_errors(), 0);
  EXPECT_TRUE(store->State() == before);
  EXPECT_EQ(store->Applied(), applied);
  EXPECT_EQ(store->metadata(), meta);

  // The fault is gone, the store stays read-only.
  env_.SetWriteError(false);
  s = store->Commit({r.Next(4)}, r.hlc(), r.seq());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(s.message().rfind("not stored: the store is read-only after a failed write (", 0), 0u)
      << s.message();
  EXPECT_NE(s.message().find(") until it is reopened"), std::string::npos);
  EXPECT_FALSE(store->write_error().ok());
  EXPECT_FALSE(store->ApplySnapshot(ClusterState{}, {}).ok());
  EXPECT_FALSE(store->CollectTombstones({}).ok());
  EXPECT_TRUE(store->State() == before);

  // Reopened, it has exactly what was acknowledged (nothing of the failed write reached the
  // log) and takes writes again.
  store.reset();
  store = Open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->State() == before);
  EXPECT_EQ(store->Applied(), applied);
  Delta again = r.Next(4);
  ClusterState expected = before;
  expected.Join(again.state);
  ASSERT_TRUE(store->Commit({again}, r.hlc(), r.seq()).ok());
  EXPECT_TRUE(store->State() == expected);
  store.reset();
  ExpectVerifies();
}

TEST_F(FaultInjectionTest, SyncErrorIsAllOrNothingOnReopen) {
  auto store = Open();
  ASSERT_TRUE(store);
  RandomReplica r(store->origin(), TestSeed());
  CommitSome(*store, r, 20);
  const ClusterState before = store->State();

  env_.FailNextSyncs(1);
  Delta failed = r.Next(4);
  Status s = store->Commit({failed}, r.hlc(), r.seq());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kOutcomeUnknown) << "a failed sync's outcome is unknown";
  EXPECT_NE(s.message().find("injected sync error"), std::string::npos) << s.message();
  EXPECT_TRUE(store->State() == before) << "memory joins only durable batches";
  EXPECT_FALSE(store->Commit({r.Next(4)}, r.hlc(), r.seq()).ok());

  // The record reached the log unsynced: after a reopen it is there in full or not at all.
  store.reset();
  store = Open();
  ASSERT_TRUE(store);
  ClusterState with = before;
  with.Join(failed.state);
  const ClusterState after = store->State();
  EXPECT_TRUE(after == before || after == with);
  store.reset();
  ExpectVerifies();
}

TEST_F(FaultInjectionTest, ReopenAfterAWriteErrorResumesWithEverythingAcknowledged) {
  auto store = Open();
  ASSERT_TRUE(store);
  RandomReplica r(store->origin(), TestSeed());
  CommitSome(*store, r, 20);
  const ClusterState before = store->State();
  EXPECT_TRUE(store->Reopen().ok()) << "nothing failed: nothing to do";

  // A transient EMFILE: the write fails, and so does every file LevelDB opens meanwhile.
  env_.SetWriteError(true);
  env_.SetOpenError(true);
  Delta failed = r.Next(4);
  ASSERT_EQ(store->Commit({failed}, r.hlc(), r.seq()).code(), Code::kOutcomeUnknown);
  Status reopened = store->Reopen();
  EXPECT_FALSE(reopened.ok());
  EXPECT_NE(reopened.message().find("Too many open files"), std::string::npos)
      << reopened.message();
  EXPECT_FALSE(store->write_error().ok());
  EXPECT_TRUE(store->State() == before) << "a failed reopen keeps the loaded state";
  EXPECT_EQ(store->Commit({r.Next(4)}, r.hlc(), r.seq()).code(), Code::kIoError);

  // The descriptors are back: the same Store reopens and takes writes, nothing acknowledged lost.
  env_.SetWriteError(false);
  env_.SetOpenError(false);
  ASSERT_TRUE(store->Reopen().ok());
  EXPECT_TRUE(store->write_error().ok());
  EXPECT_TRUE(store->State() == before);
  Delta again = r.Next(4);
  ClusterState expected = before;
  expected.Join(again.state);
  ASSERT_TRUE(store->Commit({again}, r.hlc(), r.seq()).ok());
  EXPECT_TRUE(store->State() == expected);
  store.reset();
  store = Open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->State() == expected);
  store.reset();
  ExpectVerifies();
}

TEST_F(FaultInjectionTest, LosingUnsyncedDataKeepsEverySyncedWrite) {
  const uint64_t seed = TestSeed();
  std::string origin;
  {
    auto store = Open();
    ASSERT_TRUE(store);
    origin = store->origin();
  }
  RandomReplica r(origin, seed);
  ClusterState acked;
  for (int round = 0; round < 3; ++round) {
    {
      auto store = Open(/*sync=*/true);
      ASSERT_TRUE(store);
      CommitSome(*store, r, 30);
      acked = r.state();
    }
    // A crash: every byte not synced is gone.
    ASSERT_TRUE(env_.DropUnsyncedData().ok());
    auto store = Open(/*sync=*/true);
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->State() == acked) << "round " << round;
    EXPECT_EQ(store->Applied().Get(origin), r.seq());
    EXPECT_EQ(store->metadata().local_seq, r.seq());
  }

  // Writes acknowledged without sync (Options::sync = false) may vanish in a crash; the synced
  // ones before them must not.
  {
    auto store = Open(/*sync=*/false);
    ASSERT_TRUE(store);
    RandomReplica peer("peer/00000000000000aa", seed + 1);
    CommitSome(*store, peer, 30);
  }
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  auto store = Open();
  ASSERT_TRUE(store);
  const ClusterState now = store->State();
  ClusterState joined = now;
  joined.Join(acked);
  EXPECT_TRUE(joined == now) << "a synced write was lost";
  // And the env did drop something: LevelDB never synced the log of that session.
  EXPECT_EQ(store->Applied().Get("peer/00000000000000aa"), 0u);
  store.reset();
  ExpectVerifies();
}

TEST_F(FaultInjectionTest, ConcurrentWritersAroundAFailedSync) {
  auto store = Open();
  ASSERT_TRUE(store);
  constexpr int kWriters = 4;
  std::mutex mu;
  std::vector<Delta> acked;
  std::atomic<int> failed{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      RandomReplica r("w" + std::to_string(w) + "/1", 1000 + w);
      for (int i = 0; i < 30; ++i) {
        Delta d = r.Next(3);
        if (store->Commit({d}, {}, 0).ok()) {
          std::lock_guard lock(mu);
          acked.push_back(d);
        } else {
          ++failed;
        }
        if (w == 0 && i == 10) env_.FailNextSyncs(1);
      }
      ++done;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(failed, 0);
  // Nothing is acknowledged after the failure: every later write is refused.
  const ClusterState in_memory = store->State();
  store.reset();
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  store = Open();
  ASSERT_TRUE(store);
  ClusterState want;
  for (const Delta& d : acked) want.Join(d.state);
  ClusterState have = store->State();
  ClusterState joined = have;
  joined.Join(want);
  EXPECT_TRUE(joined == have) << "an acknowledged write was lost";
  EXPECT_TRUE(in_memory == want) << "memory holds exactly the acknowledged writes";
  store.reset();
  ExpectVerifies();
}

TEST_F(FaultInjectionTest, StagedChangesShareOneSyncAndSurviveACrash) {
  auto store = Open();
  ASSERT_TRUE(store);
  RandomReplica r(store->origin(), TestSeed());
  CommitSome(*store, r, 5);
  const int syncs = env_.log_syncs();
  for (int i = 0; i < 10; ++i) {
    Delta d = r.Next(4);
    ASSERT_TRUE(store->Stage({d}, r.hlc(), r.seq()).ok());
  }
  EXPECT_TRUE(store->has_staged());
  EXPECT_EQ(env_.log_syncs(), syncs) << "staging writes nothing";
  EXPECT_TRUE(store->State() == r.state()) << "staged changes are in memory at once";
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_FALSE(store->has_staged());
  EXPECT_EQ(env_.log_syncs(), syncs + 1) << "ten staged changes, one sync";
  EXPECT_TRUE(store->Flush().ok()) << "nothing staged: nothing to do";
  EXPECT_EQ(env_.log_syncs(), syncs + 1);

  // A Commit carries what is staged ahead of it, in the same write.
  Delta staged = r.Next(4);
  ASSERT_TRUE(store->Stage({staged}, r.hlc(), r.seq()).ok());
  Delta committed = r.Next(4);
  ASSERT_TRUE(store->Commit({committed}, r.hlc(), r.seq()).ok());
  EXPECT_EQ(env_.log_syncs(), syncs + 2);
  EXPECT_FALSE(store->has_staged());

  // A crash loses nothing flushed.
  store.reset();
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  store = Open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->State() == r.state());
  EXPECT_EQ(store->Applied().Get(store->origin()), r.seq());
  EXPECT_EQ(store->metadata().local_seq, r.seq());
  store.reset();
  ExpectVerifies();
}

TEST_F(FaultInjectionTest, AFailedFlushIsAllOrNothingAndReopenTakesTheDiskState) {
  auto store = Open();
  ASSERT_TRUE(store);
  RandomReplica r(store->origin(), TestSeed());
  CommitSome(*store, r, 5);
  const ClusterState before = store->State();
  ClusterState with = before;
  for (int i = 0; i < 4; ++i) {
    Delta d = r.Next(4);
    with.Join(d.state);
    ASSERT_TRUE(store->Stage({d}, r.hlc(), r.seq()).ok());
  }
  env_.FailNextSyncs(1);
  Status s = store->Flush();
  ASSERT_EQ(s.code(), Code::kOutcomeUnknown) << s.message();
  EXPECT_NE(s.message().find("injected sync error"), std::string::npos) << s.message();
  EXPECT_EQ(store->Commit({r.Next(4)}, r.hlc(), r.seq()).code(), Code::kIoError)
      << "read-only until reopened";
  EXPECT_EQ(store->Stage({r.Next(4)}, r.hlc(), r.seq()).code(), Code::kIoError);

  // Memory held the staged batch; the reopened store holds what the disk holds: the batch whole
  // or not at all.
  ASSERT_TRUE(store->Reopen().ok());
  EXPECT_FALSE(store->has_staged());
  const ClusterState after = store->State();
  EXPECT_TRUE(after == before || after == with);
  store.reset();
  ExpectVerifies();
}

TEST_F(FaultInjectionTest, UnsyncedCommitsBecomeDurableWithTheNextSync) {
  auto store = Open();
  ASSERT_TRUE(store);
  RandomReplica peer("peer/00000000000000bb", TestSeed());
  CommitSome(*store, peer, 3);
  const crdt::VersionVector synced = store->Applied();
  EXPECT_EQ(store->Durable(), synced);
  const int syncs = env_.log_syncs();
  for (int i = 0; i < 5; ++i) {
    Delta d = peer.Next(4);
    ASSERT_TRUE(store->CommitUnsynced({d}, peer.hlc(), 0).ok());
  }
  EXPECT_EQ(env_.log_syncs(), syncs) << "no sync";
  EXPECT_TRUE(store->has_unsynced());
  EXPECT_EQ(store->Applied().Get(peer.origin()), peer.seq());
  EXPECT_EQ(store->Durable(), synced) << "durable stays at the last sync";
  ASSERT_TRUE(store->Sync().ok());
  EXPECT_EQ(env_.log_syncs(), syncs + 1);
  EXPECT_FALSE(store->has_unsynced());
  EXPECT_EQ(store->Durable(), store->Applied());
  ASSERT_TRUE(store->Sync().ok());
  EXPECT_EQ(env_.log_syncs(), syncs + 1) << "nothing unsynced: no write";

  // A machine crash loses nothing a sync covered.
  const ClusterState durable = store->State();
  store.reset();
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  store = Open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->State() == durable);
  store.reset();
  ExpectVerifies();
}

}  // namespace
}  // namespace clustermgr::store
