#include "test/sim/sim_world.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "crdt/cluster_state.h"
#include "mgr/log/log.h"
#include "mgr/repl/replica.h"
#include "mgr/repl/replicator.h"
#include "net/testing/fake_gossip_transport.h"
#include "base/testing/temp_dir.h"

namespace clustermgr::sim {
namespace {

namespace fs = std::filesystem;
using crdt::ClusterState;
using crdt::LwwStamp;

constexpr uint64_t kStart = 1'700'000'000'000;
constexpr int kKeys = 8;
constexpr uint64_t kMaxSettleMs = 180'000;

struct Limits {
  uint64_t delta_log_limit = 10;
  mgr::ReplicatorOptions replicator;
};

// One replica: its data dir, wall clock, replica, transport and replicator; restartable.
class SimNode {
 public:
  SimNode(net::FakeGossipNetwork* net, std::string name, const Limits& limits, uint64_t now)
      : net_(net), name_(std::move(name)), limits_(limits), clock_(now) {}

  bool Open(std::string* error) {
    mgr::Replica::Options ro;
    ro.name = name_;
    ro.data_dir = dir_->Sub("data");
    ro.sync = false;
    ro.delta_log_limit = limits_.delta_log_limit;
    auto r = mgr::Replica::Open(ro, &clock_);
    if (!r.ok()) {
      *error = name_ + ": cannot open the replica: " + r.status().ToString();
      return false;
    }
    replica_ = std::move(r).value();
    transport_ = net_->Attach(endpoint());
    mgr::ReplicatorOptions o = limits_.replicator;
    o.rpc_endpoint = "tcp://" + name_ + ":1";
    replicator_ = std::make_unique<mgr::Replicator>(o, replica_.get(), transport_.get());
    replica_->AddObserver([this](const crdt::Delta& d) { replicator_->OnLocalDelta(d); });
    return true;
  }
  // A crash: memory and messages in flight to it are lost; the data dir stays.
  void Close() {
    replicator_.reset();
    transport_.reset();
    replica_.reset();
  }
  void NewDir() { dir_ = std::make_unique<TempDir>("replication-sim"); }
  void Backup() {
    backup_ = std::make_unique<TempDir>("replication-sim-backup");
    fs::copy(dir_->Sub("data"), backup_->Sub("data"), fs::copy_options::recursive);
  }
  bool has_backup() const { return backup_ != nullptr; }
  void ForgetBackup() { backup_.reset(); }  // of an incarnation that is gone
  void RestoreBackup() {
    fs::remove_all(dir_->Sub("data"));
    fs::copy(backup_->Sub("data"), dir_->Sub("data"), fs::copy_options::recursive);
  }

  bool up() const { return replicator_ != nullptr; }
  std::string endpoint() const { return "tcp://" + name_ + ":9008"; }
  const std::string& name() const { return name_; }
  mgr::Replica& replica() { return *replica_; }
  mgr::Replicator& replicator() { return *replicator_; }
  void SetTime(uint64_t now) {
    clock_.Set(static_cast<uint64_t>(static_cast<int64_t>(now) + offset_ms_));
  }
  void set_offset(int64_t ms) { offset_ms_ = ms; }
  int64_t offset() const { return offset_ms_; }
  // A wiped or restored replica writes again only once it has applied this much (what the others
  // held when it lost its data): before that its writes are concurrent with history it has not
  // seen, and a delete there may already be collected.
  crdt::VersionVector write_after;

 private:
  net::FakeGossipNetwork* net_;
  std::string name_;
  Limits limits_;
  crdt::ManualClock clock_;
  int64_t offset_ms_ = 0;
  std::unique_ptr<TempDir> dir_ = std::make_unique<TempDir>("replication-sim");
  std::unique_ptr<TempDir> backup_;
  std::unique_ptr<mgr::Replica> replica_;
  std::unique_ptr<net::FakeGossipTransport> transport_;
  std::unique_ptr<mgr::Replicator> replicator_;
};

// The highest-stamped write made to each key: what every replica must end with.
struct Expected {
  LwwStamp stamp;
  std::optional<std::string> value;  // nullopt: a delete
};

class World {
 public:
  explicit World(const SimOptions& options)
      : options_(options), rng_(options.seed), net_(options.seed ^ 0x9e3779b97f4a7c15ULL) {
    limits_.delta_log_limit = 2 + Rand(20);
    limits_.replicator.anti_entropy_ms = 200;
    limits_.replicator.sync_timeout_ms = 400;
    limits_.replicator.max_reply_deltas = 1 + Rand(30);
    limits_.replicator.chunk.max_entries = 1 + Rand(6);
    limits_.replicator.snapshot_window = 1 + Rand(3);
    limits_.replicator.fetch_retry_ms = 300;
    limits_.replicator.snapshot_idle_ms = 3000;
  }

