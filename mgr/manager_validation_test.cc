// Hostile requests to a real Manager over a real store: every validation error has
// its exact message, and the state, the delta sequence and the running job are unchanged after
// it. The last tests go through a real RpcServer, for what is refused before the Manager.
#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "crdt/hlc.h"
#include "mgr/ansible/ansible_config.h"
#include "mgr/ansible/job_executor.h"
#include "mgr/manager.h"
#include "mgr/options.h"
#include "mgr/repl/replica.h"
#include "net/rpc.capnp.h"
#include "net/rpc_codec.h"
#include "net/rpc_server.h"
#include "base/testing/temp_dir.h"

namespace clustermgr::mgr {
namespace {

using net::RpcReply;

const char kNameRule[] =
    ": use 1 to 253 letters, digits, '_', '-', '.' (and ':', '%' in an IP address)";
const char kKeyRule[] = ": keys are 1 to 128 letters, digits, '_', '-', '.'";

std::string Nested(int depth) {
  return R"({"k":)" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}";
}

class ManagerValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.name = "v1";
    options_.data_dir = dir_.Sub("data");
    options_.playbook_dir = dir_.Sub("playbooks");  // empty: a job that did start would fail
    options_.sync = false;
    std::filesystem::create_directory(options_.playbook_dir);
    auto replica = Replica::Open({options_.name, options_.data_dir, false, 500}, &clock_);
    ASSERT_TRUE(replica.ok()) << replica.status().message();
    replica_ = std::move(replica.value());
    token_.self_holds = true;
    token_.epoch = 1;
    token_.holder = "v1";
    token_.visible = token_.quorum = 1;
    manager_ = std::make_unique<Manager>(
        &options_, replica_.get(), &executor_, [this] { return token_; },
        [](const net::ReplyTo&, RpcReply) {});
    for (const char* name : {"node1", "node2"}) {
      NodeObservation o;
      o.name = name;
      o.addr = std::string("10.0.0.") + name[4];
      o.serf_status = "alive";
      manager_->OnNodeObservation(o, clock_.NowMillis());
    }
    ASSERT_NE(replica_->state().Node("node2"), nullptr);
  }

  RpcReply Call(const net::RpcRequest& request) {
    net::IncomingRequest in;
    in.reply_to.identity = "peer";
    in.reply_to.request_id = 1;
    in.protocol_version = net::kRpcProtocolVersion;
    in.request = request;
    clock_.Advance(1);
    auto reply = manager_->Handle(in, clock_.NowMillis());
    EXPECT_TRUE(reply.has_value());
    return reply.value_or(RpcReply{});
  }

  // The request is refused with exactly `message`, and nothing changed.
  void ExpectRefused(const net::RpcRequest& request, Code code, const std::string& message) {
    SCOPED_TRACE(std::string(net::OperationName(request)));
    const crdt::ClusterState before = replica_->state();
    const uint64_t seq = replica_->last_seq();
    const RpcReply reply = Call(request);
    EXPECT_EQ(reply.code, code);
    EXPECT_EQ(reply.message, message);
    EXPECT_TRUE(replica_->state() == before) << "the state changed";
    EXPECT_EQ(replica_->last_seq(), seq);
    EXPECT_EQ(manager_->running_job(), "");
  }
  void ExpectInvalid(const net::RpcRequest& request, const std::string& message) {
    ExpectRefused(request, Code::kInvalidArgument, message);
  }

  TempDir dir_{"clustermgr-validation"};
  DaemonOptions options_;
  crdt::ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Replica> replica_;
  JobExecutor executor_{[](JobEvent) {}};
  TokenStatus token_;
  std::unique_ptr<Manager> manager_;
};

// ---- node names and host-groups ----------------------------------------------------------------

