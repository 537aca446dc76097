#include "net/gossip_transport.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>

#include "net/gossip_endpoint.h"
#include "net/testing/fake_gossip_transport.h"

namespace clustermgr::net {
namespace {

using Clock = std::chrono::steady_clock;

std::unique_ptr<ZmqGossipTransport> MustBind(zmq::context_t& ctx,
                                             ZmqGossipTransport::Options options = {}) {
  auto t = ZmqGossipTransport::Bind(ctx, "tcp://127.0.0.1:*", options);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

// Polls `t` until `done(message)` returns true for a received message, or the deadline passes.
// `between` runs before each poll (e.g. to publish again while a subscription comes up).
bool ReceiveUntil(GossipTransport& t, const std::function<bool(const GossipIncoming&)>& done,
                  const std::function<void()>& between = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (between) between();
    std::vector<zmq::pollitem_t> items;
    t.AppendPollItems(&items);
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(20));
    while (auto in = t.Receive()) {
      if (done(*in)) return true;
    }
  }
  return false;
}

GossipMessage Req(uint64_t n) {
  crdt::VersionVector v;
  v.Advance("a/1", n);
  return GossipMessage{{"a", "a/1", "tcp://x:1", "tcp://x:3"}, SyncRequest{v}};
}

TEST(ZmqGossipTransportTest, BindsAPortPairAndRefusesBadEndpoints) {
  zmq::context_t ctx;
  auto t = MustBind(ctx);
  ASSERT_TRUE(t);
  EXPECT_EQ(*AntiEntropyEndpoint(t->endpoint()), t->anti_entropy_endpoint());
  EXPECT_EQ(ZmqGossipTransport::Bind(ctx, "tcp://127.0.0.1:65535", {}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ZmqGossipTransport::Bind(ctx, "bogus://x", {}).status().code(), Code::kInvalidArgument);
  // The same port again: in use.
  EXPECT_EQ(ZmqGossipTransport::Bind(ctx, t->endpoint(), {}).status().code(), Code::kUnavailable);
  EXPECT_EQ(t->Connect("tcp://127.0.0.1").code(), Code::kInvalidArgument);
}

TEST(ZmqGossipTransportTest, AWildcardBindIsAdvertisedAsAReachableEndpoint) {
  zmq::context_t ctx;
  auto wild = ZmqGossipTransport::Bind(ctx, "tcp://0.0.0.0:*", {});
  ASSERT_TRUE(wild.ok()) << wild.status().ToString();
  const std::string port = std::to_string(TcpPort((*wild)->bound_endpoint()));
  EXPECT_EQ((*wild)->bound_endpoint(), "tcp://0.0.0.0:" + port);
  EXPECT_EQ((*wild)->endpoint(),
            ConnectableEndpoint((*wild)->bound_endpoint(), InterfaceAddress()));
  EXPECT_EQ((*wild)->endpoint().find("0.0.0.0"), std::string::npos) << (*wild)->endpoint();
  // Told what to advertise, it advertises that.
  ZmqGossipTransport::Options told;
  told.advertise = "tcp://gossip.example:7000";
  auto t = ZmqGossipTransport::Bind(ctx, "tcp://*:*", told);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->endpoint(), "tcp://gossip.example:7000");
  EXPECT_EQ(
      (*t)->anti_entropy_endpoint(),
      *AntiEntropyEndpoint("tcp://0.0.0.0:" + std::to_string(TcpPort((*t)->bound_endpoint()))));
}

TEST(ZmqGossipTransportTest, PublishesSendsAndReplies) {
  zmq::context_t ctx;
  auto a = MustBind(ctx);
  auto b = MustBind(ctx);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Connect(b->endpoint()).ok());
  ASSERT_TRUE(b->Connect(a->endpoint()).ok());

  // PUB/SUB: republish until the subscription is up (slow joiner), then it arrives.
  const GossipMessage delta{{}, GossipDelta{"b/1", 1, "payload", false}};
  EXPECT_TRUE(ReceiveUntil(
      *a,
      [&](const GossipIncoming& in) {
        return in.via == GossipIncoming::Via::kPublished && in.message == delta;
      },
      [&] { b->Publish(delta); }));

  // DEALER -> ROUTER -> DEALER.
  std::string identity;
  EXPECT_TRUE(ReceiveUntil(
      *b,
      [&](const GossipIncoming& in) {
        if (in.via != GossipIncoming::Via::kRequest || !(in.message == Req(5))) return false;
        identity = in.from;
        return true;
      },
      [&] { a->Send(b->endpoint(), Req(5)); }));
  ASSERT_FALSE(identity.empty());
  const GossipMessage reply{{"b", "b/1", b->endpoint(), ""}, Report{}};
  ASSERT_TRUE(b->Reply(identity, reply));
  EXPECT_TRUE(ReceiveUntil(*a, [&](const GossipIncoming& in) {
    return in.via == GossipIncoming::Via::kReply && in.from == b->endpoint() && in.message == reply;
  }));
  EXPECT_GT(a->counters().sent, 0u);
  EXPECT_GT(b->counters().published, 0u);
  EXPECT_EQ(a->counters().malformed + b->counters().malformed, 0u);

