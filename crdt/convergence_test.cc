// Randomized convergence tests for ClusterState, in the style of LevelDB's ModelDB test: random
// operations on several replicas, each with its own skewed clock, deltas sent with random loss,
// duplication and reordering, anti-entropy by full-state joins, all checked against a trivial
// model that is obviously right.
//
// The model mirrors every replica: each LWW section is a map key -> the write with the greatest
// (stamp, position in its builder); the host-group OR-set is the naive one with tombstones (every
// add dot ever seen, and every dot some later operation observed: a remove, or an add that
// superseded it); the epoch is a maximum. Model deltas travel with the real deltas, so each real
// replica is compared with its model replica during the run. At the end the model of all writes
// ever issued (the sequential model) predicts the converged state.
//
// Replay: every randomized test prints `seed=<n>` (and records it as a test property). Run
//   CLUSTERMGR_SEED=<n> crdt_tests --gtest_filter=<Suite.Test>
// to replay it; the test prints `trace=<hash>` over every operation and delivery it made and
// `state=<hash>` over the final state, which match between a run and its replay.
#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "crdt/cluster_state.h"

namespace clustermgr::crdt {
namespace {

// ---------------------------------------------------------------------------------------------
// Seeds, randomness, trace hashing.

uint64_t SeedFromEnvOrRandom() {
  if (const char* env = std::getenv("CLUSTERMGR_SEED"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const uint64_t seed = std::strtoull(env, &end, 10);
    if (end != nullptr && *end == '\0') return seed;
    ADD_FAILURE() << "CLUSTERMGR_SEED is not a decimal number: " << env;
  }
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

// Call first in every randomized test.
uint64_t StartSeededTest() {
  const uint64_t seed = SeedFromEnvOrRandom();
  std::cout << "seed=" << seed << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

// mt19937_64 is fully specified by the standard, and modulo (unlike the std distributions) is the
// same in every standard library, so a seed replays anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t Next() { return gen_(); }
  uint64_t Uniform(uint64_t n) { return gen_() % n; }
  bool Percent(uint64_t p) { return Uniform(100) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Uniform(v.size())];
  }

 private:
  std::mt19937_64 gen_;
};

// FNV-1a over a stream of event descriptions.
class TraceHash {
 public:
  void Add(std::string_view s) {
    for (unsigned char c : s) Mix(c);
    Mix(0xff);  // separator, so "ab"+"c" differs from "a"+"bc"
  }
  void Add(uint64_t v) { Add(std::to_string(v)); }
  uint64_t value() const { return h_; }
  std::string Hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, h_);
    return buf;
  }

 private:
  void Mix(unsigned char c) {
    h_ ^= c;
    h_ *= 1099511628211ull;
  }
  uint64_t h_ = 1469598103934665603ull;
};

// ---------------------------------------------------------------------------------------------
// Printing, for failure messages and state hashes.

std::string KeyStr(const std::string& k) { return k; }
std::string KeyStr(const std::pair<std::string, std::string>& k) {
  return k.first + "/" + k.second;
}
std::string KeyStr(const std::pair<std::string, uint64_t>& k) {
  return k.first + "#" + std::to_string(k.second);
}
std::string ValueStr(const std::string& v) { return v; }
std::string ValueStr(const InventoryRecord& r) {
  std::string out = "{" + std::string(ToString(r.status)) + "," + std::string(ToString(r.state)) +
                    "," + r.addr + "," + r.serf_status + "," + std::to_string(r.updated_ms);
  for (const auto& [k, v] : r.tags) out += "," + k + "=" + v;
  return out + "}";
}
std::string ValueStr(const JobRecord& j) {
  std::string out = "{" + j.id + "," + j.desc + "," + std::string(ToString(j.status)) + "," +
                    j.owner + "," + std::to_string(j.epoch) + "," + j.error;
  for (const std::string& n : j.nodes) out += "," + n;
  return out + "}";
}
std::string StampStr(const LwwStamp& s) {
  return std::to_string(s.epoch) + "/" + s.hlc.ToString() + "/" + s.origin;
}
template <typename V>
std::string EntryStr(const LwwEntry<V>& e) {
  return StampStr(e.tag.stamp) + " seq " + std::to_string(e.tag.seq) + " " +
         (e.value ? ValueStr(*e.value) : std::string("<tombstone>"));
}

template <typename K, typename V>
void HashLww(TraceHash& h, const LwwMap<K, V>& m) {
  for (const auto& [k, e] : m.entries()) h.Add(KeyStr(k) + "=" + EntryStr(e));
}
std::string StateHash(const ClusterState& s) {
  TraceHash h;
  HashLww(h, s.globals);
  HashLww(h, s.node_vars);
  HashLww(h, s.inventory);
  HashLww(h, s.jobs);
  HashLww(h, s.job_logs);
  HashLww(h, s.config);
  for (const auto& [e, dots] : s.host_groups.entries()) {
    h.Add(KeyStr(e));
    for (const Dot& d : dots) h.Add(d.ToString());
  }
  h.Add(s.host_groups.context().compact().ToString());
  for (const Dot& d : s.host_groups.context().cloud()) h.Add(d.ToString());
  h.Add(s.token_epoch.value());
  return h.Hex();
}

// Names the sections in which two states differ.
std::string DiffSections(const ClusterState& a, const ClusterState& b) {
  std::string out;
  auto note = [&](bool same, const char* name) {
    if (!same) out += std::string(out.empty() ? "" : ", ") + name;
  };
  note(a.globals == b.globals, "globals");
  note(a.node_vars == b.node_vars, "node_vars");
  note(a.host_groups.entries() == b.host_groups.entries(), "host_groups.entries");
  note(a.host_groups.context() == b.host_groups.context(), "host_groups.context");
  note(a.inventory == b.inventory, "inventory");
  note(a.jobs == b.jobs, "jobs");
  note(a.job_logs == b.job_logs, "job_logs");
  note(a.config == b.config, "config");
  note(a.token_epoch == b.token_epoch, "token_epoch");
  return out.empty() ? "none" : out;
}

// ---------------------------------------------------------------------------------------------
// The model.

template <typename V>
struct ModelWrite {
  LwwStamp stamp;
  int position = 0;  // in its builder: a later mutation of a key supersedes an earlier one
  uint64_t seq = 0;
  std::optional<V> value;

