// node_reads_bench: what one `nodes get` costs clustermgrd and its client at fleet size, step by
// step, on an inventory like the fleet bench's (test/support/fleet.h: Serf tags, serf_status; a
// quarter of the nodes with a host-group and two remembered extra-vars), in a real Replica
// (LevelDB in a temp dir, not synced).
//
//   BM_BuildEveryNode     each node's read form built from the state (what every read did
//                         before the forms were kept ready, mgr/reads/node_info_cache.h)
//   BM_CachedList         the list from the cache (a copy of each kept form)
//   BM_CachedListAfterWrite  the same after a write that touches one node
//   BM_EncodeReply        the list encoded into one RPC reply (Cap'n Proto, framed)
//   BM_DecodeReply        the client's decode of that reply
//
// Run: node_reads_bench [--benchmark_filter=...] (build RelWithDebInfo or Release). Arguments
// are the number of nodes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include "crdt/hlc.h"
#include "mgr/reads/node_info_cache.h"
#include "mgr/repl/replica.h"
#include "net/rpc_codec.h"
#include "base/testing/temp_dir.h"

namespace clustermgr::mgr {
namespace {

struct Fleet {
  TempDir dir;
  crdt::SystemClock clock;
  std::unique_ptr<Replica> replica;

  explicit Fleet(int64_t nodes) {
    Replica::Options o;
    o.name = "bench";
    o.data_dir = dir.Sub("data");
    o.sync = false;
    auto r = Replica::Open(o, &clock);
    if (!r.ok()) std::abort();
    replica = std::move(r).value();
    constexpr int64_t kPerWrite = 500;
    for (int64_t first = 0; first < nodes; first += kPerWrite) {
      auto w = replica->Write([&](crdt::DeltaBuilder& b) {
        for (int64_t i = first; i < std::min(nodes, first + kPerWrite); ++i) {
          const std::string serial = std::to_string(i);
          crdt::InventoryRecord rec;
          rec.addr = "10.0." + std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255);
          rec.state = crdt::NodeState::kDiscovered;
          rec.tags = {{"NodeLabel", "sim"}, {"NodeSerial", serial}, {"NodeAddr", rec.addr}};
          rec.serf_status = "alive";
          b.PutNode("sim-" + serial, rec);
          if (i % 4 == 0) {
            b.AddHostGroup("sim-" + serial, "service-worker");
            b.SetNodeVar("sim-" + serial, "dns", "\"10.0.0.53\"");
            b.SetNodeVar("sim-" + serial, "rack", "{\"row\": 4, \"slot\": " + serial + "}");
          }
        }
      });
      if (!w.ok()) std::abort();
    }
  }
};

void BM_BuildEveryNode(benchmark::State& st) {
  Fleet fleet(st.range(0));
  const crdt::ClusterState& state = fleet.replica->state();
  for (auto _ : st) {
    net::NodeList list;
    for (const auto& [name, entry] : state.inventory.entries()) {
      if (!entry.tombstone()) list.nodes.push_back(BuildNodeInfo(state, name, *entry.value));
    }
    benchmark::DoNotOptimize(list);
  }
}

void BM_CachedList(benchmark::State& st) {
  Fleet fleet(st.range(0));
  NodeInfoCache cache(fleet.replica.get());
  (void)cache.List();
  for (auto _ : st) benchmark::DoNotOptimize(cache.List());
}

void BM_CachedListAfterWrite(benchmark::State& st) {
  Fleet fleet(st.range(0));
  NodeInfoCache cache(fleet.replica.get());
  (void)cache.List();
  int64_t i = 0;
  for (auto _ : st) {
    st.PauseTiming();
    crdt::InventoryRecord rec = *fleet.replica->state().Node("sim-" + std::to_string(i));
    rec.tags["load"] = std::to_string(i);
    if (!fleet.replica
             ->Write([&](crdt::DeltaBuilder& b) { b.PutNode("sim-" + std::to_string(i), rec); })
             .ok()) {
      std::abort();
    }
    i = (i + 1) % st.range(0);
    st.ResumeTiming();
    benchmark::DoNotOptimize(cache.List());
  }
}

void BM_EncodeReply(benchmark::State& st) {
  Fleet fleet(st.range(0));
  NodeInfoCache cache(fleet.replica.get());
  const net::RpcReply reply = net::RpcReply::Ok(cache.List());
  size_t bytes = 0;
  for (auto _ : st) bytes = net::EncodeReply(1, reply).size();
  st.counters["reply_bytes"] = static_cast<double>(bytes);
}

void BM_DecodeReply(benchmark::State& st) {
  Fleet fleet(st.range(0));
  NodeInfoCache cache(fleet.replica.get());
  const std::string bytes = net::EncodeReply(1, net::RpcReply::Ok(cache.List()));
  for (auto _ : st) benchmark::DoNotOptimize(net::DecodeReply(bytes));
}

BENCHMARK(BM_BuildEveryNode)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CachedList)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CachedListAfterWrite)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeReply)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeReply)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace clustermgr::mgr

BENCHMARK_MAIN();
