#include "test/support/cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Tail(const std::string& text, std::size_t bytes) {
  return text.size() <= bytes ? text : "[...]" + text.substr(text.size() - bytes);
}

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

std::chrono::milliseconds Left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : 0ms;
}

std::string Describe(const net::NodeInfo& n) {
  std::string groups;
  for (const auto& g : n.host_groups) groups += (groups.empty() ? "" : ",") + g;
  return n.name + " status=" + std::string(net::ToString(n.status)) +
         " state=" + std::string(net::ToString(n.state)) + " groups=[" + groups + "]";
}

}  // namespace

std::string BinDir() { return CLUSTERMGR_BIN_DIR; }
std::string SourceDir() { return CLUSTERMGR_SOURCE_DIR; }
std::string TestPlaybookDir() { return SourceDir() + "/test/playbooks"; }
std::string ShippedRolesDir() { return SourceDir() + "/demo/playbooks/roles"; }

// ---- NodeIs -------------------------------------------------------------------------------------

std::string NodeIs::ToString() const {
  std::string s;
  if (status) s += "status=" + std::string(net::ToString(*status));
  if (state) s += std::string(s.empty() ? "" : " ") + "state=" + std::string(net::ToString(*state));
  return s.empty() ? "anything" : s;
}

bool NodeIs::Matches(const net::NodeInfo& node) const {
  return (!status || node.status == *status) && (!state || node.state == *state);
}

// ---- ManagerInstance
// ------------------------------------------------------------------------------

ManagerInstance::ManagerInstance(std::string name, std::string dir, std::unique_ptr<SerfAgent> serf,
                                 std::vector<std::string> extra_args, std::string log_level,
                                 std::optional<net::CurveClientConfig> curve, std::string serf_rpc)
    : name_(std::move(name)),
      dir_(std::move(dir)),
      data_dir_(dir_ + "/data"),
      home_dir_(dir_ + "/home"),
      serf_(std::move(serf)),
      serf_rpc_(std::move(serf_rpc)),
      extra_args_(std::move(extra_args)),
      log_level_(std::move(log_level)),
      curve_(std::move(curve)) {
  fs::create_directories(home_dir_);
  PickPorts();
}

ManagerInstance::~ManagerInstance() { Stop(5s); }

void ManagerInstance::PickPorts() {
  rpc_url_ = "tcp://127.0.0.1:" + std::to_string(FreeLoopbackPort());
  gossip_url_ = "tcp://127.0.0.1:" + std::to_string(FreeLoopbackPortPair());
  net::RpcClient::Options options;
  options.curve = curve_;
  rpc_ = std::make_unique<net::RpcClient>(rpc_url_, options);
}

std::vector<std::string> ManagerInstance::CommandLine() const {
  std::vector<std::string> argv = {
      BinDir() + "/clustermgrd",      "--name=" + name_,
      "--data-dir=" + data_dir_,      "--rpc-bind=" + rpc_url_,
      "--gossip-bind=" + gossip_url_, "--serf-rpc=" + (serf_ ? serf_->rpc_address() : serf_rpc_),
      "--log-level=" + log_level_};
  if (!curve_) argv.push_back("--insecure");
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  return argv;
}

std::map<std::string, std::string> ManagerInstance::Environment() const {
  return {{"HOME", home_dir_}};
}

bool ManagerInstance::Running() { return process_ && process_->Running(); }

pid_t ManagerInstance::pid() const { return process_ ? process_->pid() : 0; }

