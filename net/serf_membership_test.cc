#include "net/serf_membership.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace clustermgr::net {
namespace {

using Kind = SerfNodeEvent::Kind;
using Subject = SerfNodeEvent::Subject;

SerfMember Node(const std::string& member, const std::string& label, const std::string& serial,
                const std::string& status = "alive") {
  SerfMember m;
  m.name = member;
  m.addr = "127.0.0.1";
  m.port = 7946;
  m.status = status;
  m.tags = {{"NodeLabel", label}, {"NodeSerial", serial}, {"NodeAddr", "10.0.0." + serial}};
  return m;
}

SerfMember Manager(const std::string& member, const std::string& status = "alive") {
  SerfMember m;
  m.name = member;
  m.addr = "127.0.0.2";
  m.port = 7947;
  m.status = status;
  m.tags = {{"role", "clustermgr"}, {"rpc", "tcp://127.0.0.2:9007"}};
  return m;
}

SerfMember Plain(const std::string& member, const std::string& status = "alive") {
  SerfMember m;
  m.name = member;
  m.addr = "127.0.0.3";
  m.status = status;
  m.tags = {{"role", "web"}};
  return m;
}

SerfMemberEvent Ev(SerfEventType type, std::vector<SerfMember> members) {
  return SerfMemberEvent{type, SerfEventTypeName(type), std::move(members)};
}

// "<kind> <subject> <name>" of each event, for compact assertions.
std::vector<std::string> Brief(const std::vector<SerfNodeEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(std::string(SerfNodeEventKindName(e.kind)) + " " +
                  SerfNodeEventSubjectName(e.subject) + " " + e.name);
  }
  return out;
}

TEST(SerfMembershipTest, ClassifiesNodesManagersAndOthers) {
  auto node = SerfMembership::Classify(Node("a0", "cluster-node1", "0"));
  ASSERT_TRUE(node);
  EXPECT_EQ(node->subject, Subject::kNode);
  EXPECT_EQ(node->name, "cluster-node1-0");
  EXPECT_EQ(node->address, "10.0.0.0");

  SerfMember no_addr = Node("a1", "n", "1");
  no_addr.tags.erase("NodeAddr");
  EXPECT_EQ(SerfMembership::Classify(no_addr)->address, "127.0.0.1");

  auto mgr = SerfMembership::Classify(Manager("m1"));
  ASSERT_TRUE(mgr);
  EXPECT_EQ(mgr->subject, Subject::kManager);
  EXPECT_EQ(mgr->name, "m1");

  EXPECT_FALSE(SerfMembership::Classify(Plain("p")));
  SerfMember half = Node("h", "n", "");
  EXPECT_FALSE(SerfMembership::Classify(half));  // empty serial: not a node
}

TEST(SerfMembershipTest, ResyncAtStartDiscoversAliveAndReportsGoneMembers) {
  SerfMembership ms;
  auto out = ms.Apply(
      Ev(SerfEventType::kResync, {Node("a0", "n", "0"), Manager("m1"), Plain("p"),
                                  Node("a1", "n", "1", "failed"), Node("a2", "n", "2", "left")}));
  EXPECT_EQ(Brief(out), (std::vector<std::string>{"discovered node n-0", "discovered manager m1",
                                                  "disappeared node n-1", "disappeared node n-2"}));
  EXPECT_EQ(out[0].member, "a0");
  EXPECT_EQ(out[0].address, "10.0.0.0");
  EXPECT_EQ(out[0].serf_address, "127.0.0.1:7946");
  EXPECT_EQ(out[0].status, "alive");
  EXPECT_EQ(out[0].cause, SerfEventType::kResync);
  EXPECT_EQ(out[1].tags.at("rpc"), "tcp://127.0.0.2:9007");  // manager tags pass through
  EXPECT_EQ(out[2].status, "failed");
  EXPECT_EQ(ms.present_count(), 3u);
}