TEST_F(ManagerValidationTest, NodeNamesOutsideTheSafeSetAreRefusedBeforeLookup) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"node1;reboot", R"("node1;reboot")"}, {"node 1", R"("node 1")"}, {"-rf", R"("-rf")"},
      {"node1\n[all]", R"("node1\n[all]")"}, {"n\"1", R"("n\"1")"},     {"", R"("")"},
      {"caf\xc3\xa9", R"("caf\u00e9")"},
  };
  for (const auto& [name, quoted] : bad) {
    const std::string message = "invalid node name or address " + quoted + kNameRule;
    ExpectInvalid(net::CommissionRequest{{"node2", name}, "service-master", ""}, message);
    ExpectInvalid(net::DecommissionRequest{{name}, ""}, message);
    ExpectInvalid(net::UpdateRequest{{name}, "", ""}, message);
    ExpectInvalid(net::NodeGetRequest{name}, message);
  }
}

TEST_F(ManagerValidationTest, NodeNamesOverTheLengthLimitAreRefusedAndShortened) {
  const std::string name(254, 'a');
  const std::string message =
      "invalid node name or address \"" + std::string(64, 'a') + "\"..." + kNameRule;
  ExpectInvalid(net::CommissionRequest{{name}, "service-master", ""}, message);
  ExpectInvalid(net::NodeGetRequest{name}, message);
  // 253 characters is a well-formed name: it is looked up, and is unknown.
  ExpectRefused(net::CommissionRequest{{std::string(253, 'a')}, "service-master", ""},
                Code::kNotFound,
                "node with name or address \"" + std::string(253, 'a') + "\" doesn't exists");
}

TEST_F(ManagerValidationTest, AddressesAreAcceptedAsNodeReferences) {
  const RpcReply reply = Call(net::NodeGetRequest{"10.0.0.2"});
  EXPECT_EQ(reply.code, Code::kOk) << reply.message;
  EXPECT_EQ(std::get<net::NodeInfo>(reply.payload).name, "node2");
}

TEST_F(ManagerValidationTest, HostGroupsOutsideTheConfiguredSetAreRefusedQuoted) {
  ExpectInvalid(net::CommissionRequest{{"node1"}, "service-master]\n[evil", ""},
                R"(invalid or empty host-group specified: "service-master]\n[evil")");
  ExpectInvalid(net::CommissionRequest{{"node1"}, std::string(200, 'g'), ""},
                "invalid or empty host-group specified: \"" + std::string(64, 'g') + "\"...");
  ExpectInvalid(net::UpdateRequest{{"node1"}, "a b", ""}, R"(invalid host-group specified: "a b")");
}

TEST(DaemonOptionsValidationTest, HostGroupsOutsideTheSafeSetAreRefused) {
  DaemonOptions o;
  o.name = "v1";
  o.data_dir = "/tmp/x";
  o.insecure = true;
  o.host_groups = {"service-master", "bad group"};
  Status s = ValidateDaemonOptions(o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "--host-groups: invalid host-group \"bad group\": use 1 to 128 letters, digits, '_', "
            "'-', '.', starting with a letter, digit or '_'");
  o.host_groups = {std::string(129, 'm')};
  EXPECT_FALSE(ValidateDaemonOptions(o).ok());
  o.host_groups = {"service-master", "service-worker"};
  EXPECT_TRUE(ValidateDaemonOptions(o).ok());
}

