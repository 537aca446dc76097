#include "test/support/process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace clustermgr::test {
namespace {

std::string ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return program;  // execve reports ENOENT
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace

std::unique_ptr<Process> Process::Start(const ProcessOptions& options, std::string* error) {
  // Everything the child needs is prepared here: between fork and execve only
  // async-signal-safe calls are allowed (the parent has threads).
  const std::string path = ResolveProgram(options.program);
  std::vector<std::string> argv_s;
  argv_s.push_back(options.program);
  argv_s.insert(argv_s.end(), options.args.begin(), options.args.end());
  std::map<std::string, std::string> env;
  if (options.inherit_env) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> envp_s;
  for (const auto& [k, v] : env) envp_s.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : envp_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  const std::string out = options.output_path.empty() ? "/dev/null" : options.output_path;
  const std::string err = options.error_path.empty() ? out : options.error_path;

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return nullptr;
  }
  pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    close(report[0]);
    close(report[1]);
    return nullptr;
  }
  if (pid == 0) {
    // Child.
    auto fail = [&](int err) {
      (void)!write(report[1], &err, sizeof err);
      _exit(127);
    };
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaction(sig, &dfl, nullptr);
    int in = open("/dev/null", O_RDONLY);
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    int e = err == out ? o : open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || o < 0 || e < 0) fail(errno);
    if (dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) fail(errno);
      // Nothing else of the test process leaks into the child.
#ifdef SYS_close_range
    syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
#endif
    if (!options.working_dir.empty() && chdir(options.working_dir.c_str()) != 0) fail(errno);
    execve(path.c_str(), argv.data(), envp.data());
    fail(errno);
  }
  // Parent. Also set the group here: whichever runs first wins, and signals to the group work
  // as soon as Start returns.
  setpgid(pid, pid);
  close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int status = 0;
    waitpid(pid, &status, 0);
    *error = "cannot execute " + path + ": " + std::strerror(child_errno);
    return nullptr;
  }
  return std::unique_ptr<Process>(new Process(options, pid));
}

Process::Process(ProcessOptions options, pid_t pid) : options_(std::move(options)), pid_(pid) {}

Process::~Process() {
  if (!status_) Kill();
}

bool Process::Running() {
  if (status_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return false;
  }
  return true;
}

bool Process::Signal(int sig) {
  if (status_) return false;
  // The group outlives a leader that has exited but is not reaped yet; signal it regardless.
  return kill(-pid_, sig) == 0 || kill(pid_, sig) == 0;
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int pidfd = PidfdOpen(pid_);
  while (true) {
    if (!Running()) break;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(left));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long>(10, left)));
    }
  }
  if (pidfd >= 0) close(pidfd);
  return status_;
}

int Process::Stop(std::chrono::milliseconds grace) {
  if (status_) return *status_;
  Signal(SIGTERM);
  if (auto st = Wait(grace)) return *st;
  return Kill();
}

int Process::Kill() {
  if (status_) return *status_;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  status_ = status;
  return status;
}

std::string Process::Output() const {
  if (options_.output_path.empty()) return "";
  std::ifstream in(options_.output_path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Process::DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("killed by SIG") + (name ? name : std::to_string(WTERMSIG(status)));
  }
  return "status " + std::to_string(status);
}

namespace {

// Ports this process has handed out (both ports of a pair), so two callers never get the same.
std::mutex g_ports_mu;
std::set<int> g_ports_handed_out;

// A free loopback TCP port that is free for UDP too (Serf binds both), or 0. `g_ports_mu` held.
int PickFreePortLocked() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (t < 0 || bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(t, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      if (t >= 0) close(t);
      continue;
    }
    const int port = ntohs(a.sin_port);
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const bool udp_free = u >= 0 && bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (u >= 0) close(u);
    close(t);
    if (udp_free && !g_ports_handed_out.count(port)) return port;
  }
  return 0;
}

bool TcpPortFree(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

}  // namespace

int FreeLoopbackPort() {
  std::lock_guard<std::mutex> lock(g_ports_mu);
  const int port = PickFreePortLocked();
  if (port > 0) g_ports_handed_out.insert(port);
  return port;
}

int FreeLoopbackPortPair() {
  std::lock_guard<std::mutex> lock(g_ports_mu);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = PickFreePortLocked();
    if (port <= 0 || port >= 65535) continue;
    if (g_ports_handed_out.count(port + 1) || !TcpPortFree(port + 1)) continue;
    g_ports_handed_out.insert(port);
    g_ports_handed_out.insert(port + 1);
    return port;
  }
  return 0;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) return "";
  return std::string(buf.data());
}

bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

void RemoveTree(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace clustermgr::test