  SimResult Run() {
    for (int i = 0; i < options_.replicas; ++i) {
      nodes_.push_back(std::make_unique<SimNode>(&net_, "r" + std::to_string(i), limits_, now_));
      if (!nodes_.back()->Open(&result_.failure)) return Fail(result_.failure);
    }
    for (auto& n : nodes_) Connect(*n);
    // Two rounds: the second one's wipes, restores and lagging replicas meet the history the
    // first one left behind, its tombstones collected and its delta logs trimmed.
    for (int round = 0; round < 2 && result_.ok; ++round) {
      for (int step = 0; step < options_.steps && result_.ok; ++step) Step();
      if (result_.ok) HealAndCheck();
    }
    for (auto& n : nodes_) {
      if (n->up()) {
        result_.snapshots += n->replicator().counters().snapshots_applied;
        result_.collected += n->replicator().counters().tombstones_collected;
      }
    }
    return result_;
  }

 private:
  uint64_t Rand(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  void Say(const std::string& what) {
    if (options_.verbose) std::cout << "  t=" << (now_ - kStart) << " " << what << "\n";
  }
  SimResult& Fail(const std::string& why) {
    if (result_.ok) {
      result_.ok = false;
      result_.failure = why;
    }
    return result_;
  }

  void Connect(SimNode& n) {
    for (auto& other : nodes_) {
      if (other.get() == &n) continue;
      if (Status s = n.replicator().AddPeer(other->endpoint()); !s.ok()) {
        Fail(n.name() + ": AddPeer: " + s.ToString());
      }
    }
  }
  void Reopen(SimNode& n) {
    std::string error;
    if (!n.Open(&error)) {
      Fail(error);
      return;
    }
    Connect(n);
  }

  std::vector<SimNode*> Up() {
    std::vector<SimNode*> up;
    for (auto& n : nodes_) {
      if (n->up()) up.push_back(n.get());
    }
    return up;
  }
  SimNode* PickUp() {
    auto up = Up();
    return up.empty() ? nullptr : up[Rand(up.size())];
  }
  // What the other live replicas have applied, together.
  crdt::VersionVector AppliedElsewhere(SimNode& n) {
    crdt::VersionVector all;
    for (SimNode* other : Up()) {
      if (other != &n) all.Merge(other->replica().Applied());
    }
    return all;
  }
  // The most of `n`'s own deltas another live replica holds.
  uint64_t HeldElsewhere(SimNode& n) {
    uint64_t held = 0;
    for (SimNode* other : Up()) {
      if (other != &n) held = std::max(held, other->replica().Applied().Get(n.replica().origin()));
    }
    return held;
  }
  // Losing n's data dir loses nothing: for every origin, another live replica has applied as
  // much as n has (n may hold the only copy of a restored or wiped replica's deltas).
  bool Replaceable(SimNode& n) {
    const crdt::VersionVector mine = n.replica().Applied();
    for (const auto& [origin, seq] : mine.entries()) {
      bool held = false;
      for (SimNode* other : Up()) {
        held = held || (other != &n && other->replica().Applied().Get(origin) >= seq);
      }
      if (!held) return false;
    }
    return HeldElsewhere(n) >= n.replica().last_seq();
  }

  void Step() {
    const uint64_t roll = Rand(1000);
    if (roll < 380) {
      Write();
    } else if (roll < 600) {
      Advance(1 + Rand(250));
    } else if (roll < 800) {
      if (SimNode* n = PickUp()) n->replicator().Poll(now_);
    } else if (roll < 840) {
      CrashOrRestart();
    } else if (roll < 860) {
      Wipe();
    } else if (roll < 880) {
      TakeBackup();
    } else if (roll < 900) {
      RestoreBackup();
    } else if (roll < 930) {
      SkewClock();
    } else if (roll < 960) {
      SetFaults();
    } else {
      TogglePartition();
    }
  }

  void Write() {
    SimNode* n = PickUp();
    if (!n || !n->replica().Applied().Dominates(n->write_after)) return;
    const std::string key = "k" + std::to_string(Rand(kKeys));
    const bool erase = Chance(0.3);
    const std::string value = "\"" + n->name() + "-" + std::to_string(++write_count_) + "\"";
    const auto* before = n->replica().state().globals.Find(key);
    const std::optional<LwwStamp> held =
        before ? std::optional<LwwStamp>(before->tag.stamp) : std::nullopt;
    auto d = n->replica().Write([&](crdt::DeltaBuilder& b) {
      if (erase) {
        b.EraseGlobal(key);
      } else {
        b.SetGlobal(key, value);
      }
    });
    if (!d.ok()) {
      Fail(n->name() + ": write failed: " + d.status().ToString());
      return;
    }
    const auto& entry = *d->state.globals.Find(key);
    if (held && !(*held < entry.tag.stamp)) {
      Fail(n->name() + ": a write of " + key + " was stamped " + entry.tag.stamp.hlc.ToString() +
           ", not above the entry it held (" + held->hlc.ToString() + " by " + held->origin +
           "): it would be lost");
      return;
    }
    erase ? ++result_.deletes : ++result_.writes;
    Say(n->name() + (erase ? " deletes " : " writes ") + key + " at " +
        entry.tag.stamp.hlc.ToString() + " seq " + std::to_string(d->seq));
    auto [it, added] = expected_.try_emplace(key, Expected{entry.tag.stamp, entry.value});
    if (!added && it->second.stamp < entry.tag.stamp) it->second = {entry.tag.stamp, entry.value};
  }

  void Advance(uint64_t ms) {
    now_ += ms;
    for (auto& n : nodes_) {
      n->SetTime(now_);
      if (n->up()) n->replicator().Tick(now_);
    }
    // Some replicas handle their messages; the others fall behind until a later step.
    for (auto& n : nodes_) {
      if (n->up() && Chance(0.7)) n->replicator().Poll(now_);
    }
  }

  void CrashOrRestart() {
    SimNode& n = *nodes_[Rand(nodes_.size())];
    if (n.up()) {
      if (Up().size() < 2) return;
      Say(n.name() + " crashes");
      n.Close();
      ++result_.crashes;
    } else {
      Say(n.name() + " restarts");
      Reopen(n);
    }
  }

  void Wipe() {
    SimNode* n = PickUp();
    if (!n || !Replaceable(*n)) return;
    Say(n->name() + " is wiped");
    n->write_after.Merge(AppliedElsewhere(*n));
    n->Close();
    n->NewDir();
    n->ForgetBackup();
    Reopen(*n);
    ++result_.wipes;
  }

  void TakeBackup() {
    SimNode* n = PickUp();
    if (!n) return;
    Say(n->name() + " backs up its data dir at seq " + std::to_string(n->replica().last_seq()));
    n->Close();
    n->Backup();
    Reopen(*n);
  }

  void RestoreBackup() {
    SimNode* n = PickUp();
    if (!n || !n->has_backup() || !Replaceable(*n)) return;
    const uint64_t issued = HeldElsewhere(*n);
    n->write_after.Merge(AppliedElsewhere(*n));
    n->Close();
    n->RestoreBackup();
    Reopen(*n);
    if (!result_.ok) return;
    Say(n->name() + " is restored from its backup (seq " + std::to_string(n->replica().last_seq()) +
        ", had issued " + std::to_string(issued) + ")");
    ++result_.restores;
  }

  void SkewClock() {
    SimNode& n = *nodes_[Rand(nodes_.size())];
    n.set_offset(static_cast<int64_t>(Rand(6000)) - 2000);
    n.SetTime(now_);
    Say(n.name() + "'s clock is off by " + std::to_string(n.offset()) + " ms");
  }

  void SetFaults() {
    net::FakeGossipNetwork::Faults f;
    if (Chance(0.7)) {
      f.drop = static_cast<double>(Rand(30)) / 100;
      f.duplicate = static_cast<double>(Rand(30)) / 100;
      f.reorder = static_cast<double>(Rand(50)) / 100;
    }
    net_.set_faults(f);
    Say("network faults: drop " + std::to_string(f.drop) + " duplicate " +
        std::to_string(f.duplicate) + " reorder " + std::to_string(f.reorder));
  }

  void TogglePartition() {
    if (nodes_.size() < 2) return;
    const size_t a = Rand(nodes_.size());
    size_t b = Rand(nodes_.size() - 1);
    if (b >= a) ++b;
    std::pair<std::string, std::string> pair{nodes_[a]->endpoint(), nodes_[b]->endpoint()};
    if (pair.second < pair.first) std::swap(pair.first, pair.second);
    if (cut_.count(pair)) {
      cut_.erase(pair);
      net_.Heal(pair.first, pair.second);
      Say("heal " + pair.first + " - " + pair.second);
    } else {
      cut_.insert(pair);
      net_.Partition(pair.first, pair.second);
      Say("partition " + pair.first + " - " + pair.second);
    }
  }

  static std::map<std::string, std::string> Live(const ClusterState& s) { return s.Globals(); }

  static size_t Tombstones(const ClusterState& s) {
    return s.globals.tombstones() + s.node_vars.tombstones() + s.inventory.tombstones() +
           s.jobs.tombstones() + s.job_logs.tombstones() + s.config.tombstones();
  }

  // Every up replica agrees, nothing is in flight or being restored, every tombstone collected.
  bool Converged(std::string* why) {
    SimNode* first = nullptr;
    for (SimNode* n : Up()) {
      if (n->replicator().fetching_snapshot() || n->replicator().buffered_deltas() > 0) {
        *why = n->name() +
               (n->replicator().fetching_snapshot()
                    ? " is still restoring a snapshot"
                    : " still buffers " + std::to_string(n->replicator().buffered_deltas()) +
                          " deltas behind a gap; applied " + n->replica().Applied().ToString());
        return false;
      }
      if (size_t t = Tombstones(n->replica().state()); t > 0) {
        *why = n->name() + " still holds " + std::to_string(t) + " tombstones";
        return false;
      }
      if (!first) {
        first = n;
        continue;
      }
      if (!(n->replica().Applied() == first->replica().Applied())) {
        *why = n->name() + " applied " + n->replica().Applied().ToString() + " but " +
               first->name() + " applied " + first->replica().Applied().ToString();
        return false;
      }
      if (Live(n->replica().state()) != Live(first->replica().state())) {
        *why = n->name() + " and " + first->name() + " hold different values";
        return false;
      }
    }
    return true;
  }

  void HealAndCheck() {
    Say("everything heals");
    net_.set_faults({});
    net_.HealAll();
    cut_.clear();
    for (auto& n : nodes_) {
      n->set_offset(0);
      if (!n->up()) Reopen(*n);
      if (!result_.ok) return;
    }
    const uint64_t healed = now_;
    std::string why;
    while (!Converged(&why)) {
      if (now_ - healed > kMaxSettleMs) {
        for (SimNode* n : Up()) {
          Say(n->name() + " (" + n->replica().origin() + ") applied " +
              n->replica().Applied().ToString());
          for (const auto& [k, e] : n->replica().state().globals.entries()) {
            if (e.tombstone()) {
              Say("  tombstone " + k + " dot " + e.tag.stamp.origin + ":" +
                  std::to_string(e.tag.seq));
            }
          }
        }
        Fail("no convergence within " + std::to_string(kMaxSettleMs) +
             " ms of simulated time after healing: " + why);
        return;
      }
      now_ += 100;
      for (auto& n : nodes_) {
        n->SetTime(now_);
        n->replicator().Tick(now_);
      }
      for (int round = 0; round < 100 && net_.pending() > 0; ++round) {
        for (auto& n : nodes_) n->replicator().Poll(now_);
      }
    }
    result_.settle_ms = std::max(result_.settle_ms, now_ - healed);
    Say("converged after " + std::to_string(now_ - healed) + " ms");
    const auto live = Live(nodes_[0]->replica().state());
    for (const auto& [key, want] : expected_) {
      auto it = live.find(key);
      if (want.value && (it == live.end() || it->second != *want.value)) {
        Fail("lost write: " + key + " should be " + *want.value + " (stamped " +
             want.stamp.hlc.ToString() + " by " + want.stamp.origin + ") but is " +
             (it == live.end() ? std::string("absent") : it->second));
        return;
      }
      if (!want.value && it != live.end()) {
        Fail("resurrection: " + key + " was deleted (stamped " + want.stamp.hlc.ToString() +
             " by " + want.stamp.origin + ") but holds " + it->second);
        return;
      }
    }
    for (const auto& [key, value] : live) {
      if (!expected_.count(key)) Fail("a value nobody wrote: " + key + " = " + value);
    }
  }

  SimOptions options_;
  std::mt19937_64 rng_;
  net::FakeGossipNetwork net_;
  Limits limits_;
  uint64_t now_ = kStart;
  uint64_t write_count_ = 0;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::map<std::string, Expected> expected_;
  SimResult result_;
};

}  // namespace

SimResult RunSimulation(const SimOptions& options) {
  World world(options);
  return world.Run();
}

}  // namespace clustermgr::sim