TEST(DaemonOptionsValidationTest, TheSettlePeriodMustExceedLeasePlusKillGrace) {
  DaemonOptions o;
  o.name = "v1";
  o.data_dir = "/tmp/x";
  o.insecure = true;
  EXPECT_EQ(o.lease_ms(), 1500u);  // 3/8 and 1/2 of the default settle period, 4000 ms
  EXPECT_EQ(o.grace_ms(), 2000u);
  EXPECT_TRUE(ValidateDaemonOptions(o).ok());
  o.token_lease_ms = 1500;
  o.kill_grace_ms = 2500;
  Status s = ValidateDaemonOptions(o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(
      s.message(),
      "--token-settle-ms (4000) must exceed --token-lease-ms + --kill-grace-ms (1500 + 2500)");
  o.token_settle_ms = 4001;
  EXPECT_TRUE(ValidateDaemonOptions(o).ok());
  o.token_lease_ms = 50;
  EXPECT_EQ(ValidateDaemonOptions(o).message(), "--token-lease-ms must be at least 100");
}

// ---- extra-vars
// ----------------------------------------------------------------------------------

TEST_F(ManagerValidationTest, ExtraVarsOverTheLimitsAreRefusedByEveryRequestThatTakesThem) {
  const std::string large = R"({"k":")" + std::string(64 * 1024, 'x') + R"("})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {large, "\"extra_vars\" is too large: " + std::to_string(large.size()) +
                  " bytes, the limit is 65536 bytes"},
      {Nested(33), "\"extra_vars\" is nested too deeply, the limit is 32 levels"},
      {Nested(20000), "\"extra_vars\" is nested too deeply, the limit is 32 levels"},
      {R"x({"$(reboot)":1})x",
       "\"extra_vars\" has an invalid key \"$(reboot)\"" + std::string(kKeyRule)},
      {R"({"a b":1})", "\"extra_vars\" has an invalid key \"a b\"" + std::string(kKeyRule)},
      {"{\"" + std::string(129, 'k') + "\":1}",
       "\"extra_vars\" has an invalid key \"" + std::string(64, 'k') + "\"..." + kKeyRule},
      {"[1]", "\"extra_vars\" should be a valid json. Error: not a JSON object"},
  };
  for (const auto& [vars, message] : cases) {
    ExpectInvalid(net::CommissionRequest{{"node1"}, "service-master", vars}, message);
    ExpectInvalid(net::DecommissionRequest{{"node1"}, vars}, message);
    ExpectInvalid(net::UpdateRequest{{"node1"}, "", vars}, message);
    ExpectInvalid(net::DiscoverRequest{{"10.0.0.9"}, vars}, message);
    ExpectInvalid(net::GlobalSetRequest{vars}, message);
  }
  // At the limit is fine.
  EXPECT_EQ(Call(net::GlobalSetRequest{Nested(32)}).code, Code::kOk);
}

TEST_F(ManagerValidationTest, DiscoverAddressesAreQuotedWhenRefused) {
  ExpectInvalid(net::DiscoverRequest{{"10.0.0.9", "10.0.0.1;reboot"}, ""},
                R"(invalid node address "10.0.0.1;reboot")");
  ExpectInvalid(net::DiscoverRequest{{"a\tb"}, ""}, R"(invalid node address "a\tb")");
}

// ---- config set: playbook confinement and limits
// -------------------------------------------------

TEST_F(ManagerValidationTest, JobLabelsAreQuotedOnOneLineWhenRefused) {
  ExpectRefused(net::JobGetRequest{"no-such-job"}, Code::kNotFound,
                "info for \"no-such-job\" job doesn't exist");  // the predecessor's text
  ExpectRefused(net::JobGetRequest{"a\nb"}, Code::kNotFound,
                "info for \"a\\nb\" job doesn't exist");
  ExpectRefused(net::JobCancelRequest{"x\"y"}, Code::kNotFound,
                "info for \"x\\\"y\" job doesn't exist");
  ExpectRefused(net::JobLogFollowRequest{"\t", 0, 0}, Code::kNotFound,
                "info for \"\\t\" job doesn't exist");
}

