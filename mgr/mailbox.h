// Mailbox: how other threads (the Serf monitor, playbook runs) send messages to the event loop.
//
// Any thread may Post(); only the owning thread Drain()s. fd() becomes readable when messages are
// waiting, so the event loop polls it beside its ZeroMQ sockets. The mutex owns the queue and
// nothing else; the messages themselves are values handed over whole.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <vector>

#include "base/mutex.h"

namespace clustermgr::mgr {

template <typename T>
class Mailbox {
 public:
  Mailbox() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();  // out of file descriptors at start-up: nothing sane to do
  }
  ~Mailbox() { close(fd_); }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Thread-safe. Never blocks for long: the lock is held only to append.
  void Post(T message) {
    {
      MutexLock lock(mu_);
      queue_.push_back(std::move(message));
    }
    uint64_t one = 1;
    ssize_t n = write(fd_, &one, sizeof(one));
    (void)n;  // EAGAIN means the counter is already non-zero: the loop will wake anyway
  }

  // Owner thread only: every message posted so far, in order.
  std::vector<T> Drain() {
    uint64_t count = 0;
    ssize_t n = read(fd_, &count, sizeof(count));
    (void)n;
    MutexLock lock(mu_);
    std::vector<T> out(std::make_move_iterator(queue_.begin()),
                       std::make_move_iterator(queue_.end()));
    queue_.clear();
    return out;
  }

  // Owner thread only: the oldest `max` messages at most, in order. When more wait, fd() stays
  // readable, so a flood is handled in slices between the loop's other work.
  std::vector<T> Drain(std::size_t max) {
    uint64_t count = 0;
    ssize_t n = read(fd_, &count, sizeof(count));
    (void)n;
    MutexLock lock(mu_);
    const std::size_t take = std::min(max, queue_.size());
    std::vector<T> out(std::make_move_iterator(queue_.begin()),
                       std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(take)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
    if (!queue_.empty()) {
      uint64_t one = 1;
      n = write(fd_, &one, sizeof(one));
    }
    return out;
  }

  int fd() const { return fd_; }

 private:
  const int fd_;
  Mutex mu_;
  std::deque<T> queue_ GUARDED_BY(mu_);
};

}  // namespace clustermgr::mgr
