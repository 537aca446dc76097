// SerfClient against real `serf agent -profile=local` processes: RPC auth, and reconnecting
// (with a resync that misses nothing) when the agent it talks to restarts.
#include "net/serf_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/serf_monitor.h"
#include "net/testing/serf_event_queue.h"
#include "test/support/serf_agent.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;
using net::SerfClient;
using net::SerfEventQueue;
using net::SerfNodeEvent;
using Kind = SerfNodeEvent::Kind;
using Clock = std::chrono::steady_clock;

std::map<std::string, std::string> NodeTags(int serial) {
  return {{"NodeLabel", "rack-node"},
          {"NodeSerial", std::to_string(serial)},
          {"NodeAddr", "10.8.0." + std::to_string(serial)}};
}

SerfEventQueue::Predicate Is(Kind kind, const std::string& name) {
  return [kind, name](const SerfNodeEvent& e) { return e.kind == kind && e.name == name; };
}

std::unique_ptr<SerfAgent> MustStart(SerfAgentOptions options) {
  std::string error;
  auto agent = SerfAgent::Start(std::move(options), &error);
  EXPECT_TRUE(agent) << error;
  return agent;
}

TEST(SerfClientIntegrationTest, AuthKey) {
  auto agent = MustStart({.name = "auth0", .tags = NodeTags(0), .rpc_auth = "s3cret"});
  ASSERT_TRUE(agent);

  auto right = agent->ClientOptions();
  ASSERT_EQ(right.auth_key, "s3cret");
  auto client = SerfClient::Connect(right);
  ASSERT_TRUE(client.ok()) << client.status().message();
  auto members = (*client)->Members();
  ASSERT_TRUE(members.ok()) << members.status().message();
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].name, "auth0");
  EXPECT_EQ((*members)[0].tags, NodeTags(0));

  auto wrong = agent->ClientOptions();
  wrong.auth_key = "guess";
  auto refused = SerfClient::Connect(wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(refused.status().message(), "serf rpc auth failed: Invalid authentication token");

  auto none = agent->ClientOptions();
  none.auth_key.clear();
  auto missing = SerfClient::Connect(none);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kPermissionDenied);
  EXPECT_NE(missing.status().message().find("serf rpc auth required"), std::string::npos)
      << missing.status().message();
}

// Records connection transitions reported by the client.
class ConnectionLog {
 public:
  std::function<void(const net::SerfConnectionEvent&)> Callback() {
    return [this](const net::SerfConnectionEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (e.connected) {
        ++ups_;
      } else {
        ++downs_;
      }
      cv_.notify_all();
    };
  }
  bool WaitForUps(int n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return ups_ >= n; });
  }
  bool WaitForDowns(int n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return downs_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int ups_ = 0;
  int downs_ = 0;
};

TEST(SerfClientIntegrationTest, ReconnectsAfterTheAgentRestartsAndMissesNothing) {
  auto a0 = MustStart({.name = "r0", .tags = NodeTags(0)});
  ASSERT_TRUE(a0);
  auto a1 = MustStart({.name = "r1", .tags = NodeTags(1), .join = {a0->bind_address()}});
  ASSERT_TRUE(a1);

  SerfEventQueue queue;
  ConnectionLog connections;
  auto options = a0->ClientOptions();
  options.on_connection = connections.Callback();
  auto monitor = std::make_unique<net::SerfMonitor>(options, queue.Sink());
  ASSERT_TRUE(queue.WaitFor(Is(Kind::kDiscovered, "rack-node-0"), 10s));
  ASSERT_TRUE(queue.WaitFor(Is(Kind::kDiscovered, "rack-node-1"), 10s));
  ASSERT_TRUE(connections.WaitForUps(1, 1s));

  // The agent the client talks to dies; while it is down the cluster changes.
  a0->Kill();
  ASSERT_TRUE(connections.WaitForDowns(1, 10s));
  auto a2 = MustStart({.name = "r2", .tags = NodeTags(2), .join = {a1->bind_address()}});
  ASSERT_TRUE(a2);
  ASSERT_TRUE(a1->SetTags({{"NodeAddr", "10.8.1.1"}}).ok());

  std::string error;
  const auto t0 = Clock::now();
  ASSERT_TRUE(a0->Restart(&error, std::vector<std::string>{a1->bind_address()})) << error;
  ASSERT_TRUE(connections.WaitForUps(2, 10s));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  ::testing::Test::RecordProperty("reconnect_ms", std::to_string(ms));
  std::cout << "[serf-timing] reconnected " << ms << " ms after the agent restarted" << std::endl;

  // What happened while disconnected arrives through the resync (or the resumed stream).
  auto r2 = queue.WaitFor(Is(Kind::kDiscovered, "rack-node-2"), 10s);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->address, "10.8.0.2");
  auto r1 = queue.WaitFor(
      [](const SerfNodeEvent& e) {
        return e.kind == Kind::kUpdated && e.name == "rack-node-1" && e.address == "10.8.1.1";
      },
      10s);
  ASSERT_TRUE(r1);

  // And the client reports the membership correctly.
  auto members = monitor->client().Members();
  ASSERT_TRUE(members.ok()) << members.status().message();
  std::map<std::string, std::string> status;
  for (const auto& m : *members) status[m.name] = m.status;
  EXPECT_EQ(status, (std::map<std::string, std::string>{
                        {"r0", "alive"}, {"r1", "alive"}, {"r2", "alive"}}));

  // The stream is live again: a failure after the reconnect is reported.
  a2->Kill();
  ASSERT_TRUE(queue.WaitFor(Is(Kind::kDisappeared, "rack-node-2"), 30s));
  for (const auto& e : queue.Drain()) {
    EXPECT_NE(e.kind, Kind::kDisappeared) << "unexpected " << ToString(e);
  }
  monitor.reset();
}

}  // namespace
}  // namespace clustermgr::test