TEST(SerfMembershipTest, EveryMemberOfAMultiMemberEventIsProcessed) {
  SerfMembership ms;
  auto out = ms.Apply(Ev(SerfEventType::kMemberJoin,
                         {Node("a0", "n", "0"), Node("a1", "n", "1"), Node("a2", "n", "2")}));
  EXPECT_EQ(Brief(out), (std::vector<std::string>{"discovered node n-0", "discovered node n-1",
                                                  "discovered node n-2"}));
  out = ms.Apply(Ev(SerfEventType::kMemberFailed,
                    {Node("a0", "n", "0", "failed"), Node("a2", "n", "2", "failed")}));
  EXPECT_EQ(Brief(out), (std::vector<std::string>{"disappeared node n-0", "disappeared node n-2"}));
  EXPECT_EQ(out[0].cause, SerfEventType::kMemberFailed);
}

TEST(SerfMembershipTest, EmptyEventsProduceNothing) {
  SerfMembership ms;
  for (auto type : {SerfEventType::kMemberJoin, SerfEventType::kMemberLeave,
                    SerfEventType::kMemberFailed, SerfEventType::kMemberUpdate,
                    SerfEventType::kMemberReap, SerfEventType::kResync, SerfEventType::kUnknown}) {
    EXPECT_TRUE(ms.Apply(Ev(type, {})).empty()) << SerfEventTypeName(type);
  }
}

TEST(SerfMembershipTest, LeaveAndFailAreReportedOnce) {
  SerfMembership ms;
  (void)ms.Apply(Ev(SerfEventType::kMemberJoin, {Node("a0", "n", "0")}));
  auto out = ms.Apply(Ev(SerfEventType::kMemberLeave, {Node("a0", "n", "0", "left")}));
  EXPECT_EQ(Brief(out), std::vector<std::string>{"disappeared node n-0"});
  EXPECT_EQ(out[0].status, "left");
  EXPECT_EQ(out[0].cause, SerfEventType::kMemberLeave);
  // Failed after left, or a resync that still lists it as left: already gone.
  EXPECT_TRUE(ms.Apply(Ev(SerfEventType::kMemberFailed, {Node("a0", "n", "0", "failed")})).empty());
  EXPECT_TRUE(ms.Apply(Ev(SerfEventType::kResync, {Node("a0", "n", "0", "left")})).empty());
  // Coming back is a new discovery.
  out = ms.Apply(Ev(SerfEventType::kMemberJoin, {Node("a0", "n", "0")}));
  EXPECT_EQ(Brief(out), std::vector<std::string>{"discovered node n-0"});
}

TEST(SerfMembershipTest, UpdateRefreshesAddressAndTags) {
  SerfMembership ms;
  (void)ms.Apply(Ev(SerfEventType::kMemberJoin, {Node("a0", "n", "0")}));
  SerfMember changed = Node("a0", "n", "0");
  changed.tags["NodeAddr"] = "192.168.1.9";
  changed.tags["extra"] = "x";
  auto out = ms.Apply(Ev(SerfEventType::kMemberUpdate, {changed}));
  ASSERT_EQ(Brief(out), std::vector<std::string>{"updated node n-0"});
  EXPECT_EQ(out[0].address, "192.168.1.9");
  EXPECT_EQ(out[0].tags.at("extra"), "x");
  // An explicit update is reported even when nothing we track changed.
  out = ms.Apply(Ev(SerfEventType::kMemberUpdate, {changed}));
  EXPECT_EQ(Brief(out), std::vector<std::string>{"updated node n-0"});
}

TEST(SerfMembershipTest, UpdateOfAnUnknownMemberDiscoversIt) {
  SerfMembership ms;
  auto out = ms.Apply(Ev(SerfEventType::kMemberUpdate, {Manager("m1")}));
  EXPECT_EQ(Brief(out), std::vector<std::string>{"discovered manager m1"});
}

TEST(SerfMembershipTest, IdentityChangeIsDisappearedThenDiscovered) {
  SerfMembership ms;
  (void)ms.Apply(Ev(SerfEventType::kMemberJoin, {Node("a0", "n", "0"), Plain("p")}));
  auto out = ms.Apply(Ev(SerfEventType::kMemberUpdate, {Node("a0", "n", "7")}));
  EXPECT_EQ(Brief(out), (std::vector<std::string>{"disappeared node n-0", "discovered node n-7"}));
  // A plain member that takes node tags becomes a node; dropping them again removes it.
  out = ms.Apply(Ev(SerfEventType::kMemberUpdate, {Node("p", "q", "1")}));
  EXPECT_EQ(Brief(out), std::vector<std::string>{"discovered node q-1"});
  out = ms.Apply(Ev(SerfEventType::kMemberUpdate, {Plain("p")}));
  EXPECT_EQ(Brief(out), std::vector<std::string>{"disappeared node q-1"});
}

