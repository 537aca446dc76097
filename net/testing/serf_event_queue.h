// A thread-safe queue of SerfNodeEvents with deadline waits: the sink tests and tools plug into
// SerfMonitor (the daemon forwards events over inproc instead).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "net/serf_membership.h"

namespace clustermgr::net {

// All methods are thread-safe.
class SerfEventQueue {
 public:
  using Predicate = std::function<bool(const SerfNodeEvent&)>;

  void Push(const SerfNodeEvent& event);
  // A sink for SerfMonitor that pushes here. The queue must outlive the monitor.
  std::function<void(const SerfNodeEvent&)> Sink();

  // Removes and returns the oldest event, waiting up to `timeout`.
  std::optional<SerfNodeEvent> Pop(std::chrono::milliseconds timeout);
  // Removes and returns the oldest event matching `match`, waiting up to `timeout` for one to
  // arrive. Events that do not match stay queued, in order.
  std::optional<SerfNodeEvent> WaitFor(const Predicate& match, std::chrono::milliseconds timeout);
  // Removes and returns everything queued now.
  std::vector<SerfNodeEvent> Drain();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SerfNodeEvent> events_;
};

}  // namespace clustermgr::net
