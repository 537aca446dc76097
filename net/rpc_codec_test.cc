#include "net/rpc_codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "net/rpc.capnp.h"

namespace clustermgr::net {
namespace {

std::string Bytes(capnp::MessageBuilder& message) {
  auto words = capnp::messageToFlatArray(message);
  return std::string(words.asChars().begin(), words.asChars().size());
}

// A valid request message as a builder, for tests that then corrupt it.
void BuildNodeGet(capnp::MallocMessageBuilder& message, std::uint64_t id) {
  auto r = message.initRoot<rpcwire::Request>();
  r.setProtocolVersion(kRpcProtocolVersion);
  r.setRequestId(id);
  r.initNodeGet().setName("n1");
}

// Writes `value` into the 16-bit union discriminant of a struct (as a newer peer would).
template <typename Wire>
void SetDiscriminant(capnp::AnyStruct::Builder s, std::uint16_t value) {
  auto offset = capnp::Schema::from<Wire>().getProto().getStruct().getDiscriminantOffset();
  auto data = s.getDataSection();
  ASSERT_LE((offset + 1) * 2, data.size());
  data[offset * 2] = static_cast<capnp::byte>(value & 0xff);
  data[offset * 2 + 1] = static_cast<capnp::byte>(value >> 8);
}

std::vector<RpcRequest> AllRequests() {
  return {NodeGetRequest{"n1"},
          NodesGetRequest{},
          CommissionRequest{{"n1", "n2"}, "service-master", R"({"a":1})"},
          DecommissionRequest{{"n1"}, R"({"b":2})"},
          UpdateRequest{{"n1", "n3"}, "", "{}", 2},
          DiscoverRequest{{"10.0.0.1", "10.0.0.2"}, ""},
          GlobalGetRequest{},
          GlobalSetRequest{R"({"x":"y"})"},
          JobGetRequest{"last"},
          JobLogFollowRequest{"42", 17, 2500},
          JobsListRequest{},
          JobCancelRequest{"42"},
          ConfigGetRequest{},
          ConfigSetRequest{R"({"ansible":{"user":"u"}})"},
          MembersRequest{},
          TokenRequest{},
          StatusRequest{},
          StateDumpRequest{77, 1 << 20, 4096},
          AuditListRequest{25},
          UpgradeRequest{{"n1", "n2"}, R"({"v":2})", 1}};
}

// A forwarded request carries its original caller; a client's request carries none.
TEST(RpcCodecTest, ForwardedCallerRoundTripsOnlyWithForwardedBy) {
  const ForwardedCaller caller{std::string(40, 'k'), "ops", "operator"};
  DecodedRequest forwarded =
      DecodeRequest(EncodeRequest(1, GlobalSetRequest{"{}"}, "mgr-a", caller));
  ASSERT_TRUE(forwarded.request.ok());
  EXPECT_EQ(forwarded.forwarded_by, "mgr-a");
  EXPECT_EQ(forwarded.caller, caller);
  DecodedRequest direct = DecodeRequest(EncodeRequest(2, GlobalSetRequest{"{}"}, "", caller));
  ASSERT_TRUE(direct.request.ok());
  EXPECT_EQ(direct.caller, ForwardedCaller{});
}

TEST(RpcCodecTest, EveryRequestRoundTrips) {
  auto all = AllRequests();
  ASSERT_EQ(all.size(), std::variant_size_v<RpcRequest>);  // one per operation
  std::uint64_t id = 1;
  for (const auto& request : all) {
    SCOPED_TRACE(std::string(OperationName(request)));
    std::string bytes = EncodeRequest(id, request, id % 2 ? "mgr-b" : "");
    DecodedRequest decoded = DecodeRequest(bytes);
    ASSERT_TRUE(decoded.request.ok()) << decoded.request.status().message();
    EXPECT_EQ(decoded.request_id, id);
    EXPECT_EQ(decoded.protocol_version, kRpcProtocolVersion);
    EXPECT_EQ(decoded.forwarded_by, id % 2 ? "mgr-b" : "");
    EXPECT_EQ(decoded.request.value(), request);
    ++id;
  }
}

std::vector<RpcPayload> AllPayloads() {
  NodeInfo node{"n1",
                "10.0.0.1",
                NodeStatus::kAllocated,
                NodeState::kDiscovered,
                NodeStatus::kProvisioning,
                NodeState::kUnknown,
                {"service-master"},
                {{"NodeAddr", "10.0.0.1"}, {"NodeLabel", "n"}},
                R"({"k":"v"})"};
  JobInfo job{"42",
              "commission",
              {"n1"},
              JobStatus::kErrored,
              "playbook failed",
              3,
              "mgr-a",
              1000,
              2000,
              3000,
              2,
              {{"n1", 3, 1, 0, 1, 2}, {"n2", 0, 0, 1, 0, 0}}};
  StatusInfo status{"mgr-a",
                    "0.1.0",
                    1,
                    123,
                    "tcp://127.0.0.1:9007",
                    "tcp://127.0.0.1:9008",
                    10,
                    2048,
                    3,
                    {{"tcp://127.0.0.1:9108", "mgr-b", true, 99}},
                    "/var/d",
                    true,
                    "",
                    456,
                    {{"mgr-a/01", 12}, {"mgr-b/02", 7}},
                    0xfeedbeefcafe,
                    {{"deltas_applied", 19}}};
  return {std::monostate{},
          node,
          NodeList{{node, node}},
          JobAccepted{"42"},
          JsonText{R"({"a":1})"},
          JobDetail{job, 5, {"line 5", "line 6"}},
          JobLogChunk{7, {"a", "b"}, true, JobStatus::kComplete, ""},
          JobList{{job, job}},
          JobCancelled{"42"},
          MemberList{{{"mgr-a", "tcp://a:1", "tcp://a:2", true, true, false, 0, 5, {{"b/2", 3}}},
                      {"mgr-b", "tcp://b:1", "tcp://b:2", false, false, true, -1, 0}}},
          TokenInfo{"mgr-b", 4, 5, 1, 3, 2, false, false, "sees 1 of 2 required managers"},
          status,
          StateChunk{77, 1 << 20, 4096,
                     std::string("\0\x01\xff"
                                 "bytes",
                                 8)}};
}

TEST(RpcCodecTest, EveryReplyPayloadRoundTrips) {
  auto all = AllPayloads();
  ASSERT_EQ(all.size(), std::variant_size_v<RpcPayload>);
  for (const auto& payload : all) {
    SCOPED_TRACE(payload.index());
    RpcReply reply = RpcReply::Ok(payload);
    reply.instance = "mgr-a";
    auto decoded = DecodeReply(EncodeReply(99, reply));
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    EXPECT_EQ(decoded.value().request_id, 99u);
    EXPECT_EQ(decoded.value().reply, reply);
  }
}

TEST(RpcCodecTest, ErrorRepliesKeepCodeAndMessage) {
  for (Code code :
       {Code::kInvalidArgument, Code::kNotFound, Code::kFailedPrecondition, Code::kUnavailable,
        Code::kInternal, Code::kUnimplemented, Code::kOutcomeUnknown, Code::kPermissionDenied}) {
    RpcReply reply = RpcReply::Error(code, "there is already an active job");
    auto decoded = DecodeReply(EncodeReply(5, reply));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded.value().reply, reply);
  }
}

// The wire has no code for a store's corruption or I/O failure, nor for a cancelled call: a
// client sees them as internal errors, with the message kept.
TEST(RpcCodecTest, CodesTheWireLacksTravelAsInternal) {
  for (Code code : {Code::kCorruption, Code::kIoError, Code::kCancelled}) {
    auto decoded = DecodeReply(EncodeReply(6, RpcReply::Error(code, "disk full")));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded.value().reply, RpcReply::Error(Code::kInternal, "disk full"));
  }
}

