#include "tools/cli.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/testing/temp_dir.h"
#include "net/testing/fake_rpc_handler.h"
#include "tools/cli_args.h"
#include "tools/cli_endpoints.h"
#include "tools/job_progress.h"

namespace clustermgr::cli {
namespace {

using net::FakeManager;
using std::chrono::milliseconds;
using Json = nlohmann::json;

constexpr milliseconds kWait{10000};  // generous: only reached when a test is failing

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

Outcome RunCli(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  std::vector<const char*> argv = {"clustermgr"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  std::istringstream in(stdin_text);
  Outcome o;
  o.code = Main(static_cast<int>(argv.size()), argv.data(), out, err, in);
  o.out = out.str();
  o.err = err.str();
  return o;
}

// Exactly one JSON document, or a test failure.
Json ParseOne(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not one JSON document:\n" << text;
  return j;
}

std::size_t Lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

net::NodeInfo Node(const std::string& name, net::NodeStatus status) {
  net::NodeInfo n;
  n.name = name;
  n.addr = "10.0.0." + name.substr(1);
  n.status = status;
  n.prev_status = net::NodeStatus::kUnallocated;
  n.state = net::NodeState::kDiscovered;
  n.host_groups = {"service-master"};
  n.monitoring = {{"NodeAddr", n.addr}, {"NodeLabel", "n"}};
  n.extra_vars = R"({"k":"v"})";
  return n;
}

net::JobInfo Job(const std::string& id, net::JobStatus status) {
  net::JobInfo j;
  j.id = id;
  j.desc = "commission [n1]";
  j.nodes = {"n1"};
  j.status = status;
  j.owner = "fake-1";
  j.epoch = 2;
  j.created_ms = 1700000000000;
  return j;
}

// Every test starts with no CLUSTERMGR_URL in the environment and leaves it as it found it.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* v = getenv("CLUSTERMGR_URL")) saved_env_ = v;
    unsetenv("CLUSTERMGR_URL");
    fake_.AddNode(Node("n1", net::NodeStatus::kAllocated));
    fake_.AddNode(Node("n2", net::NodeStatus::kUnallocated));
    fake_.AddJob(Job("7", net::JobStatus::kComplete), {"PLAY [all]", "ok: [n1]"});
    fake_.SetGlobals(R"({"env":"prod"})");
    fake_.SetConfig(R"({"ansible":{"user":"admin"}})");
    fake_.SetMembers({{"fake-1", "tcp://a:9007", "tcp://a:9008", true, true, true, 0, 1},
                      {"mgr-b", "tcp://b:9007", "tcp://b:9008", false, false, false, -1, 0}});
    fake_.SetToken(net::TokenInfo{"fake-1", 2, 2, 1, 2, 2, false, true, "sees 1 of 2"});
    net::StatusInfo status;
    status.name = "fake-1";
    status.version = "0.1.0";
    status.protocol_version = 1;
    status.peers = {{"tcp://b:9008", "mgr-b", false, 0}};
    fake_.SetStatus(status);
  }
  void TearDown() override {
    if (saved_env_) {
      setenv("CLUSTERMGR_URL", saved_env_->c_str(), 1);
    } else {
      unsetenv("CLUSTERMGR_URL");
    }
  }

  std::string Url() const { return fake_.endpoint(); }

  FakeManager fake_;
  std::optional<std::string> saved_env_;
};

// ---- argument walker ------------------------------------------------------------------------

TEST(CliArgsTest, FlagsAnywhereWithValuesInBothForms) {
  auto p = ParseArgs({"-j", "node", "--url=tcp://x:1", "get", "-e", "{}", "n1", "--timeout", "3",
                      "-g", "g1", "-f", "--", "-weird"});
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_TRUE(p.args.json);
  EXPECT_EQ(p.args.urls, std::vector<std::string>{"tcp://x:1"});
  EXPECT_EQ(p.args.timeout, "3");
  EXPECT_EQ(p.args.extra_vars, "{}");
  EXPECT_EQ(p.args.group, "g1");
  EXPECT_TRUE(p.args.follow);
  EXPECT_EQ(p.args.words, (std::vector<std::string>{"node", "get", "n1", "-weird"}));
}

TEST(CliArgsTest, UsageErrors) {
  EXPECT_EQ(ParseArgs({"--bogus"}).error, "unknown flag \"--bogus\"");
  EXPECT_EQ(ParseArgs({"-jf"}).error, "flag --json takes no value");  // no bundling
  EXPECT_EQ(ParseArgs({"--js"}).error, "unknown flag \"--js\"");      // no abbreviations
  EXPECT_EQ(ParseArgs({"node", "get", "-u"}).error, "flag --url needs a value");
  EXPECT_EQ(ParseArgs({"--json=yes"}).error, "flag --json takes no value");
  auto stdin_word = ParseArgs({"config", "set", "-"});
  ASSERT_TRUE(stdin_word.ok());
  EXPECT_EQ(stdin_word.args.words.back(), "-");
}

// ---- exit codes -----------------------------------------------------------------------------

TEST_F(CliTest, SuccessExitsZero) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"node", "get", "n1"},
                                             {"nodes", "get"},
                                             {"global", "get"},
                                             {"job", "get", "last"},
                                             {"jobs", "list"},
                                             {"config", "get"},
                                             {"members"},
                                             {"token"},
                                             {"status"}}) {
    std::vector<std::string> full = args;
    full.insert(full.end(), {"-u", Url()});
    Outcome o = RunCli(full);
    EXPECT_EQ(o.code, 0) << args[0] << ": " << o.err;
    EXPECT_EQ(o.err, "");
    EXPECT_FALSE(o.out.empty());
  }
}

