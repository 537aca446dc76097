// AckWaiters: replies parked until enough peers have applied this instance's write
// (--ack-replicas).
//
// A waiter holds the seq of this instance's delta, the number of distinct peers that must
// confirm it and a deadline. Check asks, for each waiter, how many distinct peers have applied
// the seq; a waiter is done with Ok once enough have, or with kOutcomeUnknown at its deadline
// (the write is durable here either way). Waiters left at destruction are done with
// kOutcomeUnknown, so that no parked reply goes unanswered.
//
// Thread-safety: none; owned by the replicator (the event loop thread). The callbacks run on
// the caller's thread, after the waiter has been removed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/status.h"

namespace clustermgr::mgr {

class AckWaiters {
 public:
  using Done = std::function<void(const Status&)>;
  // Distinct peers that have applied this instance's delta `seq`.
  using Confirmations = std::function<int(uint64_t seq)>;

  AckWaiters() = default;
  ~AckWaiters();
  AckWaiters(const AckWaiters&) = delete;
  AckWaiters& operator=(const AckWaiters&) = delete;

  // `done` runs from a later Check (at once with Ok when `replicas` <= 0).
  void Add(uint64_t seq, int replicas, uint64_t now_ms, uint64_t timeout_ms, Done done);
  void Check(uint64_t now_ms, const Confirmations& confirmations);
  bool empty() const { return waiters_.empty(); }

 private:
  struct Waiter {
    uint64_t seq = 0;
    int replicas = 0;
    uint64_t started_ms = 0;
    uint64_t deadline_ms = 0;
    Done done;
  };
  std::vector<Waiter> waiters_;
};

}  // namespace clustermgr::mgr
