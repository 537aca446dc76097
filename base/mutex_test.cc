#include "base/mutex.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <thread>

namespace clustermgr {
namespace {

class Counter {
 public:
  void Add() {
    MutexLock lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  // Waits until the count reaches n, then reports it.
  int WaitFor(int n) {
    MutexLock lock(mu_);
    cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return count_ >= n; });
    return count_;
  }

 private:
  Mutex mu_;
  std::condition_variable cv_;
  int count_ GUARDED_BY(mu_) = 0;
};

TEST(MutexTest, GuardsACountAcrossThreads) {
  Counter counter;
  std::thread a([&] {
    for (int i = 0; i < 1000; ++i) counter.Add();
  });
  std::thread b([&] {
    for (int i = 0; i < 1000; ++i) counter.Add();
  });
  EXPECT_EQ(counter.WaitFor(2000), 2000);
  a.join();
  b.join();
}

TEST(MutexLockTest, UnlockReleasesEarlyAndLockTakesAgain) {
  Mutex mu;
  MutexLock lock(mu);
  EXPECT_FALSE(mu.native().try_lock());
  lock.Unlock();
  ASSERT_TRUE(mu.native().try_lock());
  mu.native().unlock();
  lock.Lock();
  EXPECT_FALSE(mu.native().try_lock());
}

}  // namespace
}  // namespace clustermgr
