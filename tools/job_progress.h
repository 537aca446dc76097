// Progress of a playbook run, read from ansible-playbook's output lines as a job's log delivers
// them: the task each host is at and how its tasks ended. Used by `clustermgr ... --wait`.
//
// Recognized lines: "TASK [name] ***", "RUNNING HANDLER [name] ***" (the current task) and
// "<result>: [host]..." with result ok, changed, skipping, failed, fatal or unreachable (a
// delegated "[host -> other]" counts for host). Every other line is ignored.
// Pure; not thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace clustermgr::cli {

class JobProgress {
 public:
  // Reads one log line. Returns the plain progress line it makes, "HOST: TASK: RESULT", when it
  // is a host's result.
  std::optional<std::string> Feed(const std::string& line);

  // One line per host seen, in order of appearance: "HOST  TASK  RESULT  (ok N, changed N,
  // failed N)" with columns aligned.
  std::vector<std::string> Lines() const;

 private:
  struct Host {
    std::string name;
    std::string task;
    std::string result;
    int ok = 0;
    int changed = 0;
    int failed = 0;
  };
  std::string task_;
  std::vector<Host> hosts_;
};

// Keeps a block of lines on a terminal up to date: each Draw moves the cursor back over the
// block drawn before and rewrites it (ANSI escapes).
class LiveBlock {
 public:
  void Draw(std::ostream& out, const std::vector<std::string>& lines);

 private:
  std::size_t drawn_ = 0;
};

}  // namespace clustermgr::cli
