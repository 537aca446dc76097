#include "store/store.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/codec.h"
#include "store/inspect.h"
#include "store/keys.h"
#include "store/testing/random_replica.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_seed.h"

namespace clustermgr::store {
namespace {

using crdt::ClusterState;
using crdt::Delta;
using crdt::HlcTimestamp;

// The seed of a randomized test: CLUSTERMGR_SEED when set, else a fresh one; printed so that a
// failure replays.

Options NewOptions(const std::string& name = "m1") {
  Options o;
  o.instance_name = name;
  return o;
}

std::unique_ptr<Store> MustOpen(const std::string& dir, const Options& options) {
  auto s = Store::Open(dir, options);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

void ExpectVerifies(const std::string& dir) {
  auto inspection = InspectDir(dir);
  ASSERT_TRUE(inspection.ok()) << inspection.status().ToString();
  for (const Problem& p : inspection->problems) ADD_FAILURE() << "verify: " << p.ToString();
}

// A delta from `origin` setting one global.
Delta SetGlobal(const std::string& origin, uint64_t seq, const std::string& name,
                const std::string& json) {
  crdt::WriteTag tag{{0, HlcTimestamp::Make(1000 + seq, 0), origin}, seq};
  ClusterState empty;
  crdt::DeltaBuilder b(empty, tag);
  b.SetGlobal(name, json);
  return Delta{origin, seq, std::move(b).Take()};
}

TEST(StoreTest, CreatesDirOwnerOnlyWithMetadata) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  {
    auto store = MustOpen(dir, NewOptions());
    ASSERT_TRUE(store);
    const Metadata meta = store->metadata();
    EXPECT_EQ(meta.schema_version, kSchemaVersion);
    EXPECT_EQ(meta.instance, "m1");
    EXPECT_EQ(meta.incarnation.size(), 16u);
    EXPECT_EQ(meta.incarnation.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(store->origin(), "m1/" + meta.incarnation);
    EXPECT_EQ(meta.local_seq, 0u);
    EXPECT_TRUE(store->State().empty());
  }
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // The incarnation is made once: a reopen keeps it; a wiped dir gets a new one.
  std::string first;
  {
    auto store = MustOpen(dir, NewOptions());
    first = store->metadata().incarnation;
  }
  {
    auto again = MustOpen(dir, NewOptions());
    EXPECT_EQ(again->metadata().incarnation, first);
  }
  std::filesystem::remove_all(dir);
  auto wiped = MustOpen(dir, NewOptions());
  EXPECT_NE(wiped->metadata().incarnation, first);
}

TEST(StoreTest, RandomStatesRoundTripThroughReopen) {
  const uint64_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto store = MustOpen(dir, NewOptions());
  ASSERT_TRUE(store);

  // Three replicas (one of them this store's own origin) issue deltas; the store receives
  // them in random order, in random groups, with duplicates. The model is their plain join.
  std::vector<RandomReplica> replicas;
  replicas.emplace_back(store->origin(), rng());
  replicas.emplace_back("peer-a/00000000000000aa", rng());
  replicas.emplace_back("peer-b/00000000000000bb", rng());
  std::vector<Delta> issued;
  for (int i = 0; i < 400; ++i) {
    RandomReplica& r = replicas[rng() % replicas.size()];
    issued.push_back(r.Next(5));
    // Replicas hear of each other now and then, so removes and overwrites cross origins.
    if (rng() % 4 == 0) replicas[rng() % replicas.size()].Receive(issued.back());
  }
  std::vector<Delta> delivery = issued;
  for (int i = 0; i < 40; ++i) delivery.push_back(issued[rng() % issued.size()]);
  std::shuffle(delivery.begin(), delivery.end(), rng);

  ClusterState model;
  for (size_t i = 0; i < delivery.size();) {
    const size_t n = std::min<size_t>(1 + rng() % 4, delivery.size() - i);
    std::vector<Delta> group(delivery.begin() + i, delivery.begin() + i + n);
    for (const Delta& d : group) model.Join(d.state);
    ASSERT_TRUE(store->Commit(group, HlcTimestamp::Make(5, 0), replicas[0].seq()).ok());
    i += n;
    if (i % 37 == 0) {
      ASSERT_TRUE(store->State() == model) << "after " << i << " deltas";
    }
  }
  ASSERT_TRUE(store->State() == model);
  // Every delta was delivered, so each origin is applied up to its last seq.
  for (const RandomReplica& r : replicas) EXPECT_EQ(store->Applied().Get(r.origin()), r.seq());
  const crdt::VersionVector applied = store->Applied();
  const Metadata meta = store->metadata();
  EXPECT_EQ(meta.local_seq, replicas[0].seq());
  // The store learns its own clock from the stamps of its own LWW entries (an OR-set-only delta
  // carries none), so the high-water mark covers the newest such stamp.
  HlcTimestamp own_newest;
  auto newest = [&](const auto& map) {
    for (const auto& [key, entry] : map.entries()) {
      if (entry.tag.stamp.origin == replicas[0].origin()) {
        own_newest = std::max(own_newest, entry.tag.stamp.hlc);
      }
    }
  };
  for (const Delta& d : issued) {
    newest(d.state.globals), newest(d.state.node_vars), newest(d.state.inventory);
    newest(d.state.jobs), newest(d.state.job_logs), newest(d.state.config);
  }
  EXPECT_GE(meta.hlc_high_water, own_newest);

  store.reset();
  store = MustOpen(dir, NewOptions());
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->State() == model);
  EXPECT_EQ(store->Applied(), applied);
  EXPECT_EQ(store->metadata(), meta);
  store.reset();
  ExpectVerifies(dir);
}

TEST(StoreTest, SecondOpenOfTheSameDirFailsClearly) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto first = MustOpen(dir, NewOptions());
  ASSERT_TRUE(first);
  auto second = Store::Open(dir, NewOptions());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_EQ(second.status().message(),
            "data dir " + dir + " is in use by another clustermgrd (LevelDB lock held)");
  // The first one is unaffected.
  EXPECT_TRUE(first->Commit({SetGlobal(first->origin(), 1, "a", "1")}, {}, 1).ok());
}

TEST(StoreTest, RefusesUnknownSchemaVersionAndAnotherInstance) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  Metadata meta;
  { meta = MustOpen(dir, NewOptions())->metadata(); }
  {
    auto other = Store::Open(dir, NewOptions("m2"));
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(other.status().message().find("belongs to instance \"m1\", not \"m2\""),
              std::string::npos)
        << other.status().message();
    // An empty name opens whatever instance's store.
    EXPECT_TRUE(Store::Open(dir, Options{}).ok());
  }
  {
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), dir, &db).ok());
    meta.schema_version = 99;
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), MetaKey(), EncodeMeta(meta)).ok());
    delete db;
  }
  auto s = Store::Open(dir, NewOptions());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.status().message(), "data dir " + dir +
                                      " has store schema version 99; this build reads version " +
                                      std::to_string(kSchemaVersion));
}

