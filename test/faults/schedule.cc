#include "test/faults/schedule.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "net/rpc_client.h"
#include "test/faults/fault_cluster.h"
#include "test/faults/history.h"
#include "test/support/cluster.h"

namespace clustermgr::faults {

const std::vector<std::pair<std::string, std::string>>& FaultKinds() {
  static const std::vector<std::pair<std::string, std::string>> kKinds = {
      {"kill", "SIGKILL a manager, restart it after the hold"},
      {"wipe",
       "kill a manager and empty its data dir; restart it (sometimes --restore-from-peers)"},
      {"isolate", "cut a manager's namespace off the network for the hold"},
      {"serf-restart", "restart a manager's Serf agent"},
      {"loss", "drop a share of packets (one manager or all)"},
      {"delay", "delay packets (one manager or all)"},
      {"clock", "skew a manager's wall clock (libfaketime): a jump of up to +-3 s, or a drift"},
      {"disk-full", "fill a manager's data dir (a tmpfs of its own) for the hold, then free it"},
      {"rogue-serf",
       "a Serf member that is no manager joins with manager tags (a huge or negative epoch, "
       "sometimes a live manager's name)"},
      {"stall",
       "SIGSTOP the token holder's clustermgrd (mid-playbook when one runs) beyond the contact "
       "window, then SIGCONT"},
      {"restore",
       "kill a manager, empty its data dir and restart it with --restore-from-peers once peers "
       "have collected tombstones and trimmed their delta logs"},
  };
  return kKinds;
}

std::atomic<bool> g_stop{false};

void Tally::Add(const Tally& t) {
  schedules += t.schedules;
  for (const auto& [k, n] : t.faults) faults[k] += n;
  acknowledged += t.acknowledged;
  refused += t.refused;
  unknown += t.unknown;
  writes_lost += t.writes_lost;
  worst_convergence_ms = std::max(worst_convergence_ms, t.worst_convergence_ms);
  duplicates_in_partitions += t.duplicates_in_partitions;
  duplicates_outside += t.duplicates_outside;
  jobs_checked += t.jobs_checked;
  fenced_checks += t.fenced_checks;
  stale_after_newer += t.stale_after_newer;
  dual_holder_ms += t.dual_holder_ms;
  overlaps_outside += t.overlaps_outside;
  overlaps_in_partitions += t.overlaps_in_partitions;
  runs_checked += t.runs_checked;
  token_moves += t.token_moves;
  worst_token_move_ms = std::max(worst_token_move_ms, t.worst_token_move_ms);
  failed += t.failed;
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// A stop flag that pacing waits can be woken from (the schedule's end, or a signal).
class Stopper {
 public:
  // Waits up to `d`; false when the stop came first.
  bool Pause(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stop_ || g_stop.load(); });
    return !(stop_ || g_stop.load());
  }
  void Stop() {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  bool stopped() {
    std::lock_guard lock(mu_);
    return stop_ || g_stop.load();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

struct PlannedFault {
  std::string kind;
  int target = 0;  // manager index 0-based; -1 = the machines' link
  int hold_ms = 0;
  int gap_ms = 0;
  int amount = 0;        // loss %, delay ms; clock: offset ms
  bool restore = false;  // wipe: with --restore-from-peers; clock: drift; rogue: reuse a name
  std::string ToString() const {
    std::string s = kind + " " +
                    (target < 0 ? std::string("mach") : "m" + std::to_string(target + 1)) +
                    " hold " + std::to_string(hold_ms) + "ms";
    if (kind == "loss") s += " " + std::to_string(amount) + "%";
    if (kind == "delay") s += " " + std::to_string(amount) + "ms";
    if (kind == "wipe") s += restore ? " --restore-from-peers" : " (empty dir)";
    if (kind == "clock") s += " " + ClockSpec();
    if (kind == "rogue-serf" && restore) s += " reusing a live name";
    return s + ", then " + std::to_string(gap_ms) + "ms calm";
  }
  // clock: libfaketime's spec for the offset (seconds with a fraction), or a drift.
  std::string ClockSpec() const {
    if (restore) return "+0 x1.02";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%+.3fs", amount / 1000.0);
    return buf;
  }
};

std::vector<PlannedFault> Plan(uint64_t seed, std::chrono::seconds duration, int managers) {
  std::mt19937_64 rng(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const auto& kinds = FaultKinds();
  std::vector<PlannedFault> plan;
  int64_t total = 0;
  while (total < duration.count() * 1000) {
    PlannedFault f;
    f.kind = kinds[static_cast<std::size_t>(uni(0, static_cast<int>(kinds.size()) - 1))].first;
    f.target = uni(0, managers - 1);
    if ((f.kind == "loss" || f.kind == "delay") && uni(0, 3) == 0) f.target = -1;
    f.hold_ms =
        f.kind == "kill" || f.kind == "wipe" || f.kind == "serf-restart" || f.kind == "restore"
            ? uni(200, 3000)
            : uni(2000, 8000);
    // A stall must outlast the contact window (5 s) for the others to take over.
    if (f.kind == "stall") f.hold_ms = uni(6000, 9000);
    f.gap_ms = uni(1000, 4000);
    f.amount = f.kind == "loss" ? uni(10, 40) : uni(40, 150);
    if (f.kind == "clock") f.amount = uni(-3000, 3000);
    f.restore = uni(0, 1) == 1;
    total += f.hold_ms + f.gap_ms + 1500;  // ~1.5 s for a restart / heal itself
    plan.push_back(f);
  }
  return plan;
}

net::RpcClient::Options ClientOptions(std::chrono::milliseconds timeout) {
  net::RpcClient::Options o;
  o.timeout = timeout;
  return o;
}

// One RpcClient per instance for the calling thread.
struct Clients {
  explicit Clients(const std::vector<std::string>& urls, std::chrono::milliseconds timeout) {
    for (const auto& u : urls)
      c.push_back(std::make_unique<net::RpcClient>(u, ClientOptions(timeout)));
  }
  net::RpcClient& operator[](std::size_t i) { return *c[i]; }
  std::vector<std::unique_ptr<net::RpcClient>> c;
};

template <typename T>
void Classify(const clustermgr::Result<T>& r, Op* op) {
  op->end_ms = NowMs();
  if (r.ok()) {
    op->outcome = Outcome::kAcknowledged;
    return;
  }
  op->error = std::string(clustermgr::CodeName(r.status().code())) + ": " + r.status().message();
  // "could not connect" means nothing was sent: a refusal. Any other transport failure of a
  // mutation comes back as kOutcomeUnknown.
  op->outcome = r.status().code() == clustermgr::Code::kOutcomeUnknown ? Outcome::kUnknown
                                                                       : Outcome::kRefused;
}

class Schedule {
 public:
  Schedule(NetLab& lab, const ScheduleOptions& o)
      : lab_(lab), o_(o), history_(NowMs()), plan_(Plan(o.seed, o.duration, kManagers)) {}

  ScheduleResult Run();

 private:
  static constexpr int kManagers = 3;

  std::string Name(std::size_t i) const { return "m" + std::to_string(i + 1); }
  void Log(const std::string& line) {
    history_.Note(line);
    if (o_.verbose)
      std::cout << "[s" << o_.index << " " << history_.Rel(NowMs()) << "] " << line << std::endl;
  }
  bool Fail(const std::string& check, const std::string& what,
            const std::vector<std::string>& needles) {
    if (!result_.ok) return false;
    result_.ok = false;
    result_.failure = "CHECK FAILED: " + check + "\n  " + what + "\nhistory excerpt:\n" +
                      history_.Excerpt(needles);
    return false;
  }

  bool WaitForHolder(std::chrono::milliseconds timeout, std::string* last);
  void GlobalWriter(uint64_t seed);
  void JobClient(uint64_t seed, int which);
  void Poller();
  bool Inject(const PlannedFault& f);
  bool HealAll();
  bool Quiesce(int64_t heal_ms);
  void Check();
  void CheckGlobals(Clients& c);
  void CheckNodes(Clients& c);
  void CheckJobs(Clients& c);
  void CheckEpochs(Clients& c);
  void CheckFencing();
  void CheckStateDiff();
  void CheckRunOverlaps();
  void CheckTokenMoves();

  NetLab& lab_;
  ScheduleOptions o_;
  History history_;
  std::vector<PlannedFault> plan_;
  std::unique_ptr<FaultCluster> cluster_;
  std::vector<std::string> urls_;
  ScheduleResult result_;
  Stopper clients_stop_;
  Stopper poller_stop_;

  std::mutex epoch_mu_;
  std::vector<int> wipe_gen_ = std::vector<int>(kManagers, 0);
  uint64_t max_epoch_seen_ = 0;
  std::vector<std::string> epoch_violations_;
  // Poll rounds in which more than one instance said it held the token: (time, "m1@3 m2@4").
  std::vector<std::pair<int64_t, std::string>> dual_;
  // Every poll round: (time, how many instances said they held the token).
  std::vector<std::pair<int64_t, int>> holder_rounds_;
};

bool Schedule::WaitForHolder(std::chrono::milliseconds timeout, std::string* last) {
  Clients c(urls_, 1000ms);
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && !g_stop) {
    std::set<std::string> holders;
    int self = 0;
    *last = "";
    bool all = true;
    for (std::size_t i = 0; i < urls_.size(); ++i) {
      auto t = c[i].Token();
      if (!t.ok()) {
        *last += Name(i) + ": " + t.status().message() + "; ";
        all = false;
        continue;
      }
      *last += Name(i) + ": holder=" + t.value().holder +
               " epoch=" + std::to_string(t.value().epoch) + " (" + t.value().reason + "); ";
      holders.insert(t.value().holder);
      self += t.value().self_holds;
    }
    if (all && holders.size() == 1 && !holders.begin()->empty() && self == 1) return true;
    std::this_thread::sleep_for(100ms);  // polling token RPC with a deadline
  }
  return false;
}

void Schedule::GlobalWriter(uint64_t seed) {
  std::mt19937_64 rng(seed);
  Clients c(urls_, 3000ms);
  for (int n = 1; !clients_stop_.stopped(); ++n) {
    const std::size_t i = rng() % urls_.size();
    Op op;
    op.id = history_.NextOpId();
    op.kind = "global";
    op.instance = Name(i);
    // A set replaces the whole map: the rotating key of the set before is deleted, so
    // tombstones are made (and collected) all along.
    op.value = json{
        {"w", "s" + std::to_string(o_.index) + "-g" + std::to_string(n)},
        {"n", n},
        {"k" + std::to_string(n % 5),
         n}}.dump();
    op.start_ms = NowMs();
    Classify(c[i].GlobalSet(op.value), &op);
    history_.Add(op);
    if (!clients_stop_.Pause(std::chrono::milliseconds(150 + rng() % 350))) break;
  }
}

void Schedule::JobClient(uint64_t seed, int which) {
  std::mt19937_64 rng(seed);
  Clients c(urls_, 3000ms);
  const std::vector<std::string> nodes = cluster_->MachineNames();
  while (!clients_stop_.stopped()) {
    const std::string node = nodes[rng() % nodes.size()];
    const std::size_t i = rng() % urls_.size();
    auto info = c[i].NodeGet(node);
    if (!info.ok()) {
      if (!clients_stop_.Pause(300ms)) break;
      continue;
    }
    Op op;
    op.id = history_.NextOpId();
    op.instance = Name(i);
    op.node = node;
    op.key = "v" + std::to_string(op.id);
    op.value =
        "s" + std::to_string(o_.index) + "-c" + std::to_string(which) + "-" + std::to_string(op.id);
    const std::string vars = json{{op.key, op.value}}.dump();
    const net::NodeStatus st = info.value().status;
    std::string job_id;
    op.start_ms = NowMs();
    if (st == net::NodeStatus::kUnallocated || st == net::NodeStatus::kDecommissioned) {
      op.kind = "commission";
      auto r = c[i].Commission({node}, "service-master", vars);
      Classify(r, &op);
      if (r.ok()) op.job_id = r.value().job_id;
    } else if (st == net::NodeStatus::kAllocated && rng() % 2 == 0) {
      op.kind = "update";
      auto r = c[i].Update({node}, "", vars);
      Classify(r, &op);
      if (r.ok()) op.job_id = r.value().job_id;
    } else if (st == net::NodeStatus::kAllocated) {
      op.kind = "decommission";
      op.key.clear();
      op.value.clear();
      auto r = c[i].Decommission({node}, "");
      Classify(r, &op);
      if (r.ok()) op.job_id = r.value().job_id;
    } else {
      if (!clients_stop_.Pause(300ms)) break;
      continue;
    }
    history_.Add(op);
    if (!op.job_id.empty()) {
      // Follow the job to its end at any instance that answers (bounded).
      const auto deadline = Clock::now() + 60s;
      while (Clock::now() < deadline && !clients_stop_.stopped()) {
        auto j = c[rng() % urls_.size()].JobGet(op.job_id);
        if (j.ok() && net::JobEnded(j.value().job.status)) break;
        if (!clients_stop_.Pause(300ms)) break;
      }
    }
    if (!clients_stop_.Pause(std::chrono::milliseconds(100 + rng() % 400))) break;
  }
}

void Schedule::Poller() {
  Clients c(urls_, 800ms);
  std::vector<uint64_t> highest(urls_.size(), 0), seen(urls_.size(), 0);
  std::vector<int> gen(urls_.size(), 0);
  std::vector<std::string> holder(urls_.size());
  do {
    std::string self_holders;
    int self_count = 0;
    const int64_t round_ms = NowMs();
    for (std::size_t i = 0; i < urls_.size(); ++i) {
      auto t = c[i].Token();
      if (!t.ok()) continue;
      const auto& v = t.value();
      if (v.self_holds) {
        ++self_count;
        self_holders += " " + Name(i) + "@" + std::to_string(v.epoch);
      }
      std::lock_guard lock(epoch_mu_);
      max_epoch_seen_ = std::max({max_epoch_seen_, v.highest_epoch, v.epoch});
      if (gen[i] != wipe_gen_[i]) {  // a wiped instance starts over from nothing
        gen[i] = wipe_gen_[i];
        highest[i] = seen[i] = 0;
      }
      // Each distinct violation is recorded once (it repeats at every poll while it lasts).
      auto violation = [&](const std::string& text) {
        if (std::find(epoch_violations_.begin(), epoch_violations_.end(), text) !=
            epoch_violations_.end()) {
          return;
        }
        epoch_violations_.push_back(text);
        history_.Note("EPOCH " + text);
      };
      if (v.highest_epoch < highest[i]) {
        violation(Name(i) + " highest_epoch decreased " + std::to_string(highest[i]) + " -> " +
                  std::to_string(v.highest_epoch));
      }
      if (v.epoch != 0 && v.epoch < seen[i]) {
        violation(Name(i) + " token epoch decreased " + std::to_string(seen[i]) + " -> " +
                  std::to_string(v.epoch) + " (holder " + v.holder + ")");
      }
      if (v.holder != holder[i] || v.highest_epoch != highest[i]) {
        history_.Note("token at " + Name(i) + ": holder=" + v.holder + " epoch=" +
                      std::to_string(v.epoch) + " highest=" + std::to_string(v.highest_epoch));
        holder[i] = v.holder;
      }
      highest[i] = std::max(highest[i], v.highest_epoch);
      if (v.epoch != 0) seen[i] = std::max(seen[i], v.epoch);
    }
    {
      std::lock_guard lock(epoch_mu_);
      holder_rounds_.emplace_back(round_ms, self_count);
    }
    if (self_count > 1) {
      std::lock_guard lock(epoch_mu_);
      if (dual_.empty() || round_ms - dual_.back().first > 2000) {
        history_.Note("TWO HOLDERS:" + self_holders);
      }
      dual_.emplace_back(round_ms, self_holders);
    }
  } while (poller_stop_.Pause(250ms));
}

bool Schedule::Inject(const PlannedFault& f) {
  FaultEvent e;
  e.kind = f.kind;
  e.target = f.target < 0 ? "mach" : Name(static_cast<std::size_t>(f.target));
  e.start_ms = NowMs();
  std::string error;
  Log("inject " + f.ToString());
  auto hold = [&] { return clients_stop_.Pause(std::chrono::milliseconds(f.hold_ms)) || true; };
  if (f.kind == "kill" || f.kind == "wipe") {
    NsInstance& in = cluster_->at(static_cast<std::size_t>(f.target));
    // Only clustermgrd dies: its Serf agent lives on (so its epoch tag stays until the restart,
    // a known limitation) and a playbook it ran goes on as an orphan, as after a real crash.
    in.Kill();
    std::vector<std::string> extra;
    if (f.kind == "wipe") {
      in.Wipe();
      std::lock_guard lock(epoch_mu_);
      ++wipe_gen_[static_cast<std::size_t>(f.target)];
      if (f.restore) extra.push_back("--restore-from-peers");
    }
    hold();
    if (!in.Start(&error, extra)) {
      Log("restart failed: " + error);
      result_.infra_error = true;
      return Fail("restart after " + f.kind, error, {e.target});
    }
    e.detail = f.kind == "wipe" ? (f.restore ? "wipe, --restore-from-peers" : "wipe, empty dir")
                                : "SIGKILL";
  } else if (f.kind == "restore") {
    NsInstance& in = cluster_->at(static_cast<std::size_t>(f.target));
    in.Kill();
    in.Wipe();
    {
      std::lock_guard lock(epoch_mu_);
      ++wipe_gen_[static_cast<std::size_t>(f.target)];
    }
    hold();
    if (!in.Start(&error, {"--restore-from-peers"})) {
      Log("restart failed: " + error);
      result_.infra_error = true;
      return Fail("restart after restore", error, {e.target});
    }
    e.detail = "wipe, --restore-from-peers (peers' logs trimmed at 40 deltas)";
  } else if (f.kind == "clock") {
    NsInstance& in = cluster_->at(static_cast<std::size_t>(f.target));
    in.SetClockOffset(f.ClockSpec());
    hold();
    in.SetClockOffset("+0");
    e.detail = f.ClockSpec();
  } else if (f.kind == "disk-full") {
    NsInstance& in = cluster_->at(static_cast<std::size_t>(f.target));
    in.FillDisk();
    hold();
    in.FreeDisk();
    e.detail = "tmpfs full";
  } else if (f.kind == "rogue-serf") {
    // A huge epoch, or "-1" (which a lenient parser turns into the same), under a made-up name or
    // a live manager's.
    const std::string name = f.restore ? Name(static_cast<std::size_t>(f.target)) : "zz";
    const std::string epoch = f.amount % 2 == 0 ? "18446744073709551615" : "-1";
    if (!cluster_->StartRogue(name, epoch, &error)) {
      result_.infra_error = true;
      return Fail("start a rogue Serf member", error, {});
    }
    hold();
    cluster_->StopRogue();
    e.detail = "instance=" + name + " epoch=" + epoch;
  } else if (f.kind == "stall") {
    // The holder, preferably while it runs a playbook (waits up to 5 s for one).
    std::optional<std::size_t> holder;
    {
      Clients c(urls_, 800ms);
      const auto until = Clock::now() + 5s;
      do {
        for (std::size_t i = 0; i < urls_.size(); ++i) {
          auto t = c[i].Token();
          if (t.ok() && t.value().self_holds) holder = i;
        }
        if (holder) {
          auto active = c[*holder].JobGet("active");
          if (active.ok() && !net::JobEnded(active.value().job.status)) break;
        }
      } while (Clock::now() < until && clients_stop_.Pause(200ms));
    }
    const std::size_t target = holder.value_or(static_cast<std::size_t>(f.target));
    e.target = Name(target);
    NsInstance& in = cluster_->at(target);
    const pid_t pid = in.pid();
    if (pid > 0) ::kill(pid, SIGSTOP);
    Log("stopped " + e.target + " (pid " + std::to_string(pid) + ")");
    hold();
    if (pid > 0) ::kill(pid, SIGCONT);
    e.detail = "SIGSTOP " + std::to_string(f.hold_ms) + " ms";
  } else if (f.kind == "serf-restart") {
    NsInstance& in = cluster_->at(static_cast<std::size_t>(f.target));
    in.agent().Kill();
    hold();
    if (!in.agent().Start(cluster_->OtherAgents(static_cast<std::size_t>(f.target)), &error)) {
      result_.infra_error = true;
      return Fail("serf agent restart", error, {e.target});
    }
    e.detail = "SIGKILL agent";
  } else {
    NetResult r;
    if (f.kind == "isolate") r = lab_.Isolate(e.target);
    if (f.kind == "loss") r = lab_.Loss(e.target, f.amount);
    if (f.kind == "delay") r = lab_.Delay(e.target, f.amount);
    if (!r.ok) {
      result_.infra_error = true;
      return Fail("inject " + f.kind, r.error, {});
    }
    e.detail = f.kind == "loss"    ? std::to_string(f.amount) + "%"
               : f.kind == "delay" ? std::to_string(f.amount) + "ms"
                                   : "link down";
    hold();
    if (NetResult h = lab_.Heal(e.target); !h.ok) {
      result_.infra_error = true;
      return Fail("heal " + e.target, h.error, {});
    }
    // The isolated agent and the others marked each other failed; Serf retries failed members
    // only every 30 s, so the heal includes a rejoin (what an operator's agent would do).
    if (f.target >= 0) {
      (void)cluster_->at(static_cast<std::size_t>(f.target))
          .agent()
          .Join(cluster_->OtherAgents(static_cast<std::size_t>(f.target)));
    }
  }
  e.end_ms = NowMs();
  history_.AddFault(e);
  ++result_.tally.faults[f.kind];
  return true;
}

bool Schedule::HealAll() {
  std::string error;
  for (std::size_t i = 0; i < cluster_->size(); ++i) (void)lab_.Heal(Name(i));
  (void)lab_.Heal("mach");
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    NsInstance& in = cluster_->at(i);
    if (!in.agent().Running() && !in.agent().Start(cluster_->OtherAgents(i), &error)) {
      result_.infra_error = true;
      return Fail("heal", error, {});
    }
    (void)in.agent().Join(cluster_->OtherAgents(i));
    if (!in.Running()) {
      Log(Name(i) + " clustermgrd is not running at heal: it " + in.ExitText());
      Fail("daemon alive at heal",
           Name(i) + " " + in.ExitText() + " during the schedule:\n" + in.LogTail(), {Name(i)});
      if (!in.Start(&error)) return false;
    }
  }
  return true;
}

// Waits until every instance answers with the same applied vector and digest, one holder is
// agreed, no job is active and no node is in a transitional status.
bool Schedule::Quiesce(int64_t heal_ms) {
  Clients c(urls_, 2000ms);
  const auto deadline = Clock::now() + 60s;
  std::string last;
  while (Clock::now() < deadline && !g_stop) {
    last.clear();
    bool same = true;
    std::optional<net::StatusInfo> first;
    for (std::size_t i = 0; i < urls_.size() && same; ++i) {
      auto s = c[i].Status();
      if (!s.ok()) {
        last = Name(i) + " status: " + s.status().message();
        same = false;
      } else if (!first) {
        first = s.value();
      } else if (s.value().state_digest != first->state_digest ||
                 !(s.value().applied == first->applied)) {
        last = Name(i) + " digest " + std::to_string(s.value().state_digest) + " vs m1 " +
               std::to_string(first->state_digest);
        same = false;
      }
    }
    if (same) {
      auto active = c[0].JobGet("active");
      if (active.ok() && !net::JobEnded(active.value().job.status)) {
        same = false;
        last = "job " + active.value().job.id + " still " +
               std::string(net::ToString(active.value().job.status));
      }
    }
    if (same) {
      std::string why;
      Clients t(urls_, 1000ms);
      std::set<std::string> holders;
      int self = 0;
      for (std::size_t i = 0; i < urls_.size(); ++i) {
        auto tk = t[i].Token();
        if (!tk.ok()) {
          same = false;
          break;
        }
        holders.insert(tk.value().holder);
        self += tk.value().self_holds;
        last += Name(i) + " holder=" + tk.value().holder + " (" + tk.value().reason + "); ";
      }
      same = same && holders.size() == 1 && !holders.begin()->empty() && self == 1;
      if (same) {
        // A round of its own for the token check: the poller may stop before its next round
        // sees the holder this one saw.
        std::lock_guard lock(epoch_mu_);
        holder_rounds_.emplace_back(NowMs(), self);
      }
    }
    if (same) {
      // Converged now; re-read once to be sure nothing moved in between (a job may have ended).
      auto a = c[0].Status();
      auto b = c[urls_.size() - 1].Status();
      if (a.ok() && b.ok() && a.value().state_digest == b.value().state_digest &&
          a.value().state_digest == first->state_digest) {
        const int64_t took = NowMs() - heal_ms;
        result_.tally.worst_convergence_ms = std::max(result_.tally.worst_convergence_ms, took);
        Log("converged " + std::to_string(took) + " ms after heal");
        return true;
      }
    }
    std::this_thread::sleep_for(100ms);  // polling status RPC with a deadline
  }
  return Fail("convergence after heal", "no convergence within 60 s: " + last, {});
}

void Schedule::CheckGlobals(Clients& c) {
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < urls_.size(); ++i) {
    auto g = c[i].GlobalGet();
    if (!g.ok()) {
      Fail("globals readable", Name(i) + ": " + g.status().message(), {});
      return;
    }
    texts.push_back(g.value());
  }
  for (std::size_t i = 1; i < texts.size(); ++i) {
    if (json::parse(texts[i], nullptr, false) != json::parse(texts[0], nullptr, false)) {
      Fail("globals identical", "m1 " + texts[0] + " vs " + Name(i) + " " + texts[i], {"global"});
      return;
    }
  }
  const json final_globals = json::parse(texts[0], nullptr, false);
  const std::vector<Op> ops = history_.Ops();
  // The final map is exactly one acknowledged-or-unknown set's payload (set replaces the map),
  // and no acknowledged set that started after that one was acknowledged may have lost to it.
  const Op* winner = nullptr;
  int64_t last_ack_start = 0;
  const Op* last_ack = nullptr;
  // A set replaces the map, but concurrent sets (a partition) merge key by key: the winner is
  // the set whose "w" the final map shows, and every other key must hold a value some
  // acknowledged-or-unknown set gave it.
  bool keys_explained = true;
  std::string unexplained;
  for (const auto& [key, value] : final_globals.items()) {
    bool found = false;
    for (const Op& op : ops) {
      if (op.kind != "global" || op.outcome == Outcome::kRefused) continue;
      const json payload = json::parse(op.value, nullptr, false);
      if (payload.contains(key) && payload[key] == value) found = true;
    }
    if (!found) {
      keys_explained = false;
      unexplained = key;
    }
  }
  for (const Op& op : ops) {
    if (op.kind != "global" || op.outcome == Outcome::kRefused) continue;
    const json payload = json::parse(op.value, nullptr, false);
    if (keys_explained && final_globals.contains("w") && payload.contains("w") &&
        payload["w"] == final_globals["w"] && payload["n"] == final_globals["n"]) {
      winner = &op;
    }
    if (op.outcome == Outcome::kAcknowledged && op.start_ms >= last_ack_start) {
      last_ack_start = op.start_ms;
      last_ack = &op;
    }
  }
  if (!last_ack) return;
  if (!winner) {
    ++result_.tally.writes_lost;
    Fail("globals = one acknowledged-or-unknown write",
         "final globals " + texts[0] + " match no acknowledged or unknown global set" +
             (unexplained.empty() ? std::string() : " (key " + unexplained + ")") +
             "; last acknowledged: " + Describe(*last_ack),
         {"global"});
    return;
  }
  // An unknown write may take effect any time after it was sent: real-time order binds only an
  // acknowledged winner.
  if (winner->outcome != Outcome::kAcknowledged) return;
  for (const Op& op : ops) {
    if (op.kind == "global" && op.outcome == Outcome::kAcknowledged &&
        op.start_ms > winner->end_ms) {
      ++result_.tally.writes_lost;
      Fail("LWW order of globals",
           "final globals come from " + Describe(*winner) + " but " + Describe(op) +
               " was sent after that one was answered, and was lost",
           {"op#" + std::to_string(winner->id) + " ", "op#" + std::to_string(op.id) + " "});
      return;
    }
  }
}

void Schedule::CheckNodes(Clients& c) {
  const std::vector<Op> ops = history_.Ops();
  for (std::size_t i = 0; i < urls_.size(); ++i) {
    auto nodes = c[i].NodesGet();
    if (!nodes.ok()) {
      Fail("nodes readable", Name(i) + ": " + nodes.status().message(), {});
      return;
    }
    std::map<std::string, json> vars;
    for (const auto& n : nodes.value()) {
      vars[n.name] = json::parse(n.extra_vars.empty() ? "{}" : n.extra_vars, nullptr, false);
      if (n.status == net::NodeStatus::kProvisioning || n.status == net::NodeStatus::kCancelled ||
          n.status == net::NodeStatus::kMaintenance) {
        Fail("no node stuck",
             Name(i) + ": node " + n.name + " is " + std::string(net::ToString(n.status)) +
                 " with no job running",
             {n.name});
        return;
      }
    }
    for (const Op& op : ops) {
      if (op.outcome != Outcome::kAcknowledged || op.key.empty()) continue;
      const json& v = vars[op.node];
      if (!v.is_object() || !v.contains(op.key) || v[op.key] != op.value) {
        ++result_.tally.writes_lost;
        Fail("acknowledged node var present",
             Name(i) + ": node " + op.node + " vars " + v.dump() + " lack " + op.key + "=" +
                 op.value + " of " + Describe(op),
             {op.node});
        return;
      }
    }
  }
}

void Schedule::CheckJobs(Clients& c) {
  // Marker lines "<playbook> <job_id> <epoch>" per node.
  struct Run {
    std::string playbook, node;
    uint64_t epoch = 0;
  };
  std::map<std::string, std::vector<Run>> runs;  // job id -> runs
  for (const auto& entry : std::filesystem::directory_iterator(cluster_->marker_dir())) {
    if (entry.path().extension() != ".jobs") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      Run r;
      std::string job;
      ls >> r.playbook >> job >> r.epoch;  // then the fencing check's seq (CheckFencing)
      r.node = entry.path().stem().string();
      runs[job].push_back(r);
    }
  }
  auto jobs = c[0].JobsList();
  if (!jobs.ok()) {
    Fail("jobs readable", jobs.status().message(), {});
    return;
  }
  std::map<std::string, net::JobInfo> by_id;
  for (const auto& j : jobs.value()) by_id[j.id] = j;
  const std::vector<FaultEvent> faults = history_.Faults();
  for (const Op& op : history_.Ops()) {
    if (op.outcome == Outcome::kAcknowledged && !op.job_id.empty() && !by_id.count(op.job_id)) {
      ++result_.tally.writes_lost;
      Fail("acknowledged job recorded",
           "job " + op.job_id + " of " + Describe(op) + " is in no instance's job list",
           {op.job_id});
      return;
    }
  }
  for (const auto& [id, job] : by_id) {
    ++result_.tally.jobs_checked;
    std::map<std::pair<std::string, std::string>, int> count;  // (playbook, node) -> runs
    for (const Run& r : runs[id]) {
      ++count[{r.playbook, r.node}];
      if (r.epoch != job.epoch) {
        Fail("side effect at the job's epoch",
             "job " + id + " (epoch " + std::to_string(job.epoch) + ") ran " + r.playbook + " on " +
                 r.node + " at epoch " + std::to_string(r.epoch),
             {id});
        return;
      }
    }
    bool in_partition = false;
    const int64_t end = job.ended_ms ? job.ended_ms : NowMs();
    for (const FaultEvent& f : faults) {
      if (f.partition() && f.start_ms <= end && f.end_ms + 10000 >= job.created_ms) {
        in_partition = true;
      }
    }
    const std::string want = job.desc == "decommission" ? "cleanup.yml" : "site.yml";
    for (const std::string& node : job.nodes) {
      for (const std::string& pb : {std::string("site.yml"), std::string("cleanup.yml")}) {
        const int n = count[{pb, node}];
        // update runs cleanup then configure; a failed commission runs cleanup once too.
        if (n > 1) {
          if (in_partition) {
            ++result_.tally.duplicates_in_partitions;
            history_.Note("duplicate (in a partition): job " + id + " ran " + pb + " " +
                          std::to_string(n) + "x on " + node);
          } else {
            ++result_.tally.duplicates_outside;
            Fail("exactly once outside partitions",
                 "job " + id + " (" + job.desc + ", " + std::string(net::ToString(job.status)) +
                     ") ran " + pb + " " + std::to_string(n) + " times on " + node,
                 {id, node});
            return;
          }
        }
      }
      if (job.status == net::JobStatus::kComplete && count[{want, node}] == 0) {
        Fail("a completed job ran its playbook",
             "job " + id + " (" + job.desc + ") is Complete but no " + want +
                 " run recorded it on " + node,
             {id, node});
        return;
      }
    }
  }
}

