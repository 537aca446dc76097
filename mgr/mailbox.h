// Mailbox: how other threads (the Serf monitor, playbook runs) send messages to the event loop.
//
// Any thread may Post(); only the owning thread Drain()s. fd() becomes readable when messages are
// waiting, so the event loop polls it beside its ZeroMQ sockets. The mutex owns the queue and
// nothing else; the messages themselves are values handed over whole.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <vector>

#include "base/event_fd.h"
#include "base/mutex.h"

namespace clustermgr::mgr {

template <typename T>
class Mailbox {
 public:
  // Out of file descriptors at start-up there is nothing sane to do: aborts.
  Mailbox() : wake_(EventFd::CreateOrDie()) {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Thread-safe. Never blocks for long: the lock is held only to append.
  void Post(T message) {
    {
      MutexLock lock(mu_);
      queue_.push_back(std::move(message));
    }
    wake_.Signal();
  }

  // Owner thread only: every message posted so far, in order.
  std::vector<T> Drain() {
    wake_.Consume();
    MutexLock lock(mu_);
    std::vector<T> out(std::make_move_iterator(queue_.begin()),
                       std::make_move_iterator(queue_.end()));
    queue_.clear();
    return out;
  }

  // Owner thread only: the oldest `max` messages at most, in order. When more wait, fd() stays
  // readable, so a flood is handled in slices between the loop's other work.
  std::vector<T> Drain(std::size_t max) {
    wake_.Consume();
    MutexLock lock(mu_);
    const std::size_t take = std::min(max, queue_.size());
    std::vector<T> out(std::make_move_iterator(queue_.begin()),
                       std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(take)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
    if (!queue_.empty()) wake_.Signal();
    return out;
  }

  int fd() const { return wake_.fd(); }

 private:
  const EventFd wake_;
  Mutex mu_;
  std::deque<T> queue_ GUARDED_BY(mu_);
};

}  // namespace clustermgr::mgr