TEST_F(CliTest, RefusedRequestExitsOneWithTheDaemonsWords) {
  Outcome o = RunCli({"node", "get", "nope", "-u", Url()});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "clustermgr: node with name or address \"nope\" doesn't exists\n");

  fake_.AddJob(Job("8", net::JobStatus::kRunning));
  o = RunCli({"node", "commission", "n2", "-g", "service-worker", "-u", Url()});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err,
            "clustermgr: there is already an active job, please try in sometime. Job: "
            "commission [n1]\n");

  o = RunCli({"--json", "job", "get", "", "-u", Url()});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, "");  // --json prints nothing on failure
  EXPECT_EQ(o.err, "clustermgr: Invalid or empty job label specified: \"\"\n");
}

TEST_F(CliTest, UnreachableOrSilentServerExitsThree) {
  net::DeadEndpoint reserved;
  const std::string& dead = reserved.endpoint();
  ASSERT_FALSE(dead.empty());
  Outcome o = RunCli({"status", "-u", dead, "--timeout", "0.2"});
  EXPECT_EQ(o.code, 3);
  EXPECT_EQ(o.err, "clustermgr: could not connect to " + dead +
                       " within 200ms (if the server uses CURVE, pass --server-key and --key)\n");

  fake_.SetSilent(true);
  o = RunCli({"status", "-u", Url(), "--timeout", "0.25"});
  EXPECT_EQ(o.code, 3);
  EXPECT_EQ(o.err, "clustermgr: no reply from " + Url() + " within 250ms\n");

  // A request with side effects that got no answer: its outcome is unknown.
  o = RunCli(
      {"node", "commission", "n2", "-g", "service-worker", "-u", Url(), "--timeout", "0.25"});
  EXPECT_EQ(o.code, 4);
  EXPECT_NE(o.err.find("may or may not have taken effect"), std::string::npos) << o.err;
}

TEST_F(CliTest, UsageErrorsExitTwoWithOneLine) {
  const std::vector<std::vector<std::string>> bad = {
      {},                                         // no command
      {"frobnicate"},                             // unknown command
      {"node"},                                   // missing subcommand
      {"node", "frob", "n1"},                     // unknown subcommand
      {"node", "get"},                            // missing operand
      {"node", "get", "n1", "n2"},                // extra operand
      {"nodes", "get", "x"},                      // extra operand
      {"node", "commission", "n1"},               // missing -g
      {"global", "set"},                          // missing -e
      {"nodes", "get", "-g", "x"},                // flag the command does not take
      {"node", "get", "n1", "-f"},                // -f only for job get
      {"node", "get", "n1", "--bogus"},           // unknown flag
      {"node", "get", "n1", "--timeout", "0"},    // bad timeout
      {"node", "get", "n1", "--timeout", "abc"},  // bad timeout
      {"node", "get", "n1", "-u"},                // flag without value
      {"discover"},                               // needs an address
      {"config", "set"},                          // needs FILE or -
      {"job", "cancel", "1", "2"},                // at most one id
      {"node", "get", "n1", "-w"},                // --wait only on job-starting commands
      {"job", "get", "last", "--wait"},           // ... not on job get
      {"x", "y"},                                 // unknown alias
      {"n", "z", "n1"},                           // unknown subcommand alias
      {"status", "-u", "nohost"},                 // neither URL nor host:port
      {"status", "-u", "tcp://a:1,"},             // empty endpoint
      {"status", "-u", "http://a:1"},             // not a ZeroMQ scheme
      {"frob", "--help"},                         // help of no command
      {"node", "update", "n1", "--serial", "1"},  // --serial only on nodes update / upgrade
      {"nodes", "commission", "n1", "-g", "x", "--serial", "1"},  // ... not on commission
      {"nodes", "upgrade", "n1", "--serial", "0"},                // at least one at a time
      {"nodes", "upgrade", "n1", "--serial", "-2"},
      {"nodes", "update", "n1", "--serial", "two"},
      {"nodes", "upgrade"},  // needs a node
  };
  for (const auto& args : bad) {
    std::vector<std::string> full = args;
    Outcome o = RunCli(full);
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    EXPECT_EQ(o.code, 2) << shown << o.err;
    EXPECT_EQ(o.out, "") << shown;
    EXPECT_EQ(Lines(o.err), 1u) << shown << o.err;
    EXPECT_EQ(o.err.rfind("clustermgr: ", 0), 0u) << o.err;
  }
  EXPECT_TRUE(fake_.Received().empty());  // a usage error never reaches the server
}

