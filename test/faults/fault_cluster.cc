#include "test/faults/fault_cluster.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "net/rpc_client.h"
#include "net/serf_client.h"
#include "test/support/cluster.h"

namespace clustermgr::faults {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// libfaketime's build for multi-threaded programs (Debian package libfaketime).
constexpr const char* kFaketimeLibrary = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

std::string Tail(const std::string& path, std::size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  const std::string all = s.str();
  return all.size() > bytes ? "[...]" + all.substr(all.size() - bytes) : all;
}

// A process started in namespace `ns` through `ip netns exec` (which execs the program: the
// Process's pid and process group are the program's own).
std::unique_ptr<test::Process> StartIn(const std::string& ns, const std::string& program,
                                       const std::vector<std::string>& args, const std::string& log,
                                       std::map<std::string, std::string> env, std::string* error) {
  test::ProcessOptions p;
  p.program = "ip";
  p.args = {"netns", "exec", ns, program};
  p.args.insert(p.args.end(), args.begin(), args.end());
  p.output_path = log;
  p.env = std::move(env);
  return test::Process::Start(p, error);
}

}  // namespace

// ---- NsAgent -----------------------------------------------------------------------------------

NsAgent::NsAgent(std::string ns, std::string name, std::string addr, int bind_port, int rpc_port,
                 std::vector<std::pair<std::string, std::string>> tags, std::string log_path)
    : ns_(std::move(ns)),
      name_(std::move(name)),
      addr_(std::move(addr)),
      bind_port_(bind_port),
      rpc_port_(rpc_port),
      tags_(std::move(tags)),
      log_path_(std::move(log_path)) {}

NsAgent::~NsAgent() { Kill(); }

void NsAgent::Kill() {
  if (process_) process_->Kill();
}

bool NsAgent::Join(const std::vector<std::string>& addresses) {
  net::SerfClientOptions o;
  o.address = rpc_address();
  o.connect_timeout = 1s;
  o.request_timeout = 5s;
  auto client = net::SerfClient::Connect(o);
  if (!client.ok()) return false;
  auto joined = client.value()->Join(addresses);
  return joined.ok() && joined.value() > 0;
}

