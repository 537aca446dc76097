// The HTTP gateway end to end: the predecessor's REST API as its unmodified `clusterctl` and
// curl scripts call it (the request bodies below are the ones clusterctl's Go client encodes),
// /metrics read by the Prometheus client library's parser, /healthz and /readyz, and TLS with
// client certificates. A real clustermgrd with --http-bind, real Serf agents standing in for
// machines, real ansible-playbook runs; the client is the curl program.
//
// Endpoint -> test:
//   GET  /info/nodes, /info/node/{tag}        NodesAndGlobals
//   POST /globals, GET /info/globals          NodesAndGlobals
//   POST /commission|decommission|update/nodes  LifecycleErrorsAreTheRpcTexts, JobsAndLogs
//   POST /discover/nodes                      Discover
//   GET  /info/job/{job}, /info/logs/{job}    JobsAndLogs
//   POST /monitor/event                       MonitorEvent
//   GET|POST /config                          Config
//   404, 301, 413, Content-Type rule          RoutingAndHealth
//   GET  /healthz, /readyz                    RoutingAndHealth
//   GET  /metrics                             MetricsParseWithPrometheusParser
//   TLS client certificates                   HttpTlsTest.ClientCertificateIsRequired
//   --http-bind option rules                  HttpOptionsTest.NonLoopbackNeedsTlsOrInsecure
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"
#include "test/support/http_test_util.h"
#include "test/support/process.h"

namespace clustermgr::test {
namespace {

using net::NodeState;
using net::NodeStatus;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The body clusterctl's client sends: every APIRequest field, omitempty ones left out when empty.
json ClusterctlBody(json fields) {
  json body = {{"job", ""}, {"monitor_event", {{"name", ""}, {"nodes", nullptr}}}};
  for (auto& [k, v] : fields.items()) body[k] = v;
  return body;
}

class HttpGatewayTest : public ClusterTest<HttpGatewayTest> {
 protected:
  static void SetUpTestSuite() {
    port_ = FreeLoopbackPort();
    ClusterOptions options;
    options.daemon_args = {"--http-bind", "127.0.0.1:" + std::to_string(port_)};
    StartSharedCluster(options, [](Cluster& c) {
      return c.AddDiscoveredMachines("h", {"1", "2"});
    });
  }

  static std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  static HttpReply Get(const std::string& path) { return Curl({Url(path)}); }
  static HttpReply Post(const std::string& path, const json& body,
                        const std::string& type = "application/json") {
    return Curl(
        {"-X", "POST", "-H", "Content-Type: " + type, "--data-binary", body.dump(), Url(path)});
  }
  // A refusal: 500 with the text and a newline.
  static ::testing::AssertionResult Refused(const HttpReply& r, const std::string& text) {
    if (r.status == 500 && r.body == text + "\n") return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "got " << r.status << " \"" << r.body << "\" "
                                         << r.error << "\nexpected 500 \"" << text << "\\n\"";
  }
  static ::testing::AssertionResult Ok200(const HttpReply& r) {
    if (r.status == 200) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "got " << r.status << " \"" << r.body << "\" " << r.error;
  }
  net::RpcClient& rpc() { return cluster()->rpc(); }
  // Waits (through HTTP) until no job is active; returns the last job's JSON.
  json WaitForNoActiveJob() {
    json last;
    Status s = Cluster::WaitUntil(
        "no active job",
        [&](std::string* seen) {
          HttpReply active = Get("/info/job/active");
          *seen = active.body;
          if (active.status != 500) return false;
          last = json::parse(Get("/info/job/last").body, nullptr, false);
          return true;
        },
        std::chrono::seconds(120), std::chrono::milliseconds(100));
    EXPECT_TRUE(IsOk(s));
    return last;
  }

  static inline int port_ = 0;
};

TEST_F(HttpGatewayTest, RoutingAndHealth) {
  HttpReply unknown = Get("/no/such/path");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, "404 page not found\n");
  // POST routes match Content-Type: application/json exactly, and only POST.
  EXPECT_EQ(Post("/globals", ClusterctlBody({}), "application/json; charset=utf-8").status, 404);
  EXPECT_EQ(Get("/globals").status, 404);
  EXPECT_EQ(Curl({"-X", "PUT", Url("/config")}).status, 404);
  // Unclean paths are redirected to the clean one.
  HttpReply moved = Curl({"--path-as-is", Url("/info//nodes")});
  EXPECT_EQ(moved.status, 301);
  EXPECT_THAT(moved.headers, HasSubstr("Location: /info/nodes"));
  // Bodies are bounded.
  const std::string big = cluster()->dir() + "/big-body";
  std::ofstream(big) << std::string(2 << 20, ' ');
  HttpReply too_large = Curl({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                              "@" + big, Url("/globals")});
  EXPECT_EQ(too_large.status, 413);
  EXPECT_EQ(too_large.body, "request body too large: the limit is 1048576 bytes\n");

