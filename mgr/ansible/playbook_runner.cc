#include "mgr/ansible/playbook_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "mgr/ansible/ansible_process.h"
#include "mgr/ansible/run_environment.h"
#include "mgr/ansible/run_files.h"
#include "mgr/ansible/run_support.h"

namespace clustermgr::mgr {
namespace {

using Clock = std::chrono::steady_clock;
using run::HasControlChars;

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

// The checks of a spec that need neither the disk nor a process: the playbook's path, the user,
// the private key (made absolute), the vars and the inventory. "" or an error line.
std::string CheckSpec(const PlaybookSpec& spec, PlaybookPath* playbook, std::string* private_key,
                      InventoryText* inventory) {
  *playbook = ResolvePlaybookPath(spec.playbook_dir, spec.playbook);
  if (!playbook->ok()) return playbook->error;
  if (!spec.user.empty() && !IsSafeUser(spec.user)) {
    return "invalid ansible user " + Quote(spec.user) +
           ": use letters, digits, '_', '-', '.', not starting with '-'";
  }
  if (!spec.private_key.empty()) {
    std::error_code ec;
    *private_key = std::filesystem::absolute(spec.private_key, ec).string();
    if (ec || HasControlChars(*private_key)) {
      return "invalid private key path " + Quote(spec.private_key);
    }
  }
  if (!spec.extra_vars.is_object() || !spec.client_vars.is_object()) {
    return "extra-vars must be a JSON object";
  }
  *inventory = RenderInventory(spec.hosts);
  if (!inventory->ok()) return inventory->error;
  for (const auto* per_host : {&spec.host_vars, &spec.client_host_vars}) {
    for (const auto& [host, vars] : *per_host) {
      // The host name becomes a file name: only inventory hosts (validated names) are allowed.
      const std::string& name = host;  // clang 14 cannot capture a structured binding
      const bool listed = std::any_of(spec.hosts.begin(), spec.hosts.end(),
                                      [&](const InventoryHost& h) { return h.name == name; });
      if (!listed) return "host vars for " + Quote(host) + ", not in the inventory";
      if (!vars.is_object()) return "host vars of " + Quote(host) + " must be an object";
    }
  }
  return "";
}

// The command line: ansible-playbook -i hosts --extra-vars @vars [--extra-vars @client-vars]
// [--user U] [--forks N] [--private-key K] <playbook>.
std::vector<std::string> Arguments(const std::string& program, const PlaybookSpec& spec,
                                   const run::RunFiles& files, const std::string& private_key,
                                   const PlaybookPath& playbook) {
  std::vector<std::string> args = {program, "-i", files.hosts, "--extra-vars", "@" + files.vars};
  if (!files.client_vars.empty()) {
    args.insert(args.end(), {"--extra-vars", "@" + files.client_vars});
  }
  if (!spec.user.empty()) args.insert(args.end(), {"--user", spec.user});
  if (spec.forks > 0) args.insert(args.end(), {"--forks", std::to_string(spec.forks)});
  if (!private_key.empty()) args.insert(args.end(), {"--private-key", private_key});
  args.push_back(playbook.path);
  return args;
}

// Watches a started run until its process exits: feeds its output to the splitter, and on a
// cancel (the eventfd) sends SIGTERM to the group, then SIGKILL after the grace.
class RunWatch {
 public:
  // `guard_fd`: the guard's control socket when the run has a lease (it says 'L' when the lease
  // lapsed), -1 otherwise.
  RunWatch(pid_t pid, Fd output, int cancel_fd, int guard_fd, std::chrono::milliseconds kill_grace,
           std::size_t max_line_bytes, const LineCallback& on_line)
      : pid_(pid),
        output_(std::move(output)),
        cancel_fd_(cancel_fd),
        guard_fd_(guard_fd),
        kill_grace_(kill_grace),
        splitter_(max_line_bytes),
        on_line_(on_line),
        // Through syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C". -1 on kernels < 5.3,
        // where the exit is polled for instead.
        pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}

  // Returns once the process has exited (it is left unreaped: the group id stays ours).
  void UntilExit();
  // After a cancel: kills what is left of the group and waits (bounded) until nothing is.
  void KillCancelledGroup();
  // Reads what is left of the output and emits a last partial line.
  void Finish();
  // Reads a lease lapse that raced with the exit (the guard says 'L' before it signals).
  void CheckLeaseAfterExit() {
    if (guard_fd_ >= 0 && !lease_lapsed_) ReadGuard();
  }
  bool cancelled() const { return signalled_term_; }
  bool lease_lapsed() const { return lease_lapsed_; }

 private:
  void CheckExited();
  void ReadGuard();
  void ReadOutput(bool nonblocking_drain);