bool NsAgent::Start(const std::vector<std::string>& join, std::string* error,
                    std::chrono::milliseconds timeout) {
  Kill();
  std::vector<std::string> args = {"agent",
                                   "-profile=local",
                                   "-node=" + name_,
                                   "-bind=" + gossip_address(),
                                   "-rpc-addr=" + rpc_address(),
                                   "-log-level=info"};
  for (const auto& [k, v] : tags_) {
    args.push_back("-tag");
    args.push_back(k + "=" + v);
  }
  for (const auto& j : join) args.push_back("-join=" + j);
  std::string why;
  process_ = StartIn(ns_, "serf", args, log_path_, {}, &why);
  if (!process_) {
    *error = "serf agent " + name_ + ": " + why;
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  net::SerfClientOptions o;
  o.address = rpc_address();
  o.connect_timeout = 300ms;
  o.request_timeout = 2s;
  while (Clock::now() < deadline) {
    if (!process_->Running()) {
      *error = "serf agent " + name_ + " " +
               test::Process::DescribeStatus(*process_->exit_status()) + ":\n" +
               Tail(log_path_, 2000);
      return false;
    }
    auto client = net::SerfClient::Connect(o);
    if (client.ok()) {
      auto members = client.value()->Members();
      std::size_t alive = 0;
      if (members.ok()) {
        for (const auto& m : members.value()) alive += m.status == "alive";
      }
      if (alive >= (join.empty() ? 1u : 2u)) return true;
    }
    std::this_thread::sleep_for(100ms);  // polling the agent's RPC, with a deadline
  }
  *error = "serf agent " + name_ + " not ready within " + net::FormatDuration(timeout) + ":\n" +
           Tail(log_path_, 2000);
  return false;
}

// ---- NsInstance --------------------------------------------------------------------------------

NsInstance::NsInstance(int index, std::string ns, std::string dir,
                       std::vector<std::string> base_args)
    : index_(index),
      ns_(std::move(ns)),
      name_("m" + std::to_string(index)),
      dir_(std::move(dir)),
      data_dir_(dir_ + "/data"),
      home_dir_(dir_ + "/home"),
      rpc_url_("tcp://" + NetLab::ManagerAddr(index) + ":9007"),
      base_args_(std::move(base_args)) {
  fs::create_directories(home_dir_);
  agent_ = std::make_unique<NsAgent>(
      ns_, name_, NetLab::ManagerAddr(index), 7946, 7373,
      std::vector<std::pair<std::string, std::string>>{{"role", "clustermgr"}}, dir_ + "/serf.log");
}

NsInstance::~NsInstance() {
  Kill();
  if (mounted_) ::umount2(data_dir_.c_str(), MNT_DETACH);
}

bool NsInstance::MountDataDir(int mib, std::string* error) {
  fs::create_directories(data_dir_);
  const std::string opts = "size=" + std::to_string(mib) + "m,mode=0700";
  if (::mount("tmpfs", data_dir_.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
    *error = "mount tmpfs on " + data_dir_ + ": " + std::strerror(errno);
    return false;
  }
  mounted_ = true;
  return true;
}

void NsInstance::SetClockOffset(const std::string& spec) {
  const std::string file = dir_ + "/faketime";
  {
    std::ofstream out(file + ".new", std::ios::trunc);
    out << spec << "\n";
  }
  fs::rename(file + ".new", file);  // never a half-written spec
}

void NsInstance::FillDisk() {
  const int fd = ::open((data_dir_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return;
  const std::string chunk(1 << 20, 'f');
  while (::write(fd, chunk.data(), chunk.size()) > 0) {
  }
  const std::string small(4096, 'f');  // the last partial megabyte too
  while (::write(fd, small.data(), small.size()) > 0) {
  }
  ::close(fd);
}

void NsInstance::FreeDisk() { ::unlink((data_dir_ + "/filler").c_str()); }

void NsInstance::Kill() {
  if (process_) process_->Kill();
}

std::string NsInstance::ExitText() {
  if (!process_) return "never started";
  if (process_->Running()) return "is running";
  return test::Process::DescribeStatus(*process_->exit_status());
}

void NsInstance::Wipe() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir_, ec)) fs::remove_all(entry.path(), ec);
}

std::string NsInstance::LogTail(std::size_t bytes) const { return Tail(log_path(), bytes); }

bool NsInstance::Start(std::string* error, const std::vector<std::string>& extra,
                       std::chrono::milliseconds timeout) {
  if (Running()) return true;
  const std::string addr = NetLab::ManagerAddr(index_);
  std::vector<std::string> args = {"--name=" + name_,
                                   "--data-dir=" + data_dir_,
                                   "--rpc-bind=" + rpc_url_,
                                   "--gossip-bind=tcp://" + addr + ":9008",
                                   "--serf-rpc=" + agent_->rpc_address(),
                                   "--insecure"};
  args.insert(args.end(), base_args_.begin(), base_args_.end());
  args.insert(args.end(), extra.begin(), extra.end());
  std::string why;
  if (!fs::exists(dir_ + "/faketime")) SetClockOffset("+0");
  process_ = StartIn(ns_, test::BinDir() + "/clustermgrd", args, log_path(),
                     {{"HOME", home_dir_},
                      {"LD_PRELOAD", kFaketimeLibrary},
                      {"FAKETIME_TIMESTAMP_FILE", dir_ + "/faketime"},
                      {"FAKETIME_CACHE_DURATION", "1"},
                      {"FAKETIME_DONT_FAKE_MONOTONIC", "1"}},
                     &why);
  if (!process_) {
    *error = "clustermgrd " + name_ + ": " + why;
    return false;
  }
  net::RpcClient probe(rpc_url_,
                       net::RpcClient::Options{300ms, net::kMaxReplyBytes, "", std::nullopt});
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!process_->Running()) {
      *error = "clustermgrd " + name_ + " " +
               test::Process::DescribeStatus(*process_->exit_status()) + " during start:\n" +
               LogTail();
      return false;
    }
    if (probe.Status().ok()) return true;
  }
  *error = "clustermgrd " + name_ + " did not answer within " + net::FormatDuration(timeout) +
           ":\n" + LogTail();
  return false;
}

// ---- FaultCluster ------------------------------------------------------------------------------