  // Unknown peers and unknown identities fail without blocking.
  EXPECT_FALSE(a->Send("tcp://127.0.0.1:1", Req(1)));
  EXPECT_FALSE(b->Reply("no-such-identity", reply));
}

TEST(ZmqGossipTransportTest, SendFailsAtOnceWhileThePeerIsDown) {
  zmq::context_t ctx;
  auto a = MustBind(ctx);
  ASSERT_TRUE(a);
  // An ipc path nobody binds (a tcp port freed here could be taken by a parallel test).
  const std::string down = "ipc:///tmp/clustermgr-no-such-peer-" + std::to_string(getpid());
  ASSERT_TRUE(a->Connect(down).ok());
  const auto start = Clock::now();
  EXPECT_FALSE(a->Send(down, Req(1)));  // ZMQ_IMMEDIATE: nothing queued for a dead peer
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  a->Disconnect(down);
  a->Disconnect(down);  // twice is harmless
}

TEST(ZmqGossipTransportTest, DropsAndCountsHostileFrames) {
  zmq::context_t ctx;
  ZmqGossipTransport::Options options;
  options.limits.max_message_bytes = 64 << 10;
  auto b = MustBind(ctx, options);
  ASSERT_TRUE(b);

  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(b->anti_entropy_endpoint());
  raw.send(zmq::str_buffer("not capnp"), zmq::send_flags::none);          // 9 bytes
  raw.send(zmq::buffer(std::string(64, '\xff')), zmq::send_flags::none);  // garbage words
  raw.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);               // two frames
  raw.send(zmq::str_buffer("b"), zmq::send_flags::none);
  const std::string good = EncodeGossip(Req(9));
  raw.send(zmq::buffer(good), zmq::send_flags::none);

  EXPECT_TRUE(ReceiveUntil(*b, [&](const GossipIncoming& in) { return in.message == Req(9); }));
  EXPECT_EQ(b->counters().malformed, 3u);

  // Above ZMQ_MAXMSGSIZE libzmq drops the connection; a new one works.
  raw.send(zmq::buffer(std::string(128 << 10, '\0')), zmq::send_flags::none);
  zmq::socket_t raw2(ctx, zmq::socket_type::dealer);
  raw2.set(zmq::sockopt::linger, 0);
  raw2.connect(b->anti_entropy_endpoint());
  raw2.send(zmq::buffer(EncodeGossip(Req(10))), zmq::send_flags::none);
  EXPECT_TRUE(ReceiveUntil(*b, [&](const GossipIncoming& in) { return in.message == Req(10); }));
  EXPECT_EQ(b->counters().malformed, 3u);
}

TEST(ZmqGossipTransportTest, FaultModeDropsTheConfiguredShare) {
  zmq::context_t ctx;
  ZmqGossipTransport::Options options;
  options.drop_share = 1.0;
  auto b = MustBind(ctx, options);
  ASSERT_TRUE(b);
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(b->anti_entropy_endpoint());
  for (int i = 0; i < 5; ++i) raw.send(zmq::buffer(EncodeGossip(Req(1))), zmq::send_flags::none);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (b->counters().fault_dropped < 5 && Clock::now() < deadline) {
    std::vector<zmq::pollitem_t> items;
    b->AppendPollItems(&items);
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(20));
    EXPECT_FALSE(b->Receive().has_value());
  }
  EXPECT_EQ(b->counters().fault_dropped, 5u);
}

TEST(FakeGossipTransportTest, DeliversLikeTheRealOneAndInjectsFaults) {
  FakeGossipNetwork net(7);
  auto a = net.Attach("tcp://a:1");
  auto b = net.Attach("tcp://b:1");
  ASSERT_TRUE(a->Connect("tcp://b:1").ok());
  ASSERT_TRUE(b->Connect("tcp://a:1").ok());

  a->Publish({{}, GossipDelta{"a/1", 1, "p", false}});
  auto in = b->Receive();
  ASSERT_TRUE(in);
  EXPECT_EQ(in->via, GossipIncoming::Via::kPublished);

  ASSERT_TRUE(a->Send("tcp://b:1", Req(1)));
  in = b->Receive();
  ASSERT_TRUE(in);
  EXPECT_EQ(in->via, GossipIncoming::Via::kRequest);
  ASSERT_TRUE(b->Reply(in->from, Req(2)));
  in = a->Receive();
  ASSERT_TRUE(in);
  EXPECT_EQ(in->via, GossipIncoming::Via::kReply);
  EXPECT_EQ(in->from, "tcp://b:1");

  net.Partition("tcp://a:1", "tcp://b:1");
  EXPECT_TRUE(a->Send("tcp://b:1", Req(3)));  // TCP looks up, the message is lost
  EXPECT_FALSE(b->Receive());
  net.HealAll();

  net.set_faults({0, 1.0, 0});
  a->Send("tcp://b:1", Req(4));
  EXPECT_EQ(b->inbox_size(), 2u);
  while (b->Receive()) {
  }
  net.set_faults({1.0, 0, 0});
  a->Send("tcp://b:1", Req(5));
  EXPECT_FALSE(b->Receive());

  b.reset();  // a crashed peer: sends fail
  EXPECT_FALSE(a->Send("tcp://b:1", Req(6)));
}

}  // namespace
}  // namespace clustermgr::net
