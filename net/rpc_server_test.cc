#include "net/rpc_server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <zmq.hpp>

namespace clustermgr::net {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kWait{5000};  // generous: only reached when a test is failing

// The test thread owns both the server and the raw DEALER peers, as a daemon loop would.
class RpcServerTest : public ::testing::Test {
 protected:
  std::unique_ptr<RpcServer> MustBind(RpcServer::Options options = {}) {
    auto server = RpcServer::Bind(context_, "tcp://127.0.0.1:0", std::move(options));
    EXPECT_TRUE(server.ok()) << server.status().message();
    return std::move(server).value();
  }

  zmq::socket_t Dealer(const std::string& endpoint) {
    zmq::socket_t s(context_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(endpoint);
    return s;
  }

  static void SendFrames(zmq::socket_t& s, const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      s.send(zmq::buffer(frames[i]),
             i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  // Polls the server like an event loop until it yields a request or the deadline passes.
  static std::optional<IncomingRequest> ReceiveWithin(RpcServer& server, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      zmq::pollitem_t item = server.PollItem();
      zmq::poll(&item, 1, milliseconds(20));
      if (auto in = server.TryReceive()) return in;
    }
    return std::nullopt;
  }

  // Polls the server (answering bad input happens inside TryReceive) until `peer` has a message.
  static std::vector<std::string> ReplyWithin(RpcServer& server, zmq::socket_t& peer,
                                              milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      zmq::pollitem_t items[] = {server.PollItem(), {peer.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, milliseconds(20));
      EXPECT_FALSE(server.TryReceive().has_value());
      if (items[1].revents & ZMQ_POLLIN) {
        std::vector<std::string> frames;
        bool more = true;
        while (more) {
          zmq::message_t m;
          EXPECT_TRUE(peer.recv(m, zmq::recv_flags::none));
          more = m.more();
          frames.push_back(m.to_string());
        }
        return frames;
      }
    }
    return {};
  }

  static RpcReply DecodeBody(const std::string& body, std::uint64_t expected_id) {
    auto d = DecodeReply(body);
    EXPECT_TRUE(d.ok()) << d.status().message();
    if (!d.ok()) return {};
    EXPECT_EQ(d.value().request_id, expected_id);
    return d.value().reply;
  }

  zmq::context_t context_{1};
};

TEST_F(RpcServerTest, BindReportsTheEphemeralPort) {
  for (const char* endpoint : {"tcp://127.0.0.1:0", "tcp://127.0.0.1:*"}) {
    auto server = RpcServer::Bind(context_, endpoint);
    ASSERT_TRUE(server.ok()) << server.status().message();
    const std::string& bound = server.value()->endpoint();
    EXPECT_EQ(bound.rfind("tcp://127.0.0.1:", 0), 0u) << bound;
    EXPECT_NE(bound, endpoint);
    EXPECT_GT(std::stoi(bound.substr(bound.rfind(':') + 1)), 0);
  }
}

TEST_F(RpcServerTest, BindErrorsAreResultsNotExceptions) {
  auto first = MustBind();
  auto again = RpcServer::Bind(context_, first->endpoint());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), Code::kUnavailable);
  EXPECT_NE(again.status().message().find(first->endpoint()), std::string::npos);

  auto bogus = RpcServer::Bind(context_, "bogus://nowhere");
  ASSERT_FALSE(bogus.ok());
  EXPECT_EQ(bogus.code(), Code::kInvalidArgument);
}

TEST_F(RpcServerTest, RequestAndLaterReplyRoundTrip) {
  auto server = MustBind(RpcServer::Options{.instance_name = "mgr-a", .curve = {}});
  auto peer = Dealer(server->endpoint());
  SendFrames(peer, {"", EncodeRequest(41, NodeGetRequest{"n1"}, "mgr-b")});

  auto in = ReceiveWithin(*server, kWait);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->reply_to.request_id, 41u);
  EXPECT_TRUE(in->reply_to.delimited);
  EXPECT_FALSE(in->reply_to.identity.empty());
  EXPECT_EQ(in->forwarded_by, "mgr-b");
  EXPECT_EQ(in->protocol_version, kRpcProtocolVersion);
  EXPECT_EQ(in->request, RpcRequest(NodeGetRequest{"n1"}));

