// SerfClient against FakeSerfAgent: the protocol, errors, hostile replies, reconnects.
// (Against real `serf agent` processes: test/serf_client_test.cc.)
#include "net/serf_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "net/serf_codec.h"
#include "net/testing/serf_fake_agent.h"

namespace clustermgr::net {
namespace {

using namespace std::chrono_literals;

SerfMember Member(const std::string& name, const std::string& status = "alive") {
  SerfMember m;
  m.name = name;
  m.addr = "127.0.0.1";
  m.port = 7946;
  m.status = status;
  m.tags = {{"NodeLabel", name}, {"NodeSerial", "0"}};
  return m;
}

// Collects stream events from the reader thread.
class Recorder {
 public:
  SerfClient::MemberHandler Handler() {
    return [this](const SerfMemberEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
      cv_.notify_all();
    };
  }
  bool WaitForCount(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
  }
  std::vector<SerfMemberEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SerfMemberEvent> events_;
};

std::unique_ptr<FakeSerfAgent> StartFake(FakeSerfAgent::Options options = {}) {
  auto fake = FakeSerfAgent::Start(std::move(options));
  EXPECT_TRUE(fake.ok()) << fake.status().message();
  return std::move(fake).value();
}

SerfClientOptions Opts(const FakeSerfAgent& fake) {
  SerfClientOptions o;
  o.address = fake.address();
  o.request_timeout = 2s;
  o.reconnect_min = 10ms;
  o.reconnect_max = 100ms;
  return o;
}

std::unique_ptr<SerfClient> MustConnect(SerfClientOptions o) {
  auto c = SerfClient::Connect(std::move(o));
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? std::move(c).value() : nullptr;
}

// A port nothing listens on: bound, then closed.
uint16_t ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string Header(uint64_t seq, const std::string& error = "") {
  return EncodeResponseHeader({seq, error});
}

TEST(SerfClientTest, ConnectsAndRunsEveryCommand) {
  auto fake = StartFake();
  fake->SetMembers({Member("a"), Member("b", "failed")});
  auto client = MustConnect(Opts(*fake));
  ASSERT_TRUE(client);

  auto members = client->Members();
  ASSERT_TRUE(members.ok()) << members.status().message();
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[0].name, "a");
  EXPECT_EQ((*members)[1].status, "failed");

  SerfMemberFilter f;
  f.status = "failed";
  auto filtered = client->MembersFiltered(f);
  ASSERT_TRUE(filtered.ok()) << filtered.status().message();
  ASSERT_EQ(filtered->size(), 1u);
  EXPECT_EQ((*filtered)[0].name, "b");

  ASSERT_TRUE(client->SetTags({{"rack", "r1"}}, {"NodeSerial"}).ok());
  EXPECT_EQ(fake->members()[0].tags,
            (std::map<std::string, std::string>{{"NodeLabel", "a"}, {"rack", "r1"}}));

  auto joined = client->Join({"127.0.0.1:1", "127.0.0.1:2"});
  ASSERT_TRUE(joined.ok()) << joined.status().message();
  EXPECT_EQ(*joined, 2);

  ASSERT_TRUE(client->Leave().ok());
  EXPECT_EQ(fake->commands(),
            (std::vector<std::string>{"handshake", "stop", "members", "members-filtered", "tags",
                                      "join", "leave"}));
}

TEST(SerfClientTest, RightAuthKeyWorks) {
  auto fake = StartFake({.auth_key = "s3cret", .self_name = ""});
  fake->SetMembers({Member("a")});
  auto o = Opts(*fake);
  o.auth_key = "s3cret";
  auto client = MustConnect(o);
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->Members().ok());
}

TEST(SerfClientTest, WrongAuthKeyIsAClearError) {
  auto fake = StartFake({.auth_key = "s3cret", .self_name = ""});
  auto o = Opts(*fake);
  o.auth_key = "wrong";
  auto client = SerfClient::Connect(o);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(client.status().message(), "serf rpc auth failed: Invalid authentication token");
}

TEST(SerfClientTest, MissingAuthKeyIsAClearError) {
  auto fake = StartFake({.auth_key = "s3cret", .self_name = ""});
  auto client = SerfClient::Connect(Opts(*fake));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kPermissionDenied);
  EXPECT_NE(client.status().message().find("serf rpc auth required"), std::string::npos)
      << client.status().message();
}