TEST_F(CliTest, HelpAndVersionExitZero) {
  Outcome o = RunCli({"--help"});
  EXPECT_EQ(o.code, 0);
  EXPECT_NE(o.out.find("node commission NAME -g GROUP"), std::string::npos);
  EXPECT_NE(o.out.find("CLUSTERMGR_URL"), std::string::npos);
  EXPECT_EQ(RunCli({"node", "get", "-h"}).code, 0);
  EXPECT_EQ(RunCli({"help"}).code, 0);
  o = RunCli({"--version"});
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "clustermgr " CLUSTERMGR_VERSION " (protocol " +
                       std::to_string(net::kRpcProtocolVersion) + ")\n");
}

TEST_F(CliTest, EachCommandHasItsOwnHelp) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"node", "commission", "--help"},
                                             {"n", "c", "-h"},
                                             {"help", "node", "commission"},
                                             {"--help", "node", "commission", "n1", "-g", "x"}}) {
    Outcome o = RunCli(args);
    EXPECT_EQ(o.code, 0) << o.err;
    EXPECT_EQ(o.out.rfind("usage: clustermgr node commission NAME -g GROUP", 0), 0u) << o.out;
    EXPECT_NE(o.out.find("alias: n c"), std::string::npos);
    EXPECT_NE(o.out.find("--host-group GROUP"), std::string::npos);
    EXPECT_NE(o.out.find("-w, --wait"), std::string::npos);
    EXPECT_EQ(o.out.find("-f, --follow"), std::string::npos);  // not a flag of this command
    EXPECT_NE(o.out.find("example:\n  clustermgr node commission "), std::string::npos);
    EXPECT_NE(o.out.find("4 outcome unknown"), std::string::npos);
  }
  EXPECT_NE(RunCli({"job", "get", "--help"}).out.find("-f, --follow"), std::string::npos);
  EXPECT_EQ(CommandHelp("a g"), CommandHelp("nodes get"));
  EXPECT_EQ(CommandHelp("nodes"), "");
  // The global help names the exit statuses and the per-command help.
  Outcome o = RunCli({"--help"});
  EXPECT_NE(o.out.find("3 no endpoint reachable"), std::string::npos);
  EXPECT_NE(o.out.find("'clustermgr COMMAND --help'"), std::string::npos);
  EXPECT_TRUE(fake_.Received().empty());
  // Every help fits in 100 columns.
  std::vector<std::string> helps = {Usage()};
  for (const char* cmd : {"node get",
                          "nodes get",
                          "node commission",
                          "nodes commission",
                          "node decommission",
                          "nodes decommission",
                          "node update",
                          "nodes update",
                          "node upgrade",
                          "nodes upgrade",
                          "discover",
                          "global get",
                          "global set",
                          "job get",
                          "jobs list",
                          "job cancel",
                          "config get",
                          "config set",
                          "members",
                          "token",
                          "status",
                          "keygen"}) {
    helps.push_back(CommandHelp(cmd));
    EXPECT_FALSE(helps.back().empty()) << cmd;
  }
  for (const std::string& help : helps) {
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 100u) << line;
  }
}

