// clustermgrd end to end: requests that read or write state without lifecycle rules (globals,
// config, node reads, refusals of malformed or unknown input), over real RPC, with real Serf
// agents standing in for machines and, where a scenario needs one, a real ansible-playbook run.
// The predecessor's acceptance scenarios covered here: global set/get round trip, invalid JSON
// rejected, unknown node rejected, node get / nodes get, config get/set (only the ansible
// section changeable, and the next run uses it), discover of a known address refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using net::NodeState;
using net::NodeStatus;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// rq-1 and rq-2 stay Unallocated for the whole suite; rq-3 is the one a playbook runs on.
class DaemonRequestsTest : public ClusterTest<DaemonRequestsTest> {
 protected:
  static void SetUpTestSuite() {
    StartSharedCluster({}, [](Cluster& c) {
      return c.AddDiscoveredMachines("rq", {"1", "2", "3"});
    });
  }

  net::RpcClient& rpc() { return cluster()->rpc(); }
  std::string url() { return cluster()->manager().rpc_url(); }
  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"-u", url()});
    return RunCommand("clustermgr", args);
  }
};

TEST_F(DaemonRequestsTest, GlobalSetGetRoundTrip) {
  const json vars = {{"ntp", "pool.ntp.org"},
                     {"dns", {"10.0.0.1", "10.0.0.2"}},
                     {"proxy", {{"http", "http://proxy:3128"}, {"no_proxy", nullptr}}},
                     {"enabled", false},
                     {"count", 0},
                     {"empty", ""}};
  ASSERT_TRUE(IsOk(rpc().GlobalSet(vars.dump())));
  ASSERT_OK_AND_ASSIGN(std::string got, rpc().GlobalGet());
  EXPECT_EQ(json::parse(got), vars);

  // A set replaces the whole map.
  ASSERT_TRUE(IsOk(rpc().GlobalSet(R"({"only": 1})")));
  ASSERT_OK_AND_ASSIGN(got, rpc().GlobalGet());
  EXPECT_EQ(json::parse(got), json({{"only", 1}}));

  // The empty string means {}.
  ASSERT_TRUE(IsOk(rpc().GlobalSet("")));
  ASSERT_OK_AND_ASSIGN(got, rpc().GlobalGet());
  EXPECT_EQ(json::parse(got), json::object());
}

TEST_F(DaemonRequestsTest, InvalidJsonIsRejectedAndChangesNothing) {
  ASSERT_TRUE(IsOk(rpc().GlobalSet(R"({"keep": "me"})")));
  const std::string prefix = "\"extra_vars\" should be a valid json. Error: ";

  EXPECT_TRUE(IsRpcError(rpc().GlobalSet("{bad"), Code::kInvalidArgument,
                         prefix +
                             "parse error at line 1, column 2: syntax error while parsing object "
                             "key - invalid literal; last read: '{b'; expected string literal"));
  EXPECT_TRUE(
      IsRpcError(rpc().GlobalSet("[1, 2]"), Code::kInvalidArgument, prefix + "not a JSON object"));
  EXPECT_TRUE(
      IsRpcError(rpc().Commission({"rq-1"}, "service-master", R"({"a": )"), Code::kInvalidArgument,
                 prefix + "parse error at line 1, column 7: syntax error while parsing value - "
                          "unexpected end of input; expected '[', '{', or a literal"));
  EXPECT_TRUE(IsRpcError(rpc().Update({"rq-1"}, "", "42"), Code::kInvalidArgument,
                         prefix + "not a JSON object"));
  EXPECT_TRUE(IsRpcError(rpc().Discover({"127.0.0.200"}, "{"), Code::kInvalidArgument,
                         prefix +
                             "parse error at line 1, column 2: syntax error while parsing object "
                             "key - unexpected end of input; expected string literal"));

  ASSERT_OK_AND_ASSIGN(std::string globals, rpc().GlobalGet());
  EXPECT_EQ(json::parse(globals), json({{"keep", "me"}}));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo node, rpc().NodeGet("rq-1"));
  EXPECT_EQ(node.status, NodeStatus::kUnallocated);
  EXPECT_EQ(node.extra_vars, "{}");
}

