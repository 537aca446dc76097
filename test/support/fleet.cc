#include "test/support/fleet.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <unordered_set>
#include <utility>

#include "net/testing/serf_fake_agent.h"
#include "test/support/cluster.h"
#include "test/support/process.h"

namespace clustermgr::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void Say(std::ostream* progress, const std::string& line) {
  if (progress) *progress << "fleet: " << line << std::endl;
}

// The q-quantile (0 < q <= 1) of `samples` by the nearest-rank method; 0 when empty.
double Quantile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
  return samples[std::clamp<std::size_t>(rank, 1, samples.size()) - 1];
}

// The resident set of process `pid` in MB (VmRSS), or -1 when unreadable.
double RssMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return -1;
}

// Waits until manager `i` lists every node of `names` in state `want`; returns how many it
// listed so in its last answer (for the error message).
bool InstanceLists(Cluster& cluster, std::size_t i, const std::unordered_set<std::string>& names,
                   net::NodeState want, std::string* last) {
  auto nodes = cluster.rpc(i).NodesGet();
  if (!nodes.ok()) {
    *last = cluster.manager(i).name() + ": " + nodes.status().message();
    return false;
  }
  std::size_t matching = 0;
  for (const net::NodeInfo& n : nodes.value())
    matching += n.state == want && names.count(n.name) != 0;
  *last = cluster.manager(i).name() + " lists " + std::to_string(matching) + " of " +
          std::to_string(names.size()) + " as " + std::string(net::ToString(want));
  return matching == names.size();
}

// Waits until every manager lists every node of `names` in state `want`. Instances are checked
// in turn, each until it does; the returned time is when the last one did.
Result<Clock::time_point> WaitForEveryInstance(Cluster& cluster,
                                               const std::unordered_set<std::string>& names,
                                               net::NodeState want,
                                               std::chrono::milliseconds timeout,
                                               std::chrono::milliseconds interval) {
  std::vector<bool> done(cluster.size(), false);
  Status s = Cluster::WaitUntil(
      "every instance lists " + std::to_string(names.size()) + " nodes as " +
          std::string(net::ToString(want)),
      [&](std::string* last) {
        for (std::size_t i = 0; i < cluster.size(); ++i) {
          if (!done[i] && !InstanceLists(cluster, i, names, want, last)) return false;
          done[i] = true;
        }
        return true;
      },
      timeout, interval);
  if (!s.ok()) return Status(s.code(), s.message() + "\n" + cluster.Diagnostics(1500));
  return Clock::now();
}

// Waits until every instance names the same token holder with quorum; returns its index.
Result<std::size_t> WaitForHolder(Cluster& cluster, std::chrono::milliseconds timeout) {
  std::size_t holder = 0;
  Status s = Cluster::WaitUntil(
      "a token holder every instance agrees on",
      [&](std::string* last) {
        std::string name;
        for (std::size_t i = 0; i < cluster.size(); ++i) {
          auto t = cluster.rpc(i).Token();
          if (!t.ok() || t.value().holder.empty() || !t.value().has_quorum) {
            *last =
                cluster.manager(i).name() + ": " + (t.ok() ? t.value().reason : t.status().message());
            return false;
          }
          if (!name.empty() && t.value().holder != name) return false;
          name = t.value().holder;
        }
        for (std::size_t i = 0; i < cluster.size(); ++i) {
          if (cluster.manager(i).name() == name) holder = i;
        }
        return true;
      },
      timeout, 50ms);
  if (!s.ok()) return Status(s.code(), s.message() + "\n" + cluster.Diagnostics(1500));
  return holder;
}

// The first instance that does not hold the token (the holder when alone).
std::size_t Follower(const Cluster& cluster, std::size_t holder) {
  return cluster.size() > 1 ? (holder + 1) % cluster.size() : holder;
}

// ---- real Serf agents -------------------------------------------------------------------------

// A machine: a bare `serf agent` process on its own loopback address.
struct RealAgent {
  std::string node;  // inventory name fleet-<i>
  std::unique_ptr<Process> process;
};

}  // namespace