Status ManagerInstance::Start(std::chrono::milliseconds timeout) {
  if (Running()) return Status::Ok();
  for (int attempt = 0;; ++attempt) {
    const std::vector<std::string> argv = CommandLine();
    ProcessOptions p;
    p.program = argv[0];
    p.args.assign(argv.begin() + 1, argv.end());
    p.env = Environment();
    p.output_path = log_path();
    std::string error;
    const std::size_t log_before = ReadWhole(log_path()).size();
    process_ = Process::Start(p, &error);
    if (!process_) return Status(Code::kInternal, "cannot start clustermgrd: " + error);

    const auto deadline = Clock::now() + timeout;
    const auto saved = rpc_->timeout();
    rpc_->set_timeout(200ms);
    std::string last;
    bool up = false;
    while (Clock::now() < deadline) {
      auto status = rpc_->Status();
      if (status.ok()) {
        up = true;
        break;
      }
      last = status.status().message();
      if (!process_->Running()) break;
    }
    rpc_->set_timeout(saved);
    if (up) {
      started_once_ = true;
      return Status::Ok();
    }
    const std::string log = ReadWhole(log_path()).substr(log_before);
    if (!process_->Running()) {
      last_exit_ = process_->exit_status();
      const bool port_taken = log.find("cannot bind") != std::string::npos;
      if (port_taken && !started_once_ && attempt < 3) {
        PickPorts();
        continue;
      }
      return Status(Code::kUnavailable, "clustermgrd " + name_ + " " +
                                            Process::DescribeStatus(*last_exit_) +
                                            " during start; log:\n" + Tail(log, 3000));
    }
    Kill();
    return Status(Code::kUnavailable, "clustermgrd " + name_ + " did not answer RPC within " +
                                          Ms(timeout) + " (" + last + "); log:\n" +
                                          Tail(log, 3000));
  }
}

int ManagerInstance::Stop(std::chrono::milliseconds grace) {
  if (!process_) return 0;
  if (!process_->Running()) {
    last_exit_ = process_->exit_status();
    return last_exit_.value_or(0);
  }
  last_exit_ = process_->Stop(grace);
  return *last_exit_;
}

int ManagerInstance::Kill() {
  if (!process_) return 0;
  last_exit_ = process_->Kill();
  return *last_exit_;
}

Status ManagerInstance::Restart(int signal) {
  if (!Running()) return Status(Code::kFailedPrecondition, "clustermgrd " + name_ + " not running");
  if (signal == SIGKILL) {
    const int status = Kill();
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
      return Status(Code::kInternal, "clustermgrd " + name_ + " " +
                                         Process::DescribeStatus(status) + " instead of SIGKILL");
    }
  } else {
    process_->Signal(signal);
    auto status = process_->Wait(std::chrono::seconds(15));
    if (!status) {
      Kill();
      return Status(Code::kInternal, "clustermgrd " + name_ +
                                         " did not exit within 15 s of signal " +
                                         std::to_string(signal) + "; log:\n" + LogTail());
    }
    last_exit_ = *status;
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      return Status(Code::kInternal, "clustermgrd " + name_ + " " +
                                         Process::DescribeStatus(*status) + " after signal " +
                                         std::to_string(signal) + "; log:\n" + LogTail());
    }
  }
  return Start();
}

std::string ManagerInstance::Log() const { return ReadWhole(log_path()); }

std::string ManagerInstance::LogTail(std::size_t bytes) const { return Tail(Log(), bytes); }

// ---- Cluster ------------------------------------------------------------------------------------

Cluster::Cluster(ClusterOptions options, std::string dir)
    : options_(std::move(options)),
      dir_(std::move(dir)),
      keep_dir_(std::getenv("CLUSTERMGR_KEEP_TEST_DIRS") != nullptr) {}

Cluster::~Cluster() {
  // Daemons first (a graceful stop also cancels a running job), then every Serf agent.
  for (auto& m : managers_) m->Stop(5s);
  machines_.clear();
  managers_.clear();
  if (keep_dir_) {
    std::fprintf(stderr, "[cluster] kept %s\n", dir_.c_str());
  } else {
    RemoveTree(dir_);
  }
}

