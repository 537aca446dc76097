#include "mgr/tag_publisher.h"

#include "mgr/log/log.h"

namespace clustermgr::mgr {

TagPublisher::TagPublisher(net::SerfClient* client) : client_(client), thread_([this] { Run(); }) {}

TagPublisher::~TagPublisher() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TagPublisher::Set(const std::string& key, const std::string& value) {
  {
    MutexLock lock(mu_);
    auto it = desired_.find(key);
    if (it != desired_.end() && it->second == value) return;
    desired_[key] = value;
    dirty_ = true;
  }
  cv_.notify_all();
}

void TagPublisher::Resync() {
  {
    MutexLock lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

std::map<std::string, std::string> TagPublisher::Desired() const {
  MutexLock lock(mu_);
  return desired_;
}

void TagPublisher::Run() {
  MutexLock lock(mu_);
  for (;;) {
    cv_.wait(lock.native(), [this]() REQUIRES(mu_) { return stop_ || dirty_; });
    if (stop_) return;
    dirty_ = false;
    const std::map<std::string, std::string> tags = desired_;
    lock.Unlock();
    const Status status = client_->SetTags(tags, {});
    lock.Lock();
    if (!status.ok()) {
      // Not connected (or the agent is restarting): the reconnect calls Resync(). Retry once a
      // second meanwhile, in case the failure was something else.
      CM_LOG(kDebug) << "serf tags not set: " << status.ToString();
      cv_.wait_for(lock.native(), std::chrono::seconds(1),
                   [this]() REQUIRES(mu_) { return stop_; });
      dirty_ = true;
    }
  }
}

}  // namespace clustermgr::mgr
