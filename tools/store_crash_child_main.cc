// store-crash-child DIR ROUND THREADS SEED: the process test/store_crash_test.cc SIGKILLs.
//
// Opens the store in DIR and commits deltas from THREADS concurrent writers until killed (so
// their Commits group). Thread 0 writes as the store's own origin, continuing from the stored
// local seq; the others as fresh origins "crash-w<t>-r<ROUND>/0". Every delta sets the global
// "<origin>#<seq>" to "<seq>" (plus a few random node-var, host-group and job-log changes), and
// once Commit has returned ok, the line "<origin> <seq>\n" is written to stdout: an
// acknowledgement the test then expects to find after the crash. Exit status: 3 when the store
// does not open, 4 when a Commit fails (neither should happen), 2 on usage.
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crdt/cluster_state.h"
#include "crdt/hlc.h"
#include "store/store.h"
#include "tools/command_line.h"

namespace {

using namespace clustermgr;

std::mutex out_mu;

void Ack(const std::string& origin, uint64_t seq) {
  const std::string line = origin + " " + std::to_string(seq) + "\n";
  std::lock_guard lock(out_mu);
  // One write() per line (well under PIPE_BUF): a line is whole or absent when we die.
  if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::_Exit(5);
  }
}

void Writer(store::Store* st, std::string origin, uint64_t first_seq, crdt::HlcTimestamp floor,
            uint64_t seed) {
  std::mt19937_64 rng(seed);
  crdt::SystemClock physical;
  crdt::HybridClock clock(&physical);
  clock.RestoreAtLeast(floor);
  crdt::ClusterState local = st->State();
  for (uint64_t seq = first_seq;; ++seq) {
    const crdt::HlcTimestamp now = clock.Now();
    crdt::DeltaBuilder b(local, crdt::WriteTag{crdt::LwwStamp{0, now, origin}, seq});
    b.SetGlobal(origin + "#" + std::to_string(seq), std::to_string(seq));
    const std::string node = "node" + std::to_string(rng() % 20);
    switch (rng() % 4) {
      case 0:
        b.SetNodeVar(node, "v" + std::to_string(rng() % 3), std::to_string(rng()));
        break;
      case 1:
        b.AddHostGroup(node, rng() % 2 ? "service-master" : "service-worker");
        break;
      case 2:
        b.RemoveHostGroup(node, rng() % 2 ? "service-master" : "service-worker");
        break;
      default:
        b.PutJobLogChunk("job" + std::to_string(rng() % 3), rng() % 5, std::string(100, 'x'));
        break;
    }
    crdt::Delta delta{origin, seq, std::move(b).Take()};
    const uint64_t local_seq = origin == st->origin() ? seq : 0;
    if (Status s = st->Commit({delta}, now, local_seq); !s.ok()) {
      std::fprintf(stderr, "store-crash-child: commit %s:%llu: %s\n", origin.c_str(),
                   static_cast<unsigned long long>(seq), s.ToString().c_str());
      std::_Exit(4);
    }
    local.Join(delta.state);
    Ack(origin, seq);
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  std::string dir, round;
  int threads = 0;
  uint64_t seed = 0;
  po::options_description operands;
  operands.add_options()("dir", po::value(&dir)->required())(
      "round", po::value(&round)->required())("threads", po::value(&threads)->required())(
      "seed", po::value(&seed)->required());
  po::positional_options_description positional;
  positional.add("dir", 1).add("round", 1).add("threads", 1).add("seed", 1);
  try {
    po::variables_map vm;
    po::store(clustermgr::tools::ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc),
                                                  operands, &positional),
              vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store-crash-child: %s\nusage: store-crash-child DIR ROUND THREADS SEED\n",
                 e.what());
    return 2;
  }
  store::Options options;
  options.instance_name = "crash";
  auto opened = store::Store::Open(dir, options);
  if (!opened.ok()) {
    std::fprintf(stderr, "store-crash-child: %s\n", opened.status().ToString().c_str());
    return 3;
  }
  store::Store* st = opened->get();
  const store::Metadata meta = st->metadata();
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    if (t == 0) {
      // Own origin: the local seq survives restarts, so no seq is ever issued twice.
      writers.emplace_back(Writer, st, st->origin(), meta.local_seq + 1, meta.hlc_high_water, seed);
    } else {
      writers.emplace_back(Writer, st, "crash-w" + std::to_string(t) + "-r" + round + "/0", 1,
                           crdt::HlcTimestamp{}, seed + static_cast<uint64_t>(t));
    }
  }
  for (auto& w : writers) w.join();  // never: the writers loop until the process is killed
  return 0;
}