std::string FleetSizeSuffix(std::size_t members) {
  if (members >= 1000 && members % 1000 == 0) return std::to_string(members / 1000) + "k";
  return std::to_string(members);
}

double FleetValue(const FleetFigures& figures, const std::string& key) {
  for (const FleetFigure& f : figures) {
    if (f.key == key) return f.value;
  }
  return -1;
}

Result<FleetFigures> RunRealSerfFleet(const RealSerfFleetOptions& options, std::ostream* progress) {
  ClusterOptions co;
  co.managers = options.managers;
  co.name_prefix = "fleet-mgr";
  co.log_level = "warn";
  auto started = Cluster::Start(co);
  if (!started.ok()) return started.status();
  Cluster& cluster = **started;
  auto holder = WaitForHolder(cluster, options.timeout);
  if (!holder.ok()) return holder.status();
  Say(progress, std::to_string(options.managers) + " instances up, token at " +
                    cluster.manager(*holder).name());

  // Every agent binds its own 127.1.x.y with the same two ports, free on 127.0.0.1 (so no
  // wildcard listener holds them either).
  const int bind_port = FreeLoopbackPort();
  const int rpc_port = FreeLoopbackPort();
  const std::string logs = cluster.dir() + "/fleet-agents";
  fs::create_directories(logs);
  std::vector<std::string> joins;
  for (std::size_t m = 0; m < cluster.size(); ++m) {
    joins.push_back("-join=" + cluster.manager(m).serf().bind_address());
  }
  std::vector<RealAgent> agents;
  std::unordered_set<std::string> all;
  const auto t_start = Clock::now();
  for (std::size_t i = 0; i < options.agents; ++i) {
    const std::string ip = "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    const std::string serial = std::to_string(i);
    ProcessOptions p;
    p.program = "serf";
    p.args = {"agent",
              "-profile=local",
              "-node=machine-fleet-" + serial,
              "-bind=" + ip + ":" + std::to_string(bind_port),
              "-rpc-addr=" + ip + ":" + std::to_string(rpc_port),
              "-log-level=warn",
              "-tag",
              "NodeLabel=fleet",
              "-tag",
              "NodeSerial=" + serial,
              "-tag",
              "NodeAddr=" + ip};
    p.args.insert(p.args.end(), joins.begin(), joins.end());
    p.output_path = logs + "/" + serial + ".log";
    // One scheduler thread per agent: hundreds of Go runtimes each sized for the whole host
    // starve one another (late probe answers read as failures) long before Serf's limits.
    p.env = {{"GOMAXPROCS", "1"}};
    std::string error;
    auto process = Process::Start(p, &error);
    if (!process) return Status(Code::kUnavailable, "serf agent " + serial + ": " + error);
    agents.push_back({"fleet-" + serial, std::move(process)});
    all.insert("fleet-" + serial);
  }
  Say(progress, std::to_string(options.agents) + " serf agents started in " +
                    std::to_string(Seconds(Clock::now() - t_start)) + " s");

  // Serf's convergence: every manager's agent lists every machine alive.
  Status converged = Cluster::WaitUntil(
      "every manager's Serf agent lists " + std::to_string(options.agents) + " machines alive",
      [&](std::string* last) {
        for (std::size_t m = 0; m < cluster.size(); ++m) {
          auto members = cluster.manager(m).serf().Members();
          if (!members.ok()) {
            *last = members.status().message();
            return false;
          }
          std::size_t alive = 0;
          for (const net::SerfMember& sm : *members) {
            auto label = sm.tags.find("NodeLabel");
            alive += sm.status == "alive" && label != sm.tags.end() && label->second == "fleet";
          }
          *last = cluster.manager(m).name() + "'s agent: " + std::to_string(alive) + " alive";
          if (alive < options.agents) return false;
        }
        return true;
      },
      options.timeout, options.agents > 50 ? 100ms : 20ms);  // a big list costs its agent
  if (!converged.ok()) return converged;
  const auto t_converged = Clock::now();
  Say(progress, "Serf converged after " + std::to_string(Seconds(t_converged - t_start)) + " s");

  auto discovered =
      WaitForEveryInstance(cluster, all, net::NodeState::kDiscovered, options.timeout, 20ms);
  if (!discovered.ok()) return discovered.status();
  const double after = std::max(0.0, Seconds(*discovered - t_converged));
  Say(progress, "every instance lists every machine Discovered " + std::to_string(after) +
                    " s after Serf converged");

  const auto leaving = static_cast<std::size_t>(
      std::max(1.0, std::round(options.leave_fraction * static_cast<double>(options.agents))));
  std::unordered_set<std::string> gone;
  const auto t_leave = Clock::now();
  for (std::size_t i = 0; i < leaving && i < agents.size(); ++i) {
    agents[i].process->Signal(SIGINT);  // a graceful leave
    gone.insert(agents[i].node);
  }
  auto departed =
      WaitForEveryInstance(cluster, gone, net::NodeState::kDisappeared, options.timeout, 20ms);
  if (!departed.ok()) return departed.status();
  const double leave_s = Seconds(*departed - t_leave);
  Say(progress, std::to_string(gone.size()) + " machines left; every instance lists them " +
                    "Disappeared after " + std::to_string(leave_s) + " s");

  for (RealAgent& a : agents) a.process->Kill();
  return FleetFigures{{"serf_agents", static_cast<double>(options.agents), "agents"},
                      {"serf_converged_s", Seconds(t_converged - t_start), "s"},
                      {"serf_discovered_after_converged_s", after, "s"},
                      {"serf_leave_detected_s", leave_s, "s"}};
}