TEST_F(DaemonRequestsTest, UnknownNodeIsRejectedAndTheOtherNodeIsUntouched) {
  const std::string unknown = "node with name or address \"no-such-node\" doesn't exists";
  EXPECT_TRUE(IsRpcError(rpc().NodeGet("no-such-node"), Code::kNotFound, unknown));
  EXPECT_TRUE(IsRpcError(rpc().Commission({"no-such-node"}, "service-master", ""), Code::kNotFound,
                         unknown));
  EXPECT_TRUE(IsRpcError(rpc().Decommission({"no-such-node"}, ""), Code::kNotFound, unknown));
  EXPECT_TRUE(IsRpcError(rpc().Update({"no-such-node"}, "", ""), Code::kNotFound, unknown));
  EXPECT_TRUE(IsRpcError(rpc().NodeGet("10.255.0.1"), Code::kNotFound,
                         "node with name or address \"10.255.0.1\" doesn't exists"));

  ASSERT_OK_AND_ASSIGN(std::vector<net::JobInfo> jobs_before, rpc().JobsList());
  // One good node and one unknown: refused as a whole; the good one does not move.
  EXPECT_TRUE(IsRpcError(rpc().Commission({"rq-1", "no-such-node"}, "service-master", "{}"),
                         Code::kNotFound, unknown));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo node, rpc().NodeGet("rq-1"));
  EXPECT_EQ(node.status, NodeStatus::kUnallocated);
  EXPECT_TRUE(node.host_groups.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<net::JobInfo> jobs_after, rpc().JobsList());
  EXPECT_EQ(jobs_after.size(), jobs_before.size());
  EXPECT_TRUE(cluster()->MarkerLines("rq-1").empty());

  EXPECT_TRUE(IsRpcError(rpc().Commission({}, "service-master", ""), Code::kInvalidArgument,
                         "atleast one node should be specified"));
}

TEST_F(DaemonRequestsTest, NodeGetAndNodesGet) {
  ASSERT_OK_AND_ASSIGN(net::NodeInfo n1, rpc().NodeGet("rq-1"));
  EXPECT_EQ(n1.name, "rq-1");
  EXPECT_EQ(n1.addr, "127.0.0.2");
  EXPECT_EQ(n1.status, NodeStatus::kUnallocated);
  EXPECT_EQ(n1.state, NodeState::kDiscovered);
  EXPECT_TRUE(n1.host_groups.empty());
  EXPECT_EQ(n1.extra_vars, "{}");
  using KV = std::pair<std::string, std::string>;
  EXPECT_THAT(n1.monitoring, ElementsAre(KV{"NodeAddr", "127.0.0.2"}, KV{"NodeLabel", "rq"},
                                         KV{"NodeSerial", "1"}, KV{"serf_status", "alive"}));

  // By management address.
  ASSERT_OK_AND_ASSIGN(net::NodeInfo n2, rpc().NodeGet("127.0.0.3"));
  EXPECT_EQ(n2.name, "rq-2");

  ASSERT_OK_AND_ASSIGN(std::vector<net::NodeInfo> all, rpc().NodesGet());
  std::vector<std::string> names;
  for (const auto& n : all) names.push_back(n.name);
  EXPECT_THAT(names, ElementsAre("rq-1", "rq-2", "rq-3"));
  EXPECT_EQ(all[0], n1);
  EXPECT_EQ(all[1], n2);
}