  bool Beats(const ModelWrite& o) const {
    return std::tie(stamp, position) > std::tie(o.stamp, o.position);
  }
  friend bool operator==(const ModelWrite&, const ModelWrite&) = default;
};

template <typename K, typename V>
struct ModelLww {
  std::map<K, ModelWrite<V>> writes;  // per key, the winning write

  void Put(const K& k, const ModelWrite<V>& w) {
    auto [it, inserted] = writes.try_emplace(k, w);
    if (!inserted && w.Beats(it->second)) it->second = w;
  }
  void Join(const ModelLww& o) {
    for (const auto& [k, w] : o.writes) Put(k, w);
  }
  std::set<K> LiveKeys() const {
    std::set<K> out;
    for (const auto& [k, w] : writes) {
      if (w.value) out.insert(k);
    }
    return out;
  }
  friend bool operator==(const ModelLww&, const ModelLww&) = default;
};

// The naive OR-set: grow-only sets of add dots and of observed ("killed") dots.
struct ModelOrSet {
  std::map<HostGroupKey, std::set<Dot>> adds;
  std::set<Dot> killed;

  std::set<Dot> Present(const HostGroupKey& e) const {
    std::set<Dot> out;
    auto it = adds.find(e);
    if (it == adds.end()) return out;
    for (const Dot& d : it->second) {
      if (!killed.count(d)) out.insert(d);
    }
    return out;
  }
  std::set<std::string> GroupsOf(const std::string& node) const {
    std::set<std::string> out;
    for (auto it = adds.lower_bound({node, ""}); it != adds.end() && it->first.first == node;
         ++it) {
      if (!Present(it->first).empty()) out.insert(it->first.second);
    }
    return out;
  }
  void Join(const ModelOrSet& o) {
    for (const auto& [e, dots] : o.adds) adds[e].insert(dots.begin(), dots.end());
    killed.insert(o.killed.begin(), o.killed.end());
  }
  bool empty() const { return adds.empty() && killed.empty(); }
  friend bool operator==(const ModelOrSet&, const ModelOrSet&) = default;
};

struct ModelState {
  ModelLww<std::string, std::string> globals;
  ModelLww<NodeVarKey, std::string> node_vars;
  ModelOrSet host_groups;
  ModelLww<std::string, InventoryRecord> inventory;
  ModelLww<std::string, JobRecord> jobs;
  ModelLww<JobLogKey, std::string> job_logs;
  ModelLww<std::string, std::string> config;
  uint64_t epoch = 0;

  void Join(const ModelState& o) {
    globals.Join(o.globals);
    node_vars.Join(o.node_vars);
    host_groups.Join(o.host_groups);
    inventory.Join(o.inventory);
    jobs.Join(o.jobs);
    job_logs.Join(o.job_logs);
    config.Join(o.config);
    epoch = std::max(epoch, o.epoch);
  }
  bool empty() const {
    return globals.writes.empty() && node_vars.writes.empty() && host_groups.empty() &&
           inventory.writes.empty() && jobs.writes.empty() && job_logs.writes.empty() &&
           config.writes.empty() && epoch == 0;
  }
  friend bool operator==(const ModelState&, const ModelState&) = default;
};

// The model's DeltaBuilder: mutations apply to a view (base joined with the delta so far) and to
// the delta.
class ModelBuilder {
 public:
  ModelBuilder(const ModelState& base, WriteTag tag, uint64_t* dot_counter)
      : view_(base), tag_(std::move(tag)), dot_counter_(dot_counter) {}

  template <typename K, typename V>
  void Write(ModelLww<K, V> ModelState::*section, const K& key, std::optional<V> value) {
    const ModelWrite<V> w{tag_.stamp, ++position_, tag_.seq, std::move(value)};
    (view_.*section).Put(key, w);
    (delta_.*section).Put(key, w);
    RaiseEpoch(tag_.stamp.epoch);  // a write at epoch e means e was issued
  }
  template <typename V>
  void Replace(ModelLww<std::string, V> ModelState::*section,
               const std::map<std::string, V>& wanted) {
    for (const std::string& k : (view_.*section).LiveKeys()) {
      if (!wanted.count(k)) Write<std::string, V>(section, k, std::nullopt);
    }
    for (const auto& [k, v] : wanted) Write<std::string, V>(section, k, v);
  }
  void AddGroup(const HostGroupKey& e) {
    const std::set<Dot> observed = view_.host_groups.Present(e);
    const Dot dot{tag_.stamp.origin, ++*dot_counter_};
    for (ModelState* s : {&view_, &delta_}) {
      s->host_groups.adds[e].insert(dot);
      s->host_groups.killed.insert(observed.begin(), observed.end());
    }
  }
  void RemoveGroup(const HostGroupKey& e) {
    const std::set<Dot> observed = view_.host_groups.Present(e);
    if (observed.empty()) return;
    for (ModelState* s : {&view_, &delta_}) {
      s->host_groups.killed.insert(observed.begin(), observed.end());
    }
  }
  void SetGroups(const std::string& node, const std::vector<std::string>& groups) {
    const std::set<std::string> wanted(groups.begin(), groups.end());
    const std::set<std::string> current = view_.host_groups.GroupsOf(node);
    for (const std::string& g : current) {
      if (!wanted.count(g)) RemoveGroup({node, g});
    }
    for (const std::string& g : wanted) {
      if (!current.count(g)) AddGroup({node, g});
    }
  }
  void RaiseEpoch(uint64_t e) {
    view_.epoch = std::max(view_.epoch, e);
    delta_.epoch = std::max(delta_.epoch, e);
  }

