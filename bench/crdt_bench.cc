// Throughput of the CRDT layer: building and applying deltas, and full-state joins, for the
// LWW-map (globals) and the OR-set (host-groups), at 1k and 100k entries.
//
// crdt has no encoder, so the size of a delta is estimated from its payload: per LWW entry the
// key, the value, the stamp (8 B epoch + 8 B HLC + origin) and the 8 B seq; per OR-set element
// the element's strings and its dots (origin + 8 B each), plus the context's dots; plus the
// delta's own origin and seq. Counters named payload_B_per_delta report that estimate, not an
// encoded size: the store and net layers measure real encoded sizes.
//
// Run: crdt_bench [--benchmark_filter=...] (build RelWithDebInfo or Release).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "crdt/cluster_state.h"

namespace clustermgr::crdt {
namespace {

constexpr uint64_t kEpoch = 1;

// Zero-padded to `width` digits, so keys sort as they would in a real cluster.
std::string Padded(uint64_t i, size_t width) {
  std::string digits = std::to_string(i);
  return std::string(width > digits.size() ? width - digits.size() : 0, '0') + digits;
}
std::string Key(uint64_t i) { return "extra_var_" + Padded(i, 6); }
std::string Node(uint64_t i) { return "node-" + Padded(i / 4, 5) + ".example.org"; }
std::string Group(uint64_t i) { return "group-" + std::to_string(i % 4); }
// A JSON value of typical size for an extra-var.
std::string Value(uint64_t i) {
  return "{\"v\": " + std::to_string(i) + ", \"pad\": \"abcdefgh\"}";
}

// xorshift64: cheap and deterministic, so every run measures the same key sequence.
class KeyStream {
 public:
  explicit KeyStream(uint64_t n) : n_(n) {}
  uint64_t Next() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_ % n_;
  }

