#include "net/rpc_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "net/testing/fake_rpc_handler.h"

namespace clustermgr::net {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kWait{5000};  // generous: only reached when a test is failing

NodeInfo Node(const std::string& name) {
  NodeInfo n;
  n.name = name;
  n.addr = "10.0.0." + name.substr(name.size() - 1);
  n.status = NodeStatus::kUnallocated;
  n.state = NodeState::kDiscovered;
  n.host_groups = {"service-master"};
  n.monitoring = {{"NodeAddr", n.addr}};
  n.extra_vars = "{}";
  return n;
}

JobInfo RunningJob(const std::string& id) {
  JobInfo j;
  j.id = id;
  j.desc = "commission";
  j.status = JobStatus::kRunning;
  return j;
}

RpcClient::Options Timeout(milliseconds t) {
  RpcClient::Options o;
  o.timeout = t;
  return o;
}

TEST(FormatDurationTest, Spellings) {
  EXPECT_EQ(FormatDuration(milliseconds(10000)), "10s");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(FormatDuration(milliseconds(1025)), "1.025s");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
}

TEST(RpcClientTest, TypedCallsRoundTrip) {
  FakeManager fake("mgr-a");
  fake.AddNode(Node("n1"));
  fake.AddNode(Node("n2"));
  fake.SetGlobals(R"({"g":1})");
  fake.SetConfig(R"({"ansible":{}})");
  fake.SetMembers({MemberInfo{"mgr-a", "tcp://a:1", "tcp://a:2", true, true, true, 0, 1}});
  fake.SetToken(TokenInfo{"mgr-a", 3, 3, 1, 1, 1, true, true, ""});
  StatusInfo status;
  status.name = "mgr-a";
  fake.SetStatus(status);
  RpcClient client(fake.endpoint());

  auto node = client.NodeGet("n1");
  ASSERT_TRUE(node.ok()) << node.status().message();
  EXPECT_EQ(node.value(), Node("n1"));
  auto nodes = client.NodesGet();
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(nodes.value().size(), 2u);

  auto job = client.Commission({"n1"}, "service-master", R"({"a":1})");
  ASSERT_TRUE(job.ok()) << job.status().message();
  auto detail = client.JobGet("active");
  ASSERT_TRUE(detail.ok());
  EXPECT_EQ(detail.value().job.id, job.value().job_id);
  auto cancelled = client.JobCancel("");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().message();
  EXPECT_EQ(cancelled.value(), job.value().job_id);
  EXPECT_TRUE(client.Decommission({"n2"}, "").ok());
  EXPECT_TRUE(client.JobCancel("").ok());
  EXPECT_TRUE(client.Update({"n1"}, "", "").ok());
  EXPECT_TRUE(client.JobCancel("").ok());
  EXPECT_TRUE(client.Discover({"10.0.0.9"}, "").ok());
  auto jobs = client.JobsList();
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs.value().size(), 4u);

  EXPECT_EQ(client.GlobalGet().value(), R"({"g":1})");
  EXPECT_TRUE(client.GlobalSet(R"({"h":2})").ok());
  EXPECT_EQ(client.GlobalGet().value(), R"({"h":2})");
  EXPECT_EQ(client.ConfigGet().value(), R"({"ansible":{}})");
  EXPECT_TRUE(client.ConfigSet(R"({"ansible":{"user":"x"}})").ok());
  EXPECT_EQ(client.ConfigGet().value(), R"({"ansible":{"user":"x"}})");
  EXPECT_EQ(client.Members().value().at(0).name, "mgr-a");
  EXPECT_EQ(client.Token().value().epoch, 3u);
  EXPECT_EQ(client.Status().value().name, "mgr-a");

  // The wire carried exactly what the typed call said.
  auto received = fake.Received();
  ASSERT_GE(received.size(), 3u);
  EXPECT_EQ(received[2].request,
            RpcRequest(CommissionRequest{{"n1"}, "service-master", R"({"a":1})"}));
  EXPECT_EQ(client.late_replies_discarded(), 0u);
}

TEST(RpcClientTest, DaemonErrorsArriveVerbatim) {
  FakeManager fake;
  fake.AddNode(Node("n1"));
  fake.AddJob(RunningJob("7"));
  RpcClient client(fake.endpoint());

  auto missing = client.NodeGet("zz");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "node with name or address \"zz\" doesn't exists");

  auto busy = client.Commission({"n1"}, "service-master", "");
  EXPECT_EQ(busy.code(), Code::kFailedPrecondition);
  EXPECT_EQ(busy.status().message(),
            "there is already an active job, please try in sometime. Job: commission");

  fake.SetForcedReply(RpcReply::Error(Code::kUnavailable, "sees 1 of 2 required managers"));
  auto refused = client.GlobalSet("{}");
  EXPECT_EQ(refused.code(), Code::kUnavailable);
  EXPECT_EQ(refused.status().message(), "sees 1 of 2 required managers");

  // A reply of the wrong shape is reported, not misread.
  fake.SetForcedReply(RpcReply::Ok(JobCancelled{"1"}));
  auto odd = client.NodeGet("n1");
  EXPECT_EQ(odd.code(), Code::kInternal);
  EXPECT_NE(odd.status().message().find("unexpected reply to nodeGet"), std::string::npos);
}