// Every host keeps its fencing state in <markers>/fence/<node>/ (the test playbooks' setting of
// clustermgr_fence_state_dir): `history` has one line per check, in lock order, "<time>
// applied|fenced epoch=E seen=S job=J". The playbooks' job markers (<markers>/<node>.jobs,
// "<playbook> <job> <epoch> <seq>") are written after the check, seq being the check's line in
// history. Where two holders overlapped, a deposed holder's run must not get past the check
// once a newer epoch has: no history applies a lower epoch after a higher one, and a marker at
// a lower epoch may follow one at a higher epoch only if its check came first (lower seq).
void Schedule::CheckFencing() {
  const std::filesystem::path fence_dir = std::filesystem::path(cluster_->marker_dir()) / "fence";
  // Every node with a fencing state or a job marker (a marker without a state is a playbook run
  // that skipped the check, found below by its missing seq).
  std::set<std::string> nodes;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fence_dir, ec)) {
    nodes.insert(entry.path().filename().string());
  }
  for (const auto& entry : std::filesystem::directory_iterator(cluster_->marker_dir(), ec)) {
    if (entry.path().extension() == ".jobs") nodes.insert(entry.path().stem().string());
  }
  for (const std::string& node : nodes) {
    std::ifstream in(fence_dir / node / "history");
    std::string line;
    uint64_t highest = 0;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      std::istringstream ls(line);
      std::string time, what, epoch_field, seen_field;
      ls >> time >> what >> epoch_field >> seen_field;
      auto value = [](const std::string& field) {
        const std::size_t eq = field.find('=');
        return eq == std::string::npos ? 0 : std::strtoull(field.c_str() + eq + 1, nullptr, 10);
      };
      const uint64_t epoch = value(epoch_field);
      const uint64_t seen = value(seen_field);
      if (what == "fenced") {
        ++result_.tally.fenced_checks;
        history_.Note("fenced on " + node + ": " + line);
        if (epoch >= seen) {
          Fail("node fencing",
               node + " fenced a run that carried epoch " + std::to_string(epoch) + " >= the " +
                   std::to_string(seen) + " it had seen: " + line,
               {node});
          return;
        }
        continue;
      }
      if (epoch < highest || seen != highest) {
        Fail("node fencing",
             node + " applied epoch " + std::to_string(epoch) + " (check " + std::to_string(n) +
                 ", it thought it had seen " + std::to_string(seen) + ") after epoch " +
                 std::to_string(highest) + ": " + line,
             {node});
        return;
      }
      highest = epoch;
    }
    // The markers, in the order the playbooks wrote them.
    std::ifstream jobs(cluster_->marker_dir() + "/" + node + ".jobs");
    uint64_t top_epoch = 0;
    uint64_t top_seq = 0;
    std::string top_line;
    while (std::getline(jobs, line)) {
      std::istringstream ls(line);
      std::string playbook, job, seq_text;
      uint64_t epoch = 0;
      ls >> playbook >> job >> epoch >> seq_text;
      const uint64_t seq = std::strtoull(seq_text.c_str(), nullptr, 10);
      if (seq == 0) {
        Fail("node fencing", node + ": a playbook ran without the fencing check: " + line, {node});
        return;
      }
      if (epoch < top_epoch) {
        if (seq > top_seq) {
          Fail("node fencing",
               node + ": \"" + line + "\" (check " + std::to_string(seq) + ") ran after \"" +
                   top_line + "\" (check " + std::to_string(top_seq) +
                   "): a lower epoch got past the fence after a higher one",
               {node, job});
          return;
        }
        ++result_.tally.stale_after_newer;
        history_.Note("on " + node + " \"" + line + "\" came after \"" + top_line +
                      "\" but passed its check first");
      } else {
        top_epoch = epoch;
        top_seq = seq;
        top_line = line;
      }
    }
  }
}

