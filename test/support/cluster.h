// A clustermgr cluster on loopback for integration tests: N manager instances, each a real
// `clustermgrd` (from CLUSTERMGR_BIN_DIR) beside its own real Serf agent, plus "machines": Serf
// agents tagged NodeLabel / NodeSerial / NodeAddr (distinct 127.0.0.x addresses) that stand in for
// the nodes of the cluster. Playbooks are the test playbooks (test/playbooks) with a local
// connection; each run appends a line to <marker_dir>/<node>.log, which the harness reads back.
//
//   auto cluster = Cluster::Start({});            // one manager
//   Machine* m = *cluster->AddMachine({"node", "1"});
//   auto info = cluster->WaitForNode(m->name(), NodeIs::Discovered());
//   auto job = cluster->rpc().Commission({m->name()}, "service-master", "");
//   auto detail = cluster->WaitForJobEnd(job.value().job_id);
//   cluster->manager().Restart(SIGKILL);
//
// Every manager instance has its own temp data dir, HOME (so ansible writes nothing to the real
// ~/.ansible), free loopback ports for RPC and gossip, and its own RpcClient. Waiting helpers poll
// the RPC at short intervals (or long-poll the job log) up to a deadline and return a Status that
// says what was last seen; Diagnostics() gives every daemon's log tail for a failure message.
//
// Lifetime: the Cluster owns every process it starts. Its destructor stops the daemons (SIGTERM,
// then SIGKILL after a grace period), then kills the Serf agents, and removes the temp dir unless
// CLUSTERMGR_KEEP_TEST_DIRS is set. Processes are also stopped when a test fails or throws.
//
// Thread-safety: none; one test thread drives a Cluster (each RpcClient is single-threaded).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/rpc_client.h"
#include "net/rpc_types.h"
#include "test/support/process.h"
#include "test/support/serf_agent.h"

namespace clustermgr::test {

// The build's programs dir and the source tree (compile definitions of the integration layer).
std::string BinDir();
std::string SourceDir();
// <source>/test/playbooks.
std::string TestPlaybookDir();
// The roles shipped with clustermgr (clustermgr_fence), for --ansible-roles-dir.
std::string ShippedRolesDir();

struct ClusterOptions {
  std::size_t managers = 1;
  // Instance names are "<name_prefix>-1" .. "<name_prefix>-N".
  std::string name_prefix = "manager";
  std::string playbook_dir{};  // empty: TestPlaybookDir()
  // Added to every daemon's --extra-vars, on top of {"ansible_connection": "local",
  // "marker_dir": <marker_dir()>}.
  nlohmann::json extra_vars = nlohmann::json::object();
  // Appended to every clustermgrd command line (e.g. {"--host-groups", "a,b"}). Without an
  // --expect here, every daemon gets --expect=<managers>.
  std::vector<std::string> daemon_args{};
  std::string log_level = "info";
  // CURVE instead of --insecure, deployed the simple way: one key pair shared by every instance
  // (<dir>/cluster.key) and one client key (<dir>/admin.key) in --curve-clients; the harness's
  // clients use them (see Cluster::client_curve()).
  bool curve = false;
  // How long a daemon may take to answer its first RPC, and a Serf agent to start.
  std::chrono::milliseconds start_timeout{30000};
  // When set, the managers run no Serf agent of their own: the daemon named N talks Serf RPC to
  // serf_rpc(N) (e.g. an endpoint of a FakeSerfAgent standing in for a whole fleet), and
  // machines cannot be added with AddMachine (ManagerInstance::serf() must not be called).
  std::function<std::string(const std::string& instance)> serf_rpc{};
};

// What WaitForNode waits for; an unset field matches anything.
struct NodeIs {
  std::optional<net::NodeStatus> status;
  std::optional<net::NodeState> state;

  static NodeIs Discovered() { return {std::nullopt, net::NodeState::kDiscovered}; }
  static NodeIs Disappeared() { return {std::nullopt, net::NodeState::kDisappeared}; }
  static NodeIs Status(net::NodeStatus s) { return {s, std::nullopt}; }
  std::string ToString() const;
  bool Matches(const net::NodeInfo& node) const;
};

// A cluster node: a Serf agent tagged NodeLabel=<label>, NodeSerial=<serial>, NodeAddr=<addr>,
// joined to a manager's agent. Its name in the inventory is "<label>-<serial>".
class Machine {
 public:
  Machine(std::string name, std::string addr, std::unique_ptr<SerfAgent> serf)
      : name_(std::move(name)), addr_(std::move(addr)), serf_(std::move(serf)) {}
  const std::string& name() const { return name_; }
  const std::string& addr() const { return addr_; }
  // Kill / Leave / Restart the machine through its agent.
  SerfAgent& serf() { return *serf_; }