TEST_F(ManagerValidationTest, ConfigSetConfinesPlaybooksToThePlaybookDir) {
  for (const std::string path :
       {"../../etc/passwd", "/etc/passwd", "a/../../b", "..", "site.yml\n"}) {
    const nlohmann::json doc = {{"ansible", {{"configure_playbook", path}}}};
    ExpectInvalid(net::ConfigSetRequest{doc.dump()},
                  "ansible.configure_playbook must name a file inside the playbook dir: " +
                      nlohmann::json(path).dump());
  }
  ExpectInvalid(net::ConfigSetRequest{R"({"ansible":{"cleanup_playbook":""}})"},
                R"(ansible.cleanup_playbook must name a file inside the playbook dir: "")");
  ExpectInvalid(net::ConfigSetRequest{R"({"ansible":{"playbook_dir":"/etc"}})"},
                "ansible.playbook_dir is set by each daemon's --playbook-dir and cannot be "
                "changed at run time");
  // The configuration still names the daemon's own playbooks.
  const RpcReply got = Call(net::ConfigGetRequest{});
  const auto config = nlohmann::json::parse(std::get<net::JsonText>(got.payload).text);
  EXPECT_EQ(config["ansible"]["configure_playbook"], "site.yml");
  EXPECT_EQ(config["ansible"]["playbook_dir"], options_.playbook_dir);
}

TEST_F(ManagerValidationTest, ConfigSetRefusesOversizeDeepAndUnknownInput) {
  const std::string large = R"({"ansible":{"user":")" + std::string(256 * 1024, 'u') + R"("}})";
  ExpectInvalid(net::ConfigSetRequest{large},
                "the configuration is too large: " + std::to_string(large.size()) +
                    " bytes, the limit is 262144 bytes");
  // Deep enough to overflow the stack of a recursive serializer.
  ExpectInvalid(net::ConfigSetRequest{R"({"ansible":{"extra_variables":)" + Nested(100000) + "}}"},
                "ansible.extra_variables: \"extra_vars\" is nested too deeply, the limit is 32 "
                "levels");
  ExpectInvalid(
      net::ConfigSetRequest{R"({"ansible":{"extra_variables":{"a b":1}}})"},
      "ansible.extra_variables: \"extra_vars\" has an invalid key \"a b\"" + std::string(kKeyRule));
  ExpectInvalid(net::ConfigSetRequest{R"({"ansible":{"user":"root\nx"}})"},
                R"(ansible.user must not contain control characters: "root\nx")");
  ExpectInvalid(net::ConfigSetRequest{R"({"ansible":{"become\n":"x"}})"},
                R"(unknown ansible configuration key "become\n")");
  ExpectInvalid(net::ConfigSetRequest{R"({"serf":{}})"},
                R"(only the "ansible" section of the configuration can be changed, not "serf")");
  ExpectInvalid(net::ConfigSetRequest{"[]"},
                R"(the configuration must be a JSON object like {"ansible": {...}})");
}

TEST_F(ManagerValidationTest, ConfigSetForksTakesAnIntegerUpToAThousand) {
  for (const std::string bad : {"-1", "1001", "\"50\"", "2.5", "true"}) {
    ExpectInvalid(net::ConfigSetRequest{R"({"ansible":{"forks":)" + bad + "}}"},
                  "ansible.forks must be an integer from 0 to 1000 (0: Ansible's default), not " +
                      nlohmann::json(nlohmann::json::parse(bad).dump()).dump());
  }
  EXPECT_EQ(Call(net::ConfigSetRequest{R"({"ansible":{"forks":200}})"}).code, Code::kOk);
  const RpcReply got = Call(net::ConfigGetRequest{});
  const auto config = nlohmann::json::parse(std::get<net::JsonText>(got.payload).text);
  EXPECT_EQ(config["ansible"]["forks"], 200);
  EXPECT_EQ(EffectiveConfig(AnsibleDefaultsOf(options_), replica_->state().Config()).forks, 200);
}