  pid_t pid_;
  Fd output_;
  int cancel_fd_;
  int guard_fd_;  // -1 once the guard is gone
  bool lease_lapsed_ = false;
  std::chrono::milliseconds kill_grace_;
  OutputLineSplitter splitter_;
  const LineCallback& on_line_;
  Fd pidfd_;
  std::vector<char> buf_ = std::vector<char>(64 * 1024);
  bool output_open_ = true;
  bool exited_ = false;
  bool signalled_term_ = false;
  bool signalled_kill_ = false;
  Clock::time_point kill_at_{};
};

void RunWatch::CheckExited() {
  siginfo_t info{};
  // WNOWAIT: observe the exit but leave the zombie, so the group id stays ours until reaped.
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid == pid_) {
    exited_ = true;
  }
}

void RunWatch::ReadGuard() {
  char byte = 0;
  const ssize_t n = ::recv(guard_fd_, &byte, 1, MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    guard_fd_ = -1;  // the guard is gone (killed with the group)
    return;
  }
  if (byte == 'L' && !lease_lapsed_) {
    lease_lapsed_ = true;
    if (!signalled_term_) {  // the guard sent SIGTERM; SIGKILL follows after the grace
      signalled_term_ = true;
      kill_at_ = Clock::now() + kill_grace_;
    }
  }
}

void RunWatch::ReadOutput(bool nonblocking_drain) {
  if (nonblocking_drain) ::fcntl(output_.get(), F_SETFL, O_NONBLOCK);
  std::size_t drained = 0;
  while (true) {
    ssize_t n = ::read(output_.get(), buf_.data(), buf_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      output_open_ = false;
      return;
    }
    if (n < 0) return;  // EAGAIN while draining, or a real error: stop reading
    splitter_.Feed(std::string_view(buf_.data(), static_cast<std::size_t>(n)), on_line_);
    drained += static_cast<std::size_t>(n);
    // A straggler of the group could write forever; the run is over, so stop at some point.
    if (!nonblocking_drain || drained > 4 * 1024 * 1024) return;
  }
}

void RunWatch::UntilExit() {
  while (!exited_) {
    pollfd fds[4];
    nfds_t nfds = 0;
    int out_idx = -1, pid_idx = -1, cancel_idx = -1, guard_idx = -1;
    if (guard_fd_ >= 0) {
      guard_idx = static_cast<int>(nfds);
      fds[nfds++] = {guard_fd_, POLLIN, 0};
    }
    if (output_open_) {
      out_idx = static_cast<int>(nfds);
      fds[nfds++] = {output_.get(), POLLIN, 0};
    }
    if (pidfd_.valid()) {
      pid_idx = static_cast<int>(nfds);
      fds[nfds++] = {pidfd_.get(), POLLIN, 0};
    }
    if (!signalled_term_) {
      cancel_idx = static_cast<int>(nfds);
      fds[nfds++] = {cancel_fd_, POLLIN, 0};
    }
    int timeout_ms = pidfd_.valid() ? -1 : 50;
    if (signalled_term_ && !signalled_kill_) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(kill_at_ - Clock::now()).count();
      int left_ms = static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
      timeout_ms = timeout_ms < 0 ? left_ms : std::min(timeout_ms, left_ms);
    }
    int ready = ::poll(fds, nfds, timeout_ms);
    if (ready < 0 && errno != EINTR) break;  // cannot happen with valid fds; reap below
    if (ready > 0 && guard_idx >= 0 && fds[guard_idx].revents != 0) ReadGuard();
    if (ready > 0 && pid_idx >= 0 && fds[pid_idx].revents != 0) CheckExited();
    if (!pidfd_.valid()) CheckExited();
    if (exited_) break;
    if (ready > 0 && out_idx >= 0 && fds[out_idx].revents != 0) ReadOutput(false);
    if (ready > 0 && cancel_idx >= 0 && fds[cancel_idx].revents != 0) {
      ::kill(-pid_, SIGTERM);
      signalled_term_ = true;
      kill_at_ = Clock::now() + kill_grace_;
    }
    if (signalled_term_ && !signalled_kill_ && Clock::now() >= kill_at_) {
      ::kill(-pid_, SIGKILL);
      signalled_kill_ = true;
    }
  }
}

void RunWatch::KillCancelledGroup() {
  // Whatever of the cancelled group is still alive (workers, a module's `sleep`) goes now;
  // the unreaped leader keeps the group id from being reused meanwhile.
  ::kill(-pid_, SIGKILL);
  // SIGKILL takes effect asynchronously; a caller that checks after Cancel() that nothing of
  // the run is left must find nothing. Nothing signals the death of processes that are not
  // our children, so look, for a bounded time (a process stuck in the kernel may take longer).
  const auto give_up = Clock::now() + std::chrono::seconds(2);
  while (run::GroupHasLiveMembers(pid_) && Clock::now() < give_up) {
    ::poll(nullptr, 0, 5);
  }
}

