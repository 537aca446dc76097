#include "test/faults/netlab.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "test/support/cluster.h"

namespace clustermgr::faults {
namespace {

using namespace std::chrono_literals;

// The absolute path of `name` from $PATH plus the sbin dirs (root's PATH may lack them).
std::string Which(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const std::string p = dir + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "/usr/sbin/" + name;
}

std::string Join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

NetResult NetLab::Run(const std::vector<std::string>& argv, const std::string& /*stdin_text*/) {
  const test::CommandResult r =
      test::RunCommand(Which(argv[0]), std::vector<std::string>(argv.begin() + 1, argv.end()), 20s);
  if (r.exit_code == 0) return {};
  return {false, Join(argv) + ": " +
                     (r.timed_out ? "timed out" : "exit " + std::to_string(r.exit_code)) + " " +
                     r.err + r.out};
}

int NetLab::RemoveStale() {
  const test::CommandResult r = test::RunCommand(Which("ip"), {"netns", "list"}, 10s);
  static const std::regex name_re("^(cmf([0-9]+)-[a-z0-9]+)");
  int removed = 0;
  std::set<pid_t> dead_pids;
  std::stringstream ss(r.out);
  std::string line;
  while (std::getline(ss, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, name_re)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(m[2].str()));
    if (pid == getpid()) continue;
    if (kill(pid, 0) == 0 || errno == EPERM) continue;  // its owner still runs
    // A run killed with SIGKILL left its daemons and agents running in there.
    KillProcessesInNs(m[1].str());
    if (Run({"ip", "netns", "del", m[1].str()}).ok) ++removed;
    dead_pids.insert(pid);
  }
  // Their run dirs too (FaultCluster names them clustermgr-faults-<pid>-*).
  const char* tmp = std::getenv("TMPDIR");
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(tmp && *tmp ? tmp : "/tmp", ec)) {
    const std::string name = e.path().filename().string();
    for (pid_t pid : dead_pids) {
      if (name.rfind("clustermgr-faults-" + std::to_string(pid) + "-", 0) == 0) {
        test::RemoveTree(e.path().string());
      }
    }
  }
  return removed;
}

NetResult NetLab::Create(int managers) {
  std::lock_guard lock(mu_);
  prefix_ = "cmf" + std::to_string(getpid()) + "-";
  std::vector<std::string> roles;
  for (int i = 1; i <= managers; ++i) roles.push_back("m" + std::to_string(i));
  roles.push_back("mach");
  roles.push_back("cli");
  const std::string br = prefix_ + "br";
  if (NetResult r = Run({"ip", "netns", "add", br}); !r.ok) return r;
  created_.push_back(br);
  auto in_br = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"ip", "-n", br});
    return Run(args);
  };
  if (NetResult r = in_br({"link", "add", "name", "br0", "type", "bridge"}); !r.ok) return r;
  if (NetResult r = in_br({"link", "set", "br0", "up"}); !r.ok) return r;
  for (std::size_t k = 0; k < roles.size(); ++k) {
    const std::string& role = roles[k];
    const std::string ns = prefix_ + role;
    const std::string addr = role == "mach"  ? MachineAddr()
                             : role == "cli" ? ClientAddr()
                                             : ManagerAddr(std::stoi(role.substr(1)));
    if (NetResult r = Run({"ip", "netns", "add", ns}); !r.ok) return r;
    created_.push_back(ns);
    const std::string port = "p-" + role;
    if (NetResult r = in_br(
            {"link", "add", "name", port, "type", "veth", "peer", "name", "eth0", "netns", ns});
        !r.ok) {
      return r;
    }
    links_.push_back(role);
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"ip", "-n", br, "link", "set", port, "master", "br0"},
             {"ip", "-n", br, "link", "set", port, "up"},
             {"ip", "-n", ns, "link", "set", "lo", "up"},
             {"ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
             {"ip", "-n", ns, "link", "set", "eth0", "up"}}) {
      if (NetResult r = Run(args); !r.ok) return r;
    }
  }
  return ProbeMechanisms();
}

int NetLab::KillProcessesIn(const std::string& role) { return KillProcessesInNs(prefix_ + role); }

int NetLab::KillProcessesInNs(const std::string& ns) {
  struct stat want {};
  if (stat(("/run/netns/" + ns).c_str(), &want) != 0) return 0;
  int killed = 0;
  for (const test::ProcInfo& p : test::ListProcesses()) {
    if (p.pid == getpid()) continue;
    struct stat st {};
    if (stat(("/proc/" + std::to_string(p.pid) + "/ns/net").c_str(), &st) != 0) continue;
    if (st.st_ino == want.st_ino && st.st_dev == want.st_dev) {
      if (kill(p.pid, SIGKILL) == 0) ++killed;
    }
  }
  return killed;
}

NetLab::~NetLab() {
  for (const auto& ns : created_) {
    if (ns.size() > prefix_.size()) KillProcessesIn(ns.substr(prefix_.size()));
  }
  for (auto it = created_.rbegin(); it != created_.rend(); ++it)
    (void)Run({"ip", "netns", "del", *it});
}

NetResult NetLab::EnterClientNamespace() {
  const std::string path = "/run/netns/" + prefix_ + "cli";
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {false, "open " + path + ": " + std::strerror(errno)};
  const int rc = setns(fd, CLONE_NEWNET);
  const int err = errno;
  close(fd);
  if (rc != 0) return {false, "setns " + path + ": " + std::strerror(err)};
  return {};
}