std::unique_ptr<FaultCluster> FaultCluster::Start(NetLab& lab, int managers, int machines,
                                                  bool keep, std::string* error) {
  std::unique_ptr<FaultCluster> c(new FaultCluster());
  // The pid in the name lets a later run remove it should this one be SIGKILLed.
  c->dir_ = test::MakeTempDir("clustermgr-faults-" + std::to_string(getpid()));
  c->keep_ = keep;
  if (c->dir_.empty()) {
    *error = "cannot create a temp dir";
    return nullptr;
  }
  c->marker_dir_ = c->dir_ + "/markers";
  fs::create_directories(c->marker_dir_);
  const nlohmann::json vars = {
      {"ansible_connection", "local"}, {"marker_dir", c->marker_dir_}, {"busy", 1}};
  const std::vector<std::string> base = {"--playbook-dir=" + test::TestPlaybookDir(),
                                         "--ansible-roles-dir=" + test::ShippedRolesDir(),
                                         "--node-fencing=require",
                                         "--extra-vars=" + vars.dump(),
                                         "--expect=" + std::to_string(managers),
                                         "--token-settle-ms=1500",
                                         "--anti-entropy-ms=300",
                                         "--delta-log-limit=40",
                                         "--log-level=info"};
  for (int i = 1; i <= managers; ++i) {
    const std::string idir = c->dir_ + "/m" + std::to_string(i);
    fs::create_directories(idir);
    c->instances_.push_back(
        std::make_unique<NsInstance>(i, lab.Ns("m" + std::to_string(i)), idir, base));
    if (!c->instances_.back()->MountDataDir(64, error)) return nullptr;
  }
  c->machines_ns_ = lab.Ns("mach");
  for (std::size_t i = 0; i < c->instances_.size(); ++i) {
    std::vector<std::string> join;
    if (i > 0) join.push_back(c->instances_[0]->agent().gossip_address());
    if (!c->instances_[i]->agent().Start(join, error)) return nullptr;
  }
  std::vector<std::string> all;
  for (auto& in : c->instances_) all.push_back(in->agent().gossip_address());
  for (int k = 1; k <= machines; ++k) {
    const std::string serial = std::to_string(k);
    c->machine_names_.push_back("fs-" + serial);
    c->machines_.push_back(std::make_unique<NsAgent>(
        lab.Ns("mach"), "machine-fs-" + serial, NetLab::MachineAddr(), 8000 + k, 8100 + k,
        std::vector<std::pair<std::string, std::string>>{
            {"NodeLabel", "fs"}, {"NodeSerial", serial}, {"NodeAddr", "10.213.1." + serial}},
        c->dir_ + "/machine-" + serial + ".log"));
    if (!c->machines_.back()->Start(all, error)) return nullptr;
  }
  for (auto& in : c->instances_) {
    if (!in->Start(error)) return nullptr;
  }
  return c;
}

FaultCluster::~FaultCluster() {
  for (auto& in : instances_) in->Kill();
  instances_.clear();
  machines_.clear();
  if (keep_) {
    std::fprintf(stderr, "[fault-suite] kept %s\n", dir_.c_str());
  } else if (!dir_.empty()) {
    test::RemoveTree(dir_);
  }
}

std::vector<std::string> FaultCluster::MachineNames() const { return machine_names_; }

bool FaultCluster::StartRogue(const std::string& instance, const std::string& epoch,
                              std::string* error) {
  StopRogue();
  ++rogues_;
  std::vector<std::string> all;
  for (auto& in : instances_) all.push_back(in->agent().gossip_address());
  rogue_ = std::make_unique<NsAgent>(machines_ns_, "rogue-" + std::to_string(rogues_),
                                     NetLab::MachineAddr(), 8090, 8190,
                                     std::vector<std::pair<std::string, std::string>>{
                                         {"role", "clustermgr"},
                                         {"instance", instance},
                                         {"epoch", epoch},
                                         {"rpc", "tcp://" + NetLab::MachineAddr() + ":9"}},
                                     dir_ + "/rogue-" + std::to_string(rogues_) + ".log");
  return rogue_->Start(all, error);
}

void FaultCluster::StopRogue() { rogue_.reset(); }

std::vector<std::string> FaultCluster::OtherAgents(std::size_t i) const {
  std::vector<std::string> out;
  for (std::size_t k = 0; k < instances_.size(); ++k) {
    if (k != i) out.push_back(instances_[k]->agent().gossip_address());
  }
  return out;
}

}  // namespace clustermgr::faults
