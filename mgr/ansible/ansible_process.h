// The ansible-playbook child of a run and the guard of its process group (the process lifetime
// rules are in playbook_runner.h).
//
// Both are forked from a threaded process: everything the child needs is prepared before fork,
// and between fork and execve only async-signal-safe calls are made. fork happens with every
// signal blocked, so that no signal runs this process's handlers in a child before the child
// has reset them to the default.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mgr/ansible/run_support.h"

namespace clustermgr::mgr::run {

// Everything the child needs, prepared before fork (after fork no allocation may happen).
struct ExecPlan {
  std::string program;  // absolute (FindProgram)
  std::vector<std::string> args;
  std::vector<std::string> env;  // "NAME=value"
  std::string cwd;
};

struct Child {
  pid_t pid = 0;  // = its process group id
  Fd output;      // read end of its merged stdout and stderr
};

// Starts `plan` in a process group of its own, stdin from /dev/null, stdout and stderr into one
// pipe, with PR_SET_PDEATHSIG=SIGKILL and every signal at its default. "" once execve
// succeeded, or an error line (`pipe: ...`, `fork: ...`, `cannot open /dev/null: ...`,
// `cannot run <program>: <strerror>`; the child, if any, has been reaped).
std::string StartChild(ExecPlan& plan, Child* child);

// A small process forked into the run's group that SIGKILLs the group should this process die
// before Release, and with a lease, stops the group when renewals stop (see playbook_runner.h).
// Its control socket carries, to the guard: 'x' the run is over, 'h' a lease renewal; from the
// guard: 'L' the lease lapsed (it has sent the group SIGTERM; SIGKILL follows after the grace).
class GroupGuard {
 public:
  GroupGuard() = default;
  ~GroupGuard() { Release(); }
  GroupGuard(const GroupGuard&) = delete;
  GroupGuard& operator=(const GroupGuard&) = delete;

  // Forks the guard into group `pgid`; lease_ms 0: no lease. "" or the strerror text of why
  // there is none.
  std::string Start(pid_t pgid, int64_t lease_ms, int64_t grace_ms);
  // The control socket (-1 when there is no guard).
  int ctl_fd() const { return pid_ > 0 ? ctl_.get() : -1; }
  // Tells the guard the run is over and reaps it. Idempotent.
  void Release();

 private:
  Fd ctl_;
  pid_t pid_ = -1;
};

// Whether any process of group `pgid` is still alive (zombies are dead: they only wait for
// their parent, or init for orphans, to reap them).
bool GroupHasLiveMembers(pid_t pgid);

}  // namespace clustermgr::mgr::run
