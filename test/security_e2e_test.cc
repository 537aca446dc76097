// Security end to end: real clustermgrd processes on loopback with CURVE on
// RPC and gossip, a ZAP allow-list per role, and the refusals the brief asks for: unknown
// client keys, plain clients, unlisted peers, client keys on the gossip sockets, missing or
// world-readable keys.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "net/curve_keys.h"
#include "net/gossip_transport.h"
#include "test/support/cluster.h"
#include "test/support/http_test_util.h"
#include "test/support/process.h"
#include "test/support/replicated_cluster.h"
#include "test/support/serf_agent.h"
#include "tools/cli.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  return PollUntil(done, timeout);
}

struct Cli {
  int code = -1;
  std::string out;
  std::string err;
};

Cli RunCli(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"clustermgr"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  std::istringstream in;
  Cli r;
  r.code = cli::Main(static_cast<int>(argv.size()), argv.data(), out, err, in);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// Runs clustermgrd with `args` to its exit (it must exit at once); returns the wait status.
int RunDaemonToExit(const std::vector<std::string>& args, const std::string& log,
                    std::string* output) {
  ProcessOptions p;
  p.program = std::string(CLUSTERMGR_BIN_DIR) + "/clustermgrd";
  p.args = args;
  p.output_path = log;
  std::string error;
  auto proc = Process::Start(p, &error);
  EXPECT_TRUE(proc) << error;
  if (!proc) return -1;
  auto status = proc->Wait(10s);
  EXPECT_TRUE(status.has_value()) << "clustermgrd did not exit";
  *output = proc->Output();
  return status ? *status : proc->Kill();
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class SecurityTest : public ::testing::Test {
 protected:
  SecurityTest() : cluster_(CLUSTERMGR_BIN_DIR) {}

  // A key pair written the way `clustermgr keygen` writes it: dir/NAME.key and .pub.
  net::CurveKeyPair Key(const std::string& name) {
    auto pair = net::GenerateCurveKeyPair();
    EXPECT_TRUE(pair.ok());
    Status s = net::WriteKeyPairFiles(KeyFile(name), *pair, name);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return *pair;
  }
  std::string KeyFile(const std::string& name) { return cluster_.dir() + "/" + name + ".key"; }
  std::string PubFile(const std::string& name) { return KeyFile(name) + ".pub"; }

  // Options of a CURVE instance `name` with allow-lists `clients` and `peers` (files in dir).
  InstanceOptions Curve(const std::string& name, const std::string& clients,
                        const std::string& peers, const net::CurveKeyPair& server,
                        const net::CurveKeyPair& harness) {
    InstanceOptions o;
    o.name = name;
    o.insecure = false;
    o.extra_args = {"--curve-key=" + KeyFile(name), "--curve-clients=" + clients,
                    "--curve-peers=" + peers, "--anti-entropy-ms=200"};
    o.client_curve = net::CurveClientConfig{server.public_key, harness};
    return o;
  }

  std::string Globals(ReplicatedCluster::Instance& in) {
    auto g = in.client().GlobalGet();
    return g.ok() ? g.value() : "error: " + g.status().message();
  }

  ReplicatedCluster cluster_;
};

TEST_F(SecurityTest, NoKeyWithoutInsecureAndWorldReadableKeysExitTwo) {
  const std::string dir = cluster_.dir();
  std::string out;
  int status = RunDaemonToExit({"--data-dir=" + dir + "/d1"}, dir + "/d1.log", &out);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(out,
            "clustermgrd: no --curve-key: pass --curve-key FILE (see 'clustermgr keygen') or "
            "--insecure for plain TCP\n");

  Key("loose");
  chmod(KeyFile("loose").c_str(), 0644);
  status = RunDaemonToExit({"--data-dir=" + dir + "/d2", "--curve-key=" + KeyFile("loose")},
                           dir + "/d2.log", &out);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(out, "clustermgrd: --curve-key: " + KeyFile("loose") +
                     " is readable by others; chmod 600 it\n");

  status = RunDaemonToExit({"--data-dir=" + dir + "/d3", "--insecure", "--curve-key=x"},
                           dir + "/d3.log", &out);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(out,
            "clustermgrd: --insecure excludes --curve-key, --curve-clients and --curve-peers\n");
  EXPECT_FALSE(std::filesystem::exists(dir + "/d1"));  // nothing was created

  // --insecure says so at start.
  InstanceOptions plain;
  plain.name = "plain";
  std::string error;
  auto* p = cluster_.Add(plain, &error);
  ASSERT_TRUE(p) << error;
  EXPECT_NE(p->LogTail(100000).find("--insecure: RPC and gossip are plain TCP"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(stat(p->data_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);  // the data dir is owner-only
}

TEST_F(SecurityTest, KeygenWritesOwnerOnlyFilesAndRefusesToOverwrite) {
  ProcessOptions p;
  p.program = std::string(CLUSTERMGR_BIN_DIR) + "/clustermgr";
  p.args = {"keygen"};
  p.working_dir = cluster_.dir();
  p.output_path = cluster_.dir() + "/keygen.out";
  std::string error;
  auto proc = Process::Start(p, &error);
  ASSERT_TRUE(proc) << error;
  auto status = proc->Wait(10s);
  ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << proc->Output();
  const std::string path = cluster_.dir() + "/clustermgr.key";
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((path + ".pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  auto pair = net::LoadSecretKeyFile(path);
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(proc->Output().substr(0, 41), pair->public_key + "\n");

  auto again = Process::Start(p, &error);
  ASSERT_TRUE(again);
  status = again->Wait(10s);
  ASSERT_TRUE(status && WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_NE(again->Output().find("clustermgr: clustermgr.key already exists; not overwritten"),
            std::string::npos)
      << again->Output();
  EXPECT_EQ(net::LoadSecretKeyFile(path)->secret_key, pair->secret_key);
}

TEST_F(SecurityTest, CurveClusterAdmitsListedKeysOnlyPerRole) {
  const auto m1 = Key("m1");
  const auto m2 = Key("m2");
  const auto m3 = Key("m3");  // an instance nobody lists
  const auto admin = Key("admin");
  const auto stranger = Key("stranger");
  const std::string clients = cluster_.dir() + "/clients.list";
  const std::string peers = cluster_.dir() + "/peers.list";
  WriteFile(clients, "# operators\n" + admin.public_key + " admin\n");
  WriteFile(peers, m1.public_key + " m1\n" + m2.public_key + " m2\n");

  std::string error;
  auto* a = cluster_.Add(Curve("m1", clients, peers, m1, admin), &error);
  ASSERT_TRUE(a) << error;
  auto* b = cluster_.Add(Curve("m2", clients, peers, m2, admin), &error);
  ASSERT_TRUE(b) << error;

  // With the right keys: the two replicate, and the CLI works against either.
  ASSERT_TRUE(a->client().GlobalSet(R"({"written_on":"m1"})").ok());
  ASSERT_TRUE(WaitUntil([&] { return Globals(*b).find("written_on") != std::string::npos; }, 15s))
      << Globals(*b) << "\n"
      << b->LogTail();
  Cli ok = RunCli({"global", "get", "-u", b->url(), "--server-key", PubFile("m2"), "--key",
                   KeyFile("admin"), "--json"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("written_on"), std::string::npos);
  ok = RunCli({"--server-key=" + m1.public_key, "--key=" + KeyFile("admin"), "global", "set", "-e",
               R"({"written_on":"cli"})", "-u", a->url()});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(a->LogTail(100000).find("rpc: globalSet by key admin (admin)"), std::string::npos);
  ASSERT_TRUE(WaitUntil([&] { return Globals(*b).find("cli") != std::string::npos; }, 15s));
  const std::string before = Globals(*a);

  // An unknown client key is refused; so is a plain client. Nothing changes.
  Cli refused =
      RunCli({"global", "set", "-e", R"({"written_on":"stranger"})", "-u", a->url(), "--server-key",
              PubFile("m1"), "--key", KeyFile("stranger"), "--timeout", "1"});
  EXPECT_EQ(refused.code, 3);  // the handshake failed: unreachable
  EXPECT_EQ(refused.err, "clustermgr: could not connect to " + a->url() +
                             " within 1s (check --server-key, and that the server lists this "
                             "client's key)\n");
  Cli plain = RunCli(
      {"global", "set", "-e", R"({"written_on":"plain"})", "-u", a->url(), "--timeout", "1"});
  EXPECT_EQ(plain.code, 3);
  EXPECT_EQ(plain.err, "clustermgr: could not connect to " + a->url() +
                           " within 1s (if the server uses CURVE, pass --server-key and --key)\n");
  EXPECT_TRUE(WaitUntil(
      [&] {
        return a->LogTail(100000).find("key " + stranger.public_key + " is not in the") !=
               std::string::npos;
      },
      5s))
      << a->LogTail();
  EXPECT_EQ(Globals(*a), before);

  // A client key cannot take part in gossip: its DEALER never gets a connection to m1's
  // anti-entropy ROUTER, and its SUB never hears m1's deltas.
  {
    zmq::context_t context;
    net::ZmqGossipTransport::Options o;
    o.curve = net::ZmqGossipTransport::Options::Curve{admin, {}, {}, m1.public_key};
    auto intruder = net::ZmqGossipTransport::Bind(context, "tcp://127.0.0.1:*", o);
    ASSERT_TRUE(intruder.ok()) << intruder.status().ToString();
    ASSERT_TRUE((*intruder)->Connect(a->gossip_endpoint()).ok());
    net::GossipMessage hello{{"intruder", "intruder/1", (*intruder)->endpoint(), ""},
                             net::SyncRequest{}};
    int sent = 0;
    int heard = 0;
    const auto until = Clock::now() + 2s;
    int writes = 0;
    while (Clock::now() < until) {
      if ((*intruder)->Send(a->gossip_endpoint(), hello)) ++sent;
      if (writes++ < 5) {
        ASSERT_TRUE(a->client().GlobalSet(R"({"n":)" + std::to_string(writes) + "}").ok());
      }
      std::vector<zmq::pollitem_t> items;
      (*intruder)->AppendPollItems(&items);
      zmq::poll(items.data(), items.size(), 50ms);
      while ((*intruder)->Receive()) ++heard;
    }
    EXPECT_EQ(sent, 0);
    EXPECT_EQ(heard, 0);
    EXPECT_EQ((*intruder)->counters().received, 0u);
  }

  // An instance whose key nobody lists cannot change the others' state, even pointing --peer
  // at them and trusting them itself.
  const std::string m3_peers = cluster_.dir() + "/m3-peers.list";
  WriteFile(m3_peers, m1.public_key + " m1 " + a->gossip_endpoint() + "\n" + m2.public_key +
                          " m2 " + b->gossip_endpoint() + "\n");
  auto* c = cluster_.Add(Curve("m3", clients, m3_peers, m3, admin), &error);
  ASSERT_TRUE(c) << error;
  ASSERT_TRUE(c->client().GlobalSet(R"({"written_on":"m3"})").ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return a->LogTail(100000).find("key " + m3.public_key + " is not in the --curve-peers") !=
                   std::string::npos &&
               b->LogTail(100000).find("key " + m3.public_key + " is not in the --curve-peers") !=
                   std::string::npos;
      },
      10s))
      << a->LogTail() << b->LogTail();
  // Several anti-entropy rounds (200 ms) later, still nothing of m3's on m1 or m2.
  const auto until = Clock::now() + 2s;
  while (Clock::now() < until) {
    EXPECT_EQ(Globals(*a).find("\"m3\""), std::string::npos);
    EXPECT_EQ(Globals(*b).find("\"m3\""), std::string::npos);
    std::this_thread::sleep_for(100ms);
  }
  std::string why;
  // m1 and m2 still agree with each other (m3 is not part of the cluster).
  c->Stop();
  EXPECT_TRUE(cluster_.WaitConverged(10s, &why)) << why;
}

// The Serf RPC auth key end to end: a real agent with rpc_auth; the daemon with the right key
// discovers the machines, with a wrong one it says why once and keeps running (and retrying).
TEST_F(SecurityTest, SerfRpcAuthKeyIsUsedAndAWrongOneIsReportedOnce) {
  std::string error;
  SerfAgentOptions manager_agent;
  manager_agent.name = "mgr-agent";
  manager_agent.tags = {{"role", "clustermgr"}};
  manager_agent.rpc_auth = "s3cret-serf-key";
  auto agent = SerfAgent::Start(manager_agent, &error);
  ASSERT_TRUE(agent) << error;
  SerfAgentOptions machine;
  machine.name = "machine-lab-1";
  machine.tags = {{"NodeLabel", "lab"}, {"NodeSerial", "1"}, {"NodeAddr", "10.9.0.1"}};
  machine.join = {agent->bind_address()};
  auto node = SerfAgent::Start(machine, &error);
  ASSERT_TRUE(node) << error;

  InstanceOptions right;
  right.name = "serf-right";
  right.serf_rpc = agent->rpc_address();
  right.extra_args = {"--serf-auth-key=s3cret-serf-key"};
  auto* a = cluster_.Add(right, &error);
  ASSERT_TRUE(a) << error;
  std::string seen;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto nodes = a->client().NodesGet();
        seen = nodes.ok() ? std::to_string(nodes.value().size()) + " node(s)"
                          : nodes.status().message();
        return nodes.ok() && nodes.value().size() == 1 && nodes.value()[0].name == "lab-1";
      },
      20s))
      << seen << "\n"
      << a->LogTail();
  EXPECT_EQ(a->LogTail(100000).find("auth failed"), std::string::npos) << a->LogTail();

  InstanceOptions wrong;
  wrong.name = "serf-wrong";
  wrong.peer_with_earlier = false;
  wrong.serf_rpc = agent->rpc_address();
  wrong.extra_args = {"--serf-auth-key=not-the-key"};
  auto* b = cluster_.Add(wrong, &error);
  ASSERT_TRUE(b) << error;
  const std::string line = "serf: not connected (retrying): ";
  ASSERT_TRUE(WaitUntil([&] { return b->LogTail(100000).find(line) != std::string::npos; }, 15s))
      << b->LogTail();
  const std::string log = b->LogTail(100000);
  const std::string first =
      log.substr(log.find(line), log.find('\n', log.find(line)) - log.find(line));
  EXPECT_NE(first.find("auth failed"), std::string::npos) << first;
  // It keeps running and answering while it retries, and says it once (not once per attempt).
  const auto until = Clock::now() + 2s;
  while (Clock::now() < until) {
    ASSERT_TRUE(b->running());
    auto nodes = b->client().NodesGet();
    ASSERT_TRUE(nodes.ok()) << nodes.status().message();
    EXPECT_TRUE(nodes.value().empty());
    std::this_thread::sleep_for(200ms);
  }
  const std::string later = b->LogTail(100000);
  size_t count = 0;
  for (size_t at = later.find(line); at != std::string::npos; at = later.find(line, at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << later;
}

// The simple deployment: every instance shares one key pair, the operators have a client key.
// Serf carries the instances' gossip endpoints and curve= keys; a side effect sent to the
// non-holder is forwarded to the holder over CURVE with the instance key pair.
TEST(SecuritySharedKeyTest, SharedKeyClusterReplicatesAndForwardsOverCurve) {
  ClusterOptions options;
  options.managers = 2;
  options.curve = true;
  options.daemon_args = {"--token-settle-ms", "500", "--anti-entropy-ms", "200"};
  auto started = Cluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  Cluster& cluster = **started;

  std::size_t holder = 0;
  Status s = Cluster::WaitUntil(
      "one token holder",
      [&](std::string* last) {
        int holders = 0;
        std::set<std::string> named;
        *last = "";
        for (std::size_t i = 0; i < 2; ++i) {
          auto t = cluster.rpc(i).Token();
          if (!t.ok()) {
            *last += t.status().message() + "; ";
            return false;
          }
          if (t.value().self_holds) {
            ++holders;
            holder = i;
          }
          named.insert(t.value().holder);
          *last += cluster.manager(i).name() + " holder=" + t.value().holder + "; ";
        }
        return holders == 1 && named.size() == 1;
      },
      30s, 50ms);
  ASSERT_TRUE(s.ok()) << s.message() << "\n" << cluster.Diagnostics();
  const std::size_t other = 1 - holder;
  auto m = cluster.AddMachine("sec", "1");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_TRUE(cluster.WaitForNode((*m)->name(), NodeIs::Discovered(), 30s, holder).ok());
  auto job = cluster.rpc(other).Commission({"sec-1"}, "service-master", "");
  ASSERT_TRUE(job.ok()) << job.status().message() << "\n" << cluster.Diagnostics();
  EXPECT_EQ(job.value().job_id.rfind(cluster.manager(holder).name() + "-", 0), 0u)
      << job.value().job_id;
  auto done = cluster.WaitForJobEnd(job.value().job_id, 120s, holder);
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_EQ(done.value().job.status, net::JobStatus::kComplete);
  // The other instance has the job by replication (gossip over CURVE).
  auto replicated = cluster.WaitForJobEnd(job.value().job_id, 30s, other);
  ASSERT_TRUE(replicated.ok()) << replicated.status().message();
  EXPECT_EQ(replicated.value().job.status, net::JobStatus::kComplete);
  // The holder judged the forwarded request as its original caller's and recorded it; the
  // record reaches the other instance by replication.
  std::string audit;
  EXPECT_TRUE(Cluster::WaitUntil(
                  "the commission's audit record at the other instance",
                  [&](std::string* last) {
                    auto r = cluster.rpc(other).AuditList(10);
                    *last = audit = r.ok() ? r.value() : r.status().message();
                    if (!r.ok()) return false;
                    for (const auto& rec : nlohmann::json::parse(r.value())) {
                      if (rec["operation"] == "commission" && rec["outcome"] == "ok" &&
                          rec["instance"] == cluster.manager(holder).name() &&
                          rec["via"] == cluster.manager(other).name() && rec["name"] == "admin" &&
                          rec["role"] == "admin") {
                        return true;
                      }
                    }
                    return false;
                  },
                  30s)
                  .ok())
      << audit;
}

// Roles: each allow-list line names one; a request is judged where it enters, refusals name the
// key and role and are logged and audited; SIGHUP re-reads the lists and a removed key's
// connection is closed.
TEST_F(SecurityTest, RolesAreEnforcedAuditedAndReloaded) {
  const auto m1 = Key("m1");
  const auto admin = Key("admin");
  const auto ops = Key("ops");
  const auto viewer = Key("viewer");
  const std::string clients = cluster_.dir() + "/clients.list";
  const std::string peers = cluster_.dir() + "/peers.list";
  const std::string all_clients = admin.public_key + " admin\n" + ops.public_key +
                                  " ops role=operator\n" + viewer.public_key +
                                  " viewer role=reader\n";
  WriteFile(clients, all_clients);
  WriteFile(peers, m1.public_key + " m1\n");
  std::string error;
  auto* a = cluster_.Add(Curve("m1", clients, peers, m1, admin), &error);
  ASSERT_TRUE(a) << error;
  auto as = [&](const std::string& who, std::vector<std::string> args) {
    args.insert(args.end(), {"-u", a->url(), "--server-key", PubFile("m1"), "--key", KeyFile(who),
                             "--timeout", "2"});
    return RunCli(args);
  };

  // reader: reads only.
  Cli r = as("viewer", {"global", "get"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = as("viewer", {"global", "set", "-e", R"({"by":"viewer"})"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "clustermgr: key viewer (reader) may not globalSet: it needs the operator role\n");
  // operator: also global set, not config set.
  r = as("ops", {"global", "set", "-e", R"({"by":"ops"})"});
  EXPECT_EQ(r.code, 0) << r.err;
  const std::string config = cluster_.dir() + "/config.json";
  WriteFile(config, R"({"ansible": {"user": "deploy"}})");
  r = as("ops", {"config", "set", config});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "clustermgr: key ops (operator) may not configSet: it needs the admin role\n");
  // admin (a line without a role): everything.
  r = as("admin", {"config", "set", config});
  EXPECT_EQ(r.code, 0) << r.err;
  // The full state dump is the admin's.
  net::RpcClient::Options o;
  o.timeout = 2s;
  o.curve = net::CurveClientConfig{m1.public_key, viewer};
  net::RpcClient viewer_client(a->url(), o);
  auto dump = viewer_client.StateDumpChunk(0, 0, 0);
  ASSERT_FALSE(dump.ok());
  EXPECT_EQ(dump.status().code(), clustermgr::Code::kPermissionDenied);
  EXPECT_EQ(dump.status().message(),
            "key viewer (reader) may not stateDump: it needs the admin role");
  // A client key cannot pose as an instance forwarding for someone else.
  net::RpcClient::Options forged = o;
  forged.forwarded_by = "m9";
  net::RpcClient forger(a->url(), forged);
  auto call = forger.Call(net::GlobalSetRequest{R"({"by":"forger"})"}, 0ms,
                          net::ForwardedCaller{admin.public_key, "admin", "admin"});
  ASSERT_TRUE(call.ok()) << call.status().message();
  EXPECT_EQ(call.value().code, clustermgr::Code::kPermissionDenied);
  EXPECT_EQ(call.value().message,
            "key viewer (reader) is not a manager instance and may not forward requests");
  EXPECT_EQ(nlohmann::json::parse(Globals(*a)), nlohmann::json({{"by", "ops"}}));
  EXPECT_NE(a->LogTail(100000).find(
                "rpc: refused: key viewer (reader) may not globalSet: it needs the operator role"),
            std::string::npos)
      << a->LogTail();

  // The audit trail: refusals and changes, with key name, role and outcome.
  r = as("viewer", {"audit"});
  EXPECT_EQ(r.code, 1);
  r = as("ops", {"audit", "-n", "20", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json records = nlohmann::json::parse(r.out);
  std::vector<std::string> seen;
  for (const auto& rec : records) {
    seen.push_back(rec["name"].get<std::string>() + " " + rec["role"].get<std::string>() + " " +
                   rec["operation"].get<std::string>() + " " + rec["outcome"].get<std::string>());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "viewer reader globalSet permission denied: key viewer (reader) may not "
                      "globalSet: it needs the operator role",
                      "ops operator globalSet ok",
                      "ops operator configSet permission denied: key ops (operator) may not "
                      "configSet: it needs the admin role",
                      "admin admin configSet ok",
                      "viewer reader stateDump permission denied: key viewer (reader) may not "
                      "stateDump: it needs the admin role",
                      "viewer reader globalSet permission denied: key viewer (reader) is not a "
                      "manager instance and may not forward requests",
                      "viewer reader auditList permission denied: key viewer (reader) may not "
                      "auditList: it needs the operator role"}));
  r = as("ops", {"audit", "-n", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("auditList"), std::string::npos) << r.out;
  r = as("ops", {"audit", "-n", "0"});
  EXPECT_EQ(r.code, 2);

  // A peer instance forwarding a request names its caller, whose role is judged again here.
  net::RpcClient::Options as_peer = o;
  as_peer.curve = net::CurveClientConfig{m1.public_key, m1};
  as_peer.forwarded_by = "m0";
  net::RpcClient peer(a->url(), as_peer);
  auto judged = peer.Call(net::GlobalSetRequest{R"({"by":"forwarded"})"}, 0ms,
                          net::ForwardedCaller{viewer.public_key, "viewer", "reader"});
  ASSERT_TRUE(judged.ok()) << judged.status().message();
  EXPECT_EQ(judged.value().code, clustermgr::Code::kPermissionDenied);
  EXPECT_EQ(judged.value().message,
            "key viewer (reader) may not globalSet: it needs the operator role");
  judged = peer.Call(net::GlobalSetRequest{R"({"by":"forwarded"})"}, 0ms,
                     net::ForwardedCaller{ops.public_key, "ops", "operator"});
  ASSERT_TRUE(judged.ok()) << judged.status().message();
  EXPECT_EQ(judged.value().code, clustermgr::Code::kOk) << judged.value().message;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto audit = a->client().AuditList(1);
        return audit.ok() && audit.value().find(R"("via":"m0")") != std::string::npos &&
               audit.value().find(R"("name":"ops")") != std::string::npos;
      },
      5s));

  // Reload: viewer removed. Its two open connections (viewer_client's and the forger's) are
  // closed, a new one refused, its requests fail.
  ASSERT_TRUE(viewer_client.GlobalGet().ok());
  WriteFile(clients, admin.public_key + " admin\n" + ops.public_key + " ops role=operator\n");
  ASSERT_EQ(kill(a->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return a->LogTail(100000).find("closed 2 connection(s) of removed keys") !=
               std::string::npos;
      },
      10s))
      << a->LogTail();
  EXPECT_FALSE(viewer_client.GlobalGet().ok());
  r = as("viewer", {"global", "get"});
  EXPECT_EQ(r.code, 3);  // the handshake is refused: to the CLI, nothing reachable
  r = as("ops", {"global", "get"});
  EXPECT_EQ(r.code, 0) << r.err;
  // A broken list leaves the old ones in force.
  WriteFile(clients, "garbage\n");
  ASSERT_EQ(kill(a->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil(
      [&] { return a->LogTail(100000).find("allow-lists not reloaded") != std::string::npos; },
      10s));
  r = as("ops", {"global", "get"});
  EXPECT_EQ(r.code, 0) << r.err;
}

// HTTP callers get roles too: a client certificate through the client allow-list's name column
// (its whole subject or its CN), plain loopback callers through --http-loopback-role. Refusals
// name the caller and are logged and audited; a reload changes a certificate's role.
TEST_F(SecurityTest, HttpCallersGetRolesFromTheAllowListAndTheLoopbackOption) {
  const auto m1 = Key("m1");
  const auto admin = Key("admin");
  const auto alice_key = Key("alice");
  const auto bob_key = Key("bob");
  const std::string dir = cluster_.dir();
  ASSERT_TRUE(MakeCa(dir, "ca").ok());
  ASSERT_TRUE(MakeCert(dir, "ca", "server", "/CN=clustermgr", true).ok());
  ASSERT_TRUE(MakeCert(dir, "ca", "alice", "/O=ops/CN=alice", false).ok());
  ASSERT_TRUE(MakeCert(dir, "ca", "bob", "/O=ops/CN=bob", false).ok());
  ASSERT_TRUE(MakeCert(dir, "ca", "carol", "/CN=carol", false).ok());
  const std::string clients = dir + "/clients.list";
  const std::string peers = dir + "/peers.list";
  // alice by CN, bob by the whole subject; carol is not named.
  WriteFile(clients, admin.public_key + " admin\n" + alice_key.public_key +
                         " alice role=operator\n" + bob_key.public_key +
                         " CN=bob,O=ops role=reader\n");
  WriteFile(peers, m1.public_key + " m1\n");
  const int tls_port = FreeLoopbackPort();
  InstanceOptions o = Curve("m1", clients, peers, m1, admin);
  o.extra_args.insert(o.extra_args.end(), {"--http-bind=127.0.0.1:" + std::to_string(tls_port),
                                           "--http-tls-cert=" + dir + "/server.pem",
                                           "--http-tls-key=" + dir + "/server.key",
                                           "--http-client-ca=" + dir + "/ca.pem"});
  std::string error;
  auto* a = cluster_.Add(o, &error);
  ASSERT_TRUE(a) << error;
  const std::string url = "https://127.0.0.1:" + std::to_string(tls_port);
  auto as = [&](const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> all = {"--cacert", dir + "/ca.pem",
                                    "--cert",   dir + "/" + who + ".pem",
                                    "--key",    dir + "/" + who + ".key"};
    all.insert(all.end(), args.begin(), args.end());
    return Curl(all);
  };
  auto set_globals = [&](const std::string& who) {
    const std::string body =
        nlohmann::json({{"extra_vars", nlohmann::json({{"by", who}}).dump()}}).dump();
    return as(who, {"-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body,
                    url + "/globals"});
  };

  // alice (operator by CN): sets globals, may not set the config.
  HttpReply r = set_globals("alice");
  EXPECT_EQ(r.status, 200) << r.body << r.error;
  r = as("alice", {url + "/config"});  // clusterctl config set: GET, change, POST it whole
  ASSERT_EQ(r.status, 200) << r.body;
  nlohmann::json config = nlohmann::json::parse(r.body);
  config["ansible"]["user"] = "deploy";
  r = as("alice", {"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                   nlohmann::json({{"config", config}}).dump(), url + "/config"});
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body,
            "certificate CN=alice,O=ops (operator) may not configSet: it needs the admin role\n");
  // bob (reader by subject): reads, may not write.
  r = as("bob", {url + "/info/globals"});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["extra_vars"], nlohmann::json({{"by", "alice"}}));
  r = set_globals("bob");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body,
            "certificate CN=bob,O=ops (reader) may not globalSet: it needs the operator role\n");
  EXPECT_EQ(as("bob", {url + "/metrics"}).status, 200);
  // carol (signed by the CA, named nowhere): nothing, not even reads or metrics.
  r = as("carol", {url + "/info/globals"});
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body,
            "certificate CN=carol is not named in the client allow-list of m1 (name a line by the "
            "subject or its CN)\n");
  r = as("carol", {url + "/metrics"});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(as("carol", {url + "/healthz"}).status, 200);  // probes need no role
  EXPECT_NE(a->LogTail(100000).find("http: refused: certificate CN=bob,O=ops (reader) may not "
                                    "globalSet: it needs the operator role"),
            std::string::npos)
      << a->LogTail();
  // The audit trail names the certificate callers.
  auto audit = a->client().AuditList(10);
  ASSERT_TRUE(audit.ok()) << audit.status().message();
  for (const char* line :
       {R"("name":"certificate CN=alice,O=ops")", R"("name":"certificate CN=bob,O=ops")",
        R"("name":"certificate CN=carol")"}) {
    EXPECT_NE(audit.value().find(line), std::string::npos) << line << "\n" << audit.value();
  }

  // Reload: alice becomes a reader.
  WriteFile(clients, admin.public_key + " admin\n" + alice_key.public_key + " alice role=reader\n");
  ASSERT_EQ(kill(a->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return set_globals("alice").status == 500; }, 10s));
  EXPECT_EQ(set_globals("bob").status, 500);  // no longer named at all
}

TEST_F(SecurityTest, PlainLoopbackHttpCallersGetTheOptionsRole) {
  const auto m1 = Key("m1");
  const auto admin = Key("admin");
  const std::string clients = cluster_.dir() + "/clients.list";
  const std::string peers = cluster_.dir() + "/peers.list";
  WriteFile(clients, admin.public_key + " admin\n");
  WriteFile(peers, m1.public_key + " m1\n");
  const int port = FreeLoopbackPort();
  InstanceOptions o = Curve("m1", clients, peers, m1, admin);
  o.extra_args.insert(o.extra_args.end(), {"--http-bind=127.0.0.1:" + std::to_string(port),
                                           "--http-loopback-role=reader"});
  std::string error;
  auto* a = cluster_.Add(o, &error);
  ASSERT_TRUE(a) << error;
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  HttpReply r = Curl({url + "/info/globals"});
  EXPECT_EQ(r.status, 200) << r.body << r.error;
  r = Curl({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
            R"({"extra_vars":"{\"x\":1}"})", url + "/globals"});
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "loopback (reader) may not globalSet: it needs the operator role\n");
  r = Curl({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
            R"({"monitor_event":{"name":"discovered","nodes":[{"label":"n1","serial":"s1",)"
            R"("addr":"127.0.0.1"}]}})",
            url + "/monitor/event"});
  EXPECT_EQ(r.status, 200);  // queued; the loop refuses it
  EXPECT_TRUE(WaitUntil(
      [&] {
        return a->LogTail(100000).find(
                   "http: refused: loopback (reader) may not post monitor "
                   "events: it needs the operator role") != std::string::npos;
      },
      5s))
      << a->LogTail();
  EXPECT_EQ(nlohmann::json::parse(Globals(*a)), nlohmann::json::object());
  // A bad role is refused before anything starts.
  std::string out;
  const int status =
      RunDaemonToExit({"--insecure", "--name", "x", "--data-dir", cluster_.dir() + "/x",
                       "--http-bind", "127.0.0.1:9", "--http-loopback-role", "root"},
                      cluster_.dir() + "/x.log", &out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status << out;
  EXPECT_NE(out.find("--http-loopback-role must be reader, operator or admin: \"root\""),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace clustermgr::test