  // Parked: the loop keeps reply_to and answers whenever it likes.
  ReplyTo parked = in->reply_to;
  NodeInfo node;
  node.name = "n1";
  ASSERT_TRUE(server->Reply(parked, RpcReply::Ok(node)));
  auto frames = ReplyWithin(*server, peer, kWait);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0], "");
  RpcReply reply = DecodeBody(frames[1], 41);
  EXPECT_EQ(reply.instance, "mgr-a");  // filled in by the server
  EXPECT_EQ(std::get<NodeInfo>(reply.payload).name, "n1");
  EXPECT_EQ(server->counters().requests, 1u);
  EXPECT_EQ(server->counters().replies_sent, 1u);
}

TEST_F(RpcServerTest, RepliesToTwoPeersOutOfOrder) {
  auto server = MustBind();
  auto a = Dealer(server->endpoint());
  auto b = Dealer(server->endpoint());
  SendFrames(a, {"", EncodeRequest(1, JobGetRequest{"a"})});
  auto in_a = ReceiveWithin(*server, kWait);
  SendFrames(b, {"", EncodeRequest(1, JobGetRequest{"b"})});
  auto in_b = ReceiveWithin(*server, kWait);
  ASSERT_TRUE(in_a && in_b);
  EXPECT_NE(in_a->reply_to.identity, in_b->reply_to.identity);
  ASSERT_TRUE(server->Reply(in_b->reply_to, RpcReply::Error(Code::kNotFound, "for b")));
  ASSERT_TRUE(server->Reply(in_a->reply_to, RpcReply::Error(Code::kNotFound, "for a")));
  auto fa = ReplyWithin(*server, a, kWait);
  auto fb = ReplyWithin(*server, b, kWait);
  ASSERT_EQ(fa.size(), 2u);
  ASSERT_EQ(fb.size(), 2u);
  EXPECT_EQ(DecodeBody(fa[1], 1).message, "for a");
  EXPECT_EQ(DecodeBody(fb[1], 1).message, "for b");
}

TEST_F(RpcServerTest, AcceptsABareDealerWithoutDelimiter) {
  auto server = MustBind();
  auto peer = Dealer(server->endpoint());
  SendFrames(peer, {EncodeRequest(3, StatusRequest{})});
  auto in = ReceiveWithin(*server, kWait);
  ASSERT_TRUE(in.has_value());
  EXPECT_FALSE(in->reply_to.delimited);
  ASSERT_TRUE(server->Reply(in->reply_to, RpcReply::Ok(StatusInfo{})));
  auto frames = ReplyWithin(*server, peer, kWait);
  ASSERT_EQ(frames.size(), 1u);  // mirrors the request's shape
  EXPECT_TRUE(std::holds_alternative<StatusInfo>(DecodeBody(frames[0], 3).payload));
}

TEST_F(RpcServerTest, GarbageIsAnsweredWithInvalidArgument) {
  auto server = MustBind();
  auto peer = Dealer(server->endpoint());
  const std::vector<std::vector<std::string>> bad = {
      {"", "not a capnp message"},    // 19 bytes: not whole words
      {"", std::string(64, '\xff')},  // words, but nonsense
      {"", ""},                       // empty body
      {"x", "y", "z"},                // too many frames
      {""},                           // delimiter only
  };
  for (const auto& frames : bad) {
    SendFrames(peer, frames);
    auto reply = ReplyWithin(*server, peer, kWait);
    ASSERT_FALSE(reply.empty());
    RpcReply r = DecodeBody(reply.back(), 0);
    EXPECT_EQ(r.code, Code::kInvalidArgument) << r.message;
    EXPECT_NE(r.message.find("malformed request"), std::string::npos) << r.message;
  }
  EXPECT_EQ(server->counters().rejected_malformed, bad.size());
  EXPECT_EQ(server->counters().requests, 0u);

  // The server is unharmed.
  SendFrames(peer, {"", EncodeRequest(5, TokenRequest{})});
  EXPECT_TRUE(ReceiveWithin(*server, kWait).has_value());
}