TEST(SerfClientTest, RefusedHandshakeIsAClearError) {
  auto fake = StartFake();
  fake->InjectReply("handshake",
                    [](uint64_t seq) { return Header(seq, "Unsupported IPC version"); });
  auto client = SerfClient::Connect(Opts(*fake));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(client.status().message(), "serf rpc handshake refused: Unsupported IPC version");
}

TEST(SerfClientTest, NoAgentIsConnectFailedAndRequestsFailFast) {
  SerfClientOptions o;
  o.address = "127.0.0.1:" + std::to_string(ClosedPort());
  auto connected = SerfClient::Connect(o);
  ASSERT_FALSE(connected.ok());
  EXPECT_EQ(connected.status().code(), Code::kUnavailable);
  EXPECT_NE(connected.status().message().find("cannot connect to " + o.address), std::string::npos)
      << connected.status().message();

  SerfClient client(o);
  EXPECT_FALSE(client.WaitConnected(300ms).ok());
  auto members = client.Members();
  ASSERT_FALSE(members.ok());
  EXPECT_EQ(members.status().code(), Code::kUnavailable);
}

TEST(SerfClientTest, BadAddressIsRefused) {
  SerfClientOptions o;
  o.address = "no-port-here";
  auto c = SerfClient::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("bad address"), std::string::npos);
}

// ---- Hostile replies: each is an error of that connection; the client then reconnects. ----

class SerfClientHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = StartFake();
    fake_->SetMembers({Member("a")});
    auto o = Opts(*fake_);
    o.max_message_bytes = 64 * 1024;
    client_ = MustConnect(o);
    ASSERT_TRUE(client_);
  }

  // The next `members` gets `reply`; returns what Members() said. Then checks that the client
  // recovers: a later call works (after a reconnect when the connection was dropped).
  Status MembersWithReply(FakeSerfAgent::RawReply reply, bool close_after = false) {
    fake_->InjectReply("members", std::move(reply), close_after);
    auto r = client_->Members();
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(client_->WaitConnected(5s).ok());
    // The reconnect may still be in its handshake; retry through that window.
    Result<std::vector<SerfMember>> again = client_->Members();
    for (int i = 0; i < 50 && !again.ok() && again.status().code() == Code::kUnavailable; ++i) {
      EXPECT_TRUE(client_->WaitConnected(5s).ok());
      again = client_->Members();
    }
    EXPECT_TRUE(again.ok()) << again.status().message();
    return r.status();
  }

  std::unique_ptr<FakeSerfAgent> fake_;
  std::unique_ptr<SerfClient> client_;
};

TEST_F(SerfClientHostileTest, GarbageBytes) {
  auto st = MembersWithReply([](uint64_t) { return std::string("\xc1\xc1garbage\xff\x00", 11); });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("invalid msgpack"), std::string::npos) << st.message();
}

TEST_F(SerfClientHostileTest, TruncatedReplyThenClose) {
  auto st = MembersWithReply(
      [](uint64_t seq) {
        std::string full = Header(seq) + EncodeMembersBody({Member("a"), Member("b")});
        return full.substr(0, full.size() - 10);
      },
      /*close_after=*/true);
  EXPECT_EQ(st.code(), Code::kOutcomeUnknown);
  EXPECT_NE(st.message().find("in the middle of a message"), std::string::npos) << st.message();
}

TEST_F(SerfClientHostileTest, OversizedReply) {
  auto st = MembersWithReply([](uint64_t seq) {
    std::vector<SerfMember> many;
    for (int i = 0; i < 2000; ++i) many.push_back(Member("member-" + std::to_string(i)));
    return Header(seq) + EncodeMembersBody(many);  // well over 64 KiB
  });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("exceeds 65536 bytes"), std::string::npos) << st.message();
}

TEST_F(SerfClientHostileTest, HugeDeclaredArray) {
  auto st = MembersWithReply([](uint64_t seq) {
    return Header(seq) + std::string("\x81\xa7Members\xdd\xff\xff\xff\xff", 14);
  });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("size limit"), std::string::npos) << st.message();
}

TEST_F(SerfClientHostileTest, HeaderWithWrongTypes) {
  auto st = MembersWithReply([](uint64_t) {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(2);
    pk.pack(std::string("Seq"));
    pk.pack(std::string("three"));
    pk.pack(std::string("Error"));
    pk.pack(std::string(""));
    return std::string(b.data(), b.size());
  });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("response header field Seq"), std::string::npos) << st.message();
}

