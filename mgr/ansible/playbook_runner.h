// Running one ansible-playbook process for a job.
//
//   ansible-playbook -i <dir>/hosts --extra-vars @<dir>/extra-vars.json
//       [--extra-vars @<dir>/client-vars.yml] [--user U] [--forks N] [--private-key K]
//       <playbook-dir>/<playbook>
//
// Two kinds of variables: the operator's (extra_vars, host_vars: the daemon's own --extra-vars
// and what clustermgr sets), written as JSON, which ansible templates like any variable; and
// the clients' (client_vars, client_host_vars), written as YAML whose every string carries
// Ansible's `!unsafe` tag (mgr/ansible/extra_vars.h ToUnsafeYaml), so that a Jinja expression in a
// client's value is never evaluated on the manager host. A host's vars go to
// <dir>/host_vars/<host>/{operator.json,client.yml}.
//
// run with fork+execve (no shell), stdin from /dev/null, stdout and stderr merged into one pipe
// that is read line by line, in its own process group, with the working directory set to the
// playbook directory (so an ansible.cfg beside the playbooks applies). <dir> is a private temp
// dir (mode 0700) made for the run and removed after it.
//
// Environment of the child: from the daemon's environment only PATH, HOME, USER, LOGNAME, LANG,
// LANGUAGE, LC_*, TZ, TMPDIR, SSH_AUTH_SOCK and ANSIBLE_* are passed on; then
//   ANSIBLE_HOST_KEY_CHECKING=False  ANSIBLE_FORCE_COLOR=0  ANSIBLE_NOCOLOR=1
//   PYTHONUNBUFFERED=1  ANSIBLE_RETRY_FILES_ENABLED=False
//   ANSIBLE_LOCAL_TEMP=<dir>/tmp     (controller temp files die with the run)
//   TMPDIR=<dir>/tmp                 (so do modules' payload dirs, e.g. AnsiballZ's with a
//                                     local connection, which a killed task leaves behind)
//   ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS=ignore  (groups like service-master are intended;
//                                                   without this every run warns about them)
//   ANSIBLE_ROLES_PATH=<roles_path>:<the daemon's ANSIBLE_ROLES_PATH, or Ansible's default
//                      ~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles>
//                      (only when PlaybookSpec::roles_path is set; roles beside the playbook,
//                      in <playbook-dir>/roles, still come first)
// are set, and PlaybookSpec::env is applied last (it may override any of them).
//
// Process lifetime: the child is made a process-group leader. Cancel() sends SIGTERM to the
// group, then SIGKILL to the group after PlaybookSpec::kill_grace; after a cancelled leader has
// exited the group gets SIGKILL anyway, so no worker or module process (e.g. a `sleep` a task
// runs) outlives a cancelled run. The leader is reaped only after that, so the group id cannot be
// reused while it is being signalled. A run that ends by itself leaves the group alone (a task
// may have started a daemon on purpose). The leader also gets PR_SET_PDEATHSIG=SIGKILL: if the
// thread that called Run() dies (i.e. the daemon dies), ansible-playbook dies with it instead of
// configuring nodes for a manager that no longer holds the token. Its forked workers (and the
// tasks they run) do not inherit that, so a small guard process, forked from the daemon into the
// run's group and holding nothing of it but one end of a socket pair, SIGKILLs the whole group
// when that socket closes before Run() said the run is over (i.e. the daemon died).
//
// The lease (PlaybookSpec::lease): the same guard stops the run when the daemon stops renewing
// it (RenewLease, on every tick of the token holder's event loop): SIGTERM to the group, SIGKILL
// after kill_grace. Being a process of its own, it acts while the daemon is stopped (SIGSTOP),
// wedged or starved; Run() then reports kCancelled with lease_lapsed set.
//
// The pieces, each in its file: playbook_path.h (the playbook confined to its directory),
// run_environment.h (the child's environment, the program), run_files.h (the private directory
// and its files), ansible_process.h (fork/exec and the guard), output_lines.h (lines, UTF-8).

#ifndef CLUSTERMGR_MGR_PLAYBOOK_RUNNER_H_
#define CLUSTERMGR_MGR_PLAYBOOK_RUNNER_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/event_fd.h"
#include "base/mutex.h"
#include "base/status.h"
#include "mgr/ansible/ansible_inventory.h"
#include "mgr/ansible/output_lines.h"
#include "mgr/ansible/playbook_path.h"