  const ModelState& view() const { return view_; }
  const ModelState& delta() const { return delta_; }

 private:
  ModelState view_;
  ModelState delta_;
  WriteTag tag_;
  uint64_t* dot_counter_;
  int position_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Comparing a real state with a model state.

// Compares one LWW section. A model tombstone whose write is covered by `collected` (the vector
// tombstones were collected with) must be absent from the real map.
template <typename K, typename V>
::testing::AssertionResult SameLww(const char* name, const LwwMap<K, V>& real,
                                   const ModelLww<K, V>& model, const VersionVector& collected) {
  for (const auto& [k, w] : model.writes) {
    const LwwEntry<V>* e = real.Find(k);
    if (e == nullptr && !w.value && collected.Covers(Dot{w.stamp.origin, w.seq})) {
      continue;  // a collected tombstone
    }
    if (e == nullptr) {
      return ::testing::AssertionFailure()
             << name << "[" << KeyStr(k) << "]: missing; model has " << StampStr(w.stamp) << " seq "
             << w.seq << " " << (w.value ? ValueStr(*w.value) : "<tombstone>");
    }
    if (e->tag.stamp != w.stamp || e->tag.seq != w.seq || e->value != w.value) {
      return ::testing::AssertionFailure() << name << "[" << KeyStr(k) << "]: real " << EntryStr(*e)
                                           << " but model " << StampStr(w.stamp) << " seq " << w.seq
                                           << " " << (w.value ? ValueStr(*w.value) : "<tombstone>");
    }
  }
  for (const auto& [k, e] : real.entries()) {
    if (!model.writes.count(k)) {
      return ::testing::AssertionFailure()
             << name << "[" << KeyStr(k) << "]: unexpected entry " << EntryStr(e);
    }
  }
  return ::testing::AssertionSuccess();
}

std::set<Dot> AllDots(const CausalContext& c) {
  std::set<Dot> out(c.cloud().begin(), c.cloud().end());
  for (const auto& [origin, n] : c.compact().entries()) {
    for (uint64_t i = 1; i <= n; ++i) out.insert(Dot{origin, i});
  }
  return out;
}

::testing::AssertionResult SameOrSet(const OrSet<HostGroupKey>& real, const ModelOrSet& model) {
  for (const auto& [e, dots] : real.entries()) {
    const std::set<Dot> want = model.Present(e);
    if (dots != want) {
      std::string got, exp;
      for (const Dot& d : dots) got += d.ToString() + " ";
      for (const Dot& d : want) exp += d.ToString() + " ";
      return ::testing::AssertionFailure()
             << "host_groups[" << KeyStr(e) << "]: real dots {" << got << "} model {" << exp << "}";
    }
  }
  for (const auto& [e, dots] : model.adds) {
    if (!model.Present(e).empty() && !real.Contains(e)) {
      return ::testing::AssertionFailure() << "host_groups[" << KeyStr(e) << "]: missing";
    }
  }
  std::set<Dot> seen = model.killed;
  for (const auto& [e, dots] : model.adds) seen.insert(dots.begin(), dots.end());
  if (AllDots(real.context()) != seen) {
    return ::testing::AssertionFailure()
           << "host_groups context: real " << real.context().compact().ToString() << " + "
           << real.context().cloud().size() << " cloud dots, model has " << seen.size() << " dots";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SameAsModel(const ClusterState& real, const ModelState& model,
                                       const VersionVector& collected) {
  ::testing::AssertionResult r = ::testing::AssertionSuccess();
  if (!(r = SameLww("globals", real.globals, model.globals, collected))) return r;
  if (!(r = SameLww("node_vars", real.node_vars, model.node_vars, collected))) return r;
  if (!(r = SameOrSet(real.host_groups, model.host_groups))) return r;
  if (!(r = SameLww("inventory", real.inventory, model.inventory, collected))) return r;
  if (!(r = SameLww("jobs", real.jobs, model.jobs, collected))) return r;
  if (!(r = SameLww("job_logs", real.job_logs, model.job_logs, collected))) return r;
  if (!(r = SameLww("config", real.config, model.config, collected))) return r;
  if (real.token_epoch.value() != model.epoch) {
    return ::testing::AssertionFailure()
           << "token_epoch: real " << real.token_epoch.value() << " model " << model.epoch;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// The simulation.

constexpr uint64_t kHlcBoundMs = 500;
constexpr int64_t kMaxSkewMs = 200;  // |offset| of each physical clock from true time

const std::vector<std::string> kNodes = {"n0", "n1", "n2", "n3", "n4"};
const std::vector<std::string> kInventoryNodes = {"n0", "n1", "n2", "n3", "n4", "n5"};
const std::vector<std::string> kGlobals = {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"};
const std::vector<std::string> kVarNames = {"ntp", "dns", "proxy"};
const std::vector<std::string> kGroups = {"web", "db", "cache", "ntp"};
const std::vector<std::string> kJobs = {"j0", "j1", "j2", "j3", "j4", "j5"};
const std::vector<std::string> kConfigKeys = {"forks", "timeout", "pipelining", "become", "retry"};

struct Message {
  int from = 0;
  int to = 0;
  uint64_t seq = 0;
  HlcTimestamp hlc;
  std::shared_ptr<const ClusterState> delta;  // shared by the copies sent to each receiver
  std::shared_ptr<const ModelState> model;
};

struct Replica {
  explicit Replica(std::string name) : origin(std::move(name)) {}
  std::string origin;
  ManualClock physical;
  HybridClock clock{&physical, kHlcBoundMs};
  int64_t offset = 0;
  uint64_t seq = 0;
  uint64_t dot_counter = 0;  // host-group dots issued (the model's own count)
  HlcTimestamp last_issued;
  ClusterState state;
  ModelState model;
  CausalContext applied;  // (origin, seq) of every delta applied, directly or through a state
};

struct SimOptions {
  int replicas = 4;
  // Receivers drop a delta they have already applied (as the replication layer does, by its
  // (origin, seq)). Off, duplicates are joined again, which tests idempotence.
  bool drop_applied = false;
  // Collect tombstones during the run, with the two-round rule: snapshot M1 = meet and
  // J1 = join of every replica's applied vector; once the meet dominates J1 (every delta any
  // replica had issued or applied when M1 was taken is everywhere), collect what M1 covers.
  bool collect_mid_run = false;
  // Percent of mutations that are erases of a global, on top of the usual mix: more tombstones
  // for the collector.
  int extra_erase_percent = 0;
  // If set, collects states and deltas for the lattice law tests.
  std::vector<ClusterState>* pool = nullptr;
};

class Simulation {
 public:
  Simulation(uint64_t seed, SimOptions options)
      : rng_(seed), options_(options), pool_(options.pool) {
    const int replicas = options.replicas;
    for (int i = 0; i < replicas; ++i) {
      replicas_.push_back(std::make_unique<Replica>("inst-" + std::to_string(i)));
      replicas_.back()->offset =
          static_cast<int64_t>(rng_.Uniform(2 * kMaxSkewMs + 1)) - kMaxSkewMs;
    }
    SetPhysicalClocks();
  }

  // Runs `ops` operations interleaved with deliveries, anti-entropy and observer pulls.
  void Run(int ops) {
    for (int done = 0; done < ops;) {
      AdvanceTime();
      const uint64_t u = rng_.Uniform(1000);
      if (!in_flight_.empty() && u < 740) {
        Deliver();
      } else if (u < 746) {
        const int i = RandomReplica();
        int j = RandomReplica();
        if (j == i) j = (j + 1) % static_cast<int>(replicas_.size());
        PullFullState(i, j);
      } else if (u < 752) {
        ObserverPull(RandomReplica());
      } else {
        Operate(RandomReplica());
        ++done;
      }
      if (::testing::Test::HasFatalFailure()) return;
      if (options_.collect_mid_run && steps_ % 97 == 0) MaybeCollectMidRun();
      if (++steps_ % 41 == 0) {
        CheckAgainstModel(static_cast<int>(rng_.Uniform(replicas_.size() + 1)) - 1);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }

  // Delivers every message still in flight, in random order.
  void Drain() {
    while (!in_flight_.empty() && !::testing::Test::HasFatalFailure()) Deliver();
  }

  // Anti-entropy by full-state joins between random pairs until a whole round changes nothing.
  void AntiEntropyUntilQuiescent() {
    const int n = static_cast<int>(replicas_.size());
    for (int round = 0;; ++round) {
      ASSERT_LT(round, 10) << "anti-entropy does not quiesce";
      std::vector<std::pair<int, int>> pairs;
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j) {
          if (i != j) pairs.emplace_back(i, j);
        }
      }
      for (size_t k = pairs.size(); k > 1; --k) std::swap(pairs[k - 1], pairs[rng_.Uniform(k)]);
      bool changed = false;
      for (const auto& [i, j] : pairs) {
        const ClusterState before = replicas_[i]->state;
        PullFullState(i, j);
        if (::testing::Test::HasFatalFailure()) return;
        changed = changed || !(replicas_[i]->state == before);
      }
      if (!changed) return;
    }
  }

  // Compares replica `r` (or the observer, for -1) with its model replica.
  void CheckAgainstModel(int r) {
    if (r < 0) {
      ASSERT_TRUE(SameAsModel(observer_, observer_model_, collected_)) << "observer, " << Where();
      return;
    }
    ASSERT_TRUE(SameAsModel(replicas_[r]->state, replicas_[r]->model, collected_))
        << replicas_[r]->origin << ", " << Where();
  }

  // After quiescence: every replica and the observer equal, and equal to the sequential model.
  void CheckConverged() {
    const ClusterState& first = replicas_[0]->state;
    for (const auto& r : replicas_) {
      ASSERT_TRUE(r->state == first)
          << r->origin << " differs from inst-0 in: " << DiffSections(r->state, first);
      ASSERT_TRUE(r->model == everything_) << r->origin << "'s model replica missed a write";
      ASSERT_TRUE(SameAsModel(r->state, everything_, collected_)) << r->origin;
      ASSERT_EQ(r->applied.compact(), issued_) << r->origin;
      ASSERT_TRUE(r->applied.cloud().empty());
    }
    // Writers stamp with the epoch they know, so no write raised the epoch beyond RaiseEpoch.
    ASSERT_EQ(first.token_epoch.value(), max_raised_);
    // The observer only ever saw full states; one more pull from anybody makes it equal.
    ObserverPull(RandomReplica());
    ASSERT_TRUE(observer_ == first) << "observer differs in: " << DiffSections(observer_, first);
    ASSERT_TRUE(SameAsModel(observer_, everything_, collected_)) << "observer";
  }

  // Collects tombstones everywhere with the meet of all applied vectors; returns how many each
  // replica dropped.
  size_t CollectTombstones() { return CollectWith(MeetOfApplied(), /*quiescent=*/true); }

  uint64_t mid_run_collections() const { return mid_run_collections_; }
  uint64_t mid_run_collected() const { return mid_run_collected_; }
  uint64_t dropped_duplicates() const { return dropped_duplicates_; }

 private:
  // Every instance counts for stability, the observer too: a tombstone it has not seen yet
  // cannot be collected, or the observer would keep the write the tombstone deleted.
  VersionVector MeetOfApplied() const {
    VersionVector meet = observer_applied_.compact();
    for (const auto& r : replicas_) meet = VersionVector::Meet(meet, r->applied.compact());
    return meet;
  }

  void MaybeCollectMidRun() {
    if (!pending_) {
      VersionVector join = observer_applied_.compact();
      for (const auto& r : replicas_) join.Merge(r->applied.compact());
      pending_ = std::make_pair(MeetOfApplied(), join);
      return;
    }
    if (!MeetOfApplied().Dominates(pending_->second)) return;
    mid_run_collected_ += CollectWith(pending_->first, /*quiescent=*/false);
    ++mid_run_collections_;
    pending_.reset();
  }

  // Collects at every replica and the observer. Mid-run, states differ, and so do the counts;
  // once quiescent, all are equal.
  size_t CollectWith(const VersionVector& stable, bool quiescent) {
    const size_t dropped = replicas_[0]->state.CollectTombstones(stable);
    for (size_t i = 1; i < replicas_.size(); ++i) {
      const size_t n = replicas_[i]->state.CollectTombstones(stable);
      if (quiescent) {
        EXPECT_EQ(n, dropped) << replicas_[i]->origin;
      }
    }
    const size_t n = observer_.CollectTombstones(stable);
    if (quiescent) {
      EXPECT_EQ(n, dropped) << "observer";
    }
    trace_.Add("collect " + stable.ToString() + " " + std::to_string(dropped));
    collected_.Merge(stable);
    return dropped;
  }

 public:
  const ClusterState& state(int r) const { return replicas_[r]->state; }
  const ModelState& everything() const { return everything_; }
  TraceHash& trace() { return trace_; }
  uint64_t ops() const { return ops_; }
  uint64_t deliveries() const { return deliveries_; }
  uint64_t noops() const { return noops_; }
  size_t in_flight() const { return in_flight_.size(); }
  size_t replicas() const { return replicas_.size(); }

 private:
  std::string Where() const { return "step " + std::to_string(steps_); }
  int RandomReplica() { return static_cast<int>(rng_.Uniform(replicas_.size())); }

  void SetPhysicalClocks() {
    for (const auto& r : replicas_) {
      r->physical.Set(static_cast<uint64_t>(static_cast<int64_t>(true_ms_) + r->offset));
    }
  }

  // True time moves 0-2 ms (0 often, so counters get used); each physical clock drifts by a few
  // ms either way within the skew bound, so a physical clock sometimes goes backwards.
  void AdvanceTime() {
    true_ms_ += rng_.Uniform(3);
    for (const auto& r : replicas_) {
      r->offset += static_cast<int64_t>(rng_.Uniform(7)) - 3;
      r->offset = std::clamp<int64_t>(r->offset, -kMaxSkewMs, kMaxSkewMs);
    }
    SetPhysicalClocks();
  }

  std::string Value() { return "\"v" + std::to_string(++values_) + "\""; }

  std::map<std::string, std::string> RandomStringMap(const std::vector<std::string>& keys) {
    std::map<std::string, std::string> out;
    for (const std::string& k : keys) {
      if (rng_.Percent(40)) out[k] = Value();
    }
    return out;
  }

  InventoryRecord RandomNode(const std::string& name) {
    InventoryRecord r;
    r.status = static_cast<NodeStatus>(rng_.Uniform(6));
    r.state = static_cast<NodeState>(rng_.Uniform(3));
    r.prev_status = static_cast<NodeStatus>(rng_.Uniform(6));
    r.prev_state = static_cast<NodeState>(rng_.Uniform(3));
    r.addr = "10.0.0." + name.substr(1);
    r.tags = {{"role", Value()}};
    if (rng_.Percent(50)) r.tags["dc"] = Value();
    static const std::vector<std::string> kSerf = {"alive", "failed", "left"};
    r.serf_status = rng_.Pick(kSerf);
    r.updated_ms = true_ms_;
    return r;
  }

  JobRecord RandomJob(const std::string& id, const std::string& owner, uint64_t epoch) {
    static const std::vector<std::string> kDesc = {"commission", "decommission", "update",
                                                   "discover"};
    JobRecord j;
    j.id = id;
    j.desc = rng_.Pick(kDesc);
    for (const std::string& n : kNodes) {
      if (rng_.Percent(30)) j.nodes.push_back(n);
    }
    j.host_group = rng_.Pick(kGroups);
    j.status = static_cast<JobStatus>(rng_.Uniform(6));
    j.error = j.status == JobStatus::kErrored ? Value() : "";
    j.epoch = epoch;
    j.owner = owner;
    j.created_ms = true_ms_;
    j.log_lines = rng_.Uniform(100);
    j.log_chunks = rng_.Uniform(8);
    return j;
  }

  // One random mutation, applied to the real builder and the model builder alike.
  void Mutate(Replica& r, DeltaBuilder& b, ModelBuilder& m) {
    uint64_t kind = rng_.Uniform(80);
    if (options_.extra_erase_percent > 0 &&
        rng_.Percent(static_cast<uint64_t>(options_.extra_erase_percent))) {
      kind = 10;  // an erase of a global
    }
    std::string desc;
    if (kind < 10) {
      const std::string& k = rng_.Pick(kGlobals);
      const std::string v = Value();
      b.SetGlobal(k, v);
      m.Write<std::string, std::string>(&ModelState::globals, k, v);
      desc = "set-global " + k + " " + v;
    } else if (kind < 15) {
      const std::string& k = rng_.Pick(kGlobals);
      b.EraseGlobal(k);
      m.Write<std::string, std::string>(&ModelState::globals, k, std::nullopt);
      desc = "erase-global " + k;
    } else if (kind < 17) {
      const auto g = RandomStringMap(kGlobals);
      b.ReplaceGlobals(g);
      m.Replace(&ModelState::globals, g);
      desc = "replace-globals " + std::to_string(g.size());
    } else if (kind < 23) {
      const NodeVarKey k{rng_.Pick(kNodes), rng_.Pick(kVarNames)};
      const std::string v = Value();
      b.SetNodeVar(k.first, k.second, v);
      m.Write<NodeVarKey, std::string>(&ModelState::node_vars, k, v);
      desc = "set-node-var " + KeyStr(k) + " " + v;
    } else if (kind < 26) {
      const NodeVarKey k{rng_.Pick(kNodes), rng_.Pick(kVarNames)};
      b.EraseNodeVar(k.first, k.second);
      m.Write<NodeVarKey, std::string>(&ModelState::node_vars, k, std::nullopt);
      desc = "erase-node-var " + KeyStr(k);
    } else if (kind < 34) {
      const HostGroupKey e{rng_.Pick(kNodes), rng_.Pick(kGroups)};
      b.AddHostGroup(e.first, e.second);
      m.AddGroup(e);
      desc = "add-group " + KeyStr(e);
    } else if (kind < 40) {
      const HostGroupKey e{rng_.Pick(kNodes), rng_.Pick(kGroups)};
      b.RemoveHostGroup(e.first, e.second);
      m.RemoveGroup(e);
      desc = "remove-group " + KeyStr(e);
    } else if (kind < 43) {
      const std::string& node = rng_.Pick(kNodes);
      std::vector<std::string> groups;
      for (const std::string& g : kGroups) {
        if (rng_.Percent(40)) groups.push_back(g);
      }
      b.SetHostGroups(node, groups);
      m.SetGroups(node, groups);
      desc = "set-groups " + node + " " + std::to_string(groups.size());
    } else if (kind < 49) {
      const std::string& name = rng_.Pick(kInventoryNodes);
      const InventoryRecord rec = RandomNode(name);
      b.PutNode(name, rec);
      m.Write<std::string, InventoryRecord>(&ModelState::inventory, name, rec);
      desc = "put-node " + name + " " + ValueStr(rec);
    } else if (kind < 54) {
      const JobRecord job = RandomJob(rng_.Pick(kJobs), r.origin, b.tag().stamp.epoch);
      b.PutJob(job);
      m.Write<std::string, JobRecord>(&ModelState::jobs, job.id, job);
      desc = "put-job " + ValueStr(job);
    } else if (kind < 60) {
      const JobLogKey k{rng_.Pick(std::vector<std::string>(kJobs.begin(), kJobs.begin() + 4)),
                        rng_.Uniform(6)};
      const std::string text = "line " + Value() + "\nline " + Value();
      b.PutJobLogChunk(k.first, k.second, text);
      m.Write<JobLogKey, std::string>(&ModelState::job_logs, k, text);
      desc = "put-log " + KeyStr(k);
    } else if (kind < 66) {
      const std::string& k = rng_.Pick(kConfigKeys);
      const std::string v = Value();
      b.SetConfig(k, v);
      m.Write<std::string, std::string>(&ModelState::config, k, v);
      desc = "set-config " + k + " " + v;
    } else if (kind < 68) {
      const auto c = RandomStringMap(kConfigKeys);
      b.ReplaceConfig(c);
      m.Replace(&ModelState::config, c);
      desc = "replace-config " + std::to_string(c.size());
    } else if (kind < 70 && rng_.Percent(20)) {
      // The token moves on (rarely): a new epoch a little above what this replica knows.
      const uint64_t e = m.view().epoch + 1 + rng_.Uniform(2);
      b.RaiseEpoch(e);
      m.RaiseEpoch(e);
      max_raised_ = std::max(max_raised_, e);
      desc = "raise-epoch " + std::to_string(e);
    } else {
      // Host-group churn on one element, the case most likely to go wrong.
      const HostGroupKey e{rng_.Pick(kNodes), rng_.Pick(kGroups)};
      if (rng_.Percent(50)) {
        b.AddHostGroup(e.first, e.second);
        m.AddGroup(e);
        desc = "add-group " + KeyStr(e);
      } else {
        b.RemoveHostGroup(e.first, e.second);
        m.RemoveGroup(e);
        desc = "remove-group " + KeyStr(e);
      }
    }
    trace_.Add(desc);
  }

  void Operate(int i) {
    Replica& r = *replicas_[i];
    // A writer stamps its writes with the highest epoch it knows.
    const WriteTag tag{{r.state.token_epoch.value(), r.clock.Now(), r.origin}, r.seq + 1};
    ASSERT_GT(tag.stamp.hlc, r.last_issued) << "HLC went backwards at " << r.origin;
    r.last_issued = tag.stamp.hlc;
    trace_.Add("op " + r.origin + " " + StampStr(tag.stamp) + " seq " + std::to_string(tag.seq));

    DeltaBuilder b(r.state, tag);
    ModelBuilder m(r.model, tag, &r.dot_counter);
    const int mutations = rng_.Percent(70) ? 1 : 2 + static_cast<int>(rng_.Uniform(3));
    for (int k = 0; k < mutations; ++k) Mutate(r, b, m);
    ++ops_;
    if (b.empty()) {
      // Only removes of absent groups: nothing to publish, and no sequence number used.
      ASSERT_TRUE(m.delta().empty()) << "the model wrote something the builder did not";
      ++noops_;
      trace_.Add("noop");
      return;
    }
    ASSERT_FALSE(m.delta().empty()) << "the builder wrote something the model did not";
    r.seq = tag.seq;
    auto delta = std::make_shared<const ClusterState>(std::move(b).Take());
    auto model = std::make_shared<const ModelState>(m.delta());
    r.state.Join(*delta);
    r.model.Join(*model);
    r.applied.Add(Dot{r.origin, r.seq});
    everything_.Join(*model);
    issued_.Advance(r.origin, r.seq);
    if (pool_ != nullptr) pool_->push_back(*delta);

    for (int j = 0; j < static_cast<int>(replicas_.size()); ++j) {
      if (j == i) continue;
      if (rng_.Percent(10)) {
        trace_.Add("lost " + std::to_string(j));
        continue;
      }
      const int copies = rng_.Percent(10) ? 2 : 1;
      for (int c = 0; c < copies; ++c) {
        in_flight_.push_back(Message{i, j, r.seq, tag.stamp.hlc, delta, model});
      }
    }
  }

  void Deliver() {
    const size_t k = rng_.Uniform(in_flight_.size());
    std::swap(in_flight_[k], in_flight_.back());
    const Message msg = std::move(in_flight_.back());
    in_flight_.pop_back();
    Replica& r = *replicas_[msg.to];
    const Dot dot{replicas_[msg.from]->origin, msg.seq};
    if (options_.drop_applied && r.applied.Contains(dot)) {
      trace_.Add("drop " + dot.ToString() + " at " + r.origin);
      ++dropped_duplicates_;
      return;
    }
    trace_.Add("deliver " + dot.ToString() + " to " + r.origin);
    Result<HlcTimestamp> seen = r.clock.Observe(msg.hlc);
    ASSERT_TRUE(seen.ok()) << seen.status().ToString() << " (skew is kept within the bound)";
    ASSERT_GT(*seen, msg.hlc);
    r.state.Join(*msg.delta);
    r.model.Join(*msg.model);
    r.applied.Add(dot);
    ++deliveries_;
    if (pool_ != nullptr && rng_.Percent(3)) pool_->push_back(r.state);
  }

  // Replica i joins the full state of replica j, as anti-entropy ships it.
  void PullFullState(int i, int j) {
    Replica& r = *replicas_[i];
    const Replica& from = *replicas_[j];
    trace_.Add("pull " + r.origin + " <- " + from.origin);
    Result<HlcTimestamp> seen = r.clock.Observe(from.clock.last());
    ASSERT_TRUE(seen.ok()) << seen.status().ToString();
    r.state.Join(from.state);
    r.model.Join(from.model);
    r.applied.Merge(from.applied);
    if (pool_ != nullptr) pool_->push_back(r.state);
  }

  void ObserverPull(int j) {
    trace_.Add("observe " + replicas_[j]->origin);
    observer_.Join(replicas_[j]->state);
    observer_model_.Join(replicas_[j]->model);
    observer_applied_.Merge(replicas_[j]->applied);
  }

  Rng rng_;
  SimOptions options_;
  std::vector<ClusterState>* pool_;
  std::optional<std::pair<VersionVector, VersionVector>> pending_;  // (M1, J1)
  uint64_t mid_run_collections_ = 0;
  uint64_t mid_run_collected_ = 0;
  uint64_t dropped_duplicates_ = 0;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<Message> in_flight_;
  ClusterState observer_;  // receives only full states, never a delta
  ModelState observer_model_;
  CausalContext observer_applied_;
  ModelState everything_;  // every model delta ever issued: the sequential model
  VersionVector issued_;   // every (origin, seq) ever issued
  VersionVector collected_;
  TraceHash trace_;
  uint64_t true_ms_ = 1'700'000'000'000;
  uint64_t values_ = 0;
  uint64_t max_raised_ = 0;
  uint64_t steps_ = 0;
  uint64_t ops_ = 0;
  uint64_t noops_ = 0;
  uint64_t deliveries_ = 0;
};

size_t LiveLwwEntries(const ClusterState& s) {
  return s.Globals().size() + s.node_vars.size() - s.node_vars.tombstones() + s.inventory.size() +
         s.jobs.size() + s.job_logs.size() - s.job_logs.tombstones() + s.Config().size();
}
size_t Tombstones(const ClusterState& s) {
  return s.globals.tombstones() + s.node_vars.tombstones() + s.inventory.tombstones() +
         s.jobs.tombstones() + s.job_logs.tombstones() + s.config.tombstones();
}

// ---------------------------------------------------------------------------------------------

TEST(ConvergenceTest, RandomOperationsOnFourReplicasConvergeToTheSequentialModel) {
  const uint64_t seed = StartSeededTest();
  SCOPED_TRACE("replay with CLUSTERMGR_SEED=" + std::to_string(seed));
  Simulation sim(seed, SimOptions{});

  // Phase 1: 10,000 operations with loss, duplication, reordering; then heal and compare.
  ASSERT_NO_FATAL_FAILURE(sim.Run(10'000));
  const size_t left = sim.in_flight();
  ASSERT_NO_FATAL_FAILURE(sim.Drain());
  ASSERT_NO_FATAL_FAILURE(sim.AntiEntropyUntilQuiescent());
  ASSERT_NO_FATAL_FAILURE(sim.CheckConverged());
  const size_t tombstones = Tombstones(sim.state(0));
  EXPECT_GT(tombstones, 0u) << "the run should have produced tombstones to collect";
  EXPECT_FALSE(sim.state(0).HostGroups("n0").empty() && sim.state(0).HostGroups("n1").empty() &&
               sim.state(0).HostGroups("n2").empty())
      << "a run this long should leave some host-groups";

  // Collecting with the meet of all applied vectors (everything, once quiescent) drops every
  // tombstone and keeps the replicas equal.
  const size_t dropped = sim.CollectTombstones();
  EXPECT_EQ(dropped, tombstones);
  ASSERT_NO_FATAL_FAILURE(sim.CheckConverged());
  for (size_t r = 0; r < sim.replicas(); ++r) EXPECT_EQ(Tombstones(sim.state(r)), 0u);

  // Phase 2: life goes on after collection; nothing collected comes back.
  ASSERT_NO_FATAL_FAILURE(sim.Run(2'000));
  ASSERT_NO_FATAL_FAILURE(sim.Drain());
  ASSERT_NO_FATAL_FAILURE(sim.AntiEntropyUntilQuiescent());
  ASSERT_NO_FATAL_FAILURE(sim.CheckConverged());
  (void)sim.CollectTombstones();
  ASSERT_NO_FATAL_FAILURE(sim.CheckConverged());

  std::cout << "ops=" << sim.ops() << " noops=" << sim.noops() << " deliveries=" << sim.deliveries()
            << " left_in_flight_after_phase1=" << left << " tombstones_collected=" << dropped
            << " live_lww=" << LiveLwwEntries(sim.state(0))
            << " host_groups=" << sim.state(0).host_groups.size()
            << " epoch=" << sim.state(0).token_epoch.value() << "\n"
            << "trace=" << sim.trace().Hex() << " state=" << StateHash(sim.state(0)) << std::endl;
}

// Tombstones collected while deltas are still in flight, with the stability rule the manager
// must implement: never resurrected, never divergent.
TEST(ConvergenceTest, TombstonesCollectedMidRunStayCollected) {
  const uint64_t seed = StartSeededTest();
  SCOPED_TRACE("replay with CLUSTERMGR_SEED=" + std::to_string(seed));
  Simulation sim(
      seed, SimOptions{.drop_applied = true, .collect_mid_run = true, .extra_erase_percent = 25});
  ASSERT_NO_FATAL_FAILURE(sim.Run(6'000));
  // Whether a collection finds a tombstone old enough is chance (about one seed in 200 finds
  // none in 6,000 operations): go on until one does, so the seed always exercises the path.
  for (int more = 0; more < 10 && sim.mid_run_collected() == 0; ++more) {
    ASSERT_NO_FATAL_FAILURE(sim.Run(2'000));
  }
  ASSERT_NO_FATAL_FAILURE(sim.Drain());
  ASSERT_NO_FATAL_FAILURE(sim.AntiEntropyUntilQuiescent());
  ASSERT_NO_FATAL_FAILURE(sim.CheckConverged());
  EXPECT_GT(sim.mid_run_collections(), 0u);
  EXPECT_GT(sim.mid_run_collected(), 0u);
  (void)sim.CollectTombstones();
  ASSERT_NO_FATAL_FAILURE(sim.CheckConverged());
  for (size_t r = 0; r < sim.replicas(); ++r) EXPECT_EQ(Tombstones(sim.state(r)), 0u);
  std::cout << "ops=" << sim.ops() << " collections=" << sim.mid_run_collections()
            << " collected=" << sim.mid_run_collected()
            << " dropped_duplicates=" << sim.dropped_duplicates() << "\n"
            << "trace=" << sim.trace().Hex() << " state=" << StateHash(sim.state(0)) << std::endl;
}

// Join is a semilattice join on states reachable by real runs: random replica states, deltas and
// delta intervals (several deltas joined) taken from a random simulation.
TEST(LatticeLawTest, JoinIsCommutativeAssociativeAndIdempotent) {
  const uint64_t seed = StartSeededTest();
  SCOPED_TRACE("replay with CLUSTERMGR_SEED=" + std::to_string(seed));
  std::vector<ClusterState> pool;
  Simulation sim(seed, SimOptions{.pool = &pool});
  ASSERT_NO_FATAL_FAILURE(sim.Run(3'000));
  ASSERT_GT(pool.size(), 100u);

  Rng rng(seed ^ 0x9e3779b97f4a7c15ull);
  std::vector<ClusterState> candidates;
  candidates.push_back(ClusterState{});  // the bottom element
  for (int k = 0; k < 400; ++k) candidates.push_back(pool[rng.Uniform(pool.size())]);
  for (int k = 0; k < 100; ++k) {  // delta intervals
    ClusterState interval;
    const int n = 2 + static_cast<int>(rng.Uniform(4));
    for (int i = 0; i < n; ++i) interval.Join(pool[rng.Uniform(pool.size())]);
    candidates.push_back(std::move(interval));
  }

  TraceHash trace;
  auto join = [](ClusterState a, const ClusterState& b) {
    a.Join(b);
    return a;
  };
  for (int t = 0; t < 1'500; ++t) {
    const size_t ia = rng.Uniform(candidates.size());
    const size_t ib = rng.Uniform(candidates.size());
    const size_t ic = rng.Uniform(candidates.size());
    trace.Add(std::to_string(ia) + "," + std::to_string(ib) + "," + std::to_string(ic));
    const ClusterState& a = candidates[ia];
    const ClusterState& b = candidates[ib];
    const ClusterState& c = candidates[ic];
    const ClusterState ab = join(a, b);
    const ClusterState ba = join(b, a);
    ASSERT_TRUE(ab == ba) << "not commutative (trial " << t << ", candidates " << ia << ", " << ib
                          << "), differs in: " << DiffSections(ab, ba);
    const ClusterState ab_c = join(ab, c);
    const ClusterState a_bc = join(a, join(b, c));
    ASSERT_TRUE(ab_c == a_bc) << "not associative (trial " << t << ", candidates " << ia << ", "
                              << ib << ", " << ic << "), differs in: " << DiffSections(ab_c, a_bc);
    ASSERT_TRUE(join(a, a) == a) << "not idempotent (candidate " << ia
                                 << "), differs in: " << DiffSections(join(a, a), a);
    ASSERT_TRUE(join(ab, a) == ab) << "a join does not absorb its operand (trial " << t << ")";
    ASSERT_TRUE(join(a, ClusterState{}) == a) << "bottom is not the identity";
  }
  std::cout << "pool=" << pool.size() << " trace=" << sim.trace().Hex() << "/" << trace.Hex()
            << std::endl;
}

// The randomized tests replay from their seed: the same seed gives the same trace and state.
TEST(ConvergenceTest, ASeedReplaysTheSameRun) {
  const uint64_t seed = StartSeededTest();
  SCOPED_TRACE("replay with CLUSTERMGR_SEED=" + std::to_string(seed));
  std::string traces[2];
  std::string states[2];
  for (int k = 0; k < 2; ++k) {
    Simulation sim(seed, SimOptions{.replicas = 3, .drop_applied = true, .collect_mid_run = true});
    ASSERT_NO_FATAL_FAILURE(sim.Run(500));
    ASSERT_NO_FATAL_FAILURE(sim.Drain());
    ASSERT_NO_FATAL_FAILURE(sim.AntiEntropyUntilQuiescent());
    ASSERT_NO_FATAL_FAILURE(sim.CheckConverged());
    traces[k] = sim.trace().Hex();
    states[k] = StateHash(sim.state(0));
  }
  EXPECT_EQ(traces[0], traces[1]);
  EXPECT_EQ(states[0], states[1]);
}

}  // namespace
}  // namespace clustermgr::crdt