TEST_F(RpcServerTest, OversizeRequestsAreAnsweredOrDroppedByTheTransport) {
  RpcServer::Options options;
  options.max_request_bytes = 1024;
  options.transport_max_frame_bytes = 4096;
  auto server = MustBind(options);
  auto peer = Dealer(server->endpoint());

  // Between the limits: answered.
  SendFrames(peer, {"", EncodeRequest(9, GlobalSetRequest{std::string(2000, 'x')})});
  auto reply = ReplyWithin(*server, peer, kWait);
  ASSERT_EQ(reply.size(), 2u);
  RpcReply r = DecodeBody(reply[1], 0);
  EXPECT_EQ(r.code, Code::kInvalidArgument);
  EXPECT_NE(r.message.find("exceeds the limit of 1024 bytes"), std::string::npos) << r.message;
  EXPECT_EQ(server->counters().rejected_oversize, 1u);

  // Above the transport cap: libzmq drops the connection; the server never sees it.
  auto hog = Dealer(server->endpoint());
  SendFrames(hog, {"", EncodeRequest(10, GlobalSetRequest{std::string(8000, 'x')})});
  // Prove the server is still healthy by serving another peer afterwards.
  auto other = Dealer(server->endpoint());
  SendFrames(other, {"", EncodeRequest(11, MembersRequest{})});
  auto in = ReceiveWithin(*server, kWait);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->reply_to.request_id, 11u);
  // The hog never gets an answer (bounded wait for an absence) and was never counted here.
  EXPECT_TRUE(ReplyWithin(*server, hog, milliseconds(300)).empty());
  EXPECT_EQ(server->counters().rejected_oversize, 1u);
  EXPECT_EQ(server->counters().requests, 1u);
}

TEST_F(RpcServerTest, UnknownOperationIsUnimplementedWithTheRequestId) {
  auto server = MustBind();
  auto peer = Dealer(server->endpoint());
  // Build a valid request, then set its union tag to one this build does not know. The
  // discriminant of Request is the only 16-bit field at the end of its data section; find it
  // by comparing two encodings that differ only in the operation.
  std::string a = EncodeRequest(77, NodesGetRequest{});
  std::string b = EncodeRequest(77, GlobalGetRequest{});
  ASSERT_EQ(a.size(), b.size());
  std::size_t diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      diff = i;
      break;
    }
  }
  ASSERT_NE(diff, 0u);
  a[diff] = static_cast<char>(0xE7);  // discriminant 999 = 0x03E7, little-endian
  a[diff + 1] = 0x03;
  SendFrames(peer, {"", a});
  auto reply = ReplyWithin(*server, peer, kWait);
  ASSERT_EQ(reply.size(), 2u);
  RpcReply r = DecodeBody(reply[1], 77);
  EXPECT_EQ(r.code, Code::kUnimplemented) << r.message;
  EXPECT_EQ(server->counters().rejected_unimplemented, 1u);
}

TEST_F(RpcServerTest, ReplyToAVanishedPeerIsDroppedAndCounted) {
  auto server = MustBind();
  ReplyTo ghost;
  ghost.identity = "no-such-identity";
  ghost.request_id = 1;
  EXPECT_FALSE(server->Reply(ghost, RpcReply::Ok()));
  EXPECT_EQ(server->counters().replies_dropped, 1u);

  // A real peer that has closed its socket by the time the answer is ready.
  std::optional<IncomingRequest> in;
  {
    auto peer = Dealer(server->endpoint());
    SendFrames(peer, {"", EncodeRequest(2, TokenRequest{})});
    in = ReceiveWithin(*server, kWait);
    ASSERT_TRUE(in.has_value());
  }
  // The disconnect reaches the ROUTER asynchronously: wait until the reply is refused.
  const auto deadline = Clock::now() + kWait;
  while (server->Reply(in->reply_to, RpcReply::Ok(TokenInfo{})) && Clock::now() < deadline) {
    zmq::pollitem_t item = server->PollItem();
    zmq::poll(&item, 1, milliseconds(10));
  }
  EXPECT_GE(server->counters().replies_dropped, 2u);
}

TEST_F(RpcServerTest, OversizeReplyBecomesAnInternalError) {
  RpcServer::Options options;
  options.max_reply_bytes = 512;
  auto server = MustBind(options);
  auto peer = Dealer(server->endpoint());
  SendFrames(peer, {"", EncodeRequest(4, GlobalGetRequest{})});
  auto in = ReceiveWithin(*server, kWait);
  ASSERT_TRUE(in.has_value());
  ASSERT_TRUE(server->Reply(in->reply_to, RpcReply::Ok(JsonText{std::string(4096, 'x')})));
  auto reply = ReplyWithin(*server, peer, kWait);
  ASSERT_EQ(reply.size(), 2u);
  RpcReply r = DecodeBody(reply[1], 4);
  EXPECT_EQ(r.code, Code::kInternal);
  EXPECT_NE(r.message.find("exceeds the limit"), std::string::npos) << r.message;
  EXPECT_EQ(server->counters().replies_too_large, 1u);
}

}  // namespace
}  // namespace clustermgr::net