TEST_F(SerfClientHostileTest, HeaderThatIsNotAMap) {
  auto st = MembersWithReply([](uint64_t) { return std::string("\x93\x01\x02\x03", 4); });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("response header is not a map"), std::string::npos) << st.message();
}

TEST_F(SerfClientHostileTest, BodyWithWrongTypes) {
  auto st = MembersWithReply([](uint64_t seq) {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(1);
    pk.pack(std::string("Members"));
    pk.pack(42);
    return Header(seq) + std::string(b.data(), b.size());
  });
  EXPECT_EQ(st.code(), Code::kCorruption);
}

TEST_F(SerfClientHostileTest, ReplyForAnUnknownSequence) {
  auto st = MembersWithReply([](uint64_t seq) { return Header(seq + 1000); });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("unknown sequence number"), std::string::npos) << st.message();
}

TEST_F(SerfClientHostileTest, ConnectionClosedWithoutReply) {
  auto st = MembersWithReply([](uint64_t) { return std::string(); }, /*close_after=*/true);
  EXPECT_EQ(st.code(), Code::kOutcomeUnknown);
  EXPECT_NE(st.message().find("connection closed by the agent"), std::string::npos) << st.message();
}

TEST(SerfClientTest, SilentAgentTimesOutAndTheConnectionStaysUsable) {
  auto fake = StartFake();
  fake->SetMembers({Member("a")});
  auto o = Opts(*fake);
  o.request_timeout = 300ms;
  auto client = MustConnect(o);
  ASSERT_TRUE(client);
  fake->InjectReply("members", [](uint64_t) { return std::string(); });  // never answers
  const auto start = std::chrono::steady_clock::now();
  auto r = client->Members();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kOutcomeUnknown);
  EXPECT_EQ(r.status().message(), "serf rpc members timed out after 300 ms");
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 1500ms);
  auto again = client->Members();
  EXPECT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(fake->connections_accepted(), 1);
}

// ---- Streams ----

TEST(SerfClientTest, StreamStartsWithResyncAndDeliversEveryRecord) {
  auto fake = StartFake();
  fake->SetMembers({Member("a")});
  auto client = MustConnect(Opts(*fake));
  ASSERT_TRUE(client);
  Recorder rec;
  auto id = client->SubscribeMembers(rec.Handler());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(rec.WaitForCount(1));
  fake->EmitMemberEvent({SerfEventType::kMemberJoin, "member-join", {Member("b"), Member("c")}});
  fake->EmitMemberEvent({SerfEventType::kMemberFailed, "member-failed", {}});
  ASSERT_TRUE(rec.WaitForCount(3));
  auto events = rec.events();
  EXPECT_EQ(events[0].type, SerfEventType::kResync);
  ASSERT_EQ(events[0].members.size(), 1u);
  EXPECT_EQ(events[0].members[0].name, "a");
  EXPECT_EQ(events[1].type, SerfEventType::kMemberJoin);
  ASSERT_EQ(events[1].members.size(), 2u);
  EXPECT_EQ(events[1].members[1].name, "c");
  EXPECT_EQ(events[2].type, SerfEventType::kMemberFailed);
  EXPECT_TRUE(events[2].members.empty());

  ASSERT_TRUE(client->Unsubscribe(*id).ok());
  fake->EmitMemberEvent({SerfEventType::kMemberJoin, "member-join", {Member("d")}});
  // The members reply follows any record on the wire, so once it is back nothing more can come.
  ASSERT_TRUE(client->Members().ok());
  EXPECT_EQ(rec.events().size(), 3u);
  auto cmds = fake->commands();
  EXPECT_NE(std::find(cmds.begin(), cmds.end(), "stream"), cmds.end());
  EXPECT_EQ(std::count(cmds.begin(), cmds.end(), "stop"), 2);  // auth probe + unsubscribe
  EXPECT_EQ(client->Unsubscribe(*id).code(), Code::kInvalidArgument);
}

