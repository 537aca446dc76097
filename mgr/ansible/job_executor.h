// JobExecutor: runs one job's playbooks on a worker thread and reports back by messages.
//
// A job is a script of steps. Each step runs one playbook; when a step fails, the script runs
// that step's recovery playbooks (e.g. cleanup after a failed configure) and stops. Output lines
// and the final outcome are posted to the event loop's mailbox; the executor never touches the
// replicated state, which only the event loop owns.
//
// A rolling job (JobStep::batch) runs its batches one after the other: after each batch whose
// steps all succeeded, kBatchDone tells the event loop, which moves that batch's nodes on before
// the next batch starts; a failed batch ends the job, and later batches never run.
//
// Fenced hosts (mgr/fencing/run_report.h): a host the fencing role refused, because a newer
// token holder has touched it, is left alone from then on - later steps and recovery playbooks
// run without it - and is reported apart: a playbook that failed only on fenced hosts counts as
// done for the others. kFinished lists the fenced hosts, and a last log line sums up each host
// ("clustermgr: hosts: node-a ok, node-b fenced (host has seen epoch 4, this run carries 3)").
//
// The holder's lease. With a lease period, the event loop calls RenewLease() on every tick while
// this instance holds the side-effect token, and EndLease() when it stops holding it. A step
// (and a recovery playbook) starts only while the lease is current - this is how the token is
// re-checked between steps - and each playbook's guard process stops the run when renewals stop
// reaching it for a lease period (PlaybookSpec::lease), even when the daemon itself is stopped.
// A job stopped either way ends as cancelled, its error saying the lease lapsed.
//
// Threading: Start(), Cancel(), RenewLease() and EndLease() are called by the event loop thread;
// the playbooks run on the executor's own thread. The destructor cancels a running job and joins
// the thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "mgr/ansible/playbook_runner.h"
#include "mgr/fencing/run_report.h"

namespace clustermgr::mgr {

struct JobStep {
  PlaybookSpec playbook;
  std::vector<PlaybookSpec> on_failure;  // run in order when `playbook` fails (not on cancel)
  // A rolling job's batch (0, 1, ...): consecutive steps of one batch work on its hosts; -1: not
  // rolling. When every step of batch k has succeeded and batch k+1 is about to start,
  // kBatchDone reports k.
  int batch = -1;
};

struct JobScript {
  std::string job_id;
  std::vector<JobStep> steps;
};

// What the worker thread tells the event loop.
struct JobEvent {
  enum class Kind { kLine, kBatchDone, kFinished };
  Kind kind = Kind::kLine;
  std::string job_id;
  std::string line;        // kLine
  bool succeeded = false;  // kFinished: every step's playbook succeeded (fenced hosts aside)
  bool cancelled = false;  // kFinished: Cancel() stopped it
  std::string error;       // kFinished: the first failure, one line (or the first fence)
  // kFinished: host -> "fenced: host has seen epoch N, this run carries M".
  std::map<std::string, std::string> fenced;
  // kFinished: each host's PLAY RECAP counters, summed over the job's playbook runs (read from
  // every output line, whatever the job's log keeps of them).
  std::map<std::string, fencing::HostRecap> recap;
  int batch = -1;  // kBatchDone: the batch whose steps all succeeded
};

class JobExecutor {
 public:
  using Post = std::function<void(JobEvent)>;  // must be thread-safe (Mailbox::Post)

  // `lease` 0: no lease (steps start whenever, runs have no lease).
  explicit JobExecutor(Post post, std::chrono::milliseconds lease = std::chrono::milliseconds(0))
      : post_(std::move(post)), lease_(lease) {}
  ~JobExecutor();
  JobExecutor(const JobExecutor&) = delete;
  JobExecutor& operator=(const JobExecutor&) = delete;

  // Starts `script` on the worker thread. Precondition: no job is running (Busy() is false);
  // the previous job's kFinished has been posted.
  void Start(JobScript script);
  // Stops the running job, if `job_id` is it: the current playbook's process group is
  // terminated, no further step or recovery runs, and kFinished reports cancelled. Returns false
  // when that job is not running. A cancel that arrives after the last playbook succeeded (before
  // kFinished is posted) is too late: kFinished reports success, not cancelled.
  bool Cancel(const std::string& job_id);
  bool Busy() const;
  // The lease runs for another period from now; the running playbook's guard hears of it.
  void RenewLease();
  // The lease ends now: no further step starts (the running playbook is left to Cancel()).
  void EndLease();

 private:
  enum class RunOutcome {
    kSucceeded,
    kFenced,  // failed on fenced hosts only (or every host was fenced before): done for the rest
    kFailed,
  };
  struct HostTally;
  void RunScript(const JobScript& script);
  // Runs one playbook on the hosts of `spec` not fenced so far, forwarding its lines, adding the
  // hosts it finds fenced to `tally`; sets *error to the first failure.
  RunOutcome RunPlaybook(const std::string& job_id, PlaybookSpec spec, HostTally* tally,
                         std::string* error);

  Post post_;
  const std::chrono::milliseconds lease_;
  std::thread worker_;
  mutable Mutex mu_;
  std::string running_job_ GUARDED_BY(mu_);
  bool cancelled_ GUARDED_BY(mu_) = false;
  PlaybookRun* current_ GUARDED_BY(mu_) = nullptr;
  // With a lease: renewed until then.
  std::chrono::steady_clock::time_point lease_until_ GUARDED_BY(mu_){};
};

}  // namespace clustermgr::mgr