namespace clustermgr::mgr {

struct PlaybookSpec {
  std::string playbook_dir;  // directory holding the playbooks (relative to the daemon's cwd ok)
  std::string playbook;      // path relative to playbook_dir, e.g. "site.yml"
  std::vector<InventoryHost> hosts;
  // The operator's vars (templated by ansible); must be an object.
  nlohmann::json extra_vars = nlohmann::json::object();
  // Vars of single hosts (each an object), written beside the inventory as host_vars: Ansible
  // reads them as inventory host variables, below --extra-vars in precedence, so a key belongs
  // either here or in extra_vars. Every host must be one of `hosts`.
  std::map<std::string, nlohmann::json> host_vars;
  // The clients' vars, never templated; the same rules, and no key in both kinds.
  nlohmann::json client_vars = nlohmann::json::object();
  std::map<std::string, nlohmann::json> client_host_vars;
  std::string user;         // --user; empty: not passed
  int forks = 0;            // --forks; 0: not passed (Ansible's default)
  std::string private_key;  // --private-key (made absolute); empty: not passed
  // Directory of the roles shipped with clustermgr, searched before the usual roles path (see
  // the environment above); empty: the roles path is left alone.
  std::string roles_path;
  // The program; looked up in the child's PATH when it has no '/'.
  std::string ansible_playbook = "ansible-playbook";
  // Extra environment for the child, applied last. Names must match [A-Za-z_][A-Za-z0-9_]*.
  std::vector<std::pair<std::string, std::string>> env;
  // Where the private temp dir is made; empty: $TMPDIR, else /tmp.
  std::string temp_parent;
  // Time between SIGTERM and SIGKILL on Cancel() and when the lease lapses.
  std::chrono::milliseconds kill_grace{5000};
  // The token holder's lease; 0: none. While the run lasts, RenewLease() must be called at
  // least this often: the guard process stops the run's process group (SIGTERM, SIGKILL after
  // kill_grace) as soon as it has not been renewed for this long, whatever the daemon does.
  std::chrono::milliseconds lease{0};
  // Output lines longer than this many bytes are cut and end with a truncation marker.
  std::size_t max_line_bytes = 16 * 1024;
};

enum class PlaybookOutcome {
  kSucceeded,    // exit status 0
  kFailed,       // non-zero exit status or killed by a signal nobody here sent
  kCancelled,    // Cancel() took effect (before the start, or the process group was signalled)
  kSetupFailed,  // never ran: bad spec, missing playbook, exec failure, I/O error
};

struct [[nodiscard]] PlaybookResult {
  PlaybookOutcome outcome = PlaybookOutcome::kSetupFailed;
  int pid = 0;          // the process (= process group) id; 0 when none was started
  int exit_code = -1;   // exit status when the process exited; -1 otherwise
  int term_signal = 0;  // the signal that ended the process; 0 otherwise
  bool cancelled = false;
  bool lease_lapsed = false;  // the guard stopped the run: the lease was not renewed in time
  // Empty iff kSucceeded; otherwise one line for the job's error field, e.g.
  //   `ansible-playbook exited with status 2 (one or more hosts failed)`
  //   `ansible-playbook was killed by signal 9`
  //   `cancelled` / `cancelled before the playbook started`
  //   `playbook "site.yml" not found in "/etc/clustermgr/playbooks"` (see ResolvePlaybookPath)
  std::string error;
  bool ok() const { return outcome == PlaybookOutcome::kSucceeded; }
};

// One run of one playbook. Single use.
//
// Threading: Run() blocks the calling thread (the job's worker thread) until the process and
// its output are finished; `on_line` is invoked synchronously on that thread, in output order,
// before Run() returns. Cancel() may be called from any thread at any time, also before Run()
// or after it returned (then it does nothing); it never blocks. The object must outlive every
// Cancel() call and must not be destroyed while Run() executes.
class PlaybookRun {
 public:
  explicit PlaybookRun(PlaybookSpec spec);
  ~PlaybookRun();
  PlaybookRun(const PlaybookRun&) = delete;
  PlaybookRun& operator=(const PlaybookRun&) = delete;

  // Runs the playbook. Calling it twice is a bug (aborts). Setup errors (everything that makes
  // the outcome kSetupFailed) are also passed to `on_line` as one line starting with
  // "clustermgr: ", so that a job log explains itself.
  PlaybookResult Run(const LineCallback& on_line);

  // Asks the run to stop. Idempotent; thread-safe; async-signal-unsafe.
  void Cancel();

  // Renews the lease (PlaybookSpec::lease) for another period from now; does nothing before the
  // guard is started or after the run. Thread-safe; never blocks.
  void RenewLease();

  // The ansible-playbook process (= process group) id while it runs, 0 before it is started;
  // once Run() returned, the id is reaped and may belong to another process. Thread-safe; for
  // diagnostics and tests.
  int pid() const { return pid_.load(); }

 private:
  PlaybookSpec spec_;
  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> started_{false};
  std::atomic<int> pid_{0};
  Mutex lease_mu_;
  int lease_fd_ GUARDED_BY(lease_mu_) = -1;  // the guard's control socket while the guard runs
  // Wakes Run() on Cancel(); Run() reports a failure to create it.
  const Result<EventFd> cancel_wake_ = EventFd::Create();
};

}  // namespace clustermgr::mgr

#endif  // CLUSTERMGR_MGR_PLAYBOOK_RUNNER_H_