Result<std::unique_ptr<Cluster>> Cluster::Start(ClusterOptions options) {
  const std::string dir = MakeTempDir("clustermgr-cluster");
  if (dir.empty()) return Status(Code::kIoError, "cannot create a temp dir");
  std::unique_ptr<Cluster> c(new Cluster(std::move(options), dir));
  c->marker_dir_ = dir + "/markers";
  fs::create_directories(c->marker_dir_);
  c->playbook_dir_ =
      c->options_.playbook_dir.empty() ? TestPlaybookDir() : c->options_.playbook_dir;
  c->extra_vars_ = nlohmann::json{{"ansible_connection", "local"}, {"marker_dir", c->marker_dir_}};
  for (const auto& [k, v] : c->options_.extra_vars.items()) c->extra_vars_[k] = v;

  std::vector<std::string> curve_args;
  if (c->options_.curve) {
    auto shared = net::GenerateCurveKeyPair();
    auto admin = net::GenerateCurveKeyPair();
    if (!shared.ok()) return shared.status();
    if (!admin.ok()) return admin.status();
    for (const auto& [file, pair] : {std::pair{"cluster", *shared}, std::pair{"admin", *admin}}) {
      if (Status s = net::WriteKeyPairFiles(dir + "/" + file + ".key", pair, file); !s.ok()) {
        return s;
      }
    }
    c->client_curve_ = net::CurveClientConfig{shared->public_key, *admin};
    curve_args = {"--curve-key=" + dir + "/cluster.key",
                  "--curve-clients=" + dir + "/admin.key.pub"};
  }
  for (std::size_t i = 0; i < c->options_.managers; ++i) {
    const std::string name = c->options_.name_prefix + "-" + std::to_string(i + 1);
    std::unique_ptr<SerfAgent> agent;
    std::string serf_rpc;
    if (c->options_.serf_rpc) {
      serf_rpc = c->options_.serf_rpc(name);
    } else {
      SerfAgentOptions serf;
      serf.name = name;
      serf.tags = {{"role", "clustermgr"}};
      if (i > 0) serf.join = {c->managers_[0]->serf().bind_address()};
      serf.start_timeout = c->options_.start_timeout;
      std::string error;
      agent = SerfAgent::Start(serf, &error);
      if (!agent) return Status(Code::kUnavailable, "serf agent of " + name + ": " + error);
    }
    std::vector<std::string> args = {"--playbook-dir=" + c->playbook_dir_,
                                     "--ansible-roles-dir=" + ShippedRolesDir(),
                                     "--extra-vars=" + c->extra_vars_.dump()};
    // --expect counts the managers, unless the test sets it itself.
    const auto& extra = c->options_.daemon_args;
    if (std::none_of(extra.begin(), extra.end(),
                     [](const std::string& a) { return a.rfind("--expect", 0) == 0; })) {
      args.push_back("--expect=" + std::to_string(c->options_.managers));
    }
    args.insert(args.end(), curve_args.begin(), curve_args.end());
    args.insert(args.end(), c->options_.daemon_args.begin(), c->options_.daemon_args.end());
    const std::string mdir = dir + "/" + name;
    fs::create_directories(mdir);
    c->managers_.push_back(std::make_unique<ManagerInstance>(name, mdir, std::move(agent),
                                                             std::move(args), c->options_.log_level,
                                                             c->client_curve_, serf_rpc));
  }
  for (auto& m : c->managers_) {
    if (Status s = m->Start(c->options_.start_timeout); !s.ok()) return s;
  }
  return c;
}

std::string Cluster::NextAddr() { return "127.0.0." + std::to_string(next_addr_++); }

Result<Machine*> Cluster::AddMachine(const std::string& label, const std::string& serial,
                                     const std::string& addr,
                                     std::optional<std::size_t> join_manager) {
  if (options_.serf_rpc) {
    return Status(Code::kInvalidArgument, "AddMachine: the managers share a Serf stand-in");
  }
  SerfAgentOptions serf;
  const std::string name = label + "-" + serial;
  const std::string node_addr = addr.empty() ? NextAddr() : addr;
  serf.name = "machine-" + name;
  serf.tags = {{"NodeLabel", label}, {"NodeSerial", serial}, {"NodeAddr", node_addr}};
  if (join_manager) {
    serf.join = {managers_.at(*join_manager)->serf().bind_address()};
  } else {
    for (const auto& m : managers_) serf.join.push_back(m->serf().bind_address());
  }
  serf.start_timeout = options_.start_timeout;
  std::string error;
  auto agent = SerfAgent::Start(serf, &error);
  if (!agent) return Status(Code::kUnavailable, "serf agent of machine " + name + ": " + error);
  machines_.push_back(std::make_unique<Machine>(name, node_addr, std::move(agent)));
  return machines_.back().get();
}

Machine* Cluster::machine(const std::string& name) {
  for (auto& m : machines_) {
    if (m->name() == name) return m.get();
  }
  return nullptr;
}

