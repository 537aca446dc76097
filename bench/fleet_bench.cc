// fleet_bench: clustermgr with a fleet of machines on this machine (the scenarios are in
// test/support/fleet.h). Plain program; prints each figure as it is measured and, with
// --out-dir, writes fleet.md and fleet.csv (key,value,unit) there (scripts/bench-fleet.sh draws
// the chart from the CSV).
//
//   fleet_bench [--agents N (200)] [--members N (10000)] [--storm-seconds S (10)]
//               [--job-hosts N (500)] [--forks N (50)] [--instances N (3)]
//               [--phase-seconds S (300)] [--out-dir DIR]
//
// --agents 0 skips the real Serf agents (only the simulated fleet runs); --job-hosts 0 skips the
// jobs.
//
// clustermgrd comes from this program's directory, `serf` and `ansible-playbook` from $PATH.
// Everything runs on loopback in temp dirs removed at the end.
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "bench/bench_support.h"
#include "test/support/cluster.h"
#include "test/support/fleet.h"

namespace {

using namespace clustermgr;
using namespace std::chrono_literals;

struct Options {
  std::size_t agents = 200;
  std::size_t members = 10'000;
  double storm_seconds = 10;
  std::size_t job_hosts = 500;
  int forks = 50;
  std::size_t instances = 3;
  double phase_seconds = 300;
  std::string out_dir;
};

Options Parse(int argc, char** argv) {
  Options o;
  namespace po = boost::program_options;
  po::options_description desc("fleet_bench options");
  // clang-format off
  desc.add_options()
    ("agents", po::value(&o.agents)->default_value(o.agents),
       "real serf agents as machines; 0: none (only the simulated fleet)")
    ("members", po::value(&o.members)->default_value(o.members),
       "simulated members served by the Serf RPC stand-in")
    ("storm-seconds", po::value(&o.storm_seconds)->default_value(o.storm_seconds),
       "the simulated members join within this many seconds")
    ("job-hosts", po::value(&o.job_hosts)->default_value(o.job_hosts),
       "hosts of the commission job (and of the cancelled one); 0: no jobs")
    ("forks", po::value(&o.forks)->default_value(o.forks), "clustermgrd --ansible-forks")
    ("instances", po::value(&o.instances)->default_value(o.instances), "clustermgrd instances")
    ("phase-seconds", po::value(&o.phase_seconds)->default_value(o.phase_seconds),
       "the longest each phase may take (e.g. Serf's convergence) before the bench gives up")
    ("out-dir", po::value(&o.out_dir), "where fleet.md and fleet.csv go");
  // clang-format on
  bench::ParseFlags(argc, argv, "fleet_bench", desc);
  if (o.members < 1 || o.storm_seconds <= 0 || o.instances < 1 || o.forks < 0 ||
      2 * o.job_hosts > o.members) {
    std::fprintf(stderr,
                 "fleet_bench: counts must be positive and --members at least 2 * --job-hosts\n");
    std::exit(2);
  }
  // Checked before the scenarios run (they take minutes): the results must have a home.
  if (!o.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    if (ec || ::access(o.out_dir.c_str(), W_OK) != 0) {
      std::fprintf(stderr, "fleet_bench: cannot create or write --out-dir %s: %s\n",
                   o.out_dir.c_str(),
                   (ec ? ec.message() : std::string(std::strerror(errno))).c_str());
      std::exit(2);
    }
  }
  return o;
}

// CMAKE_BUILD_TYPE of the build this program comes from ("?" when unknown).
std::string BuildType() {
  std::ifstream in(bench::BinDir() + "/../CMakeCache.txt");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("CMAKE_BUILD_TYPE:", 0) == 0) return line.substr(line.find('=') + 1);
  }
  return "?";
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// What bounds each figure, for the notes under the table.
const std::map<std::string, std::string>& Limits() {
  static const std::map<std::string, std::string> kLimits = {
      {"serf_agents", "Go runtimes answering probes in time on two cores (GOMAXPROCS=1 each)"},
      {"serf_discovered_after_converged_s",
       "the Serf event stream to each instance, then the token holder's write and gossip"},
      {"serf_leave_detected_s", "Serf's leave broadcast among the agents, then the same path"},
      {"nodes_get_p50_ms_10k",
       "encoding the reply and the client's decode of it (bench/node_reads_bench.cc)"},
      {"nodes_get_p99_ms_10k", "the same, plus waiting for a core: the machine's other work"},
      {"node_get_p99_ms_10k", "the RPC round trip (the node's form is ready)"},
      {"rss_mb_10k", "the state held in memory (every node record) plus the store's caches"},
      {"storm_10k_replicated_s", "the holder's durable writes (fsync) and the peers' gossip"},
      {"job_s", "ansible-playbook itself: forks on two cores"},
      {"job_cancel_s", "ansible's workers exiting after SIGTERM"},
  };
  return kLimits;
}