TEST_F(CliTest, RollingUpdateAndUpgradeSendTheirSerial) {
  const std::string url = Url();
  auto last = [&] { return fake_.Received().back().request; };
  ASSERT_EQ(RunCli({"nodes", "upgrade", "n1", "n2", "--serial", "1", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::UpgradeRequest{{"n1", "n2"}, "", 1}));
  ASSERT_EQ(RunCli({"job", "cancel", "-u", url}).code, 0);
  ASSERT_EQ(RunCli({"node", "upgrade", "n1", "-e", R"({"v":2})", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::UpgradeRequest{{"n1"}, R"({"v":2})", 0}));
  ASSERT_EQ(RunCli({"job", "cancel", "-u", url}).code, 0);
  ASSERT_EQ(RunCli({"--serial=2", "nodes", "update", "n1", "n2", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::UpdateRequest{{"n1", "n2"}, "", "", 2}));
  const std::string help = CommandHelp("nodes upgrade");
  EXPECT_NE(help.find("--serial N"), std::string::npos) << help;
  EXPECT_NE(CommandHelp("audit").find("-n, --count N"), std::string::npos);
}

// ---- clusterctl habits ----------------------------------------------------------------------

TEST_F(CliTest, ClusterctlAliasesFlagsAndHostPortUrls) {
  const std::string url = Url();
  const std::string host_port = url.substr(std::string("tcp://").size());
  auto last = [&] { return fake_.Received().back().request; };
  ASSERT_EQ(RunCli({"n", "c", "n2", "--host-group", "service-worker", "-u", host_port}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::CommissionRequest{{"n2"}, "service-worker", ""}));
  ASSERT_EQ(RunCli({"j", "g", "last", "-u", host_port}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::JobGetRequest{"last"}));
  ASSERT_EQ(RunCli({"job", "cancel", "-u", url}).code, 0);
  ASSERT_EQ(RunCli({"a", "u", "n1", "n2", "--host-group=service-master", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::UpdateRequest{{"n1", "n2"}, "service-master", ""}));
  ASSERT_EQ(RunCli({"job", "cancel", "-u", url}).code, 0);
  ASSERT_EQ(RunCli({"a", "d", "n1", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::DecommissionRequest{{"n1"}, ""}));
  ASSERT_EQ(RunCli({"job", "cancel", "-u", url}).code, 0);
  ASSERT_EQ(RunCli({"d", "10.0.0.9", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::DiscoverRequest{{"10.0.0.9"}, ""}));
  ASSERT_EQ(RunCli({"g", "s", "-e", R"({"y":1})", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::GlobalSetRequest{R"({"y":1})"}));
  Outcome globals = RunCli({"g", "g", "-j", "-u", url});
  EXPECT_EQ(ParseOne(globals.out), Json::parse(R"({"y":1})"));
  EXPECT_EQ(RunCli({"c", "g", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::ConfigGetRequest{}));
  Outcome node = RunCli({"n", "g", "n1", "--json", "-u", url});
  EXPECT_EQ(ParseOne(node.out)["name"], "n1");
  EXPECT_EQ(ParseOne(RunCli({"a", "g", "-j", "-u", url}).out).size(), 2u);
}

// ---- several endpoints ----------------------------------------------------------------------

TEST(CliEndpointsTest, ParsesListsAndHostPort) {
  std::string error;
  EXPECT_EQ(ParseEndpoints({"a:1,tcp://b:2", "ipc:///run/x"}, error),
            (std::vector<std::string>{"tcp://a:1", "tcp://b:2", "ipc:///run/x"}));
  EXPECT_EQ(error, "");
  EXPECT_TRUE(ParseEndpoints({"a:1,,b:2"}, error).empty());
  EXPECT_EQ(error, "empty endpoint in \"a:1,,b:2\"");
  EXPECT_TRUE(ParseEndpoints({"a:x"}, error).empty());
  EXPECT_EQ(error, "endpoint \"a:x\" is neither tcp://HOST:PORT nor HOST:PORT");
}

TEST_F(CliTest, FailsOverToTheNextEndpointWhenOneIsUnreachable) {
  net::DeadEndpoint reserved;
  const std::string& dead = reserved.endpoint();
  ASSERT_FALSE(dead.empty());
  const std::string list = dead + "," + Url();
  Outcome o = RunCli({"node", "get", "n1", "--json", "-u", list, "--timeout", "0.5"});
  ASSERT_EQ(o.code, 0) << o.err;
  Json j = ParseOne(o.out);
  EXPECT_EQ(j["name"], "n1");
  EXPECT_EQ(j["endpoint"], Url());  // says which endpoint answered
  EXPECT_NE(o.err.find("answered by " + Url()), std::string::npos) << o.err;

  // The same from the environment, and with repeated -u; a mutation that was never sent moves
  // on too.
  setenv("CLUSTERMGR_URL", list.c_str(), 1);
  o = RunCli({"node", "commission", "n2", "-g", "service-worker", "--timeout", "0.5", "--json"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(ParseOne(o.out)["endpoint"], Url());
  ASSERT_EQ(RunCli({"job", "cancel", "-u", dead, "-u", Url(), "--timeout", "0.5"}).code, 0);
  // Data documents stay as the daemon has them.
  o = RunCli({"global", "get", "--json", "--timeout", "0.5"});
  EXPECT_EQ(ParseOne(o.out), Json::parse(R"({"env":"prod"})"));

  // Nobody reachable: 3, and every endpoint's reason.
  net::DeadEndpoint reserved2;
  o = RunCli({"status", "-u", dead + "," + reserved2.endpoint(), "--timeout", "0.3"});
  EXPECT_EQ(o.code, 3);
  EXPECT_NE(o.err.find("could not connect to " + dead), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("could not connect to " + reserved2.endpoint()), std::string::npos);
}

TEST_F(CliTest, NeverResendsARequestWhoseOutcomeIsUnknown) {
  FakeManager second("fake-2");
  fake_.SetSilent(true);  // takes the request, never answers
  const std::string list = Url() + "," + second.endpoint();
  Outcome o =
      RunCli({"node", "commission", "n2", "-g", "service-worker", "-u", list, "--timeout", "0.3"});
  EXPECT_EQ(o.code, 4) << o.err;
  EXPECT_NE(o.err.find("may or may not have taken effect"), std::string::npos) << o.err;
  EXPECT_TRUE(second.Received().empty());
  // A read-only request is safe to ask elsewhere.
  second.AddNode(Node("n5", net::NodeStatus::kAllocated));
  o = RunCli({"node", "get", "n5", "-u", list, "--timeout", "0.3"});
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(second.Received().size(), 1u);
}

TEST_F(CliTest, TokenAndStatusWarnWhenExpectUndercountsManagers) {
  fake_.SetToken(net::TokenInfo{"fake-1", 2, 2, 3, 1, 1, true, true, ""});
  Outcome o = RunCli({"token", "-u", Url()});
  EXPECT_EQ(o.code, 0);
  EXPECT_NE(o.out.find("WARNING: 3 manager instances are visible but --expect counts 1"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.err.find("WARNING"), std::string::npos);
  o = RunCli({"status", "--json", "-u", Url()});
  EXPECT_EQ(o.code, 0);
  EXPECT_NE(ParseOne(o.out)["warning"].get<std::string>().find("--expect 3"), std::string::npos);
  fake_.SetToken(net::TokenInfo{"fake-1", 2, 2, 3, 3, 2, true, true, ""});
  o = RunCli({"status", "-u", Url()});
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(o.out.find("WARNING"), std::string::npos);
}

// ---- flag placement and endpoint ------------------------------------------------------------

TEST_F(CliTest, FlagsMayStandBeforeBetweenOrAfterTheCommandWords) {
  const std::string url = Url();
  Outcome a = RunCli({"--json", "-u", url, "node", "get", "n1"});
  Outcome b = RunCli({"node", "get", "n1", "--json", "--url", url});
  Outcome c = RunCli({"node", "-j", "get", "--url=" + url, "n1"});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.code, b.code);
  EXPECT_EQ(a.code, c.code);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out, c.out);
  EXPECT_EQ(ParseOne(a.out)["name"], "n1");
}

TEST_F(CliTest, UrlComesFromTheEnvironmentUnlessGiven) {
  setenv("CLUSTERMGR_URL", Url().c_str(), 1);
  Outcome o = RunCli({"nodes", "get", "-j"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(ParseOne(o.out).size(), 2u);

  // -u wins over the environment.
  net::DeadEndpoint reserved;
  const std::string& dead = reserved.endpoint();
  ASSERT_FALSE(dead.empty());
  setenv("CLUSTERMGR_URL", dead.c_str(), 1);
  EXPECT_EQ(RunCli({"token", "-u", Url()}).code, 0);
  o = RunCli({"token", "--timeout", "0.2"});
  EXPECT_EQ(o.code, 3);
  EXPECT_NE(o.err.find(dead), std::string::npos);
}

// ---- what reaches the server ----------------------------------------------------------------

TEST_F(CliTest, CommandsSendTheirOperandsAndFlags) {
  const std::string url = Url();
  auto last = [&] { return fake_.Received().back().request; };

  ASSERT_EQ(RunCli({"nodes", "commission", "n1", "n2", "-g", "service-worker", "-e", R"({"a":1})",
                    "-u", url})
                .code,
            0);
  EXPECT_EQ(last(),
            net::RpcRequest(net::CommissionRequest{{"n1", "n2"}, "service-worker", R"({"a":1})"}));
  ASSERT_EQ(RunCli({"job", "cancel", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::JobCancelRequest{""}));

  ASSERT_EQ(RunCli({"node", "update", "n1", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::UpdateRequest{{"n1"}, "", ""}));
  ASSERT_EQ(RunCli({"job", "cancel", "-u", url}).code, 0);

  ASSERT_EQ(RunCli({"nodes", "decommission", "n1", "n2", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::DecommissionRequest{{"n1", "n2"}, ""}));
  Outcome cancel = RunCli({"job", "cancel", "-j", "-u", url});
  ASSERT_EQ(cancel.code, 0);
  EXPECT_EQ(ParseOne(cancel.out)["job_id"], "103");

  Outcome started = RunCli({"discover", "10.0.0.5", "10.0.0.6", "-e", "{}", "-u", url});
  ASSERT_EQ(started.code, 0) << started.err;
  EXPECT_EQ(started.out, "job 104 started\n");
  EXPECT_EQ(last(), net::RpcRequest(net::DiscoverRequest{{"10.0.0.5", "10.0.0.6"}, "{}"}));

  ASSERT_EQ(RunCli({"global", "set", "-e", R"({"x":2})", "-u", url}).code, 0);
  EXPECT_EQ(last(), net::RpcRequest(net::GlobalSetRequest{R"({"x":2})"}));
  Outcome got = RunCli({"global", "get", "-j", "-u", url});
  EXPECT_EQ(ParseOne(got.out), Json::parse(R"({"x":2})"));
}

TEST_F(CliTest, ConfigSetReadsAFileOrStdin) {
  const std::string url = Url();
  char path[] = "/tmp/clustermgr-cli-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  struct Remove {
    const char* p;
    ~Remove() { std::remove(p); }
  } remove_file{path};
  std::ofstream(path) << R"({"ansible":{"user":"ops"}})";

  ASSERT_EQ(RunCli({"config", "set", path, "-u", url}).code, 0);
  EXPECT_EQ(fake_.Received().back().request,
            net::RpcRequest(net::ConfigSetRequest{R"({"ansible":{"user":"ops"}})"}));

  ASSERT_EQ(RunCli({"config", "set", "-", "-u", url}, R"({"from":"stdin"})").code, 0);
  EXPECT_EQ(fake_.Received().back().request,
            net::RpcRequest(net::ConfigSetRequest{R"({"from":"stdin"})"}));

  Outcome missing = RunCli({"config", "set", "/nonexistent/x.json", "-u", url});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "clustermgr: cannot read \"/nonexistent/x.json\"\n");
}

// ---- output ---------------------------------------------------------------------------------

TEST_F(CliTest, JsonOutputIsOneDocumentForEveryCommand) {
  const std::string url = Url();
  struct Case {
    std::vector<std::string> args;
    std::function<void(const Json&)> check;
  };
  const std::vector<Case> cases = {
      {{"node", "get", "n1"},
       [](const Json& j) {
         EXPECT_EQ(j["status"], "Allocated");
         EXPECT_EQ(j["prev_status"], "Unallocated");
         EXPECT_EQ(j["extra_vars"]["k"], "v");
         EXPECT_EQ(j["monitoring"]["NodeLabel"], "n");
       }},
      {{"nodes", "get"}, [](const Json& j) { EXPECT_EQ(j.size(), 2u); }},
      {{"global", "get"}, [](const Json& j) { EXPECT_EQ(j["env"], "prod"); }},
      {{"config", "get"}, [](const Json& j) { EXPECT_EQ(j["ansible"]["user"], "admin"); }},
      {{"job", "get", "7"},
       [](const Json& j) {
         EXPECT_EQ(j["status"], "Complete");
         EXPECT_EQ(j["log"].size(), 2u);
       }},
      {{"jobs", "list"}, [](const Json& j) { EXPECT_EQ(j.at(0)["id"], "7"); }},
      {{"members"}, [](const Json& j) { EXPECT_EQ(j.at(1)["lag_deltas"], -1); }},
      {{"token"}, [](const Json& j) { EXPECT_EQ(j["reason"], "sees 1 of 2"); }},
      {{"status"}, [](const Json& j) { EXPECT_EQ(j["peers"].at(0)["name"], "mgr-b"); }},
      {{"global", "set", "-e", "{}"}, [](const Json& j) { EXPECT_EQ(j["ok"], true); }},
      {{"node", "commission", "n2", "-g", "service-master"},
       [](const Json& j) { EXPECT_TRUE(j["job_id"].is_string()); }},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--json", "-u", url});
    Outcome o = RunCli(args);
    ASSERT_EQ(o.code, 0) << c.args[0] << ": " << o.err;
    Json j = ParseOne(o.out);
    c.check(j);
  }
}

TEST_F(CliTest, HumanOutputIsReadable) {
  const std::string url = Url();
  Outcome node = RunCli({"node", "get", "n1", "-u", url});
  EXPECT_NE(node.out.find("Status:             Allocated (was Unallocated)"), std::string::npos)
      << node.out;
  EXPECT_NE(node.out.find("NodeLabel=n"), std::string::npos);

  Outcome nodes = RunCli({"nodes", "get", "-u", url});
  EXPECT_EQ(nodes.out.substr(0, nodes.out.find('\n')),
            "NAME  ADDRESS   STATUS       STATE       HOST-GROUPS");
  EXPECT_EQ(Lines(nodes.out), 3u);

  Outcome job = RunCli({"job", "get", "last", "-u", url});
  EXPECT_NE(job.out.find("Status:             Complete"), std::string::npos) << job.out;
  EXPECT_NE(job.out.find("--- log ---\nPLAY [all]\nok: [n1]\n"), std::string::npos) << job.out;
}

// ---- job get -f -----------------------------------------------------------------------------

TEST_F(CliTest, FollowPrintsTheLogUntilTheJobCompletes) {
  fake_.AddJob(Job("9", net::JobStatus::kRunning), {"line 1", "line 2"});
  auto cli = std::async(std::launch::async, [&] {
    return RunCli({"job", "get", "active", "-f", "-u", Url()});
  });
  ASSERT_TRUE(fake_.WaitForParked(1, kWait));  // the CLI is now waiting for news
  fake_.AppendLog("9", "line 3");
  ASSERT_TRUE(fake_.WaitForRequests(3, kWait));  // jobGet, follow, follow again
  ASSERT_TRUE(fake_.WaitForParked(1, kWait));
  fake_.AppendLog("9", "line 4");
  fake_.EndJob("9", net::JobStatus::kComplete);
  ASSERT_EQ(cli.wait_for(kWait), std::future_status::ready);
  Outcome o = cli.get();
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "line 1\nline 2\nline 3\nline 4\n--- job 9 Complete ---\n");
  EXPECT_EQ(o.err, "");
  std::size_t follows = 0;
  for (const auto& r : fake_.Received()) {
    if (auto* f = std::get_if<net::JobLogFollowRequest>(&r.request)) {
      EXPECT_EQ(f->job_id, "9");
      ++follows;
    }
  }
  EXPECT_GE(follows, 2u);
}

TEST_F(CliTest, FollowExitsOneWhenTheJobFails) {
  fake_.AddJob(Job("9", net::JobStatus::kRunning), {"line 1"});
  auto cli = std::async(std::launch::async, [&] {
    return RunCli({"job", "get", "9", "--follow", "-u", Url()});
  });
  ASSERT_TRUE(fake_.WaitForParked(1, kWait));
  fake_.AppendLog("9", "fatal: boom");
  fake_.EndJob("9", net::JobStatus::kErrored, "playbook failed");
  ASSERT_EQ(cli.wait_for(kWait), std::future_status::ready);
  Outcome o = cli.get();
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, "line 1\nfatal: boom\n--- job 9 Errored: playbook failed ---\n");
  EXPECT_EQ(o.err, "clustermgr: job 9 Errored: playbook failed\n");
}

TEST_F(CliTest, FollowOfAnEndedJobReturnsAtOnce) {
  Outcome o = RunCli({"job", "get", "7", "-f", "-u", Url()});
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "PLAY [all]\nok: [n1]\n--- job 7 Complete ---\n");
  fake_.AddJob(Job("10", net::JobStatus::kInterrupted));
  o = RunCli({"job", "get", "10", "-f", "-u", Url()});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "clustermgr: job 10 Interrupted\n");
}

TEST_F(CliTest, FollowWithJsonPrintsOneDocumentAtTheEnd) {
  fake_.AddJob(Job("9", net::JobStatus::kRunning), {"line 1"});
  auto cli = std::async(std::launch::async, [&] {
    return RunCli({"--json", "job", "get", "9", "-f", "-u", Url()});
  });
  ASSERT_TRUE(fake_.WaitForParked(1, kWait));
  fake_.AppendLog("9", "line 2");
  fake_.EndJob("9", net::JobStatus::kComplete);
  Outcome o = cli.get();
  ASSERT_EQ(o.code, 0) << o.err;
  Json j = ParseOne(o.out);
  EXPECT_EQ(j["status"], "Complete");
  EXPECT_EQ(j["log"], Json::parse(R"(["line 1","line 2"])"));
  EXPECT_EQ(j["log_line_count"], 2);
}

// ---- --wait ---------------------------------------------------------------------------------

TEST(JobProgressTest, ReadsHostsAndTasksFromAnsibleOutput) {
  JobProgress p;
  EXPECT_EQ(p.Feed("PLAY [all] ****"), std::nullopt);
  EXPECT_EQ(p.Feed("TASK [Gathering Facts] *********"), std::nullopt);
  EXPECT_EQ(p.Feed("ok: [n1]"), "n1: Gathering Facts: ok");
  EXPECT_EQ(p.Feed("ok: [n2 -> localhost]"), "n2: Gathering Facts: ok");
  EXPECT_EQ(p.Feed("TASK [base : install packages] ***"), std::nullopt);
  EXPECT_EQ(p.Feed("changed: [n1]"), "n1: base : install packages: changed");
  EXPECT_EQ(p.Feed("fatal: [n2]: UNREACHABLE! => {}"), "n2: base : install packages: unreachable");
  EXPECT_EQ(p.Feed("n1 : ok=2 changed=1 unreachable=0 failed=0"), std::nullopt);
  EXPECT_EQ(p.Lines(),
            (std::vector<std::string>{
                "n1  base : install packages  changed      (ok 1, changed 1, failed 0)",
                "n2  base : install packages  unreachable  (ok 1, changed 0, failed 1)"}));
  std::ostringstream tty;
  LiveBlock block;
  block.Draw(tty, {"a"});
  block.Draw(tty, {"a", "b"});
  EXPECT_EQ(tty.str(), "\r\x1b[2Ka\n\x1b[1A\r\x1b[2Ka\n\r\x1b[2Kb\n");
}

TEST_F(CliTest, WaitFollowsTheStartedJobToItsEnd) {
  auto cli = std::async(std::launch::async, [&] {
    return RunCli({"node", "commission", "n2", "-g", "service-worker", "--wait", "-u", Url()});
  });
  ASSERT_TRUE(fake_.WaitForParked(1, kWait));
  const std::string id = "101";
  fake_.AppendLog(id, "TASK [setup] ***");
  fake_.AppendLog(id, "changed: [n2]");
  fake_.EndJob(id, net::JobStatus::kComplete);
  ASSERT_EQ(cli.wait_for(kWait), std::future_status::ready);
  Outcome o = cli.get();
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out,
            "job 101 started; waiting for it to end\nn2: setup: changed\n--- job 101 "
            "Complete ---\n");

  // A job that fails: exit 1, and --json prints one document at the end.
  cli = std::async(std::launch::async, [&] {
    return RunCli({"d", "10.0.0.7", "-w", "--json", "-u", Url()});
  });
  ASSERT_TRUE(fake_.WaitForParked(1, kWait));
  fake_.AppendLog("102", "fatal: [10.0.0.7]: FAILED! => {}");
  fake_.EndJob("102", net::JobStatus::kErrored, "playbook failed");
  ASSERT_EQ(cli.wait_for(kWait), std::future_status::ready);
  o = cli.get();
  EXPECT_EQ(o.code, 1);
  Json j = ParseOne(o.out);
  EXPECT_EQ(j["status"], "Errored");
  EXPECT_EQ(j["log"], Json::parse(R"(["fatal: [10.0.0.7]: FAILED! => {}"])"));
}

TEST(CliKeygenTest, CreatesMissingParentDirectoriesOwnerOnly) {
  TempDir tmp("cli_keygen");
  const std::string dir = tmp.path();
  const std::string path = dir + "/etc/clustermgr/cluster.key";
  Outcome o = RunCli({"keygen", "--out", path});
  ASSERT_EQ(o.code, 0) << o.err;
  struct stat st {};
  ASSERT_EQ(stat((dir + "/etc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((dir + "/etc/clustermgr").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(path.c_str(), &st), 0);
}

TEST(CliKeygenTest, WritesAnOwnerOnlyPairAndRefusesToOverwrite) {
  TempDir tmp("cli_keygen");
  const std::string dir = tmp.path();
  const std::string path = dir + "/mgr-a.key";
  Outcome o = RunCli({"keygen", "--out", path});
  EXPECT_EQ(o.code, 0) << o.err;
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((path + ".pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  const std::string key = o.out.substr(0, o.out.find('\n'));
  std::ifstream pub(path + ".pub");
  std::string line;
  std::getline(pub, line);
  EXPECT_EQ(line, key + " mgr-a");

  o = RunCli({"--out=" + path, "keygen"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "clustermgr: " + path + " already exists; not overwritten\n");
  std::ifstream again(path + ".pub");
  std::getline(again, line);
  EXPECT_EQ(line, key + " mgr-a");  // untouched

  // CURVE flags come in pairs; --out belongs to keygen.
  o = RunCli({"status", "--server-key", key});
  EXPECT_EQ(o.code, 2);
  EXPECT_EQ(o.err,
            "clustermgr: --server-key needs --key FILE (this client's secret key); see "
            "'clustermgr --help'\n");
  o = RunCli({"status", "--server-key", key, "--key", dir + "/missing"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("--key: cannot read " + dir + "/missing"), std::string::npos) << o.err;
  o = RunCli({"status", "--out", path});
  EXPECT_EQ(o.code, 2);
}

}  // namespace
}  // namespace clustermgr::cli