Result<Cluster::Holder> Cluster::WaitForOneHolder(const std::vector<std::size_t>& among,
                                                  uint64_t above,
                                                  std::chrono::milliseconds timeout) {
  Holder holder;
  Status s = WaitUntil(
      "one token holder above epoch " + std::to_string(above),
      [&](std::string* last) {
        std::set<std::string> named;
        int self = 0;
        *last = "";
        for (std::size_t i : among) {
          auto t = rpc(i).Token();
          if (!t.ok()) return false;
          *last += manager(i).name() + ": " + t.value().holder + "@" +
                   std::to_string(t.value().epoch) + " (" + t.value().reason + "); ";
          named.insert(t.value().holder);
          if (t.value().self_holds && t.value().epoch > above) {
            ++self;
            holder = {i, t.value().epoch};
          }
        }
        return named.size() == 1 && self == 1;
      },
      timeout, std::chrono::milliseconds(50));
  if (!s.ok()) return Status(s.code(), s.message() + "\n" + Diagnostics());
  return holder;
}

Status Cluster::WaitUntil(const std::string& what,
                          const std::function<bool(std::string* last)>& condition,
                          std::chrono::milliseconds timeout, std::chrono::milliseconds interval) {
  const auto deadline = Clock::now() + timeout;
  std::string last;
  for (;;) {
    if (condition(&last)) return Status::Ok();
    if (Clock::now() >= deadline) {
      return Status(Code::kUnavailable, "timed out after " + Ms(timeout) + " waiting for " + what +
                                            (last.empty() ? "" : "; last seen: " + last));
    }
    std::this_thread::sleep_for(std::min(interval, Left(deadline)));  // polling, with deadline
  }
}

Status Cluster::AddDiscoveredMachines(const std::string& label,
                                      const std::vector<std::string>& serials) {
  for (const std::string& serial : serials) {
    auto m = AddMachine(label, serial);
    if (!m.ok()) return m.status();
  }
  for (const std::string& serial : serials) {
    auto n = WaitForNode(label + "-" + serial, NodeIs::Discovered());
    if (!n.ok()) return n.status();
  }
  return Status::Ok();
}

Result<net::NodeInfo> Cluster::WaitForNode(const std::string& name, const NodeIs& want,
                                           std::chrono::milliseconds timeout, std::size_t i) {
  net::NodeInfo found;
  net::RpcClient& client = rpc(i);
  Status s = WaitUntil(
      "node " + name + " to be " + want.ToString(),
      [&](std::string* last) {
        auto r = client.NodeGet(name);
        if (!r.ok()) {
          *last = r.status().message();
          return false;
        }
        *last = Describe(r.value());
        if (!want.Matches(r.value())) return false;
        found = std::move(r.value());
        return true;
      },
      timeout);
  if (!s.ok()) return s;
  return found;
}

Result<net::JobDetail> Cluster::WaitForJobEnd(const std::string& job_id,
                                              std::chrono::milliseconds timeout, std::size_t i) {
  const auto deadline = Clock::now() + timeout;
  net::RpcClient& client = rpc(i);
  std::uint64_t next = 0;
  std::string last = "no answer yet";
  while (Left(deadline).count() > 0) {
    auto chunk = client.JobLogFollow(job_id, next,
                                     std::min<std::chrono::milliseconds>(Left(deadline), 2000ms));
    if (!chunk.ok()) {
      if (chunk.code() == clustermgr::Code::kNotFound) {
        return Status(Code::kNotFound, chunk.status().message());
      }
      last = chunk.status().message();
      continue;
    }
    next = chunk.value().first_line + chunk.value().lines.size();
    last = std::string(net::ToString(chunk.value().status)) + ", " + std::to_string(next) +
           " log lines";
    if (chunk.value().ended) {
      auto detail = client.JobGet(job_id);
      if (!detail.ok()) return Status(Code::kInternal, "job get: " + detail.status().message());
      return std::move(detail.value());
    }
  }
  return Status(Code::kUnavailable,
                "job " + job_id + " did not end within " + Ms(timeout) + "; last seen: " + last);
}

