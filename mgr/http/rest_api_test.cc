#include "mgr/http/rest_api.h"

#include <gtest/gtest.h>

namespace clustermgr::mgr::http {
namespace {

using nlohmann::json;

TEST(ParseApiRequest, ReadsEveryFieldAndIgnoresUnknownOnes) {
  auto r = ParseApiRequest(
      R"({"nodes":["a","b"],"addrs":["10.0.0.1"],"host_group":"service-master",
          "extra_vars":"{\"x\":1}","job":"j","unknown":5,
          "monitor_event":{"name":"Discovered","nodes":[{"label":"n","serial":"1","addr":"1.2.3.4"}]},
          "config":{"ansible":{}}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->nodes, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->addrs, (std::vector<std::string>{"10.0.0.1"}));
  EXPECT_EQ(r->host_group, "service-master");
  EXPECT_EQ(r->extra_vars, R"({"x":1})");
  ASSERT_TRUE(r->monitor_event);
  EXPECT_EQ(r->monitor_event->nodes.at(0).addr, "1.2.3.4");
  EXPECT_TRUE(r->config.is_object());
}

TEST(ParseApiRequest, MatchesFieldNamesWithoutCaseAndTakesNullAsAbsent) {
  auto r = ParseApiRequest(R"({"Nodes":["a"],"HOST_GROUP":null,"config":null})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->nodes, std::vector<std::string>{"a"});
  EXPECT_EQ(r->host_group, "");
  EXPECT_TRUE(r->config.is_null());
  EXPECT_TRUE(ParseApiRequest("").ok());
}

TEST(ParseApiRequest, RefusesWrongTypes) {
  EXPECT_EQ(ParseApiRequest("{").status().message(), "the request body is not valid JSON");
  EXPECT_EQ(ParseApiRequest("[1]").status().message(), "the request body must be a JSON object");
  EXPECT_EQ(ParseApiRequest(R"({"nodes":"a"})").status().message(),
            "request field \"nodes\" must be a list of strings");
  EXPECT_EQ(ParseApiRequest(R"({"extra_vars":{}})").status().message(),
            "request field \"extra_vars\" must be a string");
}

TEST(BlankExtraVars, WhitespaceIsTheEmptyObject) {
  EXPECT_EQ(BlankExtraVarsAsEmptyObject(""), "{}");
  EXPECT_EQ(BlankExtraVarsAsEmptyObject(" \n\t"), "{}");
  EXPECT_EQ(BlankExtraVarsAsEmptyObject(" {}"), " {}");
}

TEST(NodeJson, HasThePredecessorsThreeSections) {
  net::NodeInfo n;
  n.name = "cluster-node1-0";
  n.addr = "10.0.0.5";
  n.status = net::NodeStatus::kAllocated;
  n.prev_status = net::NodeStatus::kProvisioning;
  n.state = net::NodeState::kDiscovered;
  n.host_groups = {"service-worker"};
  n.monitoring = {{"NodeLabel", "cluster-node1"}, {"NodeSerial", "0"}};
  const json j = NodeJson(n);
  EXPECT_EQ(j["monitoring_state"]["label"], "cluster-node1");
  EXPECT_EQ(j["monitoring_state"]["serial_number"], "0");
  EXPECT_EQ(j["monitoring_state"]["management_address"], "10.0.0.5");
  EXPECT_EQ(j["inventory_state"]["status"], "Allocated");
  EXPECT_EQ(j["inventory_state"]["prev_status"], "Provisioning");
  EXPECT_EQ(j["inventory_state"]["state"], "Discovered");
  EXPECT_EQ(j["configuration_state"]["host_group"], "service-worker");
  EXPECT_EQ(j["configuration_state"]["inventory_vars"]["node_addr"], "10.0.0.5");
  EXPECT_EQ(NodesJson({}), json::object());
}

TEST(JobJson, DescribesTheJobAsThePredecessorDid) {
  net::JobDetail d;
  d.job.id = "mgr-1-3";
  d.job.desc = "commission";
  d.job.nodes = {"a", "b"};
  d.job.status = net::JobStatus::kErrored;
  d.job.error = "boom";
  d.log_lines = {"l1", "l2"};
  const json j = JobJson(d);
  EXPECT_EQ(j["desc"], "commissionEvent: nodes:[a b]");
  EXPECT_EQ(j["task"], "mgr-1-3");
  EXPECT_EQ(j["status"], "Errored");
  EXPECT_EQ(j["error"], "boom");
  EXPECT_EQ(j["logs"], json::array({"l1", "l2"}));
}

FixedConfig Fixed() { return FixedConfig{"127.0.0.1:7373", false, "127.0.0.1:9007"}; }

TEST(LegacyConfig, RoundTripsThroughPost) {
  const std::string ours =
      R"({"ansible":{"playbook_dir":"/pb","configure_playbook":"site.yml",
          "cleanup_playbook":"cleanup.yml","upgrade_playbook":"up.yml","user":"u",
          "private_key":"/k","extra_variables":{"a":1}}})";
  auto legacy = LegacyConfigJson(ours, Fixed());
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ((*legacy)["serf"]["Addr"], "127.0.0.1:7373");
  EXPECT_EQ((*legacy)["ansible"]["extra_variables"], R"({"a":1})");
  EXPECT_EQ((*legacy)["ansible"]["priv_key_file"], "/k");
  EXPECT_EQ((*legacy)["manager"]["addr"], "127.0.0.1:9007");
  auto back = ConfigSetFromLegacy(*legacy, Fixed());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(json::parse(*back), json::parse(ours));
}