TEST(RpcClientTest, TimeoutSaysWhoDidNotAnswer) {
  FakeManager fake;
  fake.SetSilent(true);
  RpcClient client(fake.endpoint(), Timeout(milliseconds(200)));

  const auto start = Clock::now();
  auto r = client.Status();
  const auto took = Clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(), "no reply from " + fake.endpoint() + " within 200ms");
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, kWait);

  // With side effects the outcome is unknown, and the message says so.
  auto m = client.GlobalSet("{}");
  EXPECT_EQ(m.code(), Code::kOutcomeUnknown);
  EXPECT_NE(m.status().message().find("may or may not have taken effect"), std::string::npos);
}

TEST(RpcClientTest, UnreachableServerFailsWithinTheTimeout) {
  DeadEndpoint dead;
  const std::string& endpoint = dead.endpoint();
  ASSERT_FALSE(endpoint.empty());
  RpcClient client(endpoint, Timeout(milliseconds(150)));
  auto r = client.Token();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(), "could not connect to " + endpoint + " within 150ms");
}

TEST(RpcClientTest, MalformedUrlIsInvalidArgument) {
  RpcClient client("not-a-url", Timeout(milliseconds(100)));
  auto r = client.Status();
  EXPECT_EQ(r.code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not-a-url"), std::string::npos);
}

TEST(RpcClientTest, LateReplyToATimedOutCallIsDiscarded) {
  FakeManager fake;
  fake.AddNode(Node("n1"));
  fake.AddNode(Node("n2"));
  RpcClient client(fake.endpoint(), Timeout(milliseconds(150)));

  fake.SetHoldReplies(true);
  auto first = client.NodeGet("n1");
  EXPECT_EQ(first.code(), Code::kUnavailable);
  // The answer to the abandoned call goes out now, before the next call is even sent.
  fake.SetHoldReplies(false);
  fake.ReleaseHeld();

  client.set_timeout(kWait);
  auto second = client.NodeGet("n2");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second.value().name, "n2");  // not n1: the late reply was recognised
  EXPECT_EQ(client.late_replies_discarded(), 1u);
}

TEST(RpcClientTest, LongPollWaitsForLinesThenReturns) {
  FakeManager fake;
  fake.AddJob(RunningJob("5"), {"line 0"});
  RpcClient client(fake.endpoint(), Timeout(milliseconds(2000)));

  // Lines already there: answered at once.
  auto now = client.JobLogFollow("5", 0, milliseconds(30000));
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now.value().lines, std::vector<std::string>{"line 0"});
  EXPECT_FALSE(now.value().ended);

  // Nothing new: the daemon parks the call; the client waits beyond its own timeout (the
  // wait is added to it) until a line is appended.
  auto pending = std::async(std::launch::async,
                            [&] { return client.JobLogFollow("5", 1, milliseconds(30000)); });
  ASSERT_TRUE(fake.WaitForParked(1, kWait));
  fake.AppendLog("5", "line 1");
  auto chunk = pending.get();
  ASSERT_TRUE(chunk.ok()) << chunk.status().message();
  EXPECT_EQ(chunk.value().first_line, 1u);
  EXPECT_EQ(chunk.value().lines, std::vector<std::string>{"line 1"});

  // The wait passes with no news: an empty chunk, not an error.
  auto empty = client.JobLogFollow("5", 2, milliseconds(100));
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE(empty.value().lines.empty());
  EXPECT_FALSE(empty.value().ended);

  // The job ends while a poll is parked: it returns with ended and the final status.
  pending = std::async(std::launch::async,
                       [&] { return client.JobLogFollow("5", 2, milliseconds(30000)); });
  ASSERT_TRUE(fake.WaitForParked(1, kWait));
  fake.EndJob("5", JobStatus::kErrored, "playbook failed");
  chunk = pending.get();
  ASSERT_TRUE(chunk.ok());
  EXPECT_TRUE(chunk.value().ended);
  EXPECT_EQ(chunk.value().status, JobStatus::kErrored);
  EXPECT_EQ(chunk.value().error, "playbook failed");
}

TEST(RpcClientTest, ForwardedByReachesTheServer) {
  FakeManager fake;
  RpcClient::Options options;
  options.forwarded_by = "mgr-b";
  RpcClient client(fake.endpoint(), options);
  auto reply = client.Call(GlobalSetRequest{"{}"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply.value().code, Code::kOk);
  EXPECT_EQ(reply.value().instance, "fake-1");
  ASSERT_EQ(fake.Received().size(), 1u);
  EXPECT_EQ(fake.Received()[0].forwarded_by, "mgr-b");
}

TEST(RpcClientTest, OversizeRequestIsRefusedBeforeSending) {
  FakeManager fake;
  RpcClient client(fake.endpoint());
  auto r = client.GlobalSet(std::string(kMaxRequestBytes + 1, 'x'));
  EXPECT_EQ(r.code(), Code::kInvalidArgument);
  EXPECT_TRUE(fake.Received().empty());
}

}  // namespace
}  // namespace clustermgr::net
