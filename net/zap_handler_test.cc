#include "net/zap_handler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "net/curve_keys.h"
#include "net/gossip_transport.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"

namespace clustermgr::net {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// One daemon-like context: a ZAP handler admitting `client` and `peer` on RPC and only `peer`
// on gossip, an RPC server and a gossip transport, all CURVE servers with `server`.
class CurveServersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = *GenerateCurveKeyPair();
    client_ = *GenerateCurveKeyPair();
    peer_ = *GenerateCurveKeyPair();
    stranger_ = *GenerateCurveKeyPair();
    ZapHandler::Policy policy;
    policy.rpc_keys = {client_.public_key, peer_.public_key, server_.public_key};
    policy.gossip_keys = {peer_.public_key, server_.public_key};
    auto zap = ZapHandler::Start(context_, policy, [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      logged_.push_back(line);
    });
    ASSERT_TRUE(zap.ok()) << zap.status().ToString();
    zap_ = std::move(zap).value();
    RpcServer::Options options;
    options.curve = CurveServerConfig{server_.secret_key, std::string(kZapDomainRpc)};
    auto rpc = RpcServer::Bind(context_, "tcp://127.0.0.1:0", options);
    ASSERT_TRUE(rpc.ok()) << rpc.status().message();
    rpc_ = std::move(rpc).value();
  }

  // Serves the RPC socket on a thread while `call` runs; answers every request with a status.
  template <typename F>
  void Serving(F call) {
    std::atomic<bool> done{false};
    std::thread loop([&] {
      while (!done) {
        zmq::pollitem_t item = rpc_->PollItem();
        zmq::poll(&item, 1, milliseconds(20));
        while (auto in = rpc_->TryReceive()) {
          callers_.push_back(in->caller_key);
          rpc_->Reply(in->reply_to, RpcReply::Ok(StatusInfo{}));
        }
      }
    });
    call();
    done = true;
    loop.join();
  }

  Result<StatusInfo> CallAs(const std::optional<CurveKeyPair>& key) {
    RpcClient::Options options;
    options.timeout = milliseconds(key && key->public_key != stranger_.public_key ? 5000 : 500);
    if (key) options.curve = CurveClientConfig{server_.public_key, *key};
    RpcClient client(rpc_->endpoint(), options);
    return client.Status();
  }

  std::vector<std::string> Logged() {
    std::lock_guard<std::mutex> lock(mu_);
    return logged_;
  }

  zmq::context_t context_;
  CurveKeyPair server_, client_, peer_, stranger_;
  std::unique_ptr<ZapHandler> zap_;
  std::unique_ptr<RpcServer> rpc_;
  std::vector<std::string> callers_;  // loop thread, read after join
  std::mutex mu_;
  std::vector<std::string> logged_;
};

TEST_F(CurveServersTest, RpcAdmitsListedKeysAndTellsTheServerWhoCalled) {
  Serving([&] {
    auto a = CallAs(client_);
    EXPECT_TRUE(a.ok()) << a.status().message();
    auto b = CallAs(peer_);
    EXPECT_TRUE(b.ok()) << b.status().message();
  });
  EXPECT_EQ(callers_, (std::vector<std::string>{client_.public_key, peer_.public_key}));
  EXPECT_GE(zap_->admitted(), 2u);
}

TEST_F(CurveServersTest, RpcRefusesUnknownKeysAndPlainClientsAndLogsOncePerKey) {
  Serving([&] {
    auto r = CallAs(stranger_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kUnavailable);
    EXPECT_NE(r.status().message().find("could not connect"), std::string::npos)
        << r.status().message();
    auto again = CallAs(stranger_);
    EXPECT_FALSE(again.ok());
    auto plain = CallAs(std::nullopt);
    EXPECT_FALSE(plain.ok());
    // A client that expects another server key fails its handshake too.
    RpcClient::Options wrong;
    wrong.timeout = milliseconds(500);
    wrong.curve = CurveClientConfig{stranger_.public_key, client_};
    EXPECT_FALSE(RpcClient(rpc_->endpoint(), wrong).Status().ok());
  });
  EXPECT_TRUE(callers_.empty());
  EXPECT_GE(zap_->denied(), 2u);
  int lines_with_key = 0;
  for (const auto& line : Logged()) {
    if (line.find(stranger_.public_key) != std::string::npos) ++lines_with_key;
  }
  EXPECT_EQ(lines_with_key, 1);  // ZeroMQ retried: still one line per minute
}

