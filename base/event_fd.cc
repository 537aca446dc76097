#include "base/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "base/errno_text.h"

namespace clustermgr {

Result<EventFd> EventFd::Create() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return Status(Code::kIoError, "cannot create an eventfd: " + ErrnoText(errno));
  return EventFd(Fd(fd));
}

EventFd EventFd::CreateOrDie() {
  Result<EventFd> made = Create();
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", made.status().message().c_str());
    std::abort();
  }
  return std::move(made).value();
}

void EventFd::Signal() const {
  const std::uint64_t one = 1;
  const ssize_t n = ::write(fd_.get(), &one, sizeof one);
  (void)n;  // EAGAIN: the counter is saturated, so the poller wakes anyway
}

bool EventFd::Consume() const {
  std::uint64_t count = 0;
  return ::read(fd_.get(), &count, sizeof count) == sizeof count && count > 0;
}

}  // namespace clustermgr