 private:
  std::string name_;
  std::string addr_;
  std::unique_ptr<SerfAgent> serf_;
};

// One manager instance: its Serf agent (tagged role=clustermgr) and its clustermgrd.
class ManagerInstance {
 public:
  // `curve`: the daemon runs with CURVE (its flags are in extra_args) and the instance's client
  // uses these keys; unset: --insecure. `serf` null: the daemon's --serf-rpc is `serf_rpc`.
  ManagerInstance(std::string name, std::string dir, std::unique_ptr<SerfAgent> serf,
                  std::vector<std::string> extra_args, std::string log_level,
                  std::optional<net::CurveClientConfig> curve = std::nullopt,
                  std::string serf_rpc = "");
  ~ManagerInstance();  // Stop()s the daemon; the agent dies with its SerfAgent
  ManagerInstance(const ManagerInstance&) = delete;
  ManagerInstance& operator=(const ManagerInstance&) = delete;

  const std::string& name() const { return name_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& home_dir() const { return home_dir_; }
  const std::string& rpc_url() const { return rpc_url_; }
  const std::string& gossip_url() const { return gossip_url_; }
  std::string log_path() const { return dir_ + "/clustermgrd.log"; }
  SerfAgent& serf() { return *serf_; }  // only when the instance has its own agent
  // The instance's client (kept across restarts: ZeroMQ reconnects to the same port).
  net::RpcClient& rpc() { return *rpc_; }

  // The clustermgrd command line, program first (for a second daemon on the same dir, etc.).
  std::vector<std::string> CommandLine() const;
  // The environment the daemon runs with on top of the test's (HOME).
  std::map<std::string, std::string> Environment() const;

  bool Running();
  pid_t pid() const;  // 0 when not started
  // Starts clustermgrd (if it is not running) and waits until it answers a `status` RPC.
  // Errors (with the log tail): it exited during start, or did not answer in time. On the first
  // start only, a port found taken is replaced by another and the start retried.
  Status Start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGTERM, up to `grace` for it to exit, then SIGKILL. Returns the wait status (0 when it was
  // not running).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // SIGKILL and reap: the daemon gets no chance to clean up.
  int Kill();
  // Stops the daemon with `signal` (SIGTERM: graceful, SIGKILL: crash), then starts it again on
  // the same data dir and ports. Fails if the daemon did not exit with the expected status
  // (SIGTERM: exit 0) or did not come back.
  Status Restart(int signal = SIGTERM);
  // The wait status of the last run that ended, if any.
  std::optional<int> last_exit_status() const { return last_exit_; }

  std::string Log() const;  // the daemon's whole log, across restarts
  std::string LogTail(std::size_t bytes = 4000) const;

 private:
  void PickPorts();

  const std::string name_;
  const std::string dir_;
  const std::string data_dir_;
  const std::string home_dir_;
  std::unique_ptr<SerfAgent> serf_;
  const std::string serf_rpc_;
  std::vector<std::string> extra_args_;
  std::string log_level_;
  std::optional<net::CurveClientConfig> curve_;
  std::string rpc_url_;
  std::string gossip_url_;
  bool started_once_ = false;
  std::unique_ptr<Process> process_;
  std::unique_ptr<net::RpcClient> rpc_;
  std::optional<int> last_exit_;
};

class Cluster {
 public:
  // Starts the managers' Serf agents (each joined to the first), then their daemons, and waits
  // until every daemon answers RPC. Errors: a process would not start (with its log tail).
  static Result<std::unique_ptr<Cluster>> Start(ClusterOptions options = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  std::size_t size() const { return managers_.size(); }
  ManagerInstance& manager(std::size_t i = 0) { return *managers_.at(i); }
  net::RpcClient& rpc(std::size_t i = 0) { return managers_.at(i)->rpc(); }
  const std::string& dir() const { return dir_; }
  const std::string& marker_dir() const { return marker_dir_; }
  // The client keys of a ClusterOptions::curve cluster (unset otherwise).
  const std::optional<net::CurveClientConfig>& client_curve() const { return client_curve_; }
  const std::string& playbook_dir() const { return playbook_dir_; }
  // The daemons' base --extra-vars (connection and marker_dir included).
  const nlohmann::json& extra_vars() const { return extra_vars_; }

  // Starts a machine joined to manager `join_manager`'s agent, or (nullopt) to every manager's
  // agent: then each of them learns of it at once, while an agent it did not join learns of it
  // by gossip, which in Serf's local profile was seen to take up to the push/pull interval
  // (15 s) when the join broadcast missed it. `addr` empty: the next unused 127.0.0.x (from
  // 127.0.0.2). Errors: the agent would not start.
  Result<Machine*> AddMachine(const std::string& label, const std::string& serial,
                              const std::string& addr = "",
                              std::optional<std::size_t> join_manager = std::nullopt);
  // Starts machines `<label>-<serial>` for each serial and waits until manager 0 lists every
  // one as Discovered: the usual set-up of a test suite. Errors: AddMachine's, WaitForNode's.
  Status AddDiscoveredMachines(const std::string& label, const std::vector<std::string>& serials);
  // The machine named `name`, or null.
  Machine* machine(const std::string& name);
  // An address no machine of this cluster has used (and that this call reserves).
  std::string NextAddr();

  // Polls manager `i` (node get) until `name` matches `want`. Errors: the deadline passed
  // (the message shows the last answer).
  Result<net::NodeInfo> WaitForNode(const std::string& name, const NodeIs& want,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                    std::size_t i = 0);
  // Follows the job's log (long-poll) until the job has ended; returns its final detail.
  Result<net::JobDetail> WaitForJobEnd(
      const std::string& job_id, std::chrono::milliseconds timeout = std::chrono::seconds(120),
      std::size_t i = 0);
  // Follows the job's log until a line containing `needle` appears. Errors: the job ended first
  // or the deadline passed.
  Status WaitForLogLine(const std::string& job_id, const std::string& needle,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60),
                        std::size_t i = 0);
  // Waits until the instances in `among` all name one holder, and that holder says it holds the
  // token at an epoch above `above`; returns its index and epoch. Errors: the deadline passed
  // (the message shows the last answers and Diagnostics()).
  struct Holder {
    std::size_t index = 0;
    uint64_t epoch = 0;
  };
  Result<Holder> WaitForOneHolder(const std::vector<std::size_t>& among, uint64_t above = 0,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Polls `condition` every `interval` until it returns true. `last` may be set by the condition
  // to what it saw, for the error message.
  static Status WaitUntil(const std::string& what,
                          const std::function<bool(std::string* last)>& condition,
                          std::chrono::milliseconds timeout,
                          std::chrono::milliseconds interval = std::chrono::milliseconds(20));

  // Marker lines the test playbooks wrote for `node` ("site.yml n1 ...") in run order.
  std::vector<std::string> MarkerLines(const std::string& node) const;
  // How many runs of `playbook` (e.g. "site.yml") recorded themselves for `node`.
  int CountRuns(const std::string& node, const std::string& playbook) const;

  // Every daemon's state and log tail, and the manager agents' log tails: for failure messages.
  std::string Diagnostics(std::size_t bytes = 4000) const;

 private:
  explicit Cluster(ClusterOptions options, std::string dir);

  ClusterOptions options_;
  std::optional<net::CurveClientConfig> client_curve_;
  const std::string dir_;
  const bool keep_dir_;
  std::string marker_dir_;
  std::string playbook_dir_;
  nlohmann::json extra_vars_;
  std::vector<std::unique_ptr<ManagerInstance>> managers_;
  std::vector<std::unique_ptr<Machine>> machines_;
  int next_addr_ = 2;
};

// ---- running programs -------------------------------------------------------------------------

struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  std::string out;               // stdout
  std::string err;               // stderr
  std::string ToString() const;  // for failure messages
};

// Runs a program to completion (own process group, stdin /dev/null, stdout and stderr captured
// separately), with `env` added to the environment. On timeout the group is killed and
// timed_out set. `program` without '/' is taken from BinDir().
CommandResult RunCommand(const std::string& program, const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::map<std::string, std::string>& env = {});

// ---- processes --------------------------------------------------------------------------------

struct ProcInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  char state = '?';
  std::string comm;
};

// Live (not zombie) processes, from /proc.
std::vector<ProcInfo> ListProcesses();
std::vector<ProcInfo> ProcessGroupMembers(pid_t pgid);
// The process groups that children of `parent` lead (a daemon's playbook runs).
std::vector<pid_t> ChildProcessGroups(pid_t parent);

}  // namespace clustermgr::test
