#include "net/serf_monitor.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace clustermgr::net {

SerfMonitor::SerfMonitor(SerfClientOptions client_options, Sink sink,
                         std::set<std::string> expected_nodes,
                         std::chrono::milliseconds poll_interval)
    : sink_(std::move(sink)), poll_interval_(poll_interval) {
  membership_.ExpectNodes(std::move(expected_nodes));
  client_ = std::make_unique<SerfClient>(std::move(client_options));
  // Cannot fail: the handler is set and the client is not closing.
  (void)client_->SubscribeMembers([this](const SerfMemberEvent& event) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(event);
    cv_.notify_one();
  });
  thread_ = std::thread([this] { Run(); });  // after client_: a poll uses it
}

SerfMonitor::~SerfMonitor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  thread_.join();   // no poll uses the client after this
  client_.reset();  // joins the reader thread; what it still queues is dropped
}

void SerfMonitor::Run() {
  using Clock = std::chrono::steady_clock;
  const bool polling = poll_interval_.count() > 0;
  auto next_poll = Clock::now() + poll_interval_;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto ready = [this] { return stop_ || !queue_.empty(); };
    if (polling) {
      cv_.wait_until(lock, next_poll, ready);
    } else {
      cv_.wait(lock, ready);
    }
    if (stop_) return;
    SerfMemberEvent event;
    if (!queue_.empty()) {
      event = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
    } else {
      // The stream was idle for a poll interval: read the member list the agent has now.
      lock.unlock();
      auto members = client_->Members();
      std::chrono::microseconds interval = poll_interval_;
      if (members.ok()) {
        interval = std::max(
            interval, std::chrono::microseconds(50) * static_cast<int64_t>(members.value().size()));
        event = SerfMemberEvent{SerfEventType::kResync, "resync", std::move(members).value()};
      }
      next_poll = Clock::now() + interval;
      if (!members.ok()) {  // not connected: the stream's resync covers it on connect
        lock.lock();
        continue;
      }
    }
    for (const SerfNodeEvent& e : membership_.Apply(event)) sink_(e);
    lock.lock();
  }
}

}  // namespace clustermgr::net