int Main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string load_at_start = LoadAverage();
  const std::string build_type = BuildType();
  std::printf("clustermgrd from %s (%s build); load average %s\n", bench::BinDir().c_str(),
              build_type.c_str(), load_at_start.c_str());

  test::FleetFigures figures;
  if (o.agents > 0) {
    test::RealSerfFleetOptions real;
    real.agents = o.agents;
    real.managers = o.instances;
    real.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.phase_seconds * 1000));
    auto real_figures = test::RunRealSerfFleet(real, &std::cout);
    if (!real_figures.ok()) bench::Die("real serf agents: " + real_figures.status().message());
    figures.insert(figures.end(), real_figures->begin(), real_figures->end());
  }

  test::SimulatedFleetOptions sim;
  sim.members = o.members;
  sim.managers = o.instances;
  sim.storm_window = std::chrono::milliseconds(static_cast<int64_t>(o.storm_seconds * 1000));
  sim.job_hosts = o.job_hosts;
  sim.forks = o.forks;
  sim.playbook_dir = test::SourceDir() + "/bench/playbooks";  // trivial ones
  sim.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.phase_seconds * 1000));
  auto sim_figures = test::RunSimulatedFleet(sim, &std::cout);
  if (!sim_figures.ok()) bench::Die("simulated fleet: " + sim_figures.status().message());
  figures.insert(figures.end(), sim_figures->begin(), sim_figures->end());
  const std::string load_at_end = LoadAverage();

  std::printf("\n%-36s %12s  %s\n", "key", "value", "unit");
  for (const auto& f : figures) {
    std::printf("%-36s %12.3f  %s\n", f.key.c_str(), f.value, f.unit.c_str());
  }
  if (o.out_dir.empty()) return 0;

  std::ofstream csv(o.out_dir + "/fleet.csv");
  csv << "key,value,unit\n";
  for (const auto& f : figures) csv << f.key << "," << f.value << "," << f.unit << "\n";
  std::ofstream md(o.out_dir + "/fleet.md");
  char when[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  utsname u{};
  uname(&u);
  md << "# clustermgr with a fleet (scripts/bench-fleet.sh)\n\n"
     << when << ", " << u.nodename << " (" << std::thread::hardware_concurrency() << " cores), "
     << build_type << " build, load average " << load_at_start << " at the start, " << load_at_end
     << " at the end. " << o.instances << " clustermgrd instances; " << o.agents
     << " real `serf agent -profile=local` processes as machines; a Serf RPC stand-in serving "
     << o.members << " members joining within " << o.storm_seconds << " s; jobs of " << o.job_hosts
     << " hosts with `--ansible-forks " << o.forks
     << "`, a local connection and the trivial playbooks of bench/playbooks.\n\n"
     << "| key | value | unit | what limits it |\n|---|---:|---|---|\n";
  for (const auto& f : figures) {
    auto limit = Limits().find(f.key);
    char value[32];
    std::snprintf(value, sizeof value, "%.3f", f.value);
    md << "| " << f.key << " | " << value << " | " << f.unit << " | "
       << (limit == Limits().end() ? "" : limit->second) << " |\n";
  }
  csv.close();
  md.close();
  if (!csv || !md) bench::Die("cannot write fleet.md or fleet.csv in " + o.out_dir);
  std::printf("wrote %s/fleet.md and fleet.csv\n", o.out_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clustermgr::bench::RunMain([&] { return Main(argc, argv); });
}