NetResult NetLab::ProbeMechanisms() {
  // Probe on the machines' link (nothing runs there yet), then clear it.
  const std::string br = prefix_ + "br";
  if (Run({"ip", "netns", "exec", br, "tc", "qdisc", "add", "dev", "p-mach", "root", "netem",
           "loss", "1%"})
          .ok) {
    netem_ = true;
    loss_mechanism_ = "tc netem loss";
    delay_mechanism_ = "tc netem delay";
  } else {
    NetResult nft = Run({"ip", "netns", "exec", br, "nft", "add", "table", "netdev", "probe"});
    if (nft.ok) {
      nft = Run({"ip", "netns", "exec", br, "nft", "add", "chain", "netdev", "probe", "in",
                 "{ type filter hook ingress device \"p-mach\" priority 0; policy accept; }"});
    }
    if (nft.ok) {
      nft = Run({"ip", "netns", "exec", br, "nft", "add", "rule", "netdev", "probe", "in", "numgen",
                 "random", "mod", "100", "<", "1", "drop"});
    }
    (void)Run({"ip", "netns", "exec", br, "nft", "delete", "table", "netdev", "probe"});
    if (nft.ok) loss_mechanism_ = "nftables netdev ingress drop (numgen random), both directions";
    if (Run({"ip", "netns", "exec", br, "tc", "qdisc", "add", "dev", "p-mach", "root", "tbf",
             "rate", "1mbit", "burst", "16kb", "latency", "200ms"})
            .ok) {
      delay_mechanism_ = "tc tbf rate limit (queueing delay), both directions";
    }
  }
  (void)Run({"ip", "netns", "exec", br, "tc", "qdisc", "del", "dev", "p-mach", "root"});
  return {};
}

NetResult NetLab::Isolate(const std::string& role) {
  std::lock_guard lock(mu_);
  return Run({"ip", "-n", prefix_ + "br", "link", "set", "p-" + role, "down"});
}

NetResult NetLab::ClearShaping(const std::string& role) {
  const std::string br = prefix_ + "br";
  const std::string ns = prefix_ + role;
  (void)Run({"ip", "netns", "exec", br, "tc", "qdisc", "del", "dev", "p-" + role, "root"});
  (void)Run({"ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root"});
  (void)Run({"ip", "netns", "exec", br, "nft", "delete", "table", "netdev", "fault_" + role});
  (void)Run({"ip", "netns", "exec", ns, "nft", "delete", "table", "netdev", "fault"});
  return {};
}

NetResult NetLab::Heal(const std::string& role) {
  std::lock_guard lock(mu_);
  ClearShaping(role);
  return Run({"ip", "-n", prefix_ + "br", "link", "set", "p-" + role, "up"});
}

NetResult NetLab::Loss(const std::string& role, int percent) {
  std::lock_guard lock(mu_);
  const std::string p = std::to_string(percent);
  if (netem_) {
    for (const auto& [ns, dev] :
         {std::pair{prefix_ + "br", "p-" + role}, std::pair{prefix_ + role, std::string("eth0")}}) {
      if (NetResult r = Run({"ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev,
                             "root", "netem", "loss", p + "%"});
          !r.ok) {
        return r;
      }
    }
    return {};
  }
  if (loss_mechanism_ == "none") return {false, "no loss mechanism on this kernel"};
  // Ingress of the bridge port = packets from the namespace; ingress of its eth0 = packets to it.
  for (const auto& [ns, table, dev] :
       {std::tuple{prefix_ + "br", "fault_" + role, "p-" + role},
        std::tuple{prefix_ + role, std::string("fault"), std::string("eth0")}}) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"nft", "add", "table", "netdev", table},
             {"nft", "add", "chain", "netdev", table, "in",
              "{ type filter hook ingress device \"" + dev + "\" priority 0; policy accept; }"},
             {"nft", "add", "rule", "netdev", table, "in", "numgen", "random", "mod", "100", "<", p,
              "drop"}}) {
      std::vector<std::string> full = {"ip", "netns", "exec", ns};
      full.insert(full.end(), args.begin(), args.end());
      if (NetResult r = Run(full); !r.ok) return r;
    }
  }
  return {};
}

NetResult NetLab::Delay(const std::string& role, int ms) {
  std::lock_guard lock(mu_);
  for (const auto& [ns, dev] :
       {std::pair{prefix_ + "br", "p-" + role}, std::pair{prefix_ + role, std::string("eth0")}}) {
    std::vector<std::string> args = {"ip",    "netns",   "exec", ns,  "tc",
                                     "qdisc", "replace", "dev",  dev, "root"};
    if (netem_) {
      args.insert(args.end(), {"netem", "delay", std::to_string(ms) + "ms"});
    } else if (delay_mechanism_ != "none") {
      // A slow link: small bursts pass, sustained traffic queues for up to `ms` (then drops).
      args.insert(args.end(),
                  {"tbf", "rate", "256kbit", "burst", "8kb", "latency", std::to_string(ms) + "ms"});
    } else {
      return {false, "no delay mechanism on this kernel"};
    }
    if (NetResult r = Run(args); !r.ok) return r;
  }
  return {};
}

}  // namespace clustermgr::faults