 private:
  uint64_t n_;
  uint64_t x_ = 88172645463325252ull;
};

// One writer: clock, origin, seq.
class Writer {
 public:
  explicit Writer(std::string origin) : origin_(std::move(origin)) {}
  WriteTag NextTag() { return WriteTag{{kEpoch, clock_.Now(), origin_}, ++seq_}; }
  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
  ManualClock physical_{1'700'000'000'000};
  HybridClock clock_{&physical_};
  uint64_t seq_ = 0;
};

template <typename K>
size_t KeyBytes(const K& k);
template <>
size_t KeyBytes(const std::string& k) {
  return k.size();
}
template <>
size_t KeyBytes(const std::pair<std::string, std::string>& k) {
  return k.first.size() + k.second.size();
}
template <>
size_t KeyBytes(const std::pair<std::string, uint64_t>& k) {
  return k.first.size() + 8;
}
size_t ValueBytes(const std::string& v) { return v.size(); }
size_t ValueBytes(const InventoryRecord& r) {
  size_t n = 4 + r.addr.size() + r.serf_status.size() + 8;
  for (const auto& [k, v] : r.tags) n += k.size() + v.size();
  return n;
}
size_t ValueBytes(const JobRecord& j) {
  size_t n = j.id.size() + j.desc.size() + j.host_group.size() + 1 + j.error.size() + 8 +
             j.owner.size() + 6 * 8;
  for (const std::string& s : j.nodes) n += s.size();
  return n;
}

template <typename K, typename V>
size_t LwwPayload(const LwwMap<K, V>& m) {
  size_t n = 0;
  for (const auto& [k, e] : m.entries()) {
    n += KeyBytes(k) + (e.value ? ValueBytes(*e.value) : 0) + 8 + 8 + e.tag.stamp.origin.size() + 8;
  }
  return n;
}

// Estimated payload of a delta (see the file comment).
size_t PayloadBytes(const ClusterState& d, const std::string& origin) {
  size_t n = origin.size() + 8;  // the delta's (origin, seq)
  n += LwwPayload(d.globals) + LwwPayload(d.node_vars) + LwwPayload(d.inventory) +
       LwwPayload(d.jobs) + LwwPayload(d.job_logs) + LwwPayload(d.config);
  for (const auto& [e, dots] : d.host_groups.entries()) {
    n += KeyBytes(e);
    for (const Dot& dot : dots) n += dot.origin.size() + 8;
  }
  for (const auto& [o, c] : d.host_groups.context().compact().entries()) n += o.size() + 8;
  for (const Dot& dot : d.host_groups.context().cloud()) n += dot.origin.size() + 8;
  if (d.token_epoch.value() != 0) n += 8;
  return n;
}

// A state holding `n` globals written by `w`.
ClusterState GlobalsState(uint64_t n, Writer& w) {
  ClusterState s;
  for (uint64_t i = 0; i < n;) {
    DeltaBuilder b(s, w.NextTag());
    for (uint64_t k = 0; k < 1000 && i < n; ++k, ++i) b.SetGlobal(Key(i), Value(i));
    s.Join(std::move(b).Take());
  }
  return s;
}

// A state holding `n` host-group elements, added by `w`.
ClusterState HostGroupState(uint64_t n, Writer& w) {
  ClusterState s;
  for (uint64_t i = 0; i < n;) {
    DeltaBuilder b(s, w.NextTag());
    for (uint64_t k = 0; k < 1000 && i < n; ++k, ++i) b.AddHostGroup(Node(i), Group(i));
    s.Join(std::move(b).Take());
  }
  return s;
}

// --- LWW-map ---------------------------------------------------------------------------------

// The local write path: build a one-key delta on the state, then join it.
void BM_LwwMutateDelta(benchmark::State& st) {
  const uint64_t n = static_cast<uint64_t>(st.range(0));
  Writer w("mgr-1.example.org:7946-1a2b3c4d");
  ClusterState s = GlobalsState(n, w);
  KeyStream keys(n);
  size_t payload = 0;
  uint64_t i = 0;
  for (auto _ : st) {
    const uint64_t k = keys.Next();
    DeltaBuilder b(s, w.NextTag());
    b.SetGlobal(Key(k), Value(++i));
    ClusterState delta = std::move(b).Take();
    payload += PayloadBytes(delta, w.origin());
    s.Join(delta);
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["payload_B_per_delta"] =
      benchmark::Counter(static_cast<double>(payload), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_LwwMutateDelta)->Arg(1'000)->Arg(100'000);

// The receive path: join deltas from another instance, each newer than what is stored.
void BM_LwwJoinDelta(benchmark::State& st) {
  const uint64_t n = static_cast<uint64_t>(st.range(0));
  Writer local("mgr-1.example.org:7946-1a2b3c4d");
  Writer remote("mgr-2.example.org:7946-5e6f7a8b");
  ClusterState s = GlobalsState(n, local);
  KeyStream keys(n);
  std::vector<ClusterState> deltas;
  deltas.reserve(st.max_iterations);
  for (int64_t i = 0; i < st.max_iterations; ++i) {
    deltas.push_back(ClusterState{});
    deltas.back().globals =
        LwwMap<std::string, std::string>::SetDelta(Key(keys.Next()), Value(i), remote.NextTag());
  }
  size_t i = 0;
  for (auto _ : st) {
    s.Join(deltas[i++]);
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(st.iterations());
}
// A fixed iteration count, one fresh delta per iteration: every join wins.
BENCHMARK(BM_LwwJoinDelta)->Arg(1'000)->Arg(100'000)->Iterations(200'000);

// Anti-entropy: join a whole state of n entries into another of n entries (half the keys newer).
void BM_LwwFullStateJoin(benchmark::State& st) {
  const uint64_t n = static_cast<uint64_t>(st.range(0));
  Writer a("mgr-1.example.org:7946-1a2b3c4d");
  Writer b("mgr-2.example.org:7946-5e6f7a8b");
  const ClusterState base = GlobalsState(n, a);
  ClusterState other = base;
  for (uint64_t i = 0; i < n; i += 2) {
    other.globals.JoinEntry(Key(i), {b.NextTag(), Value(i + 1)});
  }
  for (auto _ : st) {
    st.PauseTiming();
    ClusterState s = base;
    st.ResumeTiming();
    s.Join(other);
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(n));  // entries joined
}
BENCHMARK(BM_LwwFullStateJoin)->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMillisecond);

// --- OR-set --------------------------------------------------------------------------------

// The local write path: remove or re-add one (node, group) element, as one delta, then join it.
void BM_OrSetMutateDelta(benchmark::State& st) {
  const uint64_t n = static_cast<uint64_t>(st.range(0));
  Writer w("mgr-1.example.org:7946-1a2b3c4d");
  ClusterState s = HostGroupState(n, w);
  KeyStream keys(n);
  size_t payload = 0;
  for (auto _ : st) {
    const uint64_t k = keys.Next();
    DeltaBuilder b(s, w.NextTag());
    if (s.host_groups.Contains({Node(k), Group(k)})) {
      b.RemoveHostGroup(Node(k), Group(k));
    } else {
      b.AddHostGroup(Node(k), Group(k));
    }
    ClusterState delta = std::move(b).Take();
    payload += PayloadBytes(delta, w.origin());
    s.Join(delta);
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["payload_B_per_delta"] =
      benchmark::Counter(static_cast<double>(payload), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_OrSetMutateDelta)->Arg(1'000)->Arg(100'000);

// The receive path: join host-group deltas (adds and removes) issued by another instance.
void BM_OrSetJoinDelta(benchmark::State& st) {
  const uint64_t n = static_cast<uint64_t>(st.range(0));
  Writer w("mgr-1.example.org:7946-1a2b3c4d");
  const ClusterState origin_state = HostGroupState(n, w);
  // The sender's deltas, recorded in order against its own evolving state.
  ClusterState sender = origin_state;
  KeyStream keys(n);
  std::vector<ClusterState> deltas;
  deltas.reserve(st.max_iterations);
  for (int64_t i = 0; i < st.max_iterations; ++i) {
    const uint64_t k = keys.Next();
    DeltaBuilder b(sender, w.NextTag());
    if (sender.host_groups.Contains({Node(k), Group(k)})) {
      b.RemoveHostGroup(Node(k), Group(k));
    } else {
      b.AddHostGroup(Node(k), Group(k));
    }
    deltas.push_back(std::move(b).Take());
    sender.Join(deltas.back());
  }
  ClusterState s = origin_state;
  size_t i = 0;
  for (auto _ : st) {
    s.Join(deltas[i++]);
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(st.iterations());
}
// Preparing the deltas costs a join each, so the 100k case runs fewer.
BENCHMARK(BM_OrSetJoinDelta)->Arg(1'000)->Iterations(5'000);
BENCHMARK(BM_OrSetJoinDelta)->Arg(100'000)->Iterations(100);

// Anti-entropy: join a whole host-group set of n elements into a replica's.
void BM_OrSetFullStateJoin(benchmark::State& st) {
  const uint64_t n = static_cast<uint64_t>(st.range(0));
  Writer a("mgr-1.example.org:7946-1a2b3c4d");
  Writer b("mgr-2.example.org:7946-5e6f7a8b");
  const ClusterState base = HostGroupState(n, a);
  ClusterState other = base;
  for (uint64_t i = 0; i < n;) {  // b re-adds every other element: new dots
    DeltaBuilder d(other, b.NextTag());
    for (uint64_t k = 0; k < 1000 && i < n; ++k, i += 2) d.AddHostGroup(Node(i), Group(i));
    other.Join(std::move(d).Take());
  }
  for (auto _ : st) {
    st.PauseTiming();
    ClusterState s = base;
    st.ResumeTiming();
    s.Join(other);
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(n));  // elements joined
}
BENCHMARK(BM_OrSetFullStateJoin)->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace clustermgr::crdt

BENCHMARK_MAIN();
