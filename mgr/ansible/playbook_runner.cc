#include "mgr/ansible/playbook_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "mgr/ansible/extra_vars.h"

extern char** environ;

namespace clustermgr::mgr {
namespace {

using Clock = std::chrono::steady_clock;

std::string Quote(std::string_view value) {
  return nlohmann::json(std::string(value))
      .dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

std::string ErrnoText(int err) { return std::strerror(err); }

bool HasControlChars(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

// Closes a file descriptor on scope exit.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// The run's private directory; removed (with everything a killed ansible left in it) on scope
// exit.
class TempDir {
 public:
  TempDir() = default;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Returns "" or an error line.
  std::string Create(std::string parent) {
    if (parent.empty()) {
      const char* tmpdir = std::getenv("TMPDIR");
      parent = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
    }
    std::string pattern = parent + "/clustermgr-ansible-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return "cannot create a temp dir in " + Quote(parent) + ": " + ErrnoText(errno);
    }
    path_ = pattern;  // mkdtemp makes it 0700
    return "";
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes a new owner-only file; "" or an error line.
std::string WritePrivateFile(const std::string& path, std::string_view contents) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return "cannot create " + Quote(path) + ": " + ErrnoText(errno);
  while (!contents.empty()) {
    ssize_t n = ::write(fd.get(), contents.data(), contents.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return "cannot write " + Quote(path) + ": " + ErrnoText(errno);
    }
    contents.remove_prefix(static_cast<std::size_t>(n));
  }
  return "";
}

bool IsEnvName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Whether a variable of the daemon's environment is passed to ansible-playbook.
bool Inherited(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "SSH_AUTH_SOCK"};
  for (std::string_view n : kNames) {
    if (name == n) return true;
  }
  return name.starts_with("LC_") || name.starts_with("ANSIBLE_");
}

// The child's environment as an ordered name -> value list (later entries replace earlier ones).
class Environment {
 public:
  void Set(std::string_view name, std::string_view value) {
    for (auto& [n, v] : vars_) {
      if (n == name) {
        v = value;
        return;
      }
    }
    vars_.emplace_back(name, value);
  }
  const std::string* Get(std::string_view name) const {
    for (const auto& [n, v] : vars_) {
      if (n == name) return &v;
    }
    return nullptr;
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    out.reserve(vars_.size());
    for (const auto& [n, v] : vars_) out.push_back(n + "=" + v);
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

// Finds the program the way execvp would, but before fork (execvp may allocate).
std::string FindProgram(const std::string& program, const std::string& path_var,
                        std::string* error) {
  if (program.empty()) {
    *error = "no ansible-playbook program configured";
    return "";
  }
  if (program.find('/') != std::string::npos) {
    std::error_code ec;
    std::string abs = std::filesystem::absolute(program, ec).string();
    if (ec || ::access(abs.c_str(), X_OK) != 0) {
      *error = "cannot run " + Quote(program) + ": " + ErrnoText(ec ? ec.value() : errno);
      return "";
    }
    return abs;
  }
  std::string_view rest = path_var;
  while (true) {
    std::size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      std::error_code ec;
      std::string abs = std::filesystem::absolute(candidate, ec).string();
      return ec ? candidate : abs;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  *error = "cannot find " + Quote(program) + " in PATH " + Quote(path_var);
  return "";
}

// Text for ansible-playbook's documented exit codes.
std::string ExitMeaning(int code) {
  switch (code) {
    case 1:
      return " (error)";
    case 2:
      return " (one or more hosts failed)";
    case 3:
      return " (one or more hosts were unreachable)";
    case 4:
      return " (parser error)";
    case 5:
      return " (bad or incomplete options)";
    case 99:
      return " (interrupted)";
    case 250:
      return " (unexpected error)";
    default:
      return "";
  }
}

bool IsSafeUser(std::string_view user) {
  if (user.empty() || user.size() > 64 || user[0] == '-') return false;
  for (char c : user) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// Everything the child needs, prepared before fork: after fork in a threaded process the child
// may only call async-signal-safe functions, so no allocation happens there.
struct ExecPlan {
  std::string program;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd;
};

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

// Length of the UTF-8 sequence starting at s[i] if it is valid, else 0.
std::size_t ValidSequenceLength(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = byte(i);
  if (b < 0x80) return 1;
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xbf;  // range of the second byte
  if (b >= 0xc2 && b <= 0xdf) {
    len = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3;
    if (b == 0xe0) lo = 0xa0;  // overlong
    if (b == 0xed) hi = 0x9f;  // surrogates
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4;
    if (b == 0xf0) lo = 0x90;  // overlong
    if (b == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return len;
}

// Length of `s` without a trailing, incomplete UTF-8 sequence (left by cutting a long line).
std::size_t CompletePrefix(std::string_view s) {
  std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    auto b = static_cast<unsigned char>(s[n - back]);
    if ((b & 0xc0) == 0x80) continue;  // continuation byte: keep looking for the lead
    std::size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
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

}  // namespace

std::string ToValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    std::size_t len = ValidSequenceLength(bytes, i);
    if (len == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(bytes.substr(i, len));
      i += len;
    }
  }
  return out;
}

void OutputLineSplitter::Feed(std::string_view bytes, const LineCallback& on_line) {
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    std::string_view chunk = bytes.substr(0, nl);
    std::size_t room = max_line_bytes_ > pending_.size() ? max_line_bytes_ - pending_.size() : 0;
    if (chunk.size() <= room) {
      pending_.append(chunk);
    } else {
      pending_.append(chunk.substr(0, room));
      dropped_ += chunk.size() - room;
    }
    if (nl == std::string_view::npos) return;
    Emit(on_line);
    bytes.remove_prefix(nl + 1);
  }
}

void OutputLineSplitter::Finish(const LineCallback& on_line) {
  if (!pending_.empty() || dropped_ > 0) Emit(on_line);
}

void OutputLineSplitter::Emit(const LineCallback& on_line) {
  std::string_view line = pending_;
  if (dropped_ > 0) {
    // The cut may have split a character; what was dropped of it counts as dropped.
    std::size_t keep = CompletePrefix(line);
    dropped_ += line.size() - keep;
    line = line.substr(0, keep);
  } else if (line.ends_with('\r')) {
    line.remove_suffix(1);
  }
  std::string text = ToValidUtf8(line);
  if (dropped_ > 0) {
    text += " [clustermgr: line truncated, " + std::to_string(dropped_) + " bytes dropped]";
  }
  pending_.clear();
  dropped_ = 0;
  on_line(text);
}

PlaybookPath ResolvePlaybookPath(std::string_view playbook_dir, std::string_view playbook) {
  PlaybookPath out;
  if (playbook.empty()) {
    out.error = "no playbook specified";
    return out;
  }
  if (playbook.front() == '/') {
    out.error =
        "playbook " + Quote(playbook) + " must be a path relative to the playbook directory";
    return out;
  }
  bool dotdot = false;
  for (std::string_view rest = playbook; !rest.empty();) {
    std::size_t slash = rest.find('/');
    if (rest.substr(0, slash) == "..") dotdot = true;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (dotdot || HasControlChars(playbook)) {
    out.error = "playbook " + Quote(playbook) + " must not contain \"..\" or control characters";
    return out;
  }

  std::string dir(playbook_dir.empty() ? "." : playbook_dir);
  std::unique_ptr<char, decltype(&std::free)> real_dir(::realpath(dir.c_str(), nullptr),
                                                       &std::free);
  struct stat st {};
  int dir_error = 0;
  if (real_dir == nullptr || ::stat(real_dir.get(), &st) != 0) {
    dir_error = errno;
  } else if (!S_ISDIR(st.st_mode)) {
    dir_error = ENOTDIR;
  }
  if (dir_error != 0) {
    out.error = "playbook directory " + Quote(dir) + " is not usable: " + ErrnoText(dir_error);
    return out;
  }
  out.dir = real_dir.get();

  std::string joined = out.dir + "/" + std::string(playbook);
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(joined.c_str(), nullptr), &std::free);
  if (real == nullptr) {
    int err = errno;
    if (err == ENOENT) {
      out.error = "playbook " + Quote(playbook) + " not found in " + Quote(out.dir);
    } else {
      out.error = "playbook " + Quote(playbook) + " in " + Quote(out.dir) +
                  " is not usable: " + ErrnoText(err);
    }
    return out;
  }
  std::string_view resolved = real.get();
  std::string prefix = out.dir == "/" ? "/" : out.dir + "/";
  if (!resolved.starts_with(prefix) || resolved.size() == prefix.size()) {
    out.error = "playbook " + Quote(playbook) + " resolves outside the playbook directory " +
                Quote(out.dir);
    return out;
  }
  if (::stat(real.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    out.error = "playbook " + Quote(playbook) + " in " + Quote(out.dir) + " is not a regular file";
    return out;
  }
  out.path = std::filesystem::path(joined).lexically_normal().string();
  return out;
}

PlaybookRun::PlaybookRun(PlaybookSpec spec) : spec_(std::move(spec)) {
  cancel_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (cancel_fd_ < 0) cancel_fd_errno_ = errno;
}

PlaybookRun::~PlaybookRun() {
  if (cancel_fd_ >= 0) ::close(cancel_fd_);
}

void PlaybookRun::RenewLease() {
  std::lock_guard<std::mutex> lock(lease_mu_);
  if (lease_fd_ < 0) return;
  const char renew = 'h';
  // Never blocks; a full socket means the guard is not reading, and renewals are idempotent.
  (void)::send(lease_fd_, &renew, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void PlaybookRun::Cancel() {
  cancel_requested_.store(true);
  if (cancel_fd_ >= 0) {
    std::uint64_t one = 1;
    ssize_t ignored = ::write(cancel_fd_, &one, sizeof one);
    (void)ignored;
  }
}

PlaybookResult PlaybookRun::Run(const LineCallback& on_line) {
  if (started_.exchange(true)) {
    std::fprintf(stderr, "PlaybookRun::Run called twice\n");
    std::abort();
  }
  PlaybookResult result;
  auto setup_failed = [&](std::string error) {
    result.outcome = PlaybookOutcome::kSetupFailed;
    result.error = std::move(error);
    on_line("clustermgr: " + result.error);
    return result;
  };
  if (cancel_requested_.load()) {
    result.outcome = PlaybookOutcome::kCancelled;
    result.cancelled = true;
    result.error = "cancelled before the playbook started";
    on_line("clustermgr: " + result.error);
    return result;
  }
  if (cancel_fd_ < 0)
    return setup_failed("cannot create an eventfd: " + ErrnoText(cancel_fd_errno_));

  // --- Everything that can be checked before touching the disk.
  PlaybookPath playbook = ResolvePlaybookPath(spec_.playbook_dir, spec_.playbook);
  if (!playbook.ok()) return setup_failed(playbook.error);
  if (!spec_.user.empty() && !IsSafeUser(spec_.user)) {
    return setup_failed("invalid ansible user " + Quote(spec_.user) +
                        ": use letters, digits, '_', '-', '.', not starting with '-'");
  }
  std::string private_key;
  if (!spec_.private_key.empty()) {
    std::error_code ec;
    private_key = std::filesystem::absolute(spec_.private_key, ec).string();
    if (ec || HasControlChars(private_key)) {
      return setup_failed("invalid private key path " + Quote(spec_.private_key));
    }
  }
  if (!spec_.extra_vars.is_object() || !spec_.client_vars.is_object()) {
    return setup_failed("extra-vars must be a JSON object");
  }
  InventoryText inventory = RenderInventory(spec_.hosts);
  if (!inventory.ok()) return setup_failed(inventory.error);
  for (const auto* per_host : {&spec_.host_vars, &spec_.client_host_vars}) {
    for (const auto& [host, vars] : *per_host) {
      // The host name becomes a file name: only inventory hosts (validated names) are allowed.
      const std::string& name = host;  // clang 14 cannot capture a structured binding
      const bool listed = std::any_of(spec_.hosts.begin(), spec_.hosts.end(),
                                      [&](const InventoryHost& h) { return h.name == name; });
      if (!listed) return setup_failed("host vars for " + Quote(host) + ", not in the inventory");
      if (!vars.is_object()) {
        return setup_failed("host vars of " + Quote(host) + " must be an object");
      }
    }
  }

  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry = *e;
    std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    if (Inherited(entry.substr(0, eq))) env.Set(entry.substr(0, eq), entry.substr(eq + 1));
  }
  if (env.Get("PATH") == nullptr) env.Set("PATH", "/usr/local/bin:/usr/bin:/bin");
  env.Set("ANSIBLE_HOST_KEY_CHECKING", "False");
  env.Set("ANSIBLE_FORCE_COLOR", "0");
  env.Set("ANSIBLE_NOCOLOR", "1");
  env.Set("PYTHONUNBUFFERED", "1");
  env.Set("ANSIBLE_RETRY_FILES_ENABLED", "False");
  env.Set("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS", "ignore");
  if (!spec_.roles_path.empty()) {
    if (HasControlChars(spec_.roles_path) || spec_.roles_path.find(':') != std::string::npos) {
      return setup_failed("invalid roles dir " + Quote(spec_.roles_path));
    }
    std::error_code ec;
    const std::string roles = std::filesystem::absolute(spec_.roles_path, ec).string();
    const std::string* inherited = env.Get("ANSIBLE_ROLES_PATH");
    const std::string rest = inherited != nullptr && !inherited->empty()
                                 ? *inherited
                                 : "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles";
    env.Set("ANSIBLE_ROLES_PATH", (ec ? spec_.roles_path : roles) + ":" + rest);
  }
  for (const auto& [name, value] : spec_.env) {
    if (!IsEnvName(name) || value.find('\0') != std::string::npos) {
      return setup_failed("invalid environment variable " + Quote(name));
    }
  }

  // --- The private directory and the files ansible reads.
  TempDir temp;
  if (std::string err = temp.Create(spec_.temp_parent); !err.empty()) return setup_failed(err);
  const std::string hosts_file = temp.path() + "/hosts";
  const std::string vars_file = temp.path() + "/extra-vars.json";
  const std::string local_temp = temp.path() + "/tmp";
  if (std::string err = WritePrivateFile(hosts_file, inventory.text); !err.empty()) {
    return setup_failed(err);
  }
  std::string vars_json =
      spec_.extra_vars.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (std::string err = WritePrivateFile(vars_file, vars_json); !err.empty()) {
    return setup_failed(err);
  }
  const std::string client_file = temp.path() + "/client-vars.yml";
  if (!spec_.client_vars.empty()) {
    if (std::string err = WritePrivateFile(client_file, ToUnsafeYaml(spec_.client_vars));
        !err.empty()) {
      return setup_failed(err);
    }
  }
  if (!spec_.host_vars.empty() || !spec_.client_host_vars.empty()) {
    // Ansible loads every file of <inventory dir>/host_vars/<host>/ as that host's variables.
    const std::string dir = temp.path() + "/host_vars";
    if (::mkdir(dir.c_str(), 0700) != 0) {
      return setup_failed("cannot create " + Quote(dir) + ": " + ErrnoText(errno));
    }
    for (const InventoryHost& host : spec_.hosts) {
      auto ours = spec_.host_vars.find(host.name);
      auto theirs = spec_.client_host_vars.find(host.name);
      if (ours == spec_.host_vars.end() && theirs == spec_.client_host_vars.end()) continue;
      const std::string host_dir = dir + "/" + host.name;
      if (::mkdir(host_dir.c_str(), 0700) != 0) {
        return setup_failed("cannot create " + Quote(host_dir) + ": " + ErrnoText(errno));
      }
      if (ours != spec_.host_vars.end()) {
        const std::string text =
            ours->second.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        if (std::string err = WritePrivateFile(host_dir + "/operator.json", text); !err.empty()) {
          return setup_failed(err);
        }
      }
      if (theirs != spec_.client_host_vars.end()) {
        if (std::string err =
                WritePrivateFile(host_dir + "/client.yml", ToUnsafeYaml(theirs->second));
            !err.empty()) {
          return setup_failed(err);
        }
      }
    }
  }
  if (::mkdir(local_temp.c_str(), 0700) != 0) {
    return setup_failed("cannot create " + Quote(local_temp) + ": " + ErrnoText(errno));
  }
  env.Set("ANSIBLE_LOCAL_TEMP", local_temp);
  // A cancelled or killed task leaves its module payload dir in TMPDIR: keep it in the run dir,
  // which is removed after the run (or at the next start, after a crash).
  env.Set("TMPDIR", local_temp);
  for (const auto& [name, value] : spec_.env) env.Set(name, value);

  ExecPlan plan;
  std::string find_error;
  plan.program = FindProgram(spec_.ansible_playbook, *env.Get("PATH"), &find_error);
  if (plan.program.empty()) return setup_failed(find_error);
  plan.args = {plan.program, "-i", hosts_file, "--extra-vars", "@" + vars_file};
  if (!spec_.client_vars.empty()) {
    plan.args.insert(plan.args.end(), {"--extra-vars", "@" + client_file});
  }
  if (!spec_.user.empty()) plan.args.insert(plan.args.end(), {"--user", spec_.user});
  if (!private_key.empty()) plan.args.insert(plan.args.end(), {"--private-key", private_key});
  plan.args.push_back(playbook.path);
  plan.env = env.Entries();
  plan.cwd = playbook.dir;

  std::vector<char*> argv;
  for (std::string& a : plan.args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : plan.env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return setup_failed("pipe: " + ErrnoText(errno));
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return setup_failed("pipe: " + ErrnoText(errno));
  Fd err_read(err_pipe[0]), err_write(err_pipe[1]);
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd.valid()) return setup_failed("cannot open /dev/null: " + ErrnoText(errno));

  // --- Start.
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
  if (pid < 0) return setup_failed("fork: " + ErrnoText(errno));
  // Also set the group here, so that it exists before any kill(-pid) below, whichever of the
  // two processes runs first (EACCES once the child has exec'd: it did it itself then).
  ::setpgid(pid, pid);
  out_write.Reset();
  err_write.Reset();
  null_fd.Reset();
  result.pid = pid;
  pid_.store(pid);

  int exec_errno = 0;
  if (ReadAll(err_read.get(), &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.pid = 0;
    pid_.store(0);
    return setup_failed("cannot run " + Quote(plan.program) + ": " + ErrnoText(exec_errno));
  }
  err_read.Reset();

  // --- The guard (see GuardChild): kills the group should this process die during the run.
  Fd guard_ctl;
  pid_t guard = -1;
  {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
      guard_ctl.Reset(pair[0]);
      Fd guard_end(pair[1]);
      {
        SignalsBlocked blocked;
        guard = ::fork();
        if (guard == 0) {
          GuardChild(guard_end.get(), pid, spec_.lease.count(), spec_.kill_grace.count());
        }
      }
      if (guard > 0) {
        ::setpgid(guard, pid);  // also here, so that a cancel right away reaches it
        std::lock_guard<std::mutex> lock(lease_mu_);
        lease_fd_ = guard_ctl.get();
      } else {
        guard_ctl.Reset();
      }
    }
    if (guard <= 0) {
      on_line("clustermgr: warning: no guard process for this run (" + ErrnoText(errno) +
              "); should clustermgrd die, the playbook's workers may run on");
    }
  }
  auto release_guard = [&] {
    if (guard <= 0) return;
    {
      std::lock_guard<std::mutex> lock(lease_mu_);
      lease_fd_ = -1;
    }
    const char done = 'x';
    // Fails harmlessly when the guard is gone already (killed with a cancelled group).
    (void)::send(guard_ctl.get(), &done, 1, MSG_NOSIGNAL);
    guard_ctl.Reset();
    int guard_status = 0;
    while (::waitpid(guard, &guard_status, 0) < 0 && errno == EINTR) {
    }
    guard = -1;
  };

  // --- Watch output, exit and cancellation.
  // Through syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C". -1 on kernels < 5.3, where
  // the exit is polled for instead.
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  OutputLineSplitter splitter(spec_.max_line_bytes);
  std::vector<char> buf(64 * 1024);
  bool output_open = true;
  bool exited = false;
  bool signalled_term = false;
  bool signalled_kill = false;
  Clock::time_point kill_at{};

  auto check_exited = [&] {
    siginfo_t info{};
    // WNOWAIT: observe the exit but leave the zombie, so the group id stays ours until reaped.
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      exited = true;
    }
  };
  auto read_output = [&](bool nonblocking_drain) {
    if (nonblocking_drain) ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);
    std::size_t drained = 0;
    while (true) {
      ssize_t n = ::read(out_read.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) {
        output_open = false;
        return;
      }
      if (n < 0) return;  // EAGAIN while draining, or a real error: stop reading
      splitter.Feed(std::string_view(buf.data(), static_cast<std::size_t>(n)), on_line);
      drained += static_cast<std::size_t>(n);
      // A straggler of the group could write forever; the run is over, so stop at some point.
      if (!nonblocking_drain || drained > 4 * 1024 * 1024) return;
    }
  };

  // The guard says 'L' when the lease lapsed; it signals the group itself.
  bool guard_open = guard > 0 && spec_.lease.count() > 0;
  bool lease_lapsed = false;
  auto read_guard = [&] {
    char byte = 0;
    const ssize_t n = ::recv(guard_ctl.get(), &byte, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      guard_open = false;  // the guard is gone (killed with the group)
      return;
    }
    if (byte == 'L' && !lease_lapsed) {
      lease_lapsed = true;
      if (!signalled_term) {  // the guard sent SIGTERM; SIGKILL follows after the grace
        signalled_term = true;
        kill_at = Clock::now() + spec_.kill_grace;
      }
    }
  };

  while (!exited) {
    pollfd fds[4];
    nfds_t nfds = 0;
    int out_idx = -1, pid_idx = -1, cancel_idx = -1, guard_idx = -1;
    if (guard_open) {
      guard_idx = static_cast<int>(nfds);
      fds[nfds++] = {guard_ctl.get(), POLLIN, 0};
    }
    if (output_open) {
      out_idx = static_cast<int>(nfds);
      fds[nfds++] = {out_read.get(), POLLIN, 0};
    }
    if (pidfd.valid()) {
      pid_idx = static_cast<int>(nfds);
      fds[nfds++] = {pidfd.get(), POLLIN, 0};
    }
    if (!signalled_term) {
      cancel_idx = static_cast<int>(nfds);
      fds[nfds++] = {cancel_fd_, POLLIN, 0};
    }
    int timeout_ms = pidfd.valid() ? -1 : 50;
    if (signalled_term && !signalled_kill) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(kill_at - Clock::now()).count();
      int left_ms = static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
      timeout_ms = timeout_ms < 0 ? left_ms : std::min(timeout_ms, left_ms);
    }
    int ready = ::poll(fds, nfds, timeout_ms);
    if (ready < 0 && errno != EINTR) break;  // cannot happen with valid fds; reap below
    if (ready > 0 && guard_idx >= 0 && fds[guard_idx].revents != 0) read_guard();
    if (ready > 0 && pid_idx >= 0 && fds[pid_idx].revents != 0) check_exited();
    if (!pidfd.valid()) check_exited();
    if (exited) break;
    if (ready > 0 && out_idx >= 0 && fds[out_idx].revents != 0) read_output(false);
    if (ready > 0 && cancel_idx >= 0 && fds[cancel_idx].revents != 0) {
      ::kill(-pid, SIGTERM);
      signalled_term = true;
      kill_at = Clock::now() + spec_.kill_grace;
    }
    if (signalled_term && !signalled_kill && Clock::now() >= kill_at) {
      ::kill(-pid, SIGKILL);
      signalled_kill = true;
    }
  }
  // A lapse that raced with the exit: the guard says 'L' before it signals the group.
  if (guard_open && !lease_lapsed) read_guard();
  if (signalled_term) {
    // Whatever of the cancelled group is still alive (workers, a module's `sleep`) goes now;
    // the unreaped leader keeps the group id from being reused meanwhile.
    ::kill(-pid, SIGKILL);
    // SIGKILL takes effect asynchronously; a caller that checks after Cancel() that nothing of
    // the run is left must find nothing. Nothing signals the death of processes that are not
    // our children, so look, for a bounded time (a process stuck in the kernel may take longer).
    const auto give_up = Clock::now() + std::chrono::seconds(2);
    while (GroupHasLiveMembers(pid) && Clock::now() < give_up) {
      ::poll(nullptr, 0, 5);
    }
  }
  release_guard();
  if (output_open) read_output(true);
  splitter.Finish(on_line);

  int status = 0;
  pid_.store(0);
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) break;
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);

  if (lease_lapsed) {
    result.outcome = PlaybookOutcome::kCancelled;
    result.cancelled = true;
    result.lease_lapsed = true;
    result.error = "stopped: the side-effect token's lease lapsed (not renewed for " +
                   std::to_string(spec_.lease.count()) + " ms)";
  } else if (signalled_term) {
    result.outcome = PlaybookOutcome::kCancelled;
    result.cancelled = true;
    result.error = "cancelled";
  } else if (result.exit_code == 0) {
    result.outcome = PlaybookOutcome::kSucceeded;
  } else {
    result.outcome = PlaybookOutcome::kFailed;
    result.error =
        result.term_signal != 0
            ? "ansible-playbook was killed by signal " + std::to_string(result.term_signal)
            : "ansible-playbook exited with status " + std::to_string(result.exit_code) +
                  ExitMeaning(result.exit_code);
  }
  return result;
}

}  // namespace clustermgr::mgr
