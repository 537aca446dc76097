// EventFd: a wake-up one thread signals and another polls (eventfd(2), non-blocking,
// close-on-exec), owned and closed on destruction.
//
// Signal() may be called from any thread at any time; Consume() belongs to the polling thread.
// Signals coalesce: many Signal()s before a Consume() read as one.
#pragma once

#include "base/fd.h"
#include "base/status.h"

namespace clustermgr {

class EventFd {
 public:
  // kIoError with the reason when the process has no descriptor to spare.
  static Result<EventFd> Create();
  // For owners that cannot go on without one (a queue built at start-up): aborts on failure.
  static EventFd CreateOrDie();

  // The descriptor to poll for readability.
  int fd() const { return fd_.get(); }
  // Thread-safe; never blocks (a saturated counter is already signalled).
  void Signal() const;
  // Resets the counter; true when it had been signalled since the last Consume().
  bool Consume() const;

 private:
  explicit EventFd(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace clustermgr
