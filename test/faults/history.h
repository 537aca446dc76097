// What one fault schedule did and saw: client requests with their outcome, injected faults with
// their time windows, and token samples polled from every instance. The checker reads it after
// the quiet period; a failed check quotes the lines of the history that prove it.
//
// Times are wall-clock milliseconds (the daemons stamp jobs with the same clock: one machine).
// Thread-safety: every method locks; client threads, the poller and the fault thread append.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace clustermgr::faults {

int64_t NowMs();

enum class Outcome { kAcknowledged, kRefused, kUnknown };
const char* OutcomeName(Outcome o);

struct Op {
  int id = 0;
  std::string kind;      // "global", "commission", "update", "decommission"
  std::string instance;  // where it was sent
  std::string node;      // jobs only
  std::string key;       // node-var key (commission/update) or "" (global)
  std::string value;     // the node-var value, or the global payload (JSON text)
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  Outcome outcome = Outcome::kUnknown;
  std::string error;   // refused / unknown: the error text
  std::string job_id;  // acknowledged jobs
};

struct FaultEvent {
  std::string kind;    // "kill", "wipe", "isolate", "serf-restart", "loss", "delay"
  std::string target;  // "m2", "mach"
  std::string detail;  // "down 1200 ms", "30%", ...
  int64_t start_ms = 0;
  int64_t end_ms = 0;  // when healed / restarted
  // Partition-like: messages between instances were lost or delayed for a while (isolate,
  // loss, delay), or an instance's view of the managers was cut (its Serf agent restarted).
  // Duplicate side effects and two token holders overlapping one (or the 10 s after) are
  // counted apart; elsewhere they fail the schedule.
  bool partition() const {
    return kind == "isolate" || kind == "loss" || kind == "delay" || kind == "serf-restart";
  }
};

class History {
 public:
  explicit History(int64_t origin_ms) : origin_ms_(origin_ms) {}

  int NextOpId();
  void Add(const Op& op);
  void AddFault(const FaultEvent& f);
  // A free-text line for the excerpt ("m2 token epoch 3 -> 2").
  void Note(const std::string& line);

  std::vector<Op> Ops() const;
  std::vector<FaultEvent> Faults() const;
  // Every line mentioning any of `needles` (all lines when empty), at most `max` of the last.
  std::string Excerpt(const std::vector<std::string>& needles, std::size_t max = 40) const;
  // "+12.345s" relative to the schedule start.
  std::string Rel(int64_t ms) const;

 private:
  void Line(int64_t ms, const std::string& text);

  int64_t origin_ms_;
  mutable std::mutex mu_;
  int next_id_ = 1;
  std::vector<Op> ops_;
  std::vector<FaultEvent> faults_;
  std::vector<std::pair<int64_t, std::string>> lines_;
};

std::string Describe(const Op& op);

}  // namespace clustermgr::faults
