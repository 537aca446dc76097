// replication-sim: runs the deterministic replication simulation (test/sim/sim_world.h) over a
// range of seeds, or replays one.
//
//   replication-sim --seeds 200            seeds 1..200 (the normal test run)
//   replication-sim --seeds 10000 --first 1
//   replication-sim --seed 4711 --verbose  replay one seed, printing every step
//
// Data dirs go under $TMPDIR, by default /dev/shm when it exists.
// Exit status: 0 when every run passed, 1 when one failed (its seed and failure are printed,
// with the command that replays it), 2 on bad arguments.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "mgr/log/log.h"
#include "test/sim/sim_world.h"

namespace {

void Usage(std::ostream& out) {
  out << "usage: replication-sim [--seeds N] [--first SEED] [--seed SEED] [--replicas N]\n"
         "                       [--steps N] [--verbose]\n"
         "  --seeds N     run N seeds, from --first (default 1); default 200\n"
         "  --seed SEED   run that one seed (replay a failure)\n"
         "  --replicas N  replicas per run (default 3)\n"
         "  --steps N     scheduler steps per round of faults (default 100)\n"
         "  --verbose     print every step and the replicas' log\n";
}

bool ParseCount(const char* text, uint64_t* out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (*end != '\0' || text[0] == '-') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clustermgr;
  uint64_t seeds = 200, first = 1, replicas = 3, steps = 100;
  bool one = false, verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = true;
    if (arg == "--help" || arg == "-h") {
      Usage(std::cout);
      return 0;
    } else if (arg == "--verbose") {
      verbose = true;
      continue;
    } else if (arg == "--seeds") {
      ok = ParseCount(value, &seeds);
    } else if (arg == "--first") {
      ok = ParseCount(value, &first);
    } else if (arg == "--seed") {
      ok = ParseCount(value, &first);
      one = true;
    } else if (arg == "--replicas") {
      ok = ParseCount(value, &replicas) && replicas >= 2 && replicas <= 9;
    } else if (arg == "--steps") {
      ok = ParseCount(value, &steps);
    } else {
      std::cerr << "replication-sim: unknown argument " << arg << "\n";
      Usage(std::cerr);
      return 2;
    }
    if (!ok) {
      std::cerr << "replication-sim: " << arg << " needs a count"
                << (arg == "--replicas" ? " from 2 to 9" : "") << "\n";
      return 2;
    }
    ++i;
  }
  if (one) seeds = 1;
  // The replicas' data dirs are many and short-lived: on tmpfs when there is one (a run is then
  // CPU-bound), unless TMPDIR says otherwise.
  if (std::getenv("TMPDIR") == nullptr && std::filesystem::is_directory("/dev/shm")) {
    setenv("TMPDIR", "/dev/shm", 1);
  }
  mgr::SetLogLevel(verbose ? mgr::LogLevel::kInfo : mgr::LogLevel::kError);

  const auto started = std::chrono::steady_clock::now();
  uint64_t writes = 0, deletes = 0, crashes = 0, wipes = 0, restores = 0, snapshots = 0,
           collected = 0, settle_ms = 0;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    sim::SimOptions o;
    o.seed = seed;
    o.replicas = static_cast<int>(replicas);
    o.steps = static_cast<int>(steps);
    o.verbose = verbose;
    if (verbose) std::cout << "seed " << seed << ":\n";
    const sim::SimResult r = sim::RunSimulation(o);
    if (!r.ok) {
      std::cout << "FAILED seed " << seed << ": " << r.failure << "\n"
                << "replay: replication-sim --seed " << seed << " --replicas " << replicas
                << " --steps " << steps << " --verbose\n";
      return 1;
    }
    writes += r.writes;
    deletes += r.deletes;
    crashes += r.crashes;
    wipes += r.wipes;
    restores += r.restores;
    snapshots += r.snapshots;
    collected += r.collected;
    settle_ms = std::max(settle_ms, r.settle_ms);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "passed " << seeds << " seeds (" << first << ".." << first + seeds - 1 << ") in "
            << secs << " s: " << writes << " writes, " << deletes << " deletes, " << crashes
            << " crashes, " << wipes << " wipes, " << restores << " restores from backups, "
            << snapshots << " snapshots applied, " << collected
            << " tombstones collected; longest settle " << settle_ms << " ms simulated\n";
  return 0;
}
