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

#include "net/fake_rpc_handler.h"
#include "tools/cli_args.h"

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
  EXPECT_EQ(p.args.url, "tcp://x:1");
  EXPECT_EQ(p.args.timeout, "3");
  EXPECT_EQ(p.args.extra_vars, "{}");
  EXPECT_EQ(p.args.group, "g1");
  EXPECT_TRUE(p.args.follow);
  EXPECT_EQ(p.args.words, (std::vector<std::string>{"node", "get", "n1", "-weird"}));
}

TEST(CliArgsTest, UsageErrors) {
  EXPECT_EQ(ParseArgs({"--bogus"}).error, "unknown flag \"--bogus\"");
  EXPECT_EQ(ParseArgs({"-jf"}).error, "unknown flag \"-jf\"");
  EXPECT_EQ(ParseArgs({"node", "get", "-u"}).error, "flag -u needs a value");
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

TEST_F(CliTest, UnreachableOrSilentServerExitsOne) {
  net::DeadEndpoint reserved;
  const std::string& dead = reserved.endpoint();
  ASSERT_FALSE(dead.empty());
  Outcome o = RunCli({"status", "-u", dead, "--timeout", "0.2"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "clustermgr: could not connect to " + dead +
                       " within 200ms (if the server uses CURVE, pass --server-key and --key)\n");

  fake_.SetSilent(true);
  o = RunCli({"status", "-u", Url(), "--timeout", "0.25"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "clustermgr: no reply from " + Url() + " within 250ms\n");
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
  EXPECT_EQ(o.out,
            "clustermgr 0.1.0 (protocol " + std::to_string(net::kRpcProtocolVersion) + ")\n");
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
  EXPECT_EQ(o.code, 1);
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

TEST(CliKeygenTest, WritesAnOwnerOnlyPairAndRefusesToOverwrite) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/cli_keygen_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
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
  std::remove(path.c_str());
  std::remove((path + ".pub").c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace clustermgr::cli