TEST(LegacyConfig, RefusesChangesOutsideAnsibleWithThePredecessorsText) {
  auto legacy = LegacyConfigJson(R"({"ansible":{}})", Fixed()).value();
  const std::string tail =
      " configuration can't be changed. Only changes to ansible configuration are allowed.";
  json serf = legacy;
  serf["serf"].erase("Addr");
  serf["serf"]["addr"] = "10.0.0.1:7373";  // case-insensitive, as the predecessor read it
  EXPECT_EQ(ConfigSetFromLegacy(serf, Fixed()).status().message(), "\"serf\"" + tail);
  json inventory = legacy;
  inventory["inventory"]["boltdb"] = {{"dbfile", "/x"}};
  EXPECT_EQ(ConfigSetFromLegacy(inventory, Fixed()).status().message(), "\"inventory\"" + tail);
  json manager = legacy;
  manager.erase("manager");  // missing: its zero value, not the current one
  EXPECT_EQ(ConfigSetFromLegacy(manager, Fixed()).status().message(), "\"manager\"" + tail);
  EXPECT_EQ(ConfigSetFromLegacy(json(), Fixed()).status().message(),
            "nil value specified for clusterm configuration");
  json vars = legacy;
  vars["ansible"]["extra_variables"] = "[1]";
  EXPECT_EQ(ConfigSetFromLegacy(vars, Fixed()).status().message(),
            "config.ansible.extra_variables must be a JSON object encoded as a string");
}

TEST(LegacyConfig, ShowsASerfAuthKeyRedactedAndAcceptsItBack) {
  FixedConfig fixed = Fixed();
  fixed.serf_auth_key = true;
  auto legacy = LegacyConfigJson(R"({"ansible":{}})", fixed).value();
  EXPECT_EQ(legacy["serf"]["AuthKey"], kRedactedKey);
  EXPECT_TRUE(ConfigSetFromLegacy(legacy, fixed).ok());
}

TEST(CleanPath, BehavesLikeGosPathCleanKeepingATrailingSlash) {
  EXPECT_EQ(CleanPath("/info/nodes"), "/info/nodes");
  EXPECT_EQ(CleanPath("//info//nodes"), "/info/nodes");
  EXPECT_EQ(CleanPath("/info/./nodes"), "/info/nodes");
  EXPECT_EQ(CleanPath("/info/x/../nodes"), "/info/nodes");
  EXPECT_EQ(CleanPath("/../info"), "/info");
  EXPECT_EQ(CleanPath("/info/node/"), "/info/node/");
  EXPECT_EQ(CleanPath("/"), "/");
}

TEST(JobLabel, OnlyActiveAndLast) {
  EXPECT_TRUE(IsJobLabel("active"));
  EXPECT_TRUE(IsJobLabel("last"));
  EXPECT_FALSE(IsJobLabel("first"));
  EXPECT_EQ(BadJobLabelText("first"), "Invalid or empty job label specified: \"first\"");
}

}  // namespace
}  // namespace clustermgr::mgr::http