TEST(StoreTest, UnusableDirsAreClearErrors) {
  TempDir tmp;
  {
    std::ofstream(tmp.Sub("file")) << "x";
    auto s = Store::Open(tmp.Sub("file"), NewOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(s.status().message(), "data dir " + tmp.Sub("file") + " is not a directory");
  }
  {
    Options o = NewOptions();
    o.create_if_missing = false;
    auto s = Store::Open(tmp.Sub("missing"), o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kNotFound);
    ::mkdir(tmp.Sub("empty").c_str(), 0700);
    s = Store::Open(tmp.Sub("empty"), o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kNotFound);
    EXPECT_EQ(s.status().message(), "data dir " + tmp.Sub("empty") + " holds no store");
  }
  {
    auto s = Store::Open(tmp.Sub("no/such/parent"), NewOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kIoError);
    EXPECT_NE(s.status().message().find("cannot create data dir"), std::string::npos);
  }
  if (::geteuid() != 0) {  // root ignores permissions
    ::mkdir(tmp.Sub("locked").c_str(), 0500);
    auto s = Store::Open(tmp.Sub("locked"), NewOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kIoError);
    EXPECT_NE(s.status().message().find("is not usable"), std::string::npos);
  }
  {
    ::mkdir(tmp.Sub("home").c_str(), 0700);
    std::ofstream(tmp.Sub("home/notes.txt")) << "x";
    auto s = Store::Open(tmp.Sub("home"), NewOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kFailedPrecondition);
    EXPECT_EQ(s.status().message(), "data dir " + tmp.Sub("home") +
                                        " holds files but no store (found notes.txt); use an "
                                        "empty or new directory");
  }
  {
    Options o;  // no instance name
    auto s = Store::Open(tmp.Sub("anon"), o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
  }
}

// Writes raw records into a closed store's LevelDB.
void PutRaw(const std::string& dir, const std::string& key, const std::string& value) {
  leveldb::DB* db = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), dir, &db).ok());
  ASSERT_TRUE(db->Put(leveldb::WriteOptions(), key, value).ok());
  delete db;
}

