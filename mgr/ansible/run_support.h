// Small helpers of a playbook run: error-line text, and a file descriptor closed on scope exit.
#pragma once

#include <unistd.h>

#include <string>
#include <string_view>

namespace clustermgr::mgr::run {

// `value` as a JSON string (invalid UTF-8 replaced), for names in error lines.
std::string Quote(std::string_view value);
// strerror(err).
std::string ErrnoText(int err);
// Whether `s` holds a byte below 0x20 or DEL.
bool HasControlChars(std::string_view s);

// Closes a file descriptor on scope exit.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace clustermgr::mgr::run