void Schedule::CheckEpochs(Clients& c) {
  std::lock_guard lock(epoch_mu_);
  if (!epoch_violations_.empty()) {
    Fail("epochs never decrease", epoch_violations_.front(), {"EPOCH", "token at"});
    return;
  }
  // One holder at a time, except while (and shortly after) messages were lost or delayed:
  // failure detection (~5-8 s with Serf's local profile) plus the settle period.
  const std::vector<FaultEvent> faults = history_.Faults();
  int64_t previous = 0;
  for (const auto& [ms, holders] : dual_) {
    result_.tally.dual_holder_ms += previous && ms - previous < 2000 ? ms - previous : 250;
    previous = ms;
  }
  for (const auto& [ms, holders] : dual_) {
    bool excused = false;
    for (const FaultEvent& f : faults) {
      if (f.partition() && ms >= f.start_ms && ms <= f.end_ms + 10000) excused = true;
    }
    if (!excused) {
      Fail("one token holder at a time outside partitions",
           "at " + history_.Rel(ms) + " these instances all said they held the token:" + holders +
               " (no isolation, loss, delay or Serf agent restart within the 10 s before)",
           {"TWO HOLDERS", "token at"});
      return;
    }
  }
  for (std::size_t i = 0; i < urls_.size(); ++i) {
    auto t = c[i].Token();
    if (!t.ok()) continue;
    if (t.value().highest_epoch < max_epoch_seen_) {
      Fail("final epochs",
           Name(i) + " ends with highest_epoch " + std::to_string(t.value().highest_epoch) + " < " +
               std::to_string(max_epoch_seen_) + " seen during the run",
           {"token at"});
      return;
    }
  }
}