TEST(StoreTest, CorruptRecordsAreReportedWithTheirKey) {
  TempDir tmp;
  {
    const std::string dir = tmp.Sub("bad-value");
    MustOpen(dir, NewOptions()).reset();
    PutRaw(dir, GlobalKey("x"), "not capnp");
    auto s = Store::Open(dir, NewOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kCorruption);
    EXPECT_NE(s.status().message().find("data dir " + dir + ": record \\x10x\\x00\\x01: "),
              std::string::npos)
        << s.status().message();
  }
  {
    const std::string dir = tmp.Sub("bad-key");
    MustOpen(dir, NewOptions()).reset();
    PutRaw(dir, "\x7fzz", EncodeApplied(1));
    auto s = Store::Open(dir, NewOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kCorruption);
    EXPECT_NE(s.status().message().find("record \\x7fzz: key in no known section"),
              std::string::npos)
        << s.status().message();
  }
  {
    const std::string dir = tmp.Sub("wrong-member");
    MustOpen(dir, NewOptions()).reset();
    PutRaw(dir, InventoryKey("n1"), EncodeTextEntry({{}, "text"}));
    auto s = Store::Open(dir, NewOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.status().message().find("no inventory value"), std::string::npos);
  }
  {
    const std::string dir = tmp.Sub("no-meta");
    leveldb::Options o;
    o.create_if_missing = true;
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(o, dir, &db).ok());
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), GlobalKey("x"), "y").ok());
    delete db;
    auto s = Store::Open(dir, NewOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), Code::kCorruption);
    EXPECT_NE(s.status().message().find("no metadata record"), std::string::npos);
  }
}

TEST(StoreTest, DeltaLogIsBoundedAndServesCatchUp) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  Options o = NewOptions();
  o.delta_log_limit = 5;
  auto store = MustOpen(dir, o);
  ASSERT_TRUE(store);
  const std::string me = store->origin();
  for (uint64_t seq = 1; seq <= 12; ++seq) {
    ASSERT_TRUE(store->Commit({SetGlobal(me, seq, "g" + std::to_string(seq), "1")}, {}, seq).ok());
  }
  auto check = [&](Store& s) {
    EXPECT_EQ(s.DeltaLog().at(me), (DeltaLogRange{5, 8, 12}));
    auto since = s.DeltasSince(me, 7, 100);
    ASSERT_TRUE(since.ok()) << since.status().ToString();
    ASSERT_EQ(since->size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_TRUE((*since)[i] == SetGlobal(me, 8 + i, "g" + std::to_string(8 + i), "1"));
    }
    auto two = s.DeltasSince(me, 9, 2);
    ASSERT_TRUE(two.ok());
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0].seq, 10u);
    auto gap = s.DeltasSince(me, 3, 10);
    ASSERT_FALSE(gap.ok());
    EXPECT_EQ(gap.status().code(), Code::kNotFound);
    EXPECT_NE(gap.status().message().find("starts at seq 8"), std::string::npos);
    auto none = s.DeltasSince(me, 12, 10);
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->empty());
    auto unknown = s.DeltasSince("nobody/1", 0, 10);
    ASSERT_TRUE(unknown.ok());
    EXPECT_TRUE(unknown->empty());
  };
  check(*store);
  store.reset();
  store = MustOpen(dir, o);
  check(*store);
  // A smaller limit trims at the next write to the origin.
  store.reset();
  o.delta_log_limit = 2;
  store = MustOpen(dir, o);
  ASSERT_TRUE(store->Commit({SetGlobal(me, 13, "g13", "1")}, {}, 13).ok());
  EXPECT_EQ(store->DeltaLog().at(me), (DeltaLogRange{2, 12, 13}));
  store.reset();
  ExpectVerifies(dir);
}