TEST(SerfMembershipTest, DuplicateJoinIsSilentUnlessSomethingChanged) {
  SerfMembership ms;
  (void)ms.Apply(Ev(SerfEventType::kMemberJoin, {Node("a0", "n", "0")}));
  EXPECT_TRUE(ms.Apply(Ev(SerfEventType::kMemberJoin, {Node("a0", "n", "0")})).empty());
  SerfMember moved = Node("a0", "n", "0");
  moved.addr = "127.0.0.9";
  auto out = ms.Apply(Ev(SerfEventType::kMemberJoin, {moved}));
  EXPECT_EQ(Brief(out), std::vector<std::string>{"updated node n-0"});
}

// After a reconnect the client delivers a resync: its diff against what the monitor knew is
// exactly what was missed.
TEST(SerfMembershipTest, ResyncAfterReconnectYieldsTheMissedEvents) {
  SerfMembership ms;
  (void)ms.Apply(Ev(SerfEventType::kResync, {Node("a0", "n", "0"), Node("a1", "n", "1"),
                                             Node("a2", "n", "2"), Manager("m1")}));
  SerfMember a1_updated = Node("a1", "n", "1");
  a1_updated.tags["rack"] = "r2";
  auto out =
      ms.Apply(Ev(SerfEventType::kResync, {Node("a0", "n", "0"), a1_updated,
                                           Node("a2", "n", "2", "failed"), Node("a3", "n", "3")}));
  // m1 was reaped while we were away: it is missing from the list.
  EXPECT_EQ(Brief(out),
            (std::vector<std::string>{"updated node n-1", "disappeared node n-2",
                                      "discovered node n-3", "disappeared manager m1"}));
  // The same resync again changes nothing.
  EXPECT_TRUE(
      ms.Apply(Ev(SerfEventType::kResync, {Node("a0", "n", "0"), a1_updated,
                                           Node("a2", "n", "2", "failed"), Node("a3", "n", "3")}))
          .empty());
}

TEST(SerfMembershipTest, ExpectedNodesMissingFromTheFirstResyncDisappear) {
  SerfMembership ms;
  // A restarted owner remembers n-0 (still there), n-1 (failed), n-2 (not listed at all).
  ms.ExpectNodes({"n-0", "n-1", "n-2"});
  auto out =
      ms.Apply(Ev(SerfEventType::kResync, {Node("a0", "n", "0"), Node("a1", "n", "1", "failed")}));
  EXPECT_EQ(Brief(out), (std::vector<std::string>{"discovered node n-0", "disappeared node n-1",
                                                  "disappeared node n-2"}));
  EXPECT_EQ(out.back().status, "left");
  EXPECT_EQ(out.back().cause, SerfEventType::kResync);
  // Only the first list is compared with the expectation.
  EXPECT_TRUE(ms.Apply(Ev(SerfEventType::kResync, {Node("a0", "n", "0")})).empty());
}

TEST(SerfMembershipTest, ReapForgetsAndReportsIfStillPresent) {
  SerfMembership ms;
  (void)ms.Apply(Ev(SerfEventType::kMemberJoin, {Node("a0", "n", "0"), Node("a1", "n", "1")}));
  (void)ms.Apply(Ev(SerfEventType::kMemberFailed, {Node("a0", "n", "0", "failed")}));
  auto out = ms.Apply(
      Ev(SerfEventType::kMemberReap, {Node("a0", "n", "0", "left"), Node("a1", "n", "1", "left")}));
  EXPECT_EQ(Brief(out), std::vector<std::string>{"disappeared node n-1"});
  EXPECT_EQ(ms.present_count(), 0u);
}

TEST(SerfMembershipTest, ToStringIsOneLine) {
  SerfMembership ms;
  auto out = ms.Apply(Ev(SerfEventType::kMemberJoin, {Node("a0", "n", "0")}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ToString(out[0]),
            "discovered node n-0 member=a0 addr=10.0.0.0 serf=127.0.0.1:7946 status=alive "
            "cause=member-join tags={NodeAddr=10.0.0.0,NodeLabel=n,NodeSerial=0}");
}

}  // namespace
}  // namespace clustermgr::net