namespace {

// A simulated machine as the stand-in agent reports it.
net::SerfMember SimulatedMember(std::size_t i) {
  net::SerfMember m;
  const std::string serial = std::to_string(i);
  m.name = "machine-sim-" + serial;
  m.addr = "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
           std::to_string(i & 255);
  m.port = 7946;
  m.status = "alive";
  m.tags = {{"NodeLabel", "sim"}, {"NodeSerial", serial}, {"NodeAddr", m.addr}};
  m.protocol_min = 1;
  m.protocol_max = 5;
  m.protocol_cur = 2;
  m.delegate_min = 2;
  m.delegate_max = 5;
  m.delegate_cur = 4;
  return m;
}

// Runs a commission of `names` to its end; checks it succeeded with a summary of every host.
Result<double> TimedCommission(Cluster& cluster, std::size_t holder,
                               const std::vector<std::string>& names,
                               std::chrono::milliseconds timeout) {
  const auto t0 = Clock::now();
  auto job = cluster.rpc(holder).Commission(names, "service-master", "");
  if (!job.ok()) return Status(Code::kInternal, "commission: " + job.status().message());
  auto detail = cluster.WaitForJobEnd(job.value().job_id, timeout, holder);
  if (!detail.ok()) return detail.status();
  const double s = Seconds(Clock::now() - t0);
  if (detail->job.status != net::JobStatus::kComplete) {
    return Status(Code::kInternal, "job " + job.value().job_id + " ended " +
                                       std::string(net::ToString(detail->job.status)) + ": " +
                                       detail->job.error);
  }
  std::size_t summarized = 0;
  for (const net::HostSummary& h : detail->job.hosts) summarized += h.ok > 0 && h.failed == 0;
  if (summarized != names.size()) {
    return Status(Code::kInternal, "job " + job.value().job_id + " summarizes " +
                                       std::to_string(summarized) + " hosts as ok, not " +
                                       std::to_string(names.size()));
  }
  return s;
}

// Starts a slow commission of `names`, cancels it once its first task runs and returns the time
// from the cancel request until the job ended Cancelled.
Result<double> TimedCancel(Cluster& cluster, std::size_t holder,
                           const std::vector<std::string>& names,
                           std::chrono::milliseconds timeout) {
  auto job = cluster.rpc(holder).Commission(names, "service-master", R"({"slow": 60})");
  if (!job.ok()) return Status(Code::kInternal, "commission: " + job.status().message());
  const std::string id = job.value().job_id;
  if (Status s = cluster.WaitForLogLine(id, "TASK [", timeout, holder); !s.ok()) return s;
  const auto t0 = Clock::now();
  auto cancelled = cluster.rpc(holder).JobCancel(id);
  if (!cancelled.ok()) return Status(Code::kInternal, "job cancel: " + cancelled.status().message());
  auto detail = cluster.WaitForJobEnd(job.value().job_id, timeout, holder);
  if (!detail.ok()) return detail.status();
  if (detail->job.status != net::JobStatus::kCancelled) {
    return Status(Code::kInternal, "cancelled job " + id + " ended " +
                                       std::string(net::ToString(detail->job.status)));
  }
  return Seconds(Clock::now() - t0);
}

}  // namespace

