// The daemon's request batches end to end (a real clustermgrd, synced LevelDB, real RPC):
// concurrent clients' writes share syncs and every acknowledged one survives SIGKILL; requests
// pipelined on one connection are answered in order, a bad one among them is refused and
// changes nothing while its neighbours succeed, and a read after a write in the same batch sees
// it.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "net/rpc_codec.h"
#include "store/store.h"
#include "test/support/process.h"
#include "test/support/replicated_cluster_test.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;

uint64_t Counter(net::RpcClient& client, const std::string& name) {
  auto s = client.Status();
  EXPECT_TRUE(s.ok());
  if (!s.ok()) return 0;
  for (const auto& c : s.value().counters) {
    if (c.name == name) return c.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

class RpcBatchTest : public test::ReplicatedClusterTest {};

TEST_F(RpcBatchTest, ConcurrentClientsShareSyncsAndEveryAcknowledgedWriteSurvivesSigkill) {
  ASSERT_TRUE(cluster_.AddMany(1, {}, &error_, /*sync=*/true)) << error_;
  auto& m1 = cluster_.at(0);
  const uint64_t writes_before = Counter(m1.client(), "store_writes");
  const uint64_t batches_before = Counter(m1.client(), "rpc_write_batches");

  constexpr int kClients = 16;
  constexpr int kWritesEach = 40;
  std::mutex mu;
  std::set<std::string> acked;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      net::RpcClient::Options o;
      o.timeout = 5s;
      net::RpcClient client(m1.url(), o);
      for (int n = 0; n < kWritesEach; ++n) {
        const std::string value = "c" + std::to_string(c) + "-" + std::to_string(n);
        if (client.GlobalSet(R"({"w":")" + value + R"("})").ok()) {
          std::lock_guard lock(mu);
          acked.insert(value);
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  ASSERT_EQ(acked.size(), static_cast<size_t>(kClients * kWritesEach));

  // Each write is two deltas (the change and its audit record); one at a time they would cost
  // two store writes (two syncs) each. Batched, a store write carries several clients' writes.
  const uint64_t writes = Counter(m1.client(), "store_writes") - writes_before;
  const uint64_t batches = Counter(m1.client(), "rpc_write_batches") - batches_before;
  std::cout << acked.size() << " writes acknowledged in " << batches << " batches, " << writes
            << " store writes\n";
  EXPECT_LT(batches, acked.size()) << "concurrent clients' writes never shared a batch";
  EXPECT_GE(writes, batches) << "every batch is one store write";
  EXPECT_LT(writes, acked.size());

  // SIGKILL: every acknowledged write is in the data dir.
  m1.Kill();
  auto st = store::Store::OpenReadOnly(m1.data_dir());
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  std::set<std::string> stored;
  for (const auto& [origin, range] : (*st)->DeltaLog()) {
    auto deltas = (*st)->DeltasSince(origin, range.first - 1, range.count);
    ASSERT_TRUE(deltas.ok()) << deltas.status().ToString();
    for (const crdt::Delta& d : *deltas) {
      if (const auto* e = d.state.globals.Find("w"); e && e->value) stored.insert(*e->value);
    }
  }
  for (const std::string& value : acked) {
    EXPECT_TRUE(stored.count("\"" + value + "\"")) << "acknowledged write " << value << " lost";
  }
}

// A DEALER that sends several requests without waiting, as a pipelining client does.
class PipelinedClient {
 public:
  explicit PipelinedClient(const std::string& url) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(url);
  }
  void Send(uint64_t id, const net::RpcRequest& request) {
    socket_.send(zmq::message_t(), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(net::EncodeRequest(id, request)), zmq::send_flags::none);
  }
  // The next reply (request id and reply), or nullopt after 10 s.
  std::optional<net::DecodedReply> Receive() {
    zmq::pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 10s) <= 0) return std::nullopt;
    std::vector<zmq::message_t> frames;
    for (bool more = true; more;) {
      zmq::message_t part;
      if (!socket_.recv(part)) return std::nullopt;
      more = part.more();
      frames.push_back(std::move(part));
    }
    auto decoded = net::DecodeReply(frames.back().to_string_view());
    if (!decoded.ok()) return std::nullopt;
    return std::move(decoded).value();
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

int RpcPort(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// The most bytes waiting unread on any loopback TCP connection accepted at local `port`
// (/proc/net/tcp: rx_queue of the established sockets).
size_t ReceiveQueue(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  size_t most = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote, st, queues;
    fields >> sl >> local >> remote >> st >> queues;
    if (st != "01" || local.size() < 5) continue;  // established only
    if (std::stoi(local.substr(local.find(':') + 1), nullptr, 16) != port) continue;
    most = std::max<size_t>(most, std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16));
  }
  return most;
}

// Every thread of `pid` is stopped (state T in /proc/<pid>/task/*/stat).
bool AllThreadsStopped(pid_t pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'T') {
      return false;
    }
  }
  return !ec;
}