// Drives transports until `done`, or gives up after `timeout`.
bool PumpUntil(std::vector<GossipTransport*> ts, const std::function<bool()>& done,
               milliseconds timeout, std::vector<GossipIncoming>* got) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::vector<zmq::pollitem_t> items;
    for (auto* t : ts) t->AppendPollItems(&items);
    zmq::poll(items.data(), items.size(), milliseconds(10));
    for (auto* t : ts) {
      while (auto in = t->Receive()) got->push_back(std::move(*in));
    }
  }
  return done();
}

GossipMessage Ping(const std::string& name) {
  return GossipMessage{{name, name + "/1", "tcp://x:1", ""}, SyncRequest{}};
}

TEST_F(CurveServersTest, GossipAdmitsPeersAndRefusesClientKeys) {
  ZmqGossipTransport::Options options;
  options.curve = ZmqGossipTransport::Options::Curve{server_, {peer_.public_key}, {}, ""};
  auto server = ZmqGossipTransport::Bind(context_, "tcp://127.0.0.1:*", options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();

  // Connecting without a known key is refused up front.
  zmq::context_t other;
  ZmqGossipTransport::Options as_peer;
  as_peer.curve = ZmqGossipTransport::Options::Curve{peer_, {server_.public_key}, {}, ""};
  auto peer = ZmqGossipTransport::Bind(other, "tcp://127.0.0.1:*", as_peer);
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ((*peer)->Connect((*server)->endpoint()).code(), Code::kFailedPrecondition);
  auto changed = (*peer)->SetPeerKey((*server)->endpoint(), server_.public_key);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  EXPECT_EQ((*peer)->SetPeerKey((*server)->endpoint(), client_.public_key).status().code(),
            Code::kFailedPrecondition);
  ASSERT_TRUE((*peer)->Connect((*server)->endpoint()).ok());

  // A listed peer's request arrives, with its key.
  std::vector<GossipIncoming> got;
  auto got_request = [&] {
    for (const auto& in : got) {
      if (in.via == GossipIncoming::Via::kRequest) return true;
    }
    return false;
  };
  EXPECT_TRUE(PumpUntil(
      {server->get(), peer->get()},
      [&] {
        (*peer)->Send((*server)->endpoint(), Ping("p"));
        return got_request();
      },
      milliseconds(5000), &got));
  ASSERT_TRUE(got_request());
  for (const auto& in : got) {
    if (in.via == GossipIncoming::Via::kRequest) {
      EXPECT_EQ(in.peer_key, peer_.public_key);
    }
  }

  // A client key (RPC only) gets no gossip connection: its DEALER never connects, its SUB
  // never hears a publication.
  got.clear();
  zmq::context_t intruder_ctx;
  ZmqGossipTransport::Options as_client;
  as_client.curve = ZmqGossipTransport::Options::Curve{client_, {}, {}, server_.public_key};
  auto intruder = ZmqGossipTransport::Bind(intruder_ctx, "tcp://127.0.0.1:*", as_client);
  ASSERT_TRUE(intruder.ok());
  ASSERT_TRUE((*intruder)->Connect((*server)->endpoint()).ok());
  std::vector<GossipIncoming> intruder_got;
  int sent = 0;
  PumpUntil(
      {server->get(), intruder->get()},
      [&] {
        if ((*intruder)->Send((*server)->endpoint(), Ping("intruder"))) ++sent;
        (*server)->Publish(Ping("server"));
        return false;
      },
      milliseconds(1500), &got);
  EXPECT_EQ(sent, 0);
  for (const auto& in : got) EXPECT_NE(in.message.sender.name, "intruder");
  int intruder_heard = 0;
  for (const auto& in : got) {
    if (in.via == GossipIncoming::Via::kPublished) ++intruder_heard;
  }
  EXPECT_EQ(intruder_heard, 0);
  EXPECT_GE(zap_->denied(), 1u);
}

}  // namespace
}  // namespace clustermgr::net
