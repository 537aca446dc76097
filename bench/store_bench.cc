// store_bench: figures for the durable store (plain program; prints what it measures).
//
//   store_bench [--dir DIR] [--seconds S]
//
// 1. Open+load time of a store holding 100,000 global extra-vars and 10,000 nodes (inventory
//    record, one host-group and three node vars each), with a full 10,000-delta log of the own
//    origin. The state is written as snapshot chunks, the way a new instance restores it from
//    peers, then the log is filled with small deltas.
// 2. Synced single writes per second: one Commit of a one-entry delta at a time.
// 3. Group-committed writes per second with 8 concurrent writers, and calls per batch.
//
// Uses a temp dir (removed at the end) unless --dir is given.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "crdt/cluster_state.h"
#include "store/store.h"
#include "base/testing/temp_dir.h"

namespace {

using namespace clustermgr;
using bench::Clock;
using bench::Tag;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "store_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

std::unique_ptr<store::Store> Open(const std::string& dir, bool sync) {
  store::Options o;
  o.instance_name = "bench";
  o.sync = sync;
  auto s = store::Store::Open(dir, o);
  Check(s.status(), "open");
  return std::move(*s);
}

void Populate(const std::string& dir) {
  auto st = Open(dir, /*sync=*/false);
  bench::PrefillInventory(*st, 100'000, 10'000);
  // The own origin's log, full: 10,000 small deltas.
  const std::string me = st->origin();
  std::vector<crdt::Delta> batch;
  for (uint64_t s = 1; s <= 10'000; ++s) {
    crdt::ClusterState empty;
    crdt::DeltaBuilder b(empty, Tag(me, s));
    b.SetGlobal("extra_var_" + std::to_string(s % 1000), "\"rewritten " + std::to_string(s) + "\"");
    batch.push_back(crdt::Delta{me, s, std::move(b).Take()});
    if (batch.size() == 500) {
      Check(st->Commit(batch, {}, s), "commit");
      batch.clear();
    }
  }
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

int Main(int argc, char** argv) {
  std::string dir_arg;
  double seconds = 3;
  namespace po = boost::program_options;
  po::options_description desc("store_bench options");
  // clang-format off
  desc.add_options()
    ("dir", po::value(&dir_arg)->value_name("DIR"), "data dir (default: a temp dir)")
    ("seconds", po::value(&seconds)->default_value(seconds)->value_name("S"),
       "length of each timed run");
  // clang-format on
  bench::ParseFlags(argc, argv, "store_bench", desc);
  TempDir tmp("store-bench");
  const std::string dir = dir_arg.empty() ? tmp.Sub("data") : dir_arg;

  // 1. Load.
  auto t0 = Clock::now();
  Populate(dir);
  std::printf("populate: %.2f s\n", Seconds(Clock::now() - t0));
  Open(dir, true).reset();  // settle LevelDB's recovery of the populate session's log
  std::vector<double> loads;
  size_t globals = 0, nodes = 0, groups = 0, node_vars = 0;
  for (int i = 0; i < 5; ++i) {
    t0 = Clock::now();
    auto st = Open(dir, true);
    loads.push_back(Seconds(Clock::now() - t0));
    st->Read([&](const crdt::ClusterState& s) {
      globals = s.globals.size();
      nodes = s.inventory.size();
      groups = s.host_groups.size();
      node_vars = s.node_vars.size();
      return 0;
    });
  }
  std::sort(loads.begin(), loads.end());
  std::printf(
      "open+load: min %.0f ms, median %.0f ms  (%zu globals, %zu nodes, %zu host-group "
      "elements, %zu node vars, 10000-delta log; dir %.1f MiB)\n",
      loads.front() * 1e3, loads[loads.size() / 2] * 1e3, globals, nodes, groups, node_vars,
      static_cast<double>(DirBytes(dir)) / (1 << 20));

  auto st = Open(dir, true);
  const std::string me = st->origin();
  uint64_t seq = st->metadata().local_seq;

  // 2. Synced single writes, one writer.
  {
    uint64_t n = 0;
    t0 = Clock::now();
    const auto until = t0 + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
      ++seq;
      crdt::ClusterState empty;
      crdt::DeltaBuilder b(empty, Tag(me, seq));
      b.SetGlobal("bench_single", std::to_string(seq));
      Check(st->Commit({crdt::Delta{me, seq, std::move(b).Take()}}, {}, seq), "commit");
      ++n;
    }
    const double s = Seconds(Clock::now() - t0);
    std::printf("synced single writes, 1 writer: %.0f writes/s (%.0f us each)\n", n / s,
                s / n * 1e6);
  }

  // 3. Group commit, 8 writers (each its own origin, as received deltas would be).
  {
    constexpr int kWriters = 8;
    const auto before = st->write_stats();
    std::atomic<uint64_t> total{0};
    std::vector<std::thread> threads;
    t0 = Clock::now();
    const auto until = t0 + std::chrono::duration<double>(seconds);
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        const std::string origin = "writer" + std::to_string(w) + "/0";
        for (uint64_t s = 1; Clock::now() < until; ++s) {
          crdt::ClusterState empty;
          crdt::DeltaBuilder b(empty, Tag(origin, s));
          b.SetGlobal("bench_group_" + std::to_string(w), std::to_string(s));
          Check(st->Commit({crdt::Delta{origin, s, std::move(b).Take()}}, {}, 0), "commit");
          ++total;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double s = Seconds(Clock::now() - t0);
    const auto after = st->write_stats();
    std::printf("synced group commit, %d writers: %.0f writes/s, %.1f commits per sync\n", kWriters,
                total / s,
                static_cast<double>(after.calls - before.calls) /
                    static_cast<double>(std::max<uint64_t>(1, after.batches - before.batches)));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clustermgr::bench::RunMain([&] { return Main(argc, argv); });
}
