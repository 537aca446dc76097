#include "mgr/ansible/ansible_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string_view>

namespace clustermgr::mgr::run {
namespace {

// In a forked child, async-signal-safe: every handler back to the default, then nothing blocked
// (in that order: the parent forks with all signals blocked, see SignalsBlocked).
void ResetSignalsToDefault() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Runs in the child between fork and execve: async-signal-safe calls only.
[[noreturn]] void ExecChild(const char* program, char* const argv[], char* const envp[],
                            const char* cwd, int out_fd, int null_fd, int err_fd, pid_t parent) {
  auto fail = [err_fd](int err) {
    ssize_t ignored = ::write(err_fd, &err, sizeof err);
    (void)ignored;
    ::_exit(127);
  };
  if (::setpgid(0, 0) != 0) fail(errno);
  // Die with the thread that runs us (see the header) - and if it died already, now.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
  if (::getppid() != parent) ::_exit(127);
  // Dispositions and the mask are inherited across execve; the daemon may block or ignore
  // SIGTERM in its threads, which would make Cancel() ineffective.
  ResetSignalsToDefault();
  if (::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
      ::dup2(out_fd, STDERR_FILENO) < 0) {
    fail(errno);
  }
  // Anything another library opened without O_CLOEXEC must not leak into ansible; marking
  // instead of closing keeps err_fd working until execve.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 4096; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (::chdir(cwd) != 0) fail(errno);
  ::execve(program, argv, envp);
  fail(errno);
  ::_exit(127);  // not reached
}

// Blocks every signal in the calling thread for its lifetime. Held across fork(): a child
// inherits the daemon's signal handlers until it resets them, and a signal landing in between
// (a cancel's kill(-pgid, SIGTERM) once the child has its own group) would run the daemon's
// handler in the child - which shares the daemon's stop eventfd and would stop the daemon. The
// children reset every handler to the default before they unblock (ExecChild, GuardChild).
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~SignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t saved_;
};

// The guard's clock and waits are raw system calls: a preloaded time library (e.g. libfaketime,
// which a test may put under the daemon) wraps the libc ones with locks that a child forked from
// a multi-threaded process could find held forever.
int64_t MonotonicMs() {
  timespec ts{};
  ::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// poll() of one fd for POLLIN; timeout_ms < 0: no timeout.
int PollOne(int fd, int64_t timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  timespec ts{static_cast<time_t>(timeout_ms / 1000),
              static_cast<long>(timeout_ms % 1000) * 1'000'000};
  return static_cast<int>(::syscall(SYS_ppoll, &p, 1, timeout_ms < 0 ? nullptr : &ts, nullptr, 0));
}

// Runs in the guard child, forked from the daemon: async-signal-safe calls only. It joins the
// run's process group and waits on `fd`, its end of a socket pair with the thread running the
// playbook:
//   'x'          the run is over: exit quietly;
//   'h'          a lease renewal: the lease runs for another `lease_ms` from now;
//   end-of-file  that thread's process died without saying so: the whole group is killed -
//                ansible-playbook's forked workers and their tasks do not get the leader's
//                PR_SET_PDEATHSIG and would otherwise run on.
// With a lease (lease_ms > 0), no renewal for lease_ms means the daemon can no longer vouch for
// its token (its loop is stopped, wedged or gone): the guard says 'L' on the socket, sends the
// group SIGTERM (which it ignores itself), and SIGKILL after grace_ms. It does not share the
// daemon's fate: a SIGSTOPped daemon stops renewing, and the guard acts alone.
[[noreturn]] void GuardChild(int fd, pid_t pgid, int64_t lease_ms, int64_t grace_ms) {
  ::setpgid(0, pgid);
  ResetSignalsToDefault();
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGTERM, &ign, nullptr);  // the group's SIGTERM is for the playbook, not for us
  // Hold nothing of the daemon (its sockets, its store), only the control socket, as fd 3.
  if (fd != 3 && ::dup2(fd, 3) < 0) ::_exit(1);
  if (::close_range(0, 2, 0) != 0 || ::close_range(4, ~0U, 0) != 0) {
    for (int i = 0; i < 4096; ++i) {
      if (i != 3) ::close(i);
    }
  }
  char bytes[64];
  int64_t deadline = MonotonicMs() + lease_ms;
  for (;;) {
    int64_t timeout = -1;
    if (lease_ms > 0) {
      timeout = deadline - MonotonicMs();
      if (timeout <= 0) break;  // the lease lapsed
    }
    const int ready = PollOne(3, timeout);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;  // re-checks the deadline
    const ssize_t n = ::read(3, bytes, sizeof bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::kill(-pgid, SIGKILL);  // the daemon died; the guard itself is in the group
      ::_exit(0);
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (bytes[i] == 'x') ::_exit(0);
      if (bytes[i] == 'h') deadline = MonotonicMs() + lease_ms;
    }
  }
  const char lapsed = 'L';
  (void)::send(3, &lapsed, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  ::kill(-pgid, SIGTERM);
  const int64_t kill_at = MonotonicMs() + grace_ms;
  for (;;) {
    const int64_t left = kill_at - MonotonicMs();
    if (left <= 0) break;
    const int ready = PollOne(3, left);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) break;
    const ssize_t n = ::read(3, bytes, sizeof bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the daemon died meanwhile: kill now
    // 'x': the run is over - its thread has killed what was left of the group already.
    for (ssize_t i = 0; i < n; ++i) {
      if (bytes[i] == 'x') ::_exit(0);
    }
  }
  ::kill(-pgid, SIGKILL);
  ::_exit(0);
}

int ReadAll(int fd, void* buf, std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, static_cast<char*>(buf) + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  return static_cast<int>(got);
}

}  // namespace

std::string StartChild(ExecPlan& plan, Child* child) {
  std::vector<char*> argv;
  for (std::string& a : plan.args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : plan.env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return "pipe: " + ErrnoText(errno);
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return "pipe: " + ErrnoText(errno);
  Fd err_read(err_pipe[0]), err_write(err_pipe[1]);
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd.valid()) return "cannot open /dev/null: " + ErrnoText(errno);

  const pid_t parent = ::getpid();
  pid_t pid;
  {
    SignalsBlocked blocked;
    pid = ::fork();
    if (pid == 0) {
      ExecChild(plan.program.c_str(), argv.data(), envp.data(), plan.cwd.c_str(), out_write.get(),
                null_fd.get(), err_write.get(), parent);
    }
  }
  if (pid < 0) return "fork: " + ErrnoText(errno);
  // Also set the group here, so that it exists before any kill(-pid) below, whichever of the
  // two processes runs first (EACCES once the child has exec'd: it did it itself then).
  ::setpgid(pid, pid);
  out_write.Reset();
  err_write.Reset();
  null_fd.Reset();

  int exec_errno = 0;
  if (ReadAll(err_read.get(), &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return "cannot run " + Quote(plan.program) + ": " + ErrnoText(exec_errno);
  }
  child->pid = pid;
  child->output = std::move(out_read);
  return "";
}

std::string GroupGuard::Start(pid_t pgid, int64_t lease_ms, int64_t grace_ms) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return ErrnoText(errno);
  ctl_.Reset(pair[0]);
  Fd guard_end(pair[1]);
  {
    SignalsBlocked blocked;
    pid_ = ::fork();
    if (pid_ == 0) GuardChild(guard_end.get(), pgid, lease_ms, grace_ms);
  }
  if (pid_ < 0) {
    const int err = errno;
    ctl_.Reset();
    return ErrnoText(err);
  }
  ::setpgid(pid_, pgid);  // also here, so that a cancel right away reaches it
  return "";
}

void GroupGuard::Release() {
  if (pid_ <= 0) return;
  const char done = 'x';
  // Fails harmlessly when the guard is gone already (killed with a cancelled group).
  (void)::send(ctl_.get(), &done, 1, MSG_NOSIGNAL);
  ctl_.Reset();
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

// Whether any process of group `pgid` is still alive (zombies are dead: they only wait for
// their parent, or init for orphans, to reap them).
bool GroupHasLiveMembers(pid_t pgid) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    Fd fd(::open((entry.path().string() + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) continue;  // exited meanwhile
    char buf[512];
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    std::string_view stat(buf, static_cast<std::size_t>(n));
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so parse from the
    // last ')'.
    std::size_t paren = stat.rfind(')');
    if (paren == std::string_view::npos || paren + 2 >= stat.size()) continue;
    char state = stat[paren + 2];
    int ppid = 0;
    int pgrp = 0;
    std::string rest(stat.substr(paren + 3));
    if (std::sscanf(rest.c_str(), "%d %d", &ppid, &pgrp) != 2) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

}  // namespace clustermgr::mgr::run
