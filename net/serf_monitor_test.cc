// SerfMonitor and SerfEventQueue against FakeSerfAgent (real agents: test/serf_monitor_test.cc).
#include "net/serf_monitor.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>

#include "net/testing/serf_event_queue.h"
#include "net/testing/serf_fake_agent.h"

namespace clustermgr::net {
namespace {

using namespace std::chrono_literals;
using Kind = SerfNodeEvent::Kind;
using Subject = SerfNodeEvent::Subject;

SerfMember Node(const std::string& member, const std::string& serial,
                const std::string& status = "alive") {
  SerfMember m;
  m.name = member;
  m.addr = "127.0.0.1";
  m.port = 7946;
  m.status = status;
  m.tags = {{"NodeLabel", "node"}, {"NodeSerial", serial}, {"NodeAddr", "10.1.0." + serial}};
  return m;
}

SerfMember Manager(const std::string& member) {
  SerfMember m;
  m.name = member;
  m.addr = "127.0.0.1";
  m.port = 7000;
  m.status = "alive";
  m.tags = {{"role", "clustermgr"}, {"epoch", "3"}};
  return m;
}

SerfEventQueue::Predicate Is(Kind kind, const std::string& name) {
  return [kind, name](const SerfNodeEvent& e) { return e.kind == kind && e.name == name; };
}

class SerfMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = FakeSerfAgent::Start();
    ASSERT_TRUE(fake.ok()) << fake.status().message();
    fake_ = std::move(fake).value();
    fake_->SetMembers({Node("a0", "0"), Node("a1", "1"), Manager("m0"), Node("a9", "9", "failed")});
  }

  void StartMonitor() {
    SerfClientOptions o;
    o.address = fake_->address();
    o.reconnect_min = 10ms;
    o.reconnect_max = 100ms;
    monitor_ = std::make_unique<SerfMonitor>(o, [this](const SerfNodeEvent& e) {
      sink_thread_ = std::this_thread::get_id();
      queue_.Push(e);
    });
    ASSERT_TRUE(monitor_->WaitConnected(5s).ok());
  }

  std::unique_ptr<FakeSerfAgent> fake_;
  SerfEventQueue queue_;
  std::thread::id sink_thread_;
  std::unique_ptr<SerfMonitor> monitor_;  // destroyed before queue_ and fake_
};

TEST_F(SerfMonitorTest, AliveMembersAtStartAreDiscovered) {
  StartMonitor();
  auto a0 = queue_.WaitFor(Is(Kind::kDiscovered, "node-0"), 5s);
  ASSERT_TRUE(a0);
  EXPECT_EQ(a0->subject, Subject::kNode);
  EXPECT_EQ(a0->member, "a0");
  EXPECT_EQ(a0->address, "10.1.0.0");
  EXPECT_EQ(a0->cause, SerfEventType::kResync);
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDiscovered, "node-1"), 5s));
  auto m0 = queue_.WaitFor(Is(Kind::kDiscovered, "m0"), 5s);
  ASSERT_TRUE(m0);
  EXPECT_EQ(m0->subject, Subject::kManager);
  EXPECT_EQ(m0->tags.at("epoch"), "3");
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-9"), 5s));
  EXPECT_NE(sink_thread_, std::this_thread::get_id());
}

TEST_F(SerfMonitorTest, MultiMemberAndEmptyEvents) {
  StartMonitor();
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-9"), 5s));  // the resync is done
  (void)queue_.Drain();
  fake_->EmitMemberEvent({SerfEventType::kMemberJoin, "member-join", {}});
  fake_->EmitMemberEvent({SerfEventType::kMemberFailed,
                          "member-failed",
                          {Node("a0", "0", "failed"), Node("a1", "1", "failed")}});
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-0"), 5s));
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-1"), 5s));
  fake_->EmitMemberEvent({SerfEventType::kMemberLeave, "member-leave", {Manager("m0")}});
  auto m0 = queue_.WaitFor(Is(Kind::kDisappeared, "m0"), 5s);
  ASSERT_TRUE(m0);
  EXPECT_EQ(m0->cause, SerfEventType::kMemberLeave);
  EXPECT_TRUE(queue_.Drain().empty());  // the empty join produced nothing
}

TEST_F(SerfMonitorTest, TagsChangeIsAnUpdate) {
  StartMonitor();
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-9"), 5s));
  ASSERT_TRUE(monitor_->client().SetTags({{"NodeAddr", "192.168.0.1"}}).ok());
  auto up = queue_.WaitFor(Is(Kind::kUpdated, "node-0"), 5s);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->address, "192.168.0.1");
  EXPECT_EQ(up->cause, SerfEventType::kMemberUpdate);
}

TEST_F(SerfMonitorTest, ReconnectReportsWhatWasMissed) {
  StartMonitor();
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-9"), 5s));
  (void)queue_.Drain();
  // While "restarting", a1 failed, a2 joined and the manager was reaped.
  fake_->SetMembers(
      {Node("a0", "0"), Node("a1", "1", "failed"), Node("a2", "2"), Node("a9", "9", "failed")});
  fake_->DisconnectAll();
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-1"), 5s));
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDiscovered, "node-2"), 5s));
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "m0"), 5s));
  EXPECT_TRUE(queue_.Drain().empty());  // nothing about a0 or a9
}

