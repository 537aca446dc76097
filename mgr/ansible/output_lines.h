// Output lines of a playbook run: the child's merged stdout/stderr, split into lines that are
// valid UTF-8 and bounded in length, for the job log.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace clustermgr::mgr {

// Called with each output line (no newline, valid UTF-8). Must not throw.
using LineCallback = std::function<void(std::string_view line)>;

// Splits a byte stream into lines for a LineCallback: strips "\n" and a "\r" before it, replaces
// invalid UTF-8 with U+FFFD, and cuts a line after max_line_bytes input bytes (at a character
// boundary), appending ` [clustermgr: line truncated, <n> bytes dropped]`.
class OutputLineSplitter {
 public:
  explicit OutputLineSplitter(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}
  void Feed(std::string_view bytes, const LineCallback& on_line);
  // Emits a pending partial last line, if any.
  void Finish(const LineCallback& on_line);

 private:
  void Emit(const LineCallback& on_line);
  std::size_t max_line_bytes_;
  std::string pending_;
  std::size_t dropped_ = 0;
};

}  // namespace clustermgr::mgr