TEST_F(DaemonRequestsTest, ConfigGetAndSetOnlyTheAnsibleSection) {
  const json defaults = {{"ansible",
                          {{"playbook_dir", cluster()->playbook_dir()},
                           {"configure_playbook", "site.yml"},
                           {"cleanup_playbook", "cleanup.yml"},
                           {"upgrade_playbook", "rolling-upgrade.yml"},
                           {"user", ""},
                           {"private_key", ""},
                           {"forks", 0},  // 0: ansible's own default
                           {"operator_extra_variables", cluster()->extra_vars()},
                           {"extra_variables", json::object()}}}};
  ASSERT_OK_AND_ASSIGN(std::string text, rpc().ConfigGet());
  EXPECT_EQ(json::parse(text), defaults);

  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {"user": "deploy"}})")));
  ASSERT_OK_AND_ASSIGN(text, rpc().ConfigGet());
  json want = defaults;
  want["ansible"]["user"] = "deploy";
  EXPECT_EQ(json::parse(text), want);

  // A set stands for the whole section: keys it does not give fall back to the options.
  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {"cleanup_playbook": "fail.yml"}})")));
  ASSERT_OK_AND_ASSIGN(text, rpc().ConfigGet());
  want = defaults;
  want["ansible"]["cleanup_playbook"] = "fail.yml";
  EXPECT_EQ(json::parse(text), want);

  // Refusals leave it as it is.
  EXPECT_TRUE(IsRpcError(
      rpc().ConfigSet(R"({"ansible": {}, "serf": {"rpc": "x"}})"), Code::kInvalidArgument,
      "only the \"ansible\" section of the configuration can be changed, not \"serf\""));
  EXPECT_TRUE(IsRpcError(rpc().ConfigSet(R"({"ansible": {"playbook_dir": "/tmp"}})"),
                         Code::kInvalidArgument,
                         "ansible.playbook_dir is set by each daemon's --playbook-dir and cannot "
                         "be changed at run time"));
  EXPECT_TRUE(IsRpcError(rpc().ConfigSet(R"({"ansible": {"inventory": "x"}})"),
                         Code::kInvalidArgument,
                         "unknown ansible configuration key \"inventory\""));
  EXPECT_TRUE(IsRpcError(rpc().ConfigSet(R"({"ansible": {"configure_playbook": "../x.yml"}})"),
                         Code::kInvalidArgument,
                         "ansible.configure_playbook must name a file inside the playbook dir: "
                         "\"../x.yml\""));
  // The operator's layer is each daemon's own; clients cannot set reserved names.
  EXPECT_TRUE(IsRpcError(
      rpc().ConfigSet(R"({"ansible": {"operator_extra_variables": {"a": 1}}})"),
      Code::kInvalidArgument,
      "ansible.operator_extra_variables are each daemon's --extra-vars and cannot be changed at "
      "run time (set extra_variables)"));
  EXPECT_TRUE(IsRpcError(
      rpc().ConfigSet(R"({"ansible": {"extra_variables": {"ansible_connection": "ssh"}}})"),
      Code::kInvalidArgument,
      "ansible.extra_variables: \"extra_vars\" sets the reserved variable "
      "\"ansible_connection\": clients cannot choose how ansible connects or runs (an operator "
      "may allow it with --allow-extra-var)"));
  // What `config get` shows can be set back as it is.
  ASSERT_TRUE(IsOk(rpc().ConfigSet(want.dump())));
  EXPECT_TRUE(IsRpcError(rpc().ConfigSet("not json"), Code::kInvalidArgument,
                         "the configuration must be a JSON object like {\"ansible\": {...}}"));
  ASSERT_OK_AND_ASSIGN(text, rpc().ConfigGet());
  EXPECT_EQ(json::parse(text), want);

  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {}})")));
  ASSERT_OK_AND_ASSIGN(text, rpc().ConfigGet());
  EXPECT_EQ(json::parse(text), defaults);
}

TEST_F(DaemonRequestsTest, ConfigSetChangesWhatTheNextPlaybookRunUses) {
  // Over the operator's --extra-vars (connection, marker_dir), key by key.
  const json extra = {{"job_id", "from-config"}};
  const json config = {
      {"ansible", {{"configure_playbook", "rolling-upgrade.yml"}, {"extra_variables", extra}}}};
  ASSERT_TRUE(IsOk(rpc().ConfigSet(config.dump())));

  ASSERT_OK_AND_ASSIGN(net::JobAccepted job, rpc().Commission({"rq-3"}, "service-master", ""));
  ASSERT_OK_AND_ASSIGN(net::JobDetail done, cluster()->WaitForJobEnd(job.job_id));
  EXPECT_EQ(done.job.status, net::JobStatus::kComplete) << done.job.error;
  EXPECT_THAT(cluster()->MarkerLines("rq-3"), ElementsAre("rolling-upgrade.yml rq-3 from-config"));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo node, rpc().NodeGet("rq-3"));
  EXPECT_EQ(node.status, NodeStatus::kAllocated);
  EXPECT_THAT(node.host_groups, ElementsAre("service-master"));

  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {}})")));
}

