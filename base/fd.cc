#include "base/fd.h"

#include <unistd.h>

#include <utility>

namespace clustermgr {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) Reset(other.Release());
  return *this;
}

int Fd::Release() { return std::exchange(fd_, -1); }

void Fd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);  // EINTR on Linux still closes: never retry a close
  fd_ = fd;
}

}  // namespace clustermgr
