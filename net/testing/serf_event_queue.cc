#include "net/testing/serf_event_queue.h"

namespace clustermgr::net {

void SerfEventQueue::Push(const SerfNodeEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back(event);
  cv_.notify_all();
}

std::function<void(const SerfNodeEvent&)> SerfEventQueue::Sink() {
  return [this](const SerfNodeEvent& e) { Push(e); };
}

std::optional<SerfNodeEvent> SerfEventQueue::Pop(std::chrono::milliseconds timeout) {
  return WaitFor([](const SerfNodeEvent&) { return true; }, timeout);
}

std::optional<SerfNodeEvent> SerfEventQueue::WaitFor(const Predicate& match,
                                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  std::optional<SerfNodeEvent> found;
  auto take = [&] {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
      if (match(*it)) {
        found = std::move(*it);
        events_.erase(it);
        return true;
      }
    }
    return false;
  };
  cv_.wait_until(lock, deadline, take);
  return found;
}

std::vector<SerfNodeEvent> SerfEventQueue::Drain() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SerfNodeEvent> out(events_.begin(), events_.end());
  events_.clear();
  return out;
}

}  // namespace clustermgr::net