  HttpReply health = Get("/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  // Ready: store writable, Serf connected, caught up (alone: nothing to catch up with).
  EXPECT_TRUE(IsOk(Cluster::WaitUntil(
      "ready",
      [](std::string* seen) {
        HttpReply r = Get("/readyz");
        *seen = r.body;
        return r.status == 200 && r.body == "ready\n";
      },
      std::chrono::seconds(20))));
}

TEST_F(HttpGatewayTest, NodesAndGlobals) {
  // clusterctl global set -e '{...}' then global get.
  const json vars = {{"ntp", "pool.ntp.org"}, {"dns", {"10.0.0.1"}}, {"off", false}};
  EXPECT_TRUE(Ok200(Post("/globals", ClusterctlBody({{"extra_vars", vars.dump()}}))));
  HttpReply got = Get("/info/globals");
  ASSERT_TRUE(Ok200(got));
  EXPECT_EQ(json::parse(got.body), json({{"extra_vars", vars}}));
  // The same text as RPC for invalid JSON, and nothing changes.
  auto rpc_error = rpc().GlobalSet("{bad");
  ASSERT_FALSE(rpc_error.ok());
  EXPECT_TRUE(Refused(Post("/globals", ClusterctlBody({{"extra_vars", "{bad"}})),
                      rpc_error.status().message()));
  EXPECT_THAT(rpc_error.status().message(),
              StartsWith("\"extra_vars\" should be a valid json. Error: "));
  EXPECT_EQ(json::parse(Get("/info/globals").body)["extra_vars"], vars);
  // A whitespace-only extra_vars means {} (the predecessor's rule).
  EXPECT_TRUE(Ok200(Post("/globals", ClusterctlBody({{"extra_vars", "  "}}))));
  EXPECT_EQ(json::parse(Get("/info/globals").body), json({{"extra_vars", json::object()}}));
  // A body that is not JSON.
  EXPECT_TRUE(Refused(Curl({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                            "{not json", Url("/globals")}),
                      "the request body is not valid JSON"));

  HttpReply nodes = Get("/info/nodes");
  ASSERT_TRUE(Ok200(nodes));
  const json all = json::parse(nodes.body);
  ASSERT_TRUE(all.contains("h-1")) << nodes.body;
  const json& n = all["h-1"];
  EXPECT_EQ(n["monitoring_state"]["label"], "h");
  EXPECT_EQ(n["monitoring_state"]["serial_number"], "1");
  EXPECT_EQ(n["inventory_state"]["name"], "h-1");
  EXPECT_EQ(n["inventory_state"]["status"], "Unallocated");
  EXPECT_EQ(n["inventory_state"]["state"], "Discovered");
  EXPECT_EQ(n["configuration_state"]["inventory_vars"]["node_name"], "h-1");
  const std::string addr = n["monitoring_state"]["management_address"];
  // One node, by name (padded: the predecessor trimmed it) or by address.
  EXPECT_EQ(json::parse(Get("/info/node/%20h-1%20").body), n);
  EXPECT_EQ(json::parse(Get("/info/node/" + addr).body), n);
  EXPECT_TRUE(
      Refused(Get("/info/node/nope-9"), "node with name or address \"nope-9\" doesn't exists"));
}

TEST_F(HttpGatewayTest, LifecycleErrorsAreTheRpcTexts) {
  struct Case {
    std::string path;
    json body;
    clustermgr::Result<net::JobAccepted> rpc;
  };
  std::vector<Case> cases;
  cases.push_back({"/commission/nodes", ClusterctlBody({{"host_group", "service-master"}}),
                   rpc().Commission({}, "service-master", "")});
  cases.push_back({"/commission/nodes",
                   ClusterctlBody({{"nodes", {"nope-9"}}, {"host_group", "service-master"}}),
                   rpc().Commission({"nope-9"}, "service-master", "")});
  cases.push_back({"/commission/nodes", ClusterctlBody({{"nodes", {"h-1"}}}),
                   rpc().Commission({"h-1"}, "", "")});
  cases.push_back({"/commission/nodes",
                   ClusterctlBody({{"nodes", {"h-1"}}, {"host_group", "service-worker"}}),
                   rpc().Commission({"h-1"}, "service-worker", "")});
  cases.push_back(
      {"/commission/nodes",
       ClusterctlBody(
           {{"nodes", {"h-1"}}, {"host_group", "service-master"}, {"extra_vars", "[1]"}}),
       rpc().Commission({"h-1"}, "service-master", "[1]")});
  cases.push_back({"/update/nodes",
                   ClusterctlBody({{"nodes", {"h-1"}}, {"host_group", "nonsense"}}),
                   rpc().Update({"h-1"}, "nonsense", "")});
  cases.push_back(
      {"/update/nodes", ClusterctlBody({{"nodes", {"h-1"}}}), rpc().Update({"h-1"}, "", "")});
  cases.push_back({"/decommission/nodes", ClusterctlBody({{"nodes", {"h-1"}}}),
                   rpc().Decommission({"h-1"}, "")});
  cases.push_back({"/decommission/nodes", ClusterctlBody({}), rpc().Decommission({}, "")});
  for (const Case& c : cases) {
    ASSERT_FALSE(c.rpc.ok()) << c.path << " " << c.body.dump();
    EXPECT_TRUE(Refused(Post(c.path, c.body), c.rpc.status().message()))
        << c.path << " " << c.body.dump();
  }
  // The texts are the predecessor's.
  EXPECT_EQ(cases[0].rpc.status().message(), "atleast one node should be specified");
  EXPECT_EQ(cases[1].rpc.status().message(), "node with name or address \"nope-9\" doesn't exists");
  EXPECT_EQ(cases[2].rpc.status().message(), "invalid or empty host-group specified: \"\"");
  EXPECT_EQ(cases[5].rpc.status().message(), "invalid host-group specified: \"nonsense\"");
  // Nothing changed.
  EXPECT_EQ(json::parse(Get("/info/node/h-1").body)["inventory_state"]["status"], "Unallocated");
}

TEST_F(HttpGatewayTest, JobsAndLogs) {
  EXPECT_TRUE(Refused(Get("/info/job/active"), "info for \"active\" job doesn't exist"));
  EXPECT_TRUE(Refused(Get("/info/job/first"), "Invalid or empty job label specified: \"first\""));
  EXPECT_TRUE(Refused(Get("/info/logs/first"), "Invalid or empty job label specified: \"first\""));

  // clusterctl node commission h-1 -g service-master -e '{"slow": 3}': answered when it starts.
  ASSERT_TRUE(Ok200(Post("/commission/nodes", ClusterctlBody({{"nodes", {"h-1"}},
                                                              {"extra_vars", R"({"slow": 3})"},
                                                              {"host_group", "service-master"}}))));
  HttpReply active = Get("/info/job/active");
  ASSERT_TRUE(Ok200(active));
  const json job = json::parse(active.body);
  EXPECT_EQ(job["desc"], "commissionEvent: nodes:[h-1]");
  EXPECT_EQ(job["status"], "Running");
  EXPECT_TRUE(job["logs"].is_array());
  // A second job while one runs is refused with the predecessor's text.
  HttpReply second = Post("/commission/nodes",
                          ClusterctlBody({{"nodes", {"h-2"}}, {"host_group", "service-master"}}));
  EXPECT_EQ(second.status, 500);
  EXPECT_THAT(second.body, StartsWith("there is already an active job, please try in sometime."));
  // clusterctl job get active -f: the log from now on, until the job ends. Its Go client accepts
  // gzip: the stream must still not be compressed (compressed chunks would be held back).
  HttpReply stream = Curl({"--compressed", Url("/info/logs/active")}, std::chrono::seconds(60));
  EXPECT_EQ(stream.status, 200) << stream.error;
  EXPECT_THAT(stream.body, HasSubstr("PLAY RECAP"));
  EXPECT_THAT(stream.headers, Not(HasSubstr("Content-Encoding")));
  EXPECT_THAT(stream.headers, HasSubstr("Transfer-Encoding: chunked"));
  const json last = WaitForNoActiveJob();
  EXPECT_EQ(last["status"], "Complete") << last.dump();
  EXPECT_EQ(last["desc"], "commissionEvent: nodes:[h-1]");
  EXPECT_FALSE(last["logs"].empty());
  EXPECT_TRUE(Refused(Get("/info/logs/last"), "job is not Running"));
  EXPECT_EQ(json::parse(Get("/info/node/h-1").body)["inventory_state"]["status"], "Allocated");

  // clusterctl nodes update (no -g: host_group "" keeps the group), then node decommission.
  ASSERT_TRUE(Ok200(Post("/update/nodes",
                         ClusterctlBody({{"nodes", {"h-1"}}, {"extra_vars", R"({"slow": 0})"}}))));
  EXPECT_EQ(WaitForNoActiveJob()["status"], "Complete");
  const json updated = json::parse(Get("/info/node/h-1").body);
  EXPECT_EQ(updated["inventory_state"]["status"], "Allocated");
  EXPECT_EQ(updated["configuration_state"]["host_group"], "service-master");
  ASSERT_TRUE(Ok200(Post("/decommission/nodes", ClusterctlBody({{"nodes", {"h-1"}}}))));
  EXPECT_EQ(WaitForNoActiveJob()["desc"], "decommissionEvent: nodes:[h-1]");
  EXPECT_EQ(json::parse(Get("/info/node/h-1").body)["inventory_state"]["status"], "Decommissioned");
}

TEST_F(HttpGatewayTest, Discover) {
  const std::string known =
      json::parse(Get("/info/node/h-2").body)["monitoring_state"]["management_address"];
  EXPECT_TRUE(Refused(Post("/discover/nodes", ClusterctlBody({{"addrs", {known}}})),
                      "one or more nodes already exist with the specified management addresses. "
                      "Existing nodes: [h-2:" +
                          known + "]"));
  const std::string fresh = cluster()->NextAddr();
  ASSERT_TRUE(Ok200(Post("/discover/nodes", ClusterctlBody({{"addrs", {fresh}}}))));
  const json last = WaitForNoActiveJob();
  EXPECT_EQ(last["desc"], "discoverEvent: addr: [" + fresh + "]");
  EXPECT_EQ(last["status"], "Complete") << last.dump();
}

TEST_F(HttpGatewayTest, MonitorEvent) {
  EXPECT_TRUE(Refused(Post("/monitor/event", ClusterctlBody({})),
                      "Invalid or empty event name specified: \"\""));
  // An empty node list is accepted and does nothing (the predecessor crashed on it).
  EXPECT_TRUE(Ok200(Post(
      "/monitor/event",
      ClusterctlBody({{"monitor_event", {{"name", "Disappeared"}, {"nodes", json::array()}}}}))));
  EXPECT_EQ(Get("/healthz").status, 200);
  const std::string addr =
      json::parse(Get("/info/node/h-2").body)["monitoring_state"]["management_address"];
  const json event_node = {{"label", "h"}, {"serial", "2"}, {"addr", addr}};
  EXPECT_TRUE(Ok200(Post(
      "/monitor/event",
      ClusterctlBody({{"monitor_event", {{"name", "disappeared"}, {"nodes", {event_node}}}}}))));
  EXPECT_TRUE(IsOk(cluster()->WaitForNode("h-2", NodeIs::Disappeared())));
  EXPECT_TRUE(Ok200(Post(
      "/monitor/event",
      ClusterctlBody({{"monitor_event", {{"name", "Discovered"}, {"nodes", {event_node}}}}}))));
  EXPECT_TRUE(IsOk(cluster()->WaitForNode("h-2", NodeIs::Discovered())));
}

TEST_F(HttpGatewayTest, Config) {
  HttpReply got = Get("/config");
  ASSERT_TRUE(Ok200(got));
  json config = json::parse(got.body);
  for (const char* section : {"serf", "inventory", "ansible", "manager"}) {
    EXPECT_TRUE(config.contains(section)) << got.body;
  }
  EXPECT_EQ(config["manager"]["addr"], "127.0.0.1:" + std::to_string(port_));
  EXPECT_TRUE(config["ansible"]["extra_variables"].is_string());
  EXPECT_EQ(config["ansible"]["playbook_location"], cluster()->playbook_dir());

  // clusterctl config set: GET, change the ansible section, POST the whole config.
  json changed = config;
  changed["ansible"]["user"] = "deploy";
  changed["ansible"]["extra_variables"] = R"({"from_config": 1})";
  ASSERT_TRUE(Ok200(Post("/config", ClusterctlBody({{"config", changed}}))));
  json now = json::parse(Get("/config").body);
  EXPECT_EQ(now["ansible"]["user"], "deploy");
  EXPECT_EQ(json::parse(now["ansible"]["extra_variables"].get<std::string>()),
            json({{"from_config", 1}}));
  // The same change is what `config get` over RPC shows.
  ASSERT_OK_AND_ASSIGN(std::string rpc_config, rpc().ConfigGet());
  EXPECT_EQ(json::parse(rpc_config)["ansible"]["user"], "deploy");

  const std::string tail =
      " configuration can't be changed. Only changes to ansible configuration are allowed.";
  json serf = now;
  serf["serf"]["Addr"] = "10.9.9.9:7373";
  EXPECT_TRUE(Refused(Post("/config", ClusterctlBody({{"config", serf}})), "\"serf\"" + tail));
  json inventory = now;
  inventory["inventory"]["boltdb"] = {{"dbfile", "/tmp/x.db"}};
  EXPECT_TRUE(
      Refused(Post("/config", ClusterctlBody({{"config", inventory}})), "\"inventory\"" + tail));
  json manager = now;
  manager.erase("manager");
  EXPECT_TRUE(
      Refused(Post("/config", ClusterctlBody({{"config", manager}})), "\"manager\"" + tail));
  EXPECT_TRUE(Refused(Post("/config", ClusterctlBody({})),
                      "nil value specified for clusterm configuration"));
  EXPECT_EQ(json::parse(Get("/config").body), now);  // refusals changed nothing
  ASSERT_TRUE(Ok200(Post("/config", ClusterctlBody({{"config", config}}))));
  EXPECT_EQ(json::parse(Get("/config").body), config);
}

TEST_F(HttpGatewayTest, MetricsParseWithPrometheusParser) {
  ASSERT_TRUE(IsOk(rpc().GlobalSet("{}")));
  ASSERT_TRUE(Ok200(Post("/globals", ClusterctlBody({{"extra_vars", "{}"}}))));
  HttpReply metrics = Get("/metrics");
  ASSERT_TRUE(Ok200(metrics));
  EXPECT_THAT(metrics.headers, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  const std::string file = cluster()->dir() + "/metrics.txt";
  std::ofstream(file) << metrics.body;
  CommandResult check = RunCommand("/usr/bin/python3", {SourceDir() + "/test/http_metrics_check.py",
                                                        file,
                                                        "clustermgr_requests_total",
                                                        "clustermgr_request_errors_total",
                                                        "clustermgr_request_duration_seconds",
                                                        "clustermgr_write_batch_entries",
                                                        "clustermgr_gossip_messages_in_total",
                                                        "clustermgr_gossip_bytes_in_total",
                                                        "clustermgr_gossip_messages_out_total",
                                                        "clustermgr_gossip_bytes_out_total",
                                                        "clustermgr_apply_lag_deltas",
                                                        "clustermgr_tombstones",
                                                        "clustermgr_state_entries",
                                                        "clustermgr_anti_entropy_rounds_total",
                                                        "clustermgr_snapshot_transfers_total",
                                                        "clustermgr_token_holder",
                                                        "clustermgr_token_epoch",
                                                        "clustermgr_quorum",
                                                        "clustermgr_quorum_reached",
                                                        "clustermgr_jobs",
                                                        "clustermgr_serf_connected",
                                                        "clustermgr_serf_members",
                                                        "clustermgr_store_errors_total",
                                                        "clustermgr_clock_refusals_total"});
  EXPECT_EQ(check.exit_code, 0) << check.ToString();
  // Both transports are counted, per method.
  EXPECT_THAT(metrics.body,
              HasSubstr("clustermgr_requests_total{method=\"globalSet\",transport=\"http\"} "));
  EXPECT_THAT(metrics.body,
              HasSubstr("clustermgr_requests_total{method=\"globalSet\",transport=\"rpc\"} "));
  EXPECT_THAT(metrics.body, HasSubstr("clustermgr_serf_connected 1"));
  EXPECT_THAT(metrics.body, HasSubstr("clustermgr_token_self_holds 1"));
}

// ---- TLS ---------------------------------------------------------------------------------------

TEST(HttpTlsTest, ClientCertificateIsRequired) {
  const std::string dir = MakeTempDir("http-tls");
  ASSERT_TRUE(IsOk(MakeCa(dir, "ca")));
  ASSERT_TRUE(IsOk(MakeCa(dir, "other-ca")));
  ASSERT_TRUE(IsOk(MakeCert(dir, "ca", "server", "/CN=clustermgr", true)));
  ASSERT_TRUE(IsOk(MakeCert(dir, "ca", "alice", "/O=ops/CN=alice", false)));
  ASSERT_TRUE(IsOk(MakeCert(dir, "other-ca", "mallory", "/CN=mallory", false)));
  const int port = FreeLoopbackPort();
  ClusterOptions options;
  options.daemon_args = {"--http-bind",      "127.0.0.1:" + std::to_string(port),
                         "--http-tls-cert",  dir + "/server.pem",
                         "--http-tls-key",   dir + "/server.key",
                         "--http-client-ca", dir + "/ca.pem"};
  ASSERT_OK_AND_ASSIGN(auto cluster, Cluster::Start(options));
  const std::string url = "https://127.0.0.1:" + std::to_string(port);
  auto post = [&](std::vector<std::string> cert) {
    std::vector<std::string> args = {"--cacert",
                                     dir + "/ca.pem",
                                     "-X",
                                     "POST",
                                     "-H",
                                     "Content-Type: application/json",
                                     "--data-binary",
                                     R"({"extra_vars":"{\"tls\":1}"})"};
    args.insert(args.end(), cert.begin(), cert.end());
    args.push_back(url + "/globals");
    return Curl(args);
  };
  // No certificate: the handshake fails, nothing is served.
  HttpReply none = post({});
  EXPECT_EQ(none.status, 0) << none.body;
  // A certificate from another CA: refused the same way.
  HttpReply other = post({"--cert", dir + "/mallory.pem", "--key", dir + "/mallory.key"});
  EXPECT_EQ(other.status, 0) << other.body;
  ASSERT_OK_AND_ASSIGN(std::string globals, cluster->rpc().GlobalGet());
  EXPECT_EQ(json::parse(globals), json::object());
  // The right one: served, and the mutation is logged with the certificate's subject.
  HttpReply alice = post({"--cert", dir + "/alice.pem", "--key", dir + "/alice.key"});
  EXPECT_EQ(alice.status, 200) << alice.error;
  ASSERT_OK_AND_ASSIGN(globals, cluster->rpc().GlobalGet());
  EXPECT_EQ(json::parse(globals), json({{"tls", 1}}));
  EXPECT_THAT(cluster->manager().Log(),
              HasSubstr("http: globalSet by certificate CN=alice,O=ops (admin)"));
  // Plain HTTP on the TLS port gets no answer either.
  EXPECT_NE(Curl({"http://127.0.0.1:" + std::to_string(port) + "/healthz"}).status, 200);
  RemoveTree(dir);
}

TEST(HttpOptionsTest, NonLoopbackNeedsTlsOrInsecure) {
  const std::string dir = MakeTempDir("http-options");
  auto run = [&](std::vector<std::string> http) {
    std::vector<std::string> args = {"--insecure", "--name", "opt", "--data-dir", dir + "/data"};
    args.insert(args.end(), http.begin(), http.end());
    return RunCommand("clustermgrd", args, std::chrono::seconds(10));
  };
  CommandResult open = run({"--http-bind", "0.0.0.0:9"});
  EXPECT_EQ(open.exit_code, 2);
  EXPECT_THAT(open.err, HasSubstr("--http-bind 0.0.0.0:9 is not a loopback address"));
  CommandResult partial = run({"--http-bind", "127.0.0.1:9", "--http-tls-cert", "x.pem"});
  EXPECT_EQ(partial.exit_code, 2);
  EXPECT_THAT(partial.err, HasSubstr("go together"));
  CommandResult orphan = run({"--http-insecure"});
  EXPECT_EQ(orphan.exit_code, 2);
  EXPECT_THAT(orphan.err, HasSubstr("need --http-bind"));
  RemoveTree(dir);
}

}  // namespace
}  // namespace clustermgr::test