// The stand-in as a fleet: a monitor on a second endpoint sees a storm of a thousand joins and a
// mass departure, and `tags` on that endpoint changes the member it speaks for.
TEST_F(SerfMonitorTest, SecondEndpointSharesAFleetAndItsStorms) {
  auto second = fake_->AddEndpoint("m0");
  ASSERT_TRUE(second.ok()) << second.status().message();
  SerfClientOptions o;
  o.address = *second;
  o.reconnect_min = 10ms;
  o.reconnect_max = 100ms;
  monitor_ = std::make_unique<SerfMonitor>(o, queue_.Sink());
  ASSERT_TRUE(monitor_->WaitConnected(5s).ok());
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-9"), 5s));
  (void)queue_.Drain();

  constexpr int kJoins = 1000;
  for (int batch = 0; batch < kJoins / 100; ++batch) {
    SerfMemberEvent join{SerfEventType::kMemberJoin, "member-join", {}};
    for (int i = 0; i < 100; ++i)
      join.members.push_back(Node("f", std::to_string(100 + batch * 100 + i)));
    for (auto& m : join.members) m.name = "f" + m.tags["NodeSerial"];
    fake_->ApplyMemberEvent(join);
  }
  EXPECT_EQ(fake_->member_count(), 4u + kJoins);
  std::set<std::string> seen;
  while (seen.size() < kJoins) {
    auto e = queue_.Pop(5s);
    ASSERT_TRUE(e) << "saw " << seen.size() << " joins";
    if (e->kind == Kind::kDiscovered) seen.insert(e->name);
  }
  EXPECT_TRUE(seen.count("node-100") && seen.count("node-1099"));

  SerfMemberEvent leave{SerfEventType::kMemberLeave, "member-leave", {}};
  for (int i = 0; i < kJoins / 10; ++i) {
    SerfMember m = Node("f" + std::to_string(100 + i), std::to_string(100 + i), "left");
    leave.members.push_back(m);
  }
  fake_->ApplyMemberEvent(leave);
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-199"), 5s));
  int left = 0;
  for (const SerfMember& m : fake_->members()) left += m.status == "left";
  EXPECT_EQ(left, kJoins / 10);

  ASSERT_TRUE(monitor_->client().SetTags({{"epoch", "9"}}).ok());
  auto up = queue_.WaitFor(Is(Kind::kUpdated, "m0"), 5s);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->tags.at("epoch"), "9");
}

// The agent holds member events back while membership is busy: a monitor that polls sees a
// member the stream has not reported yet (here: never), and its departure too.
TEST_F(SerfMonitorTest, PollingSeesMembersTheStreamHasNotReportedYet) {
  SerfClientOptions o;
  o.address = fake_->address();
  o.reconnect_min = 10ms;
  o.reconnect_max = 100ms;
  monitor_ = std::make_unique<SerfMonitor>(o, queue_.Sink(), std::set<std::string>{}, 20ms);
  ASSERT_TRUE(monitor_->WaitConnected(5s).ok());
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-9"), 5s));
  auto members = fake_->members();
  members.push_back(Node("a5", "5"));
  fake_->SetMembers(members);  // no event on the stream
  auto found = queue_.WaitFor(Is(Kind::kDiscovered, "node-5"), 5s);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->cause, SerfEventType::kResync);
  members.back().status = "failed";
  fake_->SetMembers(members);
  ASSERT_TRUE(queue_.WaitFor(Is(Kind::kDisappeared, "node-5"), 5s));
  (void)queue_.Drain();
  // Nothing changes: the polls report nothing.
  EXPECT_FALSE(queue_.WaitFor([](const SerfNodeEvent&) { return true; }, 200ms));
}

TEST(SerfEventQueueTest, WaitForLeavesOtherEventsInOrder) {
  SerfEventQueue q;
  SerfNodeEvent a;
  a.name = "a";
  SerfNodeEvent b;
  b.name = "b";
  q.Push(a);
  q.Push(b);
  auto got = q.WaitFor([](const SerfNodeEvent& e) { return e.name == "b"; }, 0ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "b");
  EXPECT_FALSE(q.WaitFor([](const SerfNodeEvent& e) { return e.name == "b"; }, 10ms));
  auto first = q.Pop(0ms);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->name, "a");
  EXPECT_FALSE(q.Pop(0ms));
}

TEST(SerfEventQueueTest, WaitForWakesOnPushFromAnotherThread) {
  SerfEventQueue q;
  std::thread t([&] {
    SerfNodeEvent e;
    e.name = "late";
    q.Push(e);
  });
  auto got = q.WaitFor([](const SerfNodeEvent& e) { return e.name == "late"; }, 5s);
  t.join();
  ASSERT_TRUE(got);
}

}  // namespace
}  // namespace clustermgr::net