TEST_F(ManagerValidationTest, AStormOfObservationsIsOneWriteWithTheLatestWordOnEachNode) {
  std::vector<NodeObservation> storm;
  for (int i = 0; i < 500; ++i) {
    NodeObservation o;
    o.name = "storm-" + std::to_string(i);
    o.addr = "10.1.0." + std::to_string(i % 250);
    o.serf_status = "alive";
    storm.push_back(o);
  }
  NodeObservation gone = storm[7];
  gone.kind = NodeObservation::Kind::kDisappeared;
  gone.serf_status = "left";
  storm.push_back(gone);
  NodeObservation bad;
  bad.name = "bad name";
  storm.push_back(bad);
  const uint64_t seq = replica_->last_seq();
  manager_->OnNodeObservations(storm, clock_.NowMillis());
  EXPECT_EQ(replica_->last_seq(), seq + 1);  // one delta
  ASSERT_NE(replica_->state().Node("storm-499"), nullptr);
  EXPECT_EQ(replica_->state().Node("storm-0")->state, crdt::NodeState::kDiscovered);
  EXPECT_EQ(replica_->state().Node("storm-7")->state, crdt::NodeState::kDisappeared);
  // Applied in order: discovered, then gone.
  EXPECT_EQ(replica_->state().Node("storm-7")->prev_state, crdt::NodeState::kDiscovered);
  EXPECT_EQ(replica_->state().Node("storm-7")->serf_status, "left");
  EXPECT_EQ(replica_->state().Node("bad name"), nullptr);
  // Nothing new: nothing written.
  manager_->OnNodeObservations(std::vector<NodeObservation>(storm.begin(), storm.begin() + 5),
                               clock_.NowMillis());
  EXPECT_EQ(replica_->last_seq(), seq + 1);
}

TEST_F(ManagerValidationTest, UpgradeAndRollingUpdateAreRefusedLikeAnUpdate) {
  // node1 and node2 are Unallocated: an upgrade, like an update, needs Allocated nodes.
  const std::string refused =
      "failed to update node1's state in inventory, Error: transition from \"Unallocated\" to "
      "\"Maintenance\" is not allowed";
  ExpectRefused(net::UpgradeRequest{{"node1", "node2"}, "", 1}, Code::kFailedPrecondition, refused);
  ExpectRefused(net::UpdateRequest{{"node1"}, "", "", 1}, Code::kFailedPrecondition, refused);
  ExpectInvalid(net::UpgradeRequest{{"node1;x"}, "", 1},
                "invalid node name or address \"node1;x\"" + std::string(kNameRule));
  ExpectRefused(net::UpgradeRequest{{"node9"}, "", 0}, Code::kNotFound,
                "node with name or address \"node9\" doesn't exists");
}

// ---- through the RPC server: what never reaches the Manager
// --------------------------------------

class RpcValidationTest : public ManagerValidationTest {
 protected:
  void SetUp() override {
    ManagerValidationTest::SetUp();
    net::RpcServer::Options o;
    o.max_request_bytes = 64 * 1024;  // keeps the oversize case small
    o.transport_max_frame_bytes = 1 << 20;
    auto server = net::RpcServer::Bind(context_, "tcp://127.0.0.1:0", o);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server.value());
    peer_.connect(server_->endpoint());
  }

  // Sends `body` as a client does and serves like the daemon's loop until the reply arrives.
  RpcReply Exchange(const std::string& body) {
    peer_.send(zmq::message_t(), zmq::send_flags::sndmore);
    peer_.send(zmq::buffer(body), zmq::send_flags::none);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::pollitem_t items[] = {server_->PollItem(), {peer_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, std::chrono::milliseconds(20));
      while (auto in = server_->TryReceive()) {
        clock_.Advance(1);
        if (auto reply = manager_->Handle(*in, clock_.NowMillis())) {
          server_->Reply(in->reply_to, *reply);
        }
      }
      if (items[1].revents & ZMQ_POLLIN) {
        zmq::message_t delimiter, frame;
        EXPECT_TRUE(peer_.recv(delimiter));
        EXPECT_TRUE(peer_.recv(frame));
        auto decoded = net::DecodeReply(frame.to_string_view());
        EXPECT_TRUE(decoded.ok());
        return decoded.ok() ? decoded.value().reply : RpcReply{};
      }
    }
    ADD_FAILURE() << "no reply within 10 s";
    return {};
  }

  void ExpectRefusedOnTheWire(const std::string& body, Code code, const std::string& message) {
    const crdt::ClusterState before = replica_->state();
    const uint64_t seq = replica_->last_seq();
    const RpcReply reply = Exchange(body);
    EXPECT_EQ(reply.code, code);
    EXPECT_EQ(reply.message, message);
    EXPECT_TRUE(replica_->state() == before) << "the state changed";
    EXPECT_EQ(replica_->last_seq(), seq);
  }

  static std::string Bytes(capnp::MessageBuilder& message) {
    auto words = capnp::messageToFlatArray(message);
    return std::string(words.asChars().begin(), words.asChars().size());
  }

  zmq::context_t context_{1};
  std::unique_ptr<net::RpcServer> server_;
  zmq::socket_t peer_{context_, zmq::socket_type::dealer};
};