void RunWatch::Finish() {
  if (output_open_) ReadOutput(true);
  splitter_.Finish(on_line_);
}

// The result of a run whose process was reaped with `status`.
void SetOutcome(int status, const RunWatch& watch, std::chrono::milliseconds lease,
                PlaybookResult* result) {
  if (WIFEXITED(status)) result->exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result->term_signal = WTERMSIG(status);
  if (watch.lease_lapsed()) {
    result->outcome = PlaybookOutcome::kCancelled;
    result->cancelled = true;
    result->lease_lapsed = true;
    result->error = "stopped: the side-effect token's lease lapsed (not renewed for " +
                    std::to_string(lease.count()) + " ms)";
  } else if (watch.cancelled()) {
    result->outcome = PlaybookOutcome::kCancelled;
    result->cancelled = true;
    result->error = "cancelled";
  } else if (result->exit_code == 0) {
    result->outcome = PlaybookOutcome::kSucceeded;
  } else {
    result->outcome = PlaybookOutcome::kFailed;
    result->error =
        result->term_signal != 0
            ? "ansible-playbook was killed by signal " + std::to_string(result->term_signal)
            : "ansible-playbook exited with status " + std::to_string(result->exit_code) +
                  ExitMeaning(result->exit_code);
  }
}

}  // namespace

PlaybookRun::PlaybookRun(PlaybookSpec spec) : spec_(std::move(spec)) {}

PlaybookRun::~PlaybookRun() = default;

void PlaybookRun::RenewLease() {
  MutexLock lock(lease_mu_);
  if (lease_fd_ < 0) return;
  const char renew = 'h';
  // Never blocks; a full socket means the guard is not reading, and renewals are idempotent.
  (void)::send(lease_fd_, &renew, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void PlaybookRun::Cancel() {
  cancel_requested_.store(true);
  if (cancel_wake_.ok()) cancel_wake_->Signal();
}

// The run, in phases: check the spec; build the environment; write the run's files; start the
// process and its guard; watch it until it exits (cancelling on request); reap it.
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
  if (!cancel_wake_.ok()) return setup_failed(cancel_wake_.status().message());

  PlaybookPath playbook;
  std::string private_key;
  InventoryText inventory;
  if (std::string err = CheckSpec(spec_, &playbook, &private_key, &inventory); !err.empty()) {
    return setup_failed(err);
  }
  run::Environment env;
  if (std::string err = run::BaseEnvironment(spec_, &env); !err.empty()) return setup_failed(err);
  run::RunDir dir;
  if (std::string err = dir.Create(spec_.temp_parent); !err.empty()) return setup_failed(err);
  run::RunFiles files;
  if (std::string err = run::WriteRunFiles(spec_, inventory.text, dir, &files); !err.empty()) {
    return setup_failed(err);
  }
  run::FinishEnvironment(spec_, files.local_temp, &env);

  run::ExecPlan plan;
  std::string find_error;
  plan.program = run::FindProgram(spec_.ansible_playbook, *env.Get("PATH"), &find_error);
  if (plan.program.empty()) return setup_failed(find_error);
  plan.args = Arguments(plan.program, spec_, files, private_key, playbook);
  plan.env = env.Entries();
  plan.cwd = playbook.dir;
  run::Child child;
  if (std::string err = run::StartChild(plan, &child); !err.empty()) return setup_failed(err);
  result.pid = child.pid;
  pid_.store(child.pid);

  run::GroupGuard guard;
  if (std::string err = guard.Start(child.pid, spec_.lease.count(), spec_.kill_grace.count());
      !err.empty()) {
    on_line("clustermgr: warning: no guard process for this run (" + err +
            "); should clustermgrd die, the playbook's workers may run on");
  } else {
    MutexLock lock(lease_mu_);
    lease_fd_ = guard.ctl_fd();
  }
  RunWatch watch(child.pid, std::move(child.output), cancel_wake_->fd(),
                 spec_.lease.count() > 0 ? guard.ctl_fd() : -1, spec_.kill_grace,
                 spec_.max_line_bytes, on_line);
  watch.UntilExit();
  watch.CheckLeaseAfterExit();
  if (watch.cancelled()) watch.KillCancelledGroup();
  {
    MutexLock lock(lease_mu_);
    lease_fd_ = -1;
  }
  guard.Release();
  watch.Finish();

  int status = 0;
  pid_.store(0);
  while (::waitpid(child.pid, &status, 0) < 0) {
    if (errno != EINTR) break;
  }
  SetOutcome(status, watch, spec_.lease, &result);
  return result;
}

}  // namespace clustermgr::mgr
