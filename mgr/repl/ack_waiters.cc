#include "mgr/repl/ack_waiters.h"

#include <string>
#include <utility>

namespace clustermgr::mgr {

AckWaiters::~AckWaiters() {
  // Parked replies would otherwise never be answered: tell them now.
  std::vector<Waiter> waiters = std::move(waiters_);
  for (Waiter& w : waiters) {
    w.done(Status(Code::kOutcomeUnknown, "outcome unknown: shutting down before " +
                                             std::to_string(w.replicas) +
                                             " peers confirmed the write"));
  }
}

void AckWaiters::Add(uint64_t seq, int replicas, uint64_t now_ms, uint64_t timeout_ms, Done done) {
  if (replicas <= 0) {
    done(Status::Ok());
    return;
  }
  waiters_.push_back(Waiter{seq, replicas, now_ms, now_ms + timeout_ms, std::move(done)});
}

void AckWaiters::Check(uint64_t now_ms, const Confirmations& confirmations) {
  if (waiters_.empty()) return;
  std::vector<std::pair<Done, Status>> ready;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    const int have = confirmations(it->seq);
    if (have >= it->replicas) {
      ready.emplace_back(std::move(it->done), Status::Ok());
    } else if (now_ms >= it->deadline_ms) {
      ready.emplace_back(
          std::move(it->done),
          Status(Code::kOutcomeUnknown,
                 "outcome unknown: the write is durable on this instance, but only " +
                     std::to_string(have) + " of " + std::to_string(it->replicas) +
                     " required peers confirmed it within " +
                     std::to_string(it->deadline_ms - it->started_ms) + " ms"));
    } else {
      ++it;
      continue;
    }
    it = waiters_.erase(it);
  }
  // After the loop: a callback may add a waiter.
  for (auto& [done, status] : ready) done(status);
}

}  // namespace clustermgr::mgr
