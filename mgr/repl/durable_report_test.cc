// Peers apply what they receive without a sync per message and report what is synced
// (`durable`) beside what is applied: --ack-replicas counts only the durable part.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "base/testing/temp_dir.h"
#include "mgr/repl/replica.h"
#include "mgr/repl/replicator.h"
#include "net/testing/fake_gossip_transport.h"
#include "store/testing/fault_injection_env.h"

namespace clustermgr::mgr {
namespace {

constexpr uint64_t kStart = 1'700'000'000'000;

crdt::VersionVector Vector(const std::string& origin, uint64_t seq) {
  crdt::VersionVector v;
  v.Advance(origin, seq);
  return v;
}

TEST(DurableReportTest, AnAckWaitsForThePeersDurableVectorNotItsApplied) {
  TempDir tmp("durable-report-test");
  crdt::ManualClock clock(kStart);
  Replica::Options ro;
  ro.name = "a";
  ro.data_dir = tmp.Sub("a");
  ro.sync = false;
  auto a = Replica::Open(ro, &clock);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  net::FakeGossipNetwork network(1);
  auto ta = network.Attach("tcp://a:1");
  ReplicatorOptions o;
  o.rpc_endpoint = "tcp://a:2";
  o.ack_wanted = true;
  Replicator ra(o, a->get(), ta.get());
  auto peer = network.Attach("tcp://p:1");
  ASSERT_TRUE(ra.AddPeer("tcp://p:1").ok());
  ASSERT_TRUE(peer->Connect("tcp://a:1").ok());
  const net::GossipPeerInfo p{"p", "p/1", "tcp://p:1", ""};

  auto d = (*a)->Write([](crdt::DeltaBuilder& b) { b.SetGlobal("k", "1"); });
  ASSERT_TRUE(d.ok());
  std::optional<Status> acked;
  ra.AwaitReplicas(d->seq, 1, kStart, 5000, [&](const Status& s) { acked = s; });

  // Applied in the peer's memory, not yet synced: not acknowledged.
  const std::string origin = (*a)->origin();
  peer->Send("tcp://a:1", {p, net::Report{Vector(origin, d->seq), crdt::VersionVector{}}});
  ra.Poll(kStart);
  EXPECT_FALSE(acked.has_value()) << "acknowledged on an applied vector the peer may lose";

  // Synced: acknowledged.
  peer->Send("tcp://a:1", {p, net::Report{Vector(origin, d->seq), Vector(origin, d->seq)}});
  ra.Poll(kStart);
  ASSERT_TRUE(acked.has_value());
  EXPECT_TRUE(acked->ok()) << acked->ToString();

  // A peer of an older build states no durable vector: it syncs all it applies.
  auto d2 = (*a)->Write([](crdt::DeltaBuilder& b) { b.SetGlobal("k", "2"); });
  ASSERT_TRUE(d2.ok());
  acked.reset();
  ra.AwaitReplicas(d2->seq, 1, kStart, 5000, [&](const Status& s) { acked = s; });
  peer->Send("tcp://a:1", {p, net::Report{Vector(origin, d2->seq), std::nullopt}});
  ra.Poll(kStart);
  ASSERT_TRUE(acked.has_value());
  EXPECT_TRUE(acked->ok()) << acked->ToString();
}

TEST(DurableReportTest, AReceiverAppliesWithoutASyncAndSyncsBeforeItReports) {
  TempDir tmp("durable-report-test");
  store::FaultInjectionEnv env;
  crdt::ManualClock clock(kStart);
  auto open = [&](const std::string& name) {
    Replica::Options ro;
    ro.name = name;
    ro.data_dir = tmp.Sub(name);
    ro.env = &env;
    auto r = Replica::Open(ro, &clock);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  };
  auto a = open("a");
  auto b = open("b");
  net::FakeGossipNetwork network(1);
  auto ta = network.Attach("tcp://a:1");
  auto tb = network.Attach("tcp://b:1");
  ReplicatorOptions o;
  o.rpc_endpoint = "tcp://x:2";
  Replicator ra(o, a.get(), ta.get());
  Replicator rb(o, b.get(), tb.get());
  a->AddBatchObserver([&](const std::vector<crdt::Delta>& d) { ra.OnLocalDeltas(d); });
  ASSERT_TRUE(ra.AddPeer("tcp://b:1").ok());
  ASSERT_TRUE(rb.AddPeer("tcp://a:1").ok());
  for (int i = 0; i < 10; ++i) {
    ra.Poll(kStart);
    rb.Poll(kStart);
  }

  ASSERT_TRUE(a->Write([](crdt::DeltaBuilder& w) { w.SetGlobal("k", "1"); }).ok());
  const int syncs = env.log_syncs();
  rb.Poll(kStart);
  EXPECT_EQ(b->Applied().Get(a->origin()), 1u);
  EXPECT_EQ(b->Durable().Get(a->origin()), 0u) << "applied without a sync";
  EXPECT_EQ(env.log_syncs(), syncs);
  rb.Tick(kStart + 100);  // the cadence
  EXPECT_EQ(b->Durable().Get(a->origin()), 1u);
  EXPECT_EQ(env.log_syncs(), syncs + 1);
  rb.Tick(kStart + 200);
  EXPECT_EQ(env.log_syncs(), syncs + 1) << "nothing new: no sync";
}

}  // namespace
}  // namespace clustermgr::mgr