// A record that overtakes the member list on the wire is held back and replayed after it.
TEST(SerfClientTest, RecordsBeforeTheMemberListFollowTheResync) {
  auto fake = StartFake();
  fake->SetMembers({Member("a")});
  auto client = MustConnect(Opts(*fake));
  ASSERT_TRUE(client);
  fake->InjectReply("members", [](uint64_t seq) {
    // The stream was opened with the request just before this one.
    SerfMemberEvent e{SerfEventType::kMemberJoin, "member-join", {Member("b")}};
    return Header(seq - 1) + EncodeMemberEventBody(e) + Header(seq) +
           EncodeMembersBody({Member("a")});
  });
  Recorder rec;
  ASSERT_TRUE(client->SubscribeMembers(rec.Handler()).ok());
  ASSERT_TRUE(rec.WaitForCount(2));
  auto events = rec.events();
  EXPECT_EQ(events[0].type, SerfEventType::kResync);
  EXPECT_EQ(events[1].type, SerfEventType::kMemberJoin);
}

TEST(SerfClientTest, ReconnectsResumesTheStreamAndResyncs) {
  auto fake = StartFake();
  fake->SetMembers({Member("a"), Member("b")});
  std::mutex mu;
  std::vector<bool> transitions;
  auto o = Opts(*fake);
  o.on_connection = [&](const SerfConnectionEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    transitions.push_back(e.connected);
  };
  auto client = MustConnect(o);
  ASSERT_TRUE(client);
  Recorder rec;
  ASSERT_TRUE(client->SubscribeMembers(rec.Handler()).ok());
  ASSERT_TRUE(rec.WaitForCount(1));

  fake->SetMembers({Member("a"), Member("b", "failed"), Member("c")});
  fake->DisconnectAll();  // the agent "restarts"
  ASSERT_TRUE(rec.WaitForCount(2));
  auto events = rec.events();
  EXPECT_EQ(events[1].type, SerfEventType::kResync);
  ASSERT_EQ(events[1].members.size(), 3u);
  EXPECT_EQ(events[1].members[1].status, "failed");
  EXPECT_EQ(events[1].members[2].name, "c");
  EXPECT_GE(fake->connections_accepted(), 2);

  // The stream is live again on the new connection.
  fake->EmitMemberEvent({SerfEventType::kMemberLeave, "member-leave", {Member("c", "left")}});
  ASSERT_TRUE(rec.WaitForCount(3));
  EXPECT_EQ(rec.events()[2].type, SerfEventType::kMemberLeave);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(transitions.size(), 3u);
  EXPECT_EQ(transitions[0], true);
  EXPECT_EQ(transitions[1], false);
  EXPECT_EQ(transitions.back(), true);
}

TEST(SerfClientTest, SubscribeBeforeTheAgentIsUp) {
  auto fake = StartFake();
  fake->SetMembers({Member("a")});
  SerfClient client(Opts(*fake));
  Recorder rec;
  ASSERT_TRUE(client.SubscribeMembers(rec.Handler()).ok());
  ASSERT_TRUE(rec.WaitForCount(1));
  EXPECT_EQ(rec.events()[0].type, SerfEventType::kResync);
}

TEST(SerfClientTest, BlockingCallFromAHandlerIsRefused) {
  auto fake = StartFake();
  auto client = MustConnect(Opts(*fake));
  ASSERT_TRUE(client);
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Status> inner;
  ASSERT_TRUE(client
                  ->SubscribeMembers([&](const SerfMemberEvent&) {
                    auto r = client->Members();
                    std::lock_guard<std::mutex> lock(mu);
                    inner = r.status();
                    cv.notify_all();
                  })
                  .ok());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return inner.has_value(); }));
  EXPECT_EQ(inner->code(), Code::kInvalidArgument);
}

// Destruction with a request the agent never answered (still pending on the connection) and
// a live subscription neither hangs nor calls the handler afterwards.
TEST(SerfClientTest, DestructionWithUnansweredRequestAndLiveStreamIsClean) {
  auto fake = StartFake();
  auto o = Opts(*fake);
  o.request_timeout = 200ms;
  auto client = MustConnect(o);
  ASSERT_TRUE(client);
  Recorder rec;
  ASSERT_TRUE(client->SubscribeMembers(rec.Handler()).ok());
  ASSERT_TRUE(rec.WaitForCount(1));
  fake->InjectReply("members", [](uint64_t) { return std::string(); });
  EXPECT_EQ(client->Members().status().code(), Code::kOutcomeUnknown);
  client.reset();
  fake->EmitMemberEvent({SerfEventType::kMemberJoin, "member-join", {Member("z")}});
  EXPECT_EQ(rec.events().size(), 1u);
}

}  // namespace
}  // namespace clustermgr::net