Status Cluster::WaitForLogLine(const std::string& job_id, const std::string& needle,
                               std::chrono::milliseconds timeout, std::size_t i) {
  const auto deadline = Clock::now() + timeout;
  net::RpcClient& client = rpc(i);
  std::uint64_t next = 0;
  while (Left(deadline).count() > 0) {
    auto chunk = client.JobLogFollow(job_id, next,
                                     std::min<std::chrono::milliseconds>(Left(deadline), 2000ms));
    if (!chunk.ok()) {
      if (chunk.code() == clustermgr::Code::kNotFound) {
        return Status(Code::kNotFound, chunk.status().message());
      }
      continue;
    }
    for (const std::string& line : chunk.value().lines) {
      if (line.find(needle) != std::string::npos) return Status::Ok();
    }
    next = chunk.value().first_line + chunk.value().lines.size();
    if (chunk.value().ended) {
      return Status(Code::kFailedPrecondition,
                    "job " + job_id + " ended (" +
                        std::string(net::ToString(chunk.value().status)) +
                        ") without a log line containing \"" + needle + "\"");
    }
  }
  return Status(Code::kUnavailable, "no log line containing \"" + needle + "\" in job " + job_id +
                                        " within " + Ms(timeout));
}

std::vector<std::string> Cluster::MarkerLines(const std::string& node) const {
  std::vector<std::string> lines;
  std::istringstream in(ReadWhole(marker_dir_ + "/" + node + ".log"));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

int Cluster::CountRuns(const std::string& node, const std::string& playbook) const {
  int n = 0;
  for (const std::string& line : MarkerLines(node)) {
    n += line == playbook + " " + node || line.rfind(playbook + " " + node + " ", 0) == 0;
  }
  return n;
}

std::string Cluster::Diagnostics(std::size_t bytes) const {
  std::string out;
  for (const auto& m : managers_) {
    out += "---- clustermgrd " + m->name() + " (" + m->rpc_url() + ", data " + m->data_dir() +
           ") log tail ----\n" + m->LogTail(bytes) + "\n";
    if (!options_.serf_rpc) {
      out +=
          "---- serf agent of " + m->name() + " log tail ----\n" + m->serf().LogTail(1500) + "\n";
    }
  }
  return out;
}

// ---- commands -----------------------------------------------------------------------------------

std::string CommandResult::ToString() const {
  return (timed_out ? std::string("timed out") : "exit " + std::to_string(exit_code)) +
         "\n-- stdout --\n" + out + "-- stderr --\n" + err;
}

CommandResult RunCommand(const std::string& program, const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout,
                         const std::map<std::string, std::string>& env) {
  CommandResult result;
  const std::string path =
      program.find('/') == std::string::npos ? BinDir() + "/" + program : program;
  const std::string dir = MakeTempDir("clustermgr-cmd");
  const std::string out_path = dir + "/out";
  const std::string err_path = dir + "/err";

  std::string error;
  auto child = Process::Start(
      {.program = path, .args = args, .env = env, .output_path = out_path, .error_path = err_path},
      &error);
  if (!child) {
    result.err = error;
    RemoveTree(dir);
    return result;
  }
  std::optional<int> status = child->Wait(timeout);
  if (!status) {
    result.timed_out = true;
    child->Kill();
  } else if (WIFEXITED(*status)) {
    result.exit_code = WEXITSTATUS(*status);
  }
  result.out = ReadWhole(out_path);
  result.err = ReadWhole(err_path);
  RemoveTree(dir);
  return result;
}

// ---- processes ----------------------------------------------------------------------------------

std::vector<ProcInfo> ListProcesses() {
  std::vector<ProcInfo> procs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = ReadWhole(entry.path().string() + "/stat");
    const std::size_t open = stat.find('(');
    const std::size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 > stat.size()) {
      continue;
    }
    ProcInfo p;
    p.pid = std::stoi(name);
    p.comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    rest >> p.state >> p.ppid >> p.pgid;
    if (!rest || p.state == 'Z' || p.state == 'X') continue;
    procs.push_back(std::move(p));
  }
  return procs;
}

std::vector<ProcInfo> ProcessGroupMembers(pid_t pgid) {
  std::vector<ProcInfo> out;
  for (ProcInfo& p : ListProcesses()) {
    if (p.pgid == pgid) out.push_back(std::move(p));
  }
  return out;
}

std::vector<pid_t> ChildProcessGroups(pid_t parent) {
  std::vector<pid_t> out;
  for (const ProcInfo& p : ListProcesses()) {
    if (p.ppid == parent && p.pgid == p.pid) out.push_back(p.pid);
  }
  return out;
}

}  // namespace clustermgr::test