// Each instance collects a tombstone on its own once the deletion is causally stable, so right
// after convergence one may still hold a tombstone another has dropped: the dumps must become
// identical within a while.
void Schedule::CheckStateDiff() {
  const auto deadline = Clock::now() + 20s;
  for (;;) {
    const test::CommandResult r = test::RunCommand(
        "state-inspect", {"diff", "--url", urls_[0], "--url", urls_[urls_.size() - 1]}, 60s);
    if (r.exit_code == 0) return;
    if (Clock::now() >= deadline || g_stop) {
      Fail("state-inspect diff m1 m3 (for 20 s)", r.ToString(), {});
      return;
    }
    std::this_thread::sleep_for(500ms);  // polling a diff with a deadline
  }
}

// Each playbook run appends "<epoch> <job> <ms>" to <markers>/<node>.busy every 100 ms while it
// works (the test playbooks' `busy` task): a run's span is its first to its last mark. Two runs
// of different epochs whose spans overlap on one node ran at the same time: outside partition
// windows (and the 10 s after) that fails the schedule - a deposed holder's playbook must be
// stopped (lease, kill grace) before a new holder's claim holds.
void Schedule::CheckRunOverlaps() {
  struct Span {
    uint64_t epoch = 0;
    std::string job;
    int64_t first = INT64_MAX, last = 0;
  };
  const std::vector<FaultEvent> faults = history_.Faults();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(cluster_->marker_dir(), ec)) {
    if (entry.path().extension() != ".busy") continue;
    const std::string node = entry.path().stem().string();
    std::map<std::string, Span> spans;  // by job
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      Span mark;
      int64_t ms = 0;
      if (!(ls >> mark.epoch >> mark.job >> ms)) continue;
      Span& s = spans[mark.job];
      s.epoch = mark.epoch;
      s.job = mark.job;
      s.first = std::min(s.first, ms);
      s.last = std::max(s.last, ms);
    }
    result_.tally.runs_checked += static_cast<int>(spans.size());
    for (auto a = spans.begin(); a != spans.end(); ++a) {
      for (auto b = std::next(a); b != spans.end(); ++b) {
        const Span& x = a->second;
        const Span& y = b->second;
        if (x.epoch == y.epoch || x.last < y.first || y.last < x.first) continue;
        const int64_t from = std::max(x.first, y.first);
        const int64_t to = std::min(x.last, y.last);
        bool in_partition = false;
        for (const FaultEvent& f : faults) {
          if (f.partition() && f.start_ms <= to && f.end_ms + 10000 >= from) in_partition = true;
        }
        const std::string what = "on " + node + " job " + x.job + " (epoch " +
                                 std::to_string(x.epoch) + ") and job " + y.job + " (epoch " +
                                 std::to_string(y.epoch) + ") both ran from " + history_.Rel(from) +
                                 " to " + history_.Rel(to);
        if (in_partition) {
          ++result_.tally.overlaps_in_partitions;
          history_.Note("overlap (in a partition): " + what);
          continue;
        }
        ++result_.tally.overlaps_outside;
        Fail("no overlapping playbook runs of different epochs outside partitions", what,
             {x.job, y.job, node});
        return;
      }
    }
  }
}

