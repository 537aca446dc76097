// The ansible-playbook child of a run and the guard of its process group (the process lifetime
// rules are in playbook_runner.h).
//
// Both are forked from a threaded process: everything the child needs is prepared before fork,
// and between fork and execve only async-signal-safe calls are made. fork happens with every
// signal blocked, so that no signal runs this process's handlers in a child before the child
// has reset them to the default.
#pragma once

#include <sys/types.h>

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
// before Release (see playbook_runner.h).
class GroupGuard {
 public:
  GroupGuard() = default;
  ~GroupGuard() { Release(); }
  GroupGuard(const GroupGuard&) = delete;
  GroupGuard& operator=(const GroupGuard&) = delete;

  // Forks the guard into group `pgid`. "" or the strerror text of why there is none.
  std::string Start(pid_t pgid);
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
