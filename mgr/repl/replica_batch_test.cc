// Replica batches (BeginBatch / EndBatch): many writes, one sync, observers told once the batch
// is durable, nothing of a failed batch acknowledged or kept in memory; and the batch's deltas
// published as one gossip message that a peer applies in order.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "mgr/repl/replica.h"
#include "mgr/repl/replicator.h"
#include "net/testing/fake_gossip_transport.h"
#include "store/testing/fault_injection_env.h"
#include "base/testing/temp_dir.h"

namespace clustermgr::mgr {
namespace {

constexpr uint64_t kStart = 1'700'000'000'000;

class ReplicaBatchTest : public ::testing::Test {
 protected:
  std::unique_ptr<Replica> Open(const std::string& name, bool sync = true) {
    Replica::Options o;
    o.name = name;
    o.data_dir = tmp_.Sub(name);
    o.sync = sync;
    o.env = &env_;
    auto r = Replica::Open(o, &clock_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  static Status Set(Replica& r, const std::map<std::string, std::string>& globals) {
    auto d = r.Write([&](crdt::DeltaBuilder& b) { b.ReplaceGlobals(globals); });
    return d.ok() ? Status::Ok() : d.status();
  }
  static std::map<std::string, std::string> Live(const crdt::ClusterState& s) {
    std::map<std::string, std::string> out;
    for (const auto& [k, e] : s.globals.entries()) {
      if (e.value) out[k] = *e.value;
    }
    return out;
  }

  TempDir tmp_{"replica-batch-test"};
  store::FaultInjectionEnv env_;
  crdt::ManualClock clock_{kStart};
};

TEST_F(ReplicaBatchTest, WritesInABatchBuildOnEachOtherAndShareOneSync) {
  auto r = Open("m1");
  ASSERT_TRUE(r);
  std::vector<std::vector<uint64_t>> told;  // the seqs of each batch observers heard of
  r->AddBatchObserver([&](const std::vector<crdt::Delta>& deltas) {
    told.emplace_back();
    for (const crdt::Delta& d : deltas) told.back().push_back(d.seq);
  });
  ASSERT_TRUE(Set(*r, {{"a", "1"}}).ok());
  ASSERT_EQ(told.size(), 1u) << "a write outside a batch is told at once";
  const int syncs = env_.log_syncs();

  r->BeginBatch();
  ASSERT_TRUE(Set(*r, {{"b", "2"}}).ok());
  // The second write replaces the globals as the first left them: it must see "b" to drop it.
  ASSERT_TRUE(Set(*r, {{"c", "3"}}).ok());
  ASSERT_TRUE(Set(*r, {{"c", "3"}, {"d", "4"}}).ok());
  EXPECT_EQ(r->staged(), 3u);
  EXPECT_EQ(told.size(), 1u) << "nothing is told before the batch is durable";
  EXPECT_EQ(env_.log_syncs(), syncs);
  ASSERT_TRUE(r->EndBatch().ok());
  EXPECT_EQ(env_.log_syncs(), syncs + 1) << "three writes, one sync";
  ASSERT_EQ(told.size(), 2u);
  EXPECT_EQ(told.back(), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(r->last_seq(), 4u);
  const std::map<std::string, std::string> want = {{"c", "3"}, {"d", "4"}};
  EXPECT_EQ(Live(r->state()), want);
  EXPECT_TRUE(r->EndBatch().ok()) << "an empty batch writes nothing";
  EXPECT_EQ(env_.log_syncs(), syncs + 1);

  // A crash after the batch loses none of it.
  r.reset();
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  r = Open("m1");
  ASSERT_TRUE(r);
  EXPECT_EQ(Live(r->state()), want);
  EXPECT_EQ(r->last_seq(), 4u);
  EXPECT_EQ(r->Applied().Get(r->origin()), 4u);
}

// An amendment joins the newest staged delta: one seq, one log record, one delta told; and it
// survives a restart as the store logged it. Outside a batch, or with nothing staged since the
// mark, it is a write of its own.
TEST_F(ReplicaBatchTest, AnAmendmentJoinsTheNewestStagedDelta) {
  std::vector<crdt::Delta> told;
  {
    auto r = Open("m1");
    ASSERT_TRUE(r);
    r->AddBatchObserver([&](const std::vector<crdt::Delta>& d) {
      told.insert(told.end(), d.begin(), d.end());
    });
    r->BeginBatch();
    const uint64_t mark = r->last_seq();
    ASSERT_TRUE(Set(*r, {{"a", "1"}}).ok());
    auto amended = r->Amend(mark, [](crdt::DeltaBuilder& b) { b.PutJobLogChunk("audit:m1", 0, "x"); });
    ASSERT_TRUE(amended.ok()) << amended.status().ToString();
    EXPECT_EQ(amended->seq, mark + 1);
    EXPECT_EQ(r->last_seq(), mark + 1);
    EXPECT_EQ(r->staged(), 1u);
    EXPECT_NE(r->state().job_logs.Get({"audit:m1", 0}), nullptr) << "memory takes it at once";
    // Nothing staged after this mark: a delta of its own.
    auto own = r->Amend(r->last_seq(), [](crdt::DeltaBuilder& b) { b.SetGlobal("b", "2"); });
    ASSERT_TRUE(own.ok());
    EXPECT_EQ(own->seq, mark + 2);
    ASSERT_TRUE(r->EndBatch().ok());
    ASSERT_EQ(told.size(), 2u);
    EXPECT_FALSE(told[0].state.globals.empty());
    EXPECT_FALSE(told[0].state.job_logs.empty()) << "the amendment travels with the change";
    // Outside a batch: a write.
    auto alone = r->Amend(0, [](crdt::DeltaBuilder& b) { b.SetGlobal("c", "3"); });
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ(alone->seq, mark + 3);
  }
  auto r = Open("m1");
  ASSERT_TRUE(r);
  EXPECT_NE(r->state().job_logs.Get({"audit:m1", 0}), nullptr);
  auto logged = r->store().DeltasSince(r->origin(), 0, 10);
  ASSERT_TRUE(logged.ok()) << logged.status().ToString();
  ASSERT_EQ(logged->size(), 3u);
  EXPECT_TRUE((*logged)[0] == told[0]) << "the log holds the amended delta, as a peer needs it";
}

TEST_F(ReplicaBatchTest, AFailedBatchTellsNothingAndMemoryTakesWhatTheDiskHolds) {
  auto r = Open("m1");
  ASSERT_TRUE(r);
  int told = 0;
  r->AddBatchObserver([&](const std::vector<crdt::Delta>&) { ++told; });
  ASSERT_TRUE(Set(*r, {{"a", "1"}}).ok());
  const std::map<std::string, std::string> before = Live(r->state());

  r->BeginBatch();
  ASSERT_TRUE(Set(*r, {{"b", "2"}}).ok());
  ASSERT_TRUE(Set(*r, {{"c", "3"}}).ok());
  env_.FailNextSyncs(1);
  Status s = r->EndBatch();
  ASSERT_EQ(s.code(), Code::kOutcomeUnknown) << s.message();
  EXPECT_EQ(told, 1) << "the failed batch is not published";
  EXPECT_TRUE(r->ahead_of_disk()) << "memory may hold the batch until the store reopens";
  EXPECT_EQ(r->last_seq(), 1u) << "the batch's seqs are issued again";
  EXPECT_FALSE(Set(*r, {{"x", "9"}}).ok()) << "the store is read-only until reopened";

  ASSERT_TRUE(r->Recover().ok());
  EXPECT_FALSE(r->ahead_of_disk());
  // The batch reached the log unsynced: after the reopen it is there whole or not at all, and
  // the next seq continues above whatever the disk holds.
  const std::map<std::string, std::string> after = Live(r->state());
  const std::map<std::string, std::string> with = {{"c", "3"}};
  EXPECT_TRUE(after == before || after == with);
  EXPECT_EQ(r->last_seq(), after == before ? 1u : 3u);
  ASSERT_TRUE(Set(*r, {{"e", "5"}}).ok());
  EXPECT_EQ(r->Applied().Get(r->origin()), r->last_seq()) << "no gap in the origin's seqs";
}

TEST_F(ReplicaBatchTest, ABatchIsPublishedAsOneMessageAndAPeerAppliesItInOrder) {
  auto a = Open("a", /*sync=*/false);
  auto b = Open("b", /*sync=*/false);
  ASSERT_TRUE(a && b);
  net::FakeGossipNetwork network(1);
  auto ta = network.Attach("tcp://a:1");
  auto tb = network.Attach("tcp://b:1");
  ReplicatorOptions o;
  o.rpc_endpoint = "tcp://a:2";
  Replicator ra(o, a.get(), ta.get());
  o.rpc_endpoint = "tcp://b:2";
  Replicator rb(o, b.get(), tb.get());
  a->AddBatchObserver([&](const std::vector<crdt::Delta>& d) { ra.OnLocalDeltas(d); });
  ASSERT_TRUE(rb.AddPeer("tcp://a:1").ok());
  ASSERT_TRUE(ra.AddPeer("tcp://b:1").ok());
  ra.Tick(kStart);
  rb.Tick(kStart);
  for (int i = 0; i < 10 && network.pending() > 0; ++i) {
    ra.Poll(kStart);
    rb.Poll(kStart);
  }

  const uint64_t published = ta->counters().published;
  a->BeginBatch();
  ASSERT_TRUE(Set(*a, {{"k", "1"}}).ok());
  ASSERT_TRUE(Set(*a, {{"k", "2"}, {"l", "1"}}).ok());
  ASSERT_TRUE(Set(*a, {{"l", "2"}}).ok());
  ASSERT_TRUE(a->EndBatch().ok());
  EXPECT_EQ(ta->counters().published, published + 1) << "one gossip message for the batch";
  EXPECT_EQ(ra.counters().published, 3u);
  rb.Poll(kStart);
  EXPECT_EQ(rb.counters().deltas_received, 3u);
  EXPECT_EQ(rb.counters().deltas_applied, 3u);
  EXPECT_EQ(rb.counters().bad_messages, 0u);
  EXPECT_EQ(b->Applied().Get(a->origin()), 3u);
  EXPECT_EQ(Live(b->state()), Live(a->state()));
  EXPECT_EQ(Live(b->state()), (std::map<std::string, std::string>{{"l", "2"}}));
}

}  // namespace
}  // namespace clustermgr::mgr