// After each fault heals, some instance holds the token again within a bound (unless the next
// fault came first): Serf failure detection (~5-8 s), the contact window (5 s), the settle period,
// catching up, a restart.
void Schedule::CheckTokenMoves() {
  constexpr int64_t kBoundMs = 30000;
  const std::vector<FaultEvent> faults = history_.Faults();
  std::vector<std::pair<int64_t, int>> rounds;
  {
    std::lock_guard lock(epoch_mu_);
    rounds = holder_rounds_;
  }
  for (std::size_t k = 0; k < faults.size(); ++k) {
    const FaultEvent& f = faults[k];
    const int64_t next = k + 1 < faults.size() ? faults[k + 1].start_ms : INT64_MAX;
    std::optional<int64_t> held;
    for (const auto& [ms, holders] : rounds) {
      if (ms >= f.end_ms && holders == 1) {
        held = ms;
        break;
      }
    }
    if (held && *held <= next) {
      ++result_.tally.token_moves;
      result_.tally.worst_token_move_ms =
          std::max(result_.tally.worst_token_move_ms, *held - f.end_ms);
    }
    const int64_t limit = f.end_ms + kBoundMs;
    if ((!held || *held > limit) && next > limit) {
      Fail("the token is held again within 30 s of each heal",
           "after " + f.kind + " " + f.target + " (" + f.detail + ") healed at " +
               history_.Rel(f.end_ms) + " no instance held the token " +
               (held ? "until " + history_.Rel(*held) : std::string("for the rest of the run")),
           {"token at", f.target});
      return;
    }
  }
}