TEST_F(RpcValidationTest, AnUnknownOperationIsUnimplementedAndChangesNothing) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<net::rpcwire::Request>();
  r.setProtocolVersion(7);
  r.setRequestId(3);
  r.initGlobalSet().setExtraVars(R"({"a":1})");
  // A union discriminant far beyond this build's members: an operation of a much newer client.
  auto offset =
      capnp::Schema::from<net::rpcwire::Request>().getProto().getStruct().getDiscriminantOffset();
  auto data = capnp::toAny(r).getDataSection();
  data[offset * 2] = 200;
  data[offset * 2 + 1] = 0;
  ExpectRefusedOnTheWire(Bytes(message), Code::kUnimplemented,
                         "operation #200 is not implemented by this server (client protocol "
                         "version 7, server " +
                             std::to_string(net::kRpcProtocolVersion) + ")");
}

TEST_F(RpcValidationTest, AnOversizeRequestIsRefusedAndChangesNothing) {
  const std::string body = net::EncodeRequest(
      4, net::GlobalSetRequest{R"({"k":")" + std::string(70 * 1024, 'x') + R"("})"});
  ExpectRefusedOnTheWire(
      body, Code::kInvalidArgument,
      "request of " + std::to_string(body.size()) + " bytes exceeds the limit of 65536 bytes");
}

TEST_F(RpcValidationTest, ADeeplyNestedMessageIsRefusedAndChangesNothing) {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<net::rpcwire::Request>();
  r.setProtocolVersion(net::kRpcProtocolVersion);
  r.setRequestId(5);
  // Where commission's names (a list of text) belong, structs nested 5000 deep.
  auto s =
      capnp::toAny(r.initCommission()).getPointerSection()[0].initAsListOfAnyStruct(0, 1, 1)[0];
  for (int depth = 0; depth < 5000; ++depth) s = s.getPointerSection()[0].initAsAnyStruct(0, 1);
  const crdt::ClusterState before = replica_->state();
  const uint64_t seq = replica_->last_seq();
  const RpcReply reply = Exchange(Bytes(message));
  EXPECT_EQ(reply.code, Code::kInvalidArgument);
  // The rest is Cap'n Proto's own wording: the decoder stops at the first level that is not the
  // schema's (text expected), before any nesting or traversal limit is reached.
  EXPECT_EQ(reply.message.rfind("malformed request: ", 0), 0u) << reply.message;
  EXPECT_TRUE(replica_->state() == before) << "the state changed";
  EXPECT_EQ(replica_->last_seq(), seq);
}

TEST_F(RpcValidationTest, ValidationErrorsCrossTheWireVerbatim) {
  ExpectRefusedOnTheWire(
      net::EncodeRequest(6, net::CommissionRequest{{"node1\n[all]"}, "service-master", ""}),
      Code::kInvalidArgument,
      std::string(R"(invalid node name or address "node1\n[all]")") + kNameRule);
  ExpectRefusedOnTheWire(net::EncodeRequest(7, net::GlobalSetRequest{Nested(40)}),
                         Code::kInvalidArgument,
                         "\"extra_vars\" is nested too deeply, the limit is 32 levels");
}

}  // namespace
}  // namespace clustermgr::mgr
