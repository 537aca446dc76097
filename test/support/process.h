// A child process for integration tests: fork + execve in its own process group, output to a
// file, stopped with SIGTERM then SIGKILL, reaped with a deadline. No shell is involved.
//
// Thread-safety: a Process object is used by one thread at a time.
// Lifetime: the destructor SIGKILLs the whole process group if the child is still running and
// reaps it, so a failing test never leaves processes behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clustermgr::test {

struct ProcessOptions {
  // A path, or a bare name looked up in $PATH (in the parent, before forking).
  std::string program{};
  std::vector<std::string> args{};  // argv[1..]; argv[0] is `program`
  // Added to (or replacing entries of) the environment; with inherit_env=false, the whole
  // environment.
  std::map<std::string, std::string> env{};
  bool inherit_env = true;
  // stdout and stderr are appended to this file (created 0600 if missing); empty: /dev/null.
  std::string output_path{};
  // When set, stderr goes to this file instead (appended, created 0600 if missing).
  std::string error_path{};
  std::string working_dir{};  // empty: the parent's
};

class Process {
 public:
  // Starts the child. On failure returns null and sets *error, e.g. "cannot execute
  // /no/such: No such file or directory" (an execve failure is reported back to the parent
  // through a close-on-exec pipe, so a bad program is an error here, not a silent exit 127).
  static std::unique_ptr<Process> Start(const ProcessOptions& options, std::string* error);

  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Reaps the child if it has exited; true while it runs.
  bool Running();
  // The raw wait status once reaped.
  std::optional<int> exit_status() const { return status_; }

  // Sends `sig` to the child's whole process group. False if it was already reaped.
  bool Signal(int sig);
  // Waits up to `timeout` for the child to exit; returns its wait status, or nullopt if it is
  // still running. Waits on a pidfd (no polling); falls back to a 10 ms waitpid poll on
  // kernels without pidfd_open.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGTERM to the group, up to `grace` for it to exit, then SIGKILL; returns the wait status.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // SIGKILL to the group and reap; returns the wait status.
  int Kill();

  // Everything written to options.output_path so far ("" without one).
  std::string Output() const;
  const ProcessOptions& options() const { return options_; }

  // "exited with 0", "killed by SIGKILL", ...
  static std::string DescribeStatus(int status);

 private:
  Process(ProcessOptions options, pid_t pid);

  const ProcessOptions options_;
  pid_t pid_;
  std::optional<int> status_;
};

// A TCP port on 127.0.0.1 that is free right now for both TCP and UDP (Serf gossips on both),
// and that this process has not handed out before. Another process may still take it before
// it is used; callers that bind it should retry with a new port when the bind fails.
int FreeLoopbackPort();
// A free loopback port P whose neighbour P+1 is free too (clustermgrd binds its gossip port and
// the next one), or 0. Never hands out a port twice in this process.
int FreeLoopbackPortPair();

// A fresh directory under $TMPDIR (or /tmp), mode 0700; removed with RemoveTree.
std::string MakeTempDir(const std::string& prefix);
void RemoveTree(const std::string& path);
// Polls `done` every `every` until it holds (true) or `timeout` passes (false). For state that
// nothing pushes to the test (daemons answer requests only).
bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds every = std::chrono::milliseconds(20));

}  // namespace clustermgr::test
