// Mutex and MutexLock: std::mutex and std::unique_lock with the capability annotations clang's
// thread-safety analysis needs (libstdc++'s std::mutex has none). Guard members with
// GUARDED_BY(mu_) on a Mutex, lock it with a MutexLock, and wait on a
// std::condition_variable through lock.native():
//
//   Mutex mu_;
//   std::condition_variable cv_;
//   bool ready_ GUARDED_BY(mu_) = false;
//
//   MutexLock lock(mu_);
//   cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return ready_; });
#pragma once

#include <mutex>

#include "base/thread_annotations.h"

namespace clustermgr {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  // The wrapped mutex, for std::unique_lock (MutexLock uses it).
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds the mutex from construction to destruction (or Unlock()).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.native()) {}
  ~MutexLock() RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Releases early (for example before a callback that may take the same mutex), and takes it
  // again.
  void Unlock() RELEASE() { lock_.unlock(); }
  void Lock() ACQUIRE() { lock_.lock(); }
  // For std::condition_variable::wait/wait_until/wait_for, which release and retake it.
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace clustermgr