Result<FleetFigures> RunSimulatedFleet(const SimulatedFleetOptions& options,
                                       std::ostream* progress) {
  const std::string S = FleetSizeSuffix(options.members);
  std::vector<net::SerfMember> managers;
  for (std::size_t i = 0; i < options.managers; ++i) {
    net::SerfMember m;
    m.name = "sim-mgr-" + std::to_string(i + 1);
    m.addr = "127.0.0.1";
    m.port = static_cast<uint16_t>(7000 + i);
    m.status = "alive";
    m.tags = {{"role", "clustermgr"}};
    managers.push_back(m);
  }
  auto fake = net::FakeSerfAgent::Start({"", managers.front().name});
  if (!fake.ok()) return Status(Code::kUnavailable, fake.status().message());
  net::FakeSerfAgent& agent = **fake;
  agent.SetMembers(managers);
  std::map<std::string, std::string> endpoints{{managers.front().name, agent.address()}};
  for (std::size_t i = 1; i < managers.size(); ++i) {
    auto e = agent.AddEndpoint(managers[i].name);
    if (!e.ok()) return Status(Code::kUnavailable, e.status().message());
    endpoints[managers[i].name] = *e;
  }

  ClusterOptions co;
  co.managers = options.managers;
  co.name_prefix = "sim-mgr";
  co.log_level = "warn";
  co.serf_rpc = [&endpoints](const std::string& name) { return endpoints.at(name); };
  co.daemon_args = {"--ansible-forks=" + std::to_string(options.forks)};
  co.playbook_dir = options.playbook_dir;
  auto started = Cluster::Start(co);
  if (!started.ok()) return started.status();
  Cluster& cluster = **started;
  for (std::size_t i = 0; i < cluster.size(); ++i) cluster.rpc(i).set_timeout(30s);
  auto holder = WaitForHolder(cluster, options.timeout);
  if (!holder.ok()) return holder.status();
  const std::size_t follower = Follower(cluster, *holder);
  Say(progress, std::to_string(options.managers) + " instances up on the stand-in, token at " +
                    cluster.manager(*holder).name());

  // The storm: the members join in storm_batches records spread evenly over storm_window.
  std::unordered_set<std::string> all;
  const std::size_t batches = std::max<std::size_t>(1, options.storm_batches);
  const auto t_storm = Clock::now();
  std::size_t next = 0;
  for (std::size_t b = 0; b < batches; ++b) {
    std::this_thread::sleep_until(t_storm + options.storm_window * b / batches);  // pacing
    net::SerfMemberEvent join{net::SerfEventType::kMemberJoin, "member-join", {}};
    const std::size_t end = options.members * (b + 1) / batches;
    for (; next < end; ++next) {
      join.members.push_back(SimulatedMember(next));
      all.insert("sim-" + std::to_string(next));
    }
    agent.ApplyMemberEvent(join);
  }
  const auto t_last = Clock::now();
  Say(progress, std::to_string(options.members) + " joins sent in " +
                    std::to_string(Seconds(t_last - t_storm)) + " s");
  const auto interval = options.members > 2000 ? 100ms : 20ms;
  auto replicated =
      WaitForEveryInstance(cluster, all, net::NodeState::kDiscovered, options.timeout, interval);
  if (!replicated.ok()) return replicated.status();
  const double storm_s = Seconds(*replicated - t_last);
  Say(progress, "every instance lists all " + std::to_string(options.members) + " nodes " +
                    std::to_string(storm_s) + " s after the last join");

  FleetFigures figures{{"storm_" + S + "_replicated_s", storm_s, "s"}};
  std::vector<double> list_ms;
  for (std::size_t k = 0; k < options.read_samples; ++k) {
    const auto t0 = Clock::now();
    auto nodes = cluster.rpc(follower).NodesGet();
    if (!nodes.ok()) return Status(Code::kInternal, "nodes get: " + nodes.status().message());
    if (nodes.value().size() != options.members) {
      return Status(Code::kInternal, "nodes get listed " + std::to_string(nodes.value().size()));
    }
    list_ms.push_back(Millis(Clock::now() - t0));
  }
  std::vector<double> one_ms;
  std::mt19937 rng(1);
  for (std::size_t k = 0; k < options.read_samples; ++k) {
    const std::string name = "sim-" + std::to_string(rng() % options.members);
    const auto t0 = Clock::now();
    auto node = cluster.rpc(follower).NodeGet(name);
    if (!node.ok()) return Status(Code::kInternal, "node get: " + node.status().message());
    one_ms.push_back(Millis(Clock::now() - t0));
  }
  figures.push_back({"nodes_get_p50_ms_" + S, Quantile(list_ms, 0.50), "ms"});
  figures.push_back({"nodes_get_p99_ms_" + S, Quantile(list_ms, 0.99), "ms"});
  figures.push_back({"node_get_p99_ms_" + S, Quantile(one_ms, 0.99), "ms"});
  double rss = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    rss = std::max(rss, RssMb(cluster.manager(i).pid()));
  }
  figures.push_back({"rss_mb_" + S, rss, "MB"});
  Say(progress, "nodes get p99 " + std::to_string(figures[2].value) + " ms, node get p99 " +
                    std::to_string(figures[3].value) + " ms, RSS " + std::to_string(rss) + " MB");

  ManagerInstance& restarted = cluster.manager(follower);
  restarted.Stop();
  const auto t_restart = Clock::now();
  if (Status s = restarted.Start(options.timeout); !s.ok()) return s;
  Status back = Cluster::WaitUntil(
      restarted.name() + " lists every node after its restart",
      [&](std::string* last) {
        return InstanceLists(cluster, follower, all, net::NodeState::kDiscovered, last);
      },
      options.timeout, interval);
  if (!back.ok()) return back;
  figures.push_back({"restart_s_" + S, Seconds(Clock::now() - t_restart), "s"});
  Say(progress, restarted.name() + " restarted in " + std::to_string(figures.back().value) + " s");

  if (options.job_hosts > 0) {
    if (2 * options.job_hosts > options.members) {
      return Status(Code::kInvalidArgument, "the jobs need 2 * job_hosts simulated members");
    }
    std::vector<std::string> first;
    std::vector<std::string> second;
    for (std::size_t i = 0; i < options.job_hosts; ++i) {
      first.push_back("sim-" + std::to_string(i));
      second.push_back("sim-" + std::to_string(options.job_hosts + i));
    }
    // The restart above may have moved the token (a holder refuses new jobs once a newer epoch
    // is recorded): the jobs go to the holder every instance agrees on now.
    holder = WaitForHolder(cluster, options.timeout);
    if (!holder.ok()) return holder.status();
    auto job_s = TimedCommission(cluster, *holder, first, options.timeout);
    if (!job_s.ok()) return job_s.status();
    figures.push_back({"job_hosts", static_cast<double>(options.job_hosts), "hosts"});
    figures.push_back({"job_s", *job_s, "s"});
    Say(progress, "commission of " + std::to_string(options.job_hosts) + " hosts took " +
                      std::to_string(*job_s) + " s");
    auto cancel_s = TimedCancel(cluster, *holder, second, options.timeout);
    if (!cancel_s.ok()) return cancel_s.status();
    figures.push_back({"job_cancel_s", *cancel_s, "s"});
    Say(progress, "cancel of a running " + std::to_string(options.job_hosts) + "-host job took " +
                      std::to_string(*cancel_s) + " s");
  }
  return figures;
}

}  // namespace clustermgr::test