std::string Json(const net::RpcReply& reply) {
  const auto* text = std::get_if<net::JsonText>(&reply.payload);
  return text ? nlohmann::json::parse(text->text).dump() : "(no JSON)";
}

TEST_F(RpcBatchTest, PipelinedRequestsAreAnsweredInOrderAndABadOneChangesNothing) {
  ASSERT_TRUE(cluster_.AddMany(1, {}, &error_, /*sync=*/true)) << error_;
  auto& m1 = cluster_.at(0);
  ASSERT_TRUE(m1.client().GlobalSet(R"({"before":0})").ok());
  PipelinedClient client(m1.url());
  client.Send(100, net::GlobalGetRequest{});  // connected once it is answered
  auto first = client.Receive();
  ASSERT_TRUE(first);
  EXPECT_EQ(Json(first->reply), R"({"before":0})");
  const uint64_t batches_before = Counter(m1.client(), "rpc_write_batches");

  // Stopped, the daemon finds all five waiting on its connection when it continues: one batch.
  const std::vector<net::RpcRequest> requests = {
      net::GlobalSetRequest{R"({"a":1})"},
      net::GlobalSetRequest{R"({"a":)"},  // malformed
      net::GlobalGetRequest{},
      net::GlobalSetRequest{R"({"a":1,"b":2})"},
      net::GlobalGetRequest{},
  };
  ASSERT_EQ(::kill(m1.pid(), SIGSTOP), 0);
  const bool stopped = PollUntil([&] { return AllThreadsStopped(m1.pid()); }, 10s);
  if (!stopped) ::kill(m1.pid(), SIGCONT);
  ASSERT_TRUE(stopped) << "the daemon did not stop";
  size_t bytes = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    client.Send(i + 1, requests[i]);
    bytes += 4 + net::EncodeRequest(i + 1, requests[i]).size();  // ZMTP: 2 frames, short sizes
  }
  const bool arrived = PollUntil([&] { return ReceiveQueue(RpcPort(m1.url())) >= bytes; }, 10s);
  ASSERT_EQ(::kill(m1.pid(), SIGCONT), 0);
  ASSERT_TRUE(arrived) << "the requests did not reach the daemon's connection: "
                       << ReceiveQueue(RpcPort(m1.url())) << " of " << bytes << " bytes";

  std::vector<net::DecodedReply> replies;
  for (int i = 0; i < 5; ++i) {
    auto r = client.Receive();
    ASSERT_TRUE(r) << "reply " << i + 1 << " missing";
    replies.push_back(std::move(*r));
  }
  for (size_t i = 0; i < replies.size(); ++i) {
    EXPECT_EQ(replies[i].request_id, i + 1) << "replies out of arrival order";
  }
  EXPECT_EQ(replies[0].reply.code, Code::kOk) << replies[0].reply.message;
  EXPECT_EQ(replies[1].reply.code, Code::kInvalidArgument);
  EXPECT_EQ(replies[2].reply.code, Code::kOk);
  EXPECT_EQ(Json(replies[2].reply), R"({"a":1})") << "a read sees the writes before it";
  EXPECT_EQ(replies[3].reply.code, Code::kOk) << replies[3].reply.message;
  EXPECT_EQ(Json(replies[4].reply), R"({"a":1,"b":2})");
  EXPECT_EQ(Counter(m1.client(), "rpc_write_batches"), batches_before + 1)
      << "the two writes were not made durable together";
  auto now = m1.client().GlobalGet();
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(nlohmann::json::parse(now.value()).dump(), R"({"a":1,"b":2})");
}

}  // namespace
}  // namespace clustermgr::test