TEST(RpcCodecTest, RefusesBytesThatAreNotWholeWords) {
  for (std::string bytes : {std::string(), std::string("x"), std::string(13, '\0')}) {
    DecodedRequest d = DecodeRequest(bytes);
    EXPECT_EQ(d.request.code(), Code::kInvalidArgument);
    EXPECT_EQ(d.request_id, 0u);
    EXPECT_EQ(DecodeReply(bytes).code(), Code::kInternal);
  }
}

TEST(RpcCodecTest, RefusesEveryTruncationOfAValidMessage) {
  std::string bytes = EncodeRequest(3, CommissionRequest{{"n1", "n2"}, "g", "{}"});
  for (std::size_t len = 8; len < bytes.size(); len += 8) {
    DecodedRequest d = DecodeRequest(std::string_view(bytes).substr(0, len));
    EXPECT_EQ(d.request.code(), Code::kInvalidArgument) << "length " << len;
  }
}

TEST(RpcCodecTest, RandomGarbageNeverCrashes) {
  unsigned seed = std::random_device{}();
  if (const char* s = std::getenv("RPC_CODEC_SEED")) seed = std::strtoul(s, nullptr, 10);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with RPC_CODEC_SEED)");
  std::mt19937 rng(seed);
  std::string valid = EncodeRequest(7, CommissionRequest{{"n1", "n2"}, "g", R"({"a":1})"});
  for (int i = 0; i < 3000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      // Pure noise, a whole number of words.
      bytes.resize(8 * (1 + rng() % 64));
      for (auto& c : bytes) c = static_cast<char>(rng());
    } else {
      // A valid message with a few bytes flipped: reaches deeper into the reader.
      bytes = valid;
      for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      }
    }
    DecodedRequest d = DecodeRequest(bytes);
    if (!d.request.ok()) {
      EXPECT_TRUE(d.request.code() == Code::kInvalidArgument ||
                  d.request.code() == Code::kUnimplemented)
          << d.request.status().message();
    }
    (void)DecodeReply(bytes);
  }
}