// Serf member-update: new tags refresh the node's monitoring info (and its address).
TEST_F(DaemonRequestsTest, TagUpdatesRefreshMonitoringInfo) {
  Machine* m = cluster()->machine("rq-3");
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->serf().SetTags({{"rack", "r7"}, {"NodeAddr", "127.0.0.99"}}).ok());
  net::NodeInfo node;
  ASSERT_TRUE(IsOk(Cluster::WaitUntil(
      "rq-3's new tags to reach the inventory",
      [&](std::string* last) {
        auto r = rpc().NodeGet("rq-3");
        if (!r.ok()) return false;
        node = r.value();
        *last = node.addr;
        for (const auto& [k, v] : node.monitoring) *last += " " + k + "=" + v;
        return node.addr == "127.0.0.99";
      },
      std::chrono::seconds(30))));
  using KV = std::pair<std::string, std::string>;
  EXPECT_THAT(node.monitoring, ::testing::Contains(KV{"rack", "r7"}));
  EXPECT_THAT(node.monitoring, ::testing::Contains(KV{"NodeAddr", "127.0.0.99"}));
  EXPECT_EQ(node.state, NodeState::kDiscovered);
  ASSERT_OK_AND_ASSIGN(net::NodeInfo by_addr, rpc().NodeGet("127.0.0.99"));
  EXPECT_EQ(by_addr.name, "rq-3");
}

TEST_F(DaemonRequestsTest, DiscoverOfAKnownAddressIsRefused) {
  EXPECT_TRUE(IsRpcError(rpc().Discover({"127.0.0.2"}, ""), Code::kFailedPrecondition,
                         "one or more nodes already exist with the specified management "
                         "addresses. Existing nodes: [rq-1:127.0.0.2]"));
  EXPECT_TRUE(IsRpcError(rpc().Discover({"127.0.0.201", "127.0.0.3", "127.0.0.2"}, ""),
                         Code::kFailedPrecondition,
                         "one or more nodes already exist with the specified management "
                         "addresses. Existing nodes: [rq-2:127.0.0.3 rq-1:127.0.0.2]"));
  EXPECT_TRUE(IsRpcError(rpc().Discover({}, ""), Code::kInvalidArgument,
                         "atleast one node address should be specified"));
  EXPECT_TRUE(
      IsRpcError(rpc().JobGet("active"), Code::kNotFound, "info for \"active\" job doesn't exist"));
}

TEST_F(DaemonRequestsTest, JobLabels) {
  EXPECT_TRUE(IsRpcError(rpc().JobGet(""), Code::kInvalidArgument,
                         "Invalid or empty job label specified: \"\""));
  EXPECT_TRUE(IsRpcError(rpc().JobGet("no-such-job"), Code::kNotFound,
                         "info for \"no-such-job\" job doesn't exist"));
  EXPECT_TRUE(IsRpcError(rpc().JobCancel("no-such-job"), Code::kNotFound,
                         "info for \"no-such-job\" job doesn't exist"));
}

// The real `clustermgr` binary: exit codes 0 / 1 / 2, one line on stderr for errors, exactly one
// JSON document on stdout with --json.
TEST_F(DaemonRequestsTest, CliBinaryExitCodesAndJson) {
  CommandResult r = Cli({"global", "set", "-e", R"({"from_cli": [1, 2]})"});
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(r.out, "global extra-vars set\n");
  EXPECT_EQ(r.err, "");

  r = Cli({"--json", "global", "get"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(json::parse(r.out), json({{"from_cli", {1, 2}}})) << r.out;

  r = Cli({"nodes", "get", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  json nodes = json::parse(r.out);
  ASSERT_TRUE(nodes.is_array()) << r.out;
  std::vector<std::string> names;
  for (const auto& n : nodes) names.push_back(n.value("name", ""));
  EXPECT_THAT(names, ElementsAre("rq-1", "rq-2", "rq-3"));

  r = Cli({"node", "get", "rq-2", "-j"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(json::parse(r.out).value("addr", ""), "127.0.0.3") << r.out;

  r = Cli({"--json", "node", "get", "no-such-node"});
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "clustermgr: node with name or address \"no-such-node\" doesn't exists\n");

  r = Cli({"global", "set", "-e", "{bad"});
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  EXPECT_THAT(r.err, ::testing::StartsWith(
                         "clustermgr: \"extra_vars\" should be a valid json. Error: parse error"));

  r = Cli({"node", "frobnicate", "rq-1"});
  EXPECT_EQ(r.exit_code, 2) << r.ToString();
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");

  r = Cli({"node", "commission", "rq-1"});  // -g is required
  EXPECT_EQ(r.exit_code, 2) << r.ToString();

  r = RunCommand("clustermgr", {"-u", "tcp://127.0.0.1:1", "--timeout", "1", "status"});
  EXPECT_EQ(r.exit_code, 3) << r.ToString();  // unreachable
  EXPECT_THAT(r.err, HasSubstr("could not connect to tcp://127.0.0.1:1"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace clustermgr::test
