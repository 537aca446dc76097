#include "mgr/tag_publisher.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "mgr/log.h"

namespace clustermgr::mgr {

TagPublisher::TagPublisher(net::SerfClient* client) : client_(client) {
  thread_ = std::thread([this] { Run(); });
}

TagPublisher::~TagPublisher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TagPublisher::Publish(std::map<std::string, std::string> tags) {
  {
    std::lock_guard lock(mu_);
    wanted_ = std::move(tags);
    ++generation_;
  }
  cv_.notify_all();
}

void TagPublisher::Resend() {
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
}

uint64_t TagPublisher::applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

void TagPublisher::Run() {
  using namespace std::chrono_literals;
  std::map<std::string, std::string> published;  // what the last successful request set
  uint64_t done = 0;                             // the generation applied
  auto backoff = 200ms;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || generation_ != done; });
    if (stop_) return;
    const uint64_t generation = generation_;
    const std::map<std::string, std::string> wanted = wanted_;
    lock.unlock();
    std::vector<std::string> remove;
    for (const auto& [key, value] : published) {
      if (!wanted.count(key)) remove.push_back(key);
    }
    net::SerfStatus s = client_->SetTags(wanted, remove);
    lock.lock();
    if (s.ok()) {
      published = wanted;
      done = generation;
      ++applied_;
      backoff = 200ms;
      continue;
    }
    CM_LOG(kDebug) << "serf: cannot set this manager's tags (retrying): " << s.ToString();
    // Retry after the backoff, or at once for a newer set.
    cv_.wait_for(lock, backoff, [&] { return stop_ || generation_ != generation; });
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5000ms);
  }
}

}  // namespace clustermgr::mgr