TEST(StoreTest, AppliedAdvancesOverGapsOnceFilled) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto store = MustOpen(dir, NewOptions());
  const std::string peer = "peer/0000000000000001";
  ASSERT_TRUE(store->Commit({SetGlobal(peer, 1, "a", "1")}, {}, 0).ok());
  ASSERT_TRUE(
      store->Commit({SetGlobal(peer, 3, "c", "3"), SetGlobal(peer, 4, "d", "4")}, {}, 0).ok());
  EXPECT_EQ(store->Applied().Get(peer), 1u);
  EXPECT_NE(store->State().globals.Get("d"), nullptr) << "a delta past a gap is joined";
  // Catch-up serves only the contiguous run; the gap at 2 needs the origin itself (or a snapshot).
  auto since = store->DeltasSince(peer, 0, 10);
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(since->size(), 1u);
  store.reset();
  store = MustOpen(dir, NewOptions());
  EXPECT_EQ(store->Applied().Get(peer), 1u);
  ASSERT_TRUE(store->Commit({SetGlobal(peer, 2, "b", "2")}, {}, 0).ok());
  EXPECT_EQ(store->Applied().Get(peer), 4u);
  // A duplicate changes nothing.
  ASSERT_TRUE(store->Commit({SetGlobal(peer, 2, "b", "2")}, {}, 0).ok());
  EXPECT_EQ(store->DeltaLog().at(peer), (DeltaLogRange{4, 1, 4}));
  store.reset();
  store = MustOpen(dir, NewOptions());
  EXPECT_EQ(store->Applied().Get(peer), 4u);
  store.reset();
  ExpectVerifies(dir);
}

