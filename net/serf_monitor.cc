#include "net/serf_monitor.h"

#include <utility>

namespace clustermgr::net {

SerfMonitor::SerfMonitor(SerfClientOptions client_options, Sink sink,
                         std::set<std::string> expected_nodes)
    : sink_(std::move(sink)) {
  membership_.ExpectNodes(std::move(expected_nodes));
  thread_ = std::thread([this] { Run(); });
  client_ = std::make_unique<SerfClient>(std::move(client_options));
  // Cannot fail: the handler is set and the client is not closing.
  (void)client_->SubscribeMembers([this](const SerfMemberEvent& event) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(event);
    cv_.notify_one();
  });
}

SerfMonitor::~SerfMonitor() {
  client_.reset();  // joins the reader thread: nothing is queued after this
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  thread_.join();
}

void SerfMonitor::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    SerfMemberEvent event = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    for (const SerfNodeEvent& e : membership_.Apply(event)) sink_(e);
    lock.lock();
  }
}

}  // namespace clustermgr::net