void Schedule::Check() {
  Clients c(urls_, 5000ms);
  CheckGlobals(c);
  if (result_.ok) CheckNodes(c);
  if (result_.ok) CheckJobs(c);
  if (result_.ok) CheckEpochs(c);
  if (result_.ok) CheckRunOverlaps();
  if (result_.ok) CheckTokenMoves();
  if (result_.ok) CheckFencing();
  if (result_.ok) CheckStateDiff();
}

ScheduleResult Schedule::Run() {
  for (const auto& f : plan_) result_.plan += "  " + f.ToString() + "\n";
  if (o_.verbose) std::cout << "[s" << o_.index << "] plan:\n" << result_.plan << std::flush;
  std::string error;
  cluster_ = FaultCluster::Start(lab_, kManagers, o_.machines, o_.keep, &error);
  if (!cluster_) {
    result_.infra_error = true;
    Fail("cluster start", error, {});
    return result_;
  }
  for (std::size_t i = 0; i < cluster_->size(); ++i) urls_.push_back(cluster_->at(i).rpc_url());
  std::string last;
  if (!WaitForHolder(60s, &last)) {
    Fail("initial token holder", "no single holder within 60 s: " + last, {});
    return result_;
  }
  Log("cluster up, holder agreed: " + last);

  std::thread poller([&] { Poller(); });
  std::vector<std::thread> clients;
  clients.emplace_back([&] { GlobalWriter(o_.seed * 7 + 1); });
  clients.emplace_back([&] { JobClient(o_.seed * 7 + 2, 1); });
  clients.emplace_back([&] { JobClient(o_.seed * 7 + 3, 2); });

  const auto start = Clock::now();
  for (const PlannedFault& f : plan_) {
    if (g_stop || Clock::now() - start > o_.duration) break;
    if (!Inject(f)) break;
    if (!clients_stop_.Pause(std::chrono::milliseconds(f.gap_ms)) && g_stop) break;
  }
  const bool healed = result_.infra_error ? false : HealAll();
  const int64_t heal_ms = NowMs();
  Log("healed; clients stop");
  clients_stop_.Stop();
  for (auto& t : clients) t.join();
  if (healed && result_.ok && !g_stop) Quiesce(heal_ms);
  poller_stop_.Stop();
  poller.join();
  if (result_.ok && !g_stop) Check();
  if (!result_.ok && !epoch_violations_.empty()) {
    // Often the cause of a failure found earlier (e.g. a job that never ends).
    result_.failure += "epoch violations seen meanwhile:\n";
    for (const auto& v : epoch_violations_) result_.failure += "  " + v + "\n";
  }

  for (const Op& op : history_.Ops()) {
    if (op.outcome == Outcome::kAcknowledged) ++result_.tally.acknowledged;
    if (op.outcome == Outcome::kRefused) ++result_.tally.refused;
    if (op.outcome == Outcome::kUnknown) ++result_.tally.unknown;
  }
  result_.tally.schedules = 1;
  result_.tally.failed = result_.ok ? 0 : 1;
  if (!result_.ok) {
    for (std::size_t i = 0; i < cluster_->size(); ++i) {
      result_.failure += "---- " + Name(i) + " log tail:\n" + cluster_->at(i).LogTail(2500) + "\n";
    }
  }
  for (std::size_t i = 0; i < cluster_->size(); ++i) cluster_->at(i).Kill();
  for (std::size_t i = 0; i < cluster_->size(); ++i) lab_.KillProcessesIn(Name(i));
  lab_.KillProcessesIn("mach");
  if (o_.keep) {
    std::ofstream out(cluster_->dir() + "/history.txt");
    out << "seed " << o_.seed << " schedule " << o_.index << "\nplan:\n"
        << result_.plan << "history:\n"
        << history_.Excerpt({}, 1000000) << (result_.ok ? "" : "\n" + result_.failure);
  }
  if (!result_.ok && !o_.keep) {
    result_.failure += "(run with --keep to keep " + cluster_->dir() + ")\n";
  }
  cluster_.reset();
  return result_;
}

}  // namespace

ScheduleResult RunSchedule(NetLab& lab, const ScheduleOptions& options) {
  Schedule s(lab, options);
  return s.Run();
}

}  // namespace clustermgr::faults