TEST(StoreTest, MetadataCountersOnlyRise) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto store = MustOpen(dir, NewOptions());
  const std::string me = store->origin();
  ASSERT_TRUE(store->Commit({SetGlobal(me, 1, "a", "1")}, HlcTimestamp::Make(500, 0), 5).ok());
  // The delta's own stamp (1001.0) is above the given high-water mark.
  EXPECT_EQ(store->metadata().hlc_high_water, HlcTimestamp::Make(1001, 0));
  EXPECT_EQ(store->metadata().local_seq, 5u);
  ASSERT_TRUE(store->Commit({}, HlcTimestamp::Make(4000, 2), 3).ok());
  EXPECT_EQ(store->metadata().hlc_high_water, HlcTimestamp::Make(4000, 2));
  EXPECT_EQ(store->metadata().local_seq, 5u);
  // A peer's stamps raise it too: a restarted clock must order above every stamp applied.
  ASSERT_TRUE(store->Commit({SetGlobal("peer/1", 9000, "b", "1")}, {}, 0).ok());
  EXPECT_EQ(store->metadata().hlc_high_water, HlcTimestamp::Make(10'000, 0));
  // So do a snapshot's entries and the clock it carries, and its cover of this origin.
  ClusterState chunk = SetGlobal("peer/1", 9500, "c", "1").state;
  crdt::VersionVector covered;
  covered.Advance(me, 8);
  ASSERT_TRUE(store->ApplySnapshot(chunk, covered, HlcTimestamp::Make(20'000, 1), 8).ok());
  EXPECT_EQ(store->metadata().hlc_high_water, HlcTimestamp::Make(20'000, 1));
  EXPECT_EQ(store->metadata().local_seq, 8u);
  store.reset();
  store = MustOpen(dir, NewOptions());
  EXPECT_EQ(store->metadata().hlc_high_water, HlcTimestamp::Make(20'000, 1));
  EXPECT_EQ(store->metadata().local_seq, 8u);
}

TEST(StoreTest, ACompleteSnapshotDeletesCoveredEntriesItLacks) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto store = MustOpen(dir, NewOptions());
  // Two writes of a peer: "gone" (seq 1) was since deleted and the tombstone collected there;
  // "later" (seq 3) is beyond what the snapshot covers.
  ASSERT_TRUE(store->Commit({SetGlobal("peer/1", 1, "gone", "1")}, {}, 0).ok());
  ASSERT_TRUE(store->Commit({SetGlobal("peer/1", 3, "later", "1")}, {}, 0).ok());
  ClusterState chunk = SetGlobal("peer/1", 2, "kept", "1").state;
  crdt::StateKeys keys;
  keys.Add(chunk);
  crdt::VersionVector covered;
  covered.Advance("peer/1", 2);
  ASSERT_TRUE(store->ApplySnapshot(chunk, covered, {}, 0, &keys).ok());
  EXPECT_EQ(store->State().globals.Find("gone"), nullptr);
  EXPECT_NE(store->State().globals.Get("kept"), nullptr);
  EXPECT_NE(store->State().globals.Get("later"), nullptr);
  store.reset();
  store = MustOpen(dir, NewOptions());  // on disk too
  EXPECT_EQ(store->State().globals.Find("gone"), nullptr);
  EXPECT_NE(store->State().globals.Get("kept"), nullptr);
  EXPECT_NE(store->State().globals.Get("later"), nullptr);
}

TEST(StoreTest, SnapshotsJoinAndRaiseApplied) {
  const uint64_t seed = TestSeed();
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto store = MustOpen(dir, NewOptions());
  RandomReplica peer("peer/00000000000000aa", seed);
  RandomReplica mine(store->origin(), seed + 1);
  for (int i = 0; i < 50; ++i) {
    Delta d = mine.Next(4);
    ASSERT_TRUE(store->Commit({d}, mine.hlc(), mine.seq()).ok());
  }
  for (int i = 0; i < 80; ++i) peer.Next(4);
  crdt::VersionVector covered;
  covered.Advance(peer.origin(), peer.seq());
  ASSERT_TRUE(store->ApplySnapshot(peer.state(), covered).ok());
  ClusterState model = mine.state();
  model.Join(peer.state());
  EXPECT_TRUE(store->State() == model);
  EXPECT_EQ(store->Applied().Get(peer.origin()), peer.seq());
  // Deltas the snapshot covered are duplicates now; the next one is logged and applied.
  Delta next = peer.Next(4);
  ASSERT_TRUE(store->Commit({next}, {}, mine.seq()).ok());
  model.Join(next.state);
  EXPECT_EQ(store->Applied().Get(peer.origin()), peer.seq());
  auto since = store->DeltasSince(peer.origin(), 0, 10);
  EXPECT_FALSE(since.ok()) << "the covered seqs were never logged";
  store.reset();
  store = MustOpen(dir, NewOptions());
  EXPECT_TRUE(store->State() == model);
  store.reset();
  ExpectVerifies(dir);
}

TEST(StoreTest, CollectTombstonesDeletesTheirRecords) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto store = MustOpen(dir, NewOptions());
  const std::string me = store->origin();
  ClusterState base;
  crdt::DeltaBuilder b1(base, {{0, HlcTimestamp::Make(10, 0), me}, 1});
  b1.SetGlobal("a", "1");
  b1.SetGlobal("b", "2");
  Delta d1{me, 1, std::move(b1).Take()};
  ASSERT_TRUE(store->Commit({d1}, {}, 1).ok());
  crdt::DeltaBuilder b2(store->State(), {{0, HlcTimestamp::Make(11, 0), me}, 2});
  b2.EraseGlobal("a");
  Delta d2{me, 2, std::move(b2).Take()};
  crdt::DeltaBuilder b3(store->State(), {{0, HlcTimestamp::Make(12, 0), me}, 3});
  b3.EraseGlobal("b");
  Delta d3{me, 3, std::move(b3).Take()};
  ASSERT_TRUE(store->Commit({d2, d3}, {}, 3).ok());
  EXPECT_EQ(store->State().globals.tombstones(), 2u);

  crdt::VersionVector stable;
  stable.Advance(me, 2);  // covers the tombstone of "a" only
  auto n = store->CollectTombstones(stable);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(store->State().globals.Find("a"), nullptr);
  EXPECT_NE(store->State().globals.Find("b"), nullptr);
  store.reset();
  store = MustOpen(dir, NewOptions());
  EXPECT_EQ(store->State().globals.Find("a"), nullptr);
  EXPECT_EQ(store->State().globals.tombstones(), 1u);
  auto none = store->CollectTombstones(stable);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
}

TEST(StoreTest, ConcurrentWritersShareSyncsAndReadersSeeWholeBatches) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto store = MustOpen(dir, NewOptions());
  constexpr int kWriters = 8;
  constexpr int kEach = 40;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  // A reader checks that it never sees a delta's two writes apart: "x<w>" and "y<w>" always
  // hold the same value.
  std::thread reader([&] {
    while (!stop) {
      store->Read([&](const ClusterState& s) {
        for (int w = 0; w < kWriters; ++w) {
          const std::string* x = s.globals.Get("x" + std::to_string(w));
          const std::string* y = s.globals.Get("y" + std::to_string(w));
          if ((x == nullptr) != (y == nullptr) || (x && *x != *y)) ++failures;
        }
        return 0;
      });
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::string origin = "writer" + std::to_string(w) + "/1";
      for (uint64_t seq = 1; seq <= kEach; ++seq) {
        crdt::WriteTag tag{{0, HlcTimestamp::Make(seq, 0), origin}, seq};
        ClusterState empty;
        crdt::DeltaBuilder b(empty, tag);
        b.SetGlobal("x" + std::to_string(w), std::to_string(seq));
        b.SetGlobal("y" + std::to_string(w), std::to_string(seq));
        if (!store->Commit({Delta{origin, seq, std::move(b).Take()}}, {}, 0).ok()) ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  reader.join();
  EXPECT_EQ(failures, 0);
  for (int w = 0; w < kWriters; ++w) {
    const std::string origin = "writer" + std::to_string(w) + "/1";
    EXPECT_EQ(store->Applied().Get(origin), uint64_t{kEach});
    EXPECT_EQ(*store->State().globals.Get("x" + std::to_string(w)), std::to_string(kEach));
  }
  store.reset();
  ExpectVerifies(dir);
}

TEST(StoreTest, ReadOnlyCopyWorksBesideALiveStoreAndNeverWrites) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  auto live = MustOpen(dir, NewOptions());
  const std::string me = live->origin();
  ASSERT_TRUE(live->Commit({SetGlobal(me, 1, "a", "1")}, {}, 1).ok());

  auto ro = Store::OpenReadOnly(dir);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_TRUE((*ro)->State() == live->State());
  EXPECT_EQ((*ro)->origin(), me);
  auto refused = (*ro)->Commit({SetGlobal(me, 2, "b", "1")}, {}, 2);
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition);
  // The live store goes on.
  ASSERT_TRUE(live->Commit({SetGlobal(me, 2, "b", "2")}, {}, 2).ok());
  ro->reset();

  // Copies taken while a writer runs are consistent: they open and verify.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t seq = 3; !stop; ++seq) {
      if (!live->Commit(
                   {SetGlobal(me, seq, "k" + std::to_string(seq % 500), std::string(200, 'v'))}, {},
                   seq)
               .ok()) {
        return;
      }
    }
  });
  for (int i = 0; i < 5; ++i) {
    auto inspection = InspectDir(dir);
    ASSERT_TRUE(inspection.ok()) << inspection.status().ToString();
    for (const Problem& p : inspection->problems) ADD_FAILURE() << p.ToString();
  }
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace clustermgr::store
