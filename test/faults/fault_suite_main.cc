// fault-suite: random, seeded fault schedules against three clustermgrd instances in private
// network namespaces. See test/faults/schedule.h for what one schedule does and checks.
//
//   fault-suite [--seed N] [--schedules N] [--duration SECONDS] [--only K] [--keep]
//               [--keep-going] [--verbose]
//
// Prints its seed first; `--seed` replays the same fault schedules (`--only K` just schedule K).
// Exit: 0 every check passed, 1 a check failed (seed, schedule and history excerpt printed),
// 2 usage, 77 namespaces cannot be created here (not root / no CAP_NET_ADMIN).
#include <signal.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>

#include "clustermgr_version.h"
#include "test/faults/netlab.h"
#include "test/faults/schedule.h"
#include "tools/command_line.h"

namespace {

using clustermgr::faults::g_stop;

void OnSignal(int) { g_stop = true; }

// 77 = skip (ctest SKIP_RETURN_CODE), except under CI, where a suite that cannot run fails.
int Skip(const std::string& why) {
  const bool ci = std::getenv("CI") != nullptr && std::string(std::getenv("CI")) != "";
  std::cout << "fault-suite: " << (ci ? "FAIL (CI is set)" : "SKIP") << ": " << why << std::endl;
  return ci ? 1 : 77;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustermgr::faults;
  uint64_t seed = std::random_device{}();
  int schedules = 3;
  int duration = 20;
  int only = -1;
  bool keep = false;
  bool verbose = false;
  bool keep_going = false;  // run every schedule even after a failed one
  namespace po = boost::program_options;
  po::options_description desc("fault-suite options");
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("seed", po::value(&seed)->value_name("N"), "replay the schedules of this seed")
    ("schedules", po::value(&schedules)->default_value(schedules)->value_name("N"),
       "how many schedules to run")
    ("duration", po::value(&duration)->default_value(duration)->value_name("SECONDS"),
       "faults injected per schedule for this long")
    ("only", po::value(&only)->value_name("K"), "run schedule K alone")
    ("keep", po::bool_switch(&keep), "keep the daemons' dirs")
    ("keep-going", po::bool_switch(&keep_going), "run every schedule even after a failed one")
    ("verbose", po::bool_switch(&verbose), "follow each schedule");
  // clang-format on
  auto usage_error = [&](const std::string& why) {
    std::cerr << "fault-suite: " << why << " (see --help)\n";
    return 2;
  };
  try {
    po::variables_map vm;
    po::store(clustermgr::tools::ParseCommandLine(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << "usage: fault-suite [options]\n\n"
                << "Random, seeded fault schedules against three clustermgrd instances in "
                   "private network namespaces (root).\n\n"
                << desc << "\nfault kinds:\n";
      for (const auto& [kind, what] : FaultKinds()) {
        std::cout << "  " << kind << std::string(kind.size() < 14 ? 14 - kind.size() : 1, ' ')
                  << what << "\n";
      }
      std::cout << "\nexit status: 0 every check passed, 1 a check failed, 2 usage error, 77 "
                   "network namespaces cannot be created here.\n";
      return 0;
    }
    if (vm.count("version")) {
      std::cout << "fault-suite " CLUSTERMGR_VERSION "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    return usage_error(e.what());
  }
  if (schedules < 1 || duration < 1) {
    return usage_error("--schedules and --duration must be positive");
  }
  std::cout << "fault-suite seed=" << seed << " schedules=" << schedules << " duration=" << duration
            << "s" << std::endl;

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  if (geteuid() != 0) {
    return Skip("network namespaces need root (CAP_NET_ADMIN)");
  }
  const int stale = NetLab::RemoveStale();
  if (stale > 0) std::cout << "removed " << stale << " stale namespaces of earlier runs\n";
  int rc = 0;
  {
    NetLab lab;  // its destructor deletes the namespaces, whatever happens below
    if (NetResult r = lab.Create(3); !r.ok) {
      return Skip("cannot create network namespaces: " + r.error);
    }
    if (NetResult r = lab.EnterClientNamespace(); !r.ok) {
      return Skip(r.error);
    }
    std::cout << "namespaces " << lab.prefix() << "{br,m1,m2,m3,mach,cli} on 10.213.0.0/24\n"
              << "loss: " << lab.LossMechanism() << "; delay: " << lab.DelayMechanism()
              << std::endl;
    Tally total;
    int infra = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < schedules && !g_stop; ++k) {
      if (only >= 0 && k != only) continue;
      ScheduleOptions o;
      o.seed = seed * 1000003ULL + static_cast<uint64_t>(k);
      o.index = k;
      o.duration = std::chrono::seconds(duration);
      o.keep = keep;
      o.verbose = verbose;
      const auto s0 = std::chrono::steady_clock::now();
      ScheduleResult r = RunSchedule(lab, o);
      total.Add(r.tally);
      const auto secs =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - s0)
              .count();
      std::string faults;
      for (const auto& [kind, n] : r.tally.faults) faults += " " + kind + "=" + std::to_string(n);
      std::cout << "schedule " << k << ": " << (r.ok ? "ok" : "FAILED") << " in " << secs
                << "s; faults:" << faults << "; requests ack=" << r.tally.acknowledged
                << " refused=" << r.tally.refused << " unknown=" << r.tally.unknown
                << "; convergence " << r.tally.worst_convergence_ms << " ms" << std::endl;
      if (!r.ok) {
        if (r.infra_error) ++infra;
        std::cout << "FAILED: seed=" << seed << " schedule=" << k << " (replay: fault-suite --seed "
                  << seed << " --schedules " << schedules << " --duration " << duration
                  << " --only " << k << ")\nfault plan:\n"
                  << r.plan << r.failure << std::endl;
        rc = 1;
        if (!keep_going) break;
      }
    }
    const auto mins =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0)
            .count();
    std::string faults;
    for (const auto& [kind, n] : total.faults) faults += " " + kind + "=" + std::to_string(n);
    std::cout << "==== fault-suite summary (seed=" << seed << ", " << mins << " s)\n"
              << "schedules run: " << total.schedules << " (failed: " << total.failed << ")\n"
              << "faults:" << faults << "\n"
              << "requests: acknowledged=" << total.acknowledged << " refused=" << total.refused
              << " unknown=" << total.unknown << "\n"
              << "writes lost: " << total.writes_lost << "\n"
              << "jobs checked: " << total.jobs_checked << "\n"
              << "time with two token holders: " << total.dual_holder_ms << " ms\n"
              << "playbook runs checked: " << total.runs_checked
              << "; overlapping runs of different epochs: outside partitions="
              << total.overlaps_outside << ", inside partitions=" << total.overlaps_in_partitions
              << "\n"
              << "token held again after " << total.token_moves
              << " healed faults; worst: " << total.worst_token_move_ms << " ms\n"
              << "worst convergence after heal: " << total.worst_convergence_ms << " ms\n"
              << "duplicate side effects: outside partitions=" << total.duplicates_outside
              << ", inside partitions=" << total.duplicates_in_partitions << "\n"
              << "node fencing: runs fenced=" << total.fenced_checks
              << ", lower epoch after higher (check passed first)=" << total.stale_after_newer
              << ", violations=0 unless a schedule failed \"node fencing\"\n"
              << "loss mechanism: " << lab.LossMechanism() << "\n"
              << "delay mechanism: " << lab.DelayMechanism() << "\n"
              << "result: "
              << (g_stop    ? "INTERRUPTED"
                  : rc == 0 ? "PASS"
                            : "FAIL")
              << std::endl;
    if (g_stop && rc == 0) rc = 130;
  }
  return rc;
}