TEST(RpcCodecTest, RefusesProtocolVersionZero) {
  capnp::MallocMessageBuilder message;
  BuildNodeGet(message, 9);
  message.getRoot<rpcwire::Request>().setProtocolVersion(0);
  DecodedRequest d = DecodeRequest(Bytes(message));
  EXPECT_EQ(d.request.code(), Code::kInvalidArgument);
  EXPECT_NE(d.request.status().message().find("protocol version"), std::string::npos);
}

TEST(RpcCodecTest, UnknownOperationFromANewerClientIsUnimplemented) {
  capnp::MallocMessageBuilder message;
  BuildNodeGet(message, 1234);
  SetDiscriminant<rpcwire::Request>(capnp::toAny(message.getRoot<rpcwire::Request>()), 999);
  DecodedRequest d = DecodeRequest(Bytes(message));
  EXPECT_EQ(d.request.code(), Code::kUnimplemented);
  EXPECT_EQ(d.request_id, 1234u);  // so the server can answer it
  EXPECT_NE(d.request.status().message().find("#999"), std::string::npos)
      << d.request.status().message();
}

TEST(RpcCodecTest, UnknownResultFromANewerServerBecomesAnError) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<rpcwire::Reply>();
  r.setProtocolVersion(2);
  r.setRequestId(8);
  r.setInstance("mgr-z");
  r.getResult().initJobAccepted().setJobId("1");
  SetDiscriminant<rpcwire::Reply::Result>(capnp::toAny(r), 500);
  auto d = DecodeReply(Bytes(message));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d.value().request_id, 8u);
  EXPECT_EQ(d.value().reply.code, Code::kInternal);
  EXPECT_NE(d.value().reply.message.find("not understood"), std::string::npos);
}

TEST(RpcCodecTest, UnknownEnumerantsReadAsUnspecified) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<rpcwire::Reply>();
  r.setProtocolVersion(1);
  r.setRequestId(8);
  r.setError(static_cast<rpcwire::ErrorCode>(77));
  r.setMessage("new failure");
  auto node = r.getResult().initNode();
  node.setStatus(static_cast<rpcwire::NodeStatus>(40));
  node.setState(static_cast<rpcwire::NodeState>(41));
  auto d = DecodeReply(Bytes(message));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().reply.code, Code::kInternal);
  EXPECT_EQ(d.value().reply.message, "error #77: new failure");
  const auto& n = std::get<NodeInfo>(d.value().reply.payload);
  EXPECT_EQ(n.status, NodeStatus::kUnspecified);
  EXPECT_EQ(n.state, NodeState::kUnknown);
}

// A list of 2^28 zero-sized structs costs one word on the wire; read naively it would be
// 2^28 strings. The traversal limit charges each element a word and refuses it.
TEST(RpcCodecTest, TraversalLimitRefusesAmplification) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<rpcwire::Request>();
  r.setProtocolVersion(kRpcProtocolVersion);
  r.setRequestId(5);
  auto c = r.initCommission();
  capnp::toAny(c).getPointerSection()[0].initAsListOfAnyStruct(0, 0, 1u << 28);
  std::string bytes = Bytes(message);
  ASSERT_LT(bytes.size(), 1024u);
  DecodedRequest d = DecodeRequest(bytes);
  EXPECT_EQ(d.request.code(), Code::kInvalidArgument);
  EXPECT_NE(d.request.status().message().find("traversal limit"), std::string::npos)
      << d.request.status().message();
}

TEST(RpcCodecTest, NestingLimitIsApplied) {
  std::string bytes = EncodeRequest(5, CommissionRequest{{"n1"}, "g", "{}"});
  // Request > commission > names > text: three levels below the root.
  EXPECT_TRUE(DecodeRequest(bytes, DecodeLimits{1 << 20, 3}).request.ok());
  DecodedRequest d = DecodeRequest(bytes, DecodeLimits{1 << 20, 2});
  EXPECT_EQ(d.request.code(), Code::kInvalidArgument);
  EXPECT_NE(d.request.status().message().find("too deeply-nested"), std::string::npos)
      << d.request.status().message();
  // The deepest reply (status > peers > text) fits the default limits with room to spare.
  StatusInfo s;
  s.peers.push_back(PeerStatus{"tcp://x:1", "x", true, 1});
  EXPECT_TRUE(DecodeReply(EncodeReply(1, RpcReply::Ok(s)), DecodeLimits{1 << 20, 4}).ok());
}

// A hostile message nested 10000 structs deep, where the schema expects a list of text, and in
// an extra pointer field a newer client might send: refused or ignored, never followed down.
TEST(RpcCodecTest, DeeplyNestedMessagesAreNotFollowed) {
  auto chain = [](capnp::AnyStruct::Builder s) {
    for (int depth = 0; depth < 10000; ++depth) {
      s = s.getPointerSection()[0].initAsAnyStruct(0, 1);
    }
  };
  {
    capnp::MallocMessageBuilder message;
    auto r = message.initRoot<rpcwire::Request>();
    r.setProtocolVersion(kRpcProtocolVersion);
    r.setRequestId(6);
    auto names =
        capnp::toAny(r.initCommission()).getPointerSection()[0].initAsListOfAnyStruct(0, 1, 1);
    chain(names[0]);
    DecodedRequest d = DecodeRequest(Bytes(message));
    EXPECT_EQ(d.request.code(), Code::kInvalidArgument);
  }
  {
    // The same request as a newer client's, with one more pointer field holding the chain.
    capnp::MallocMessageBuilder original;
    BuildNodeGet(original, 6);
    auto any = capnp::toAny(original.getRoot<rpcwire::Request>().asReader());
    capnp::MallocMessageBuilder message;
    auto root = message.getRoot<capnp::AnyPointer>().initAsAnyStruct(
        any.getDataSection().size() / 8, any.getPointerSection().size() + 1);
    std::memcpy(root.getDataSection().begin(), any.getDataSection().begin(),
                any.getDataSection().size());
    for (unsigned i = 0; i < any.getPointerSection().size(); ++i) {
      root.getPointerSection()[i].set(any.getPointerSection()[i]);
    }
    chain(root.getPointerSection()[any.getPointerSection().size()].initAsAnyStruct(0, 1));
    DecodedRequest d = DecodeRequest(Bytes(message));
    ASSERT_TRUE(d.request.ok()) << d.request.status().message();
    EXPECT_EQ(d.request.value(), RpcRequest(NodeGetRequest{"n1"}));
  }
}

}  // namespace
}  // namespace clustermgr::net
