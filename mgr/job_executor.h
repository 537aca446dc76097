// JobExecutor: runs one job's playbooks on a worker thread and reports back by messages.
//
// A job is a script of steps. Each step runs one playbook; when a step fails, the script runs
// that step's recovery playbooks (e.g. cleanup after a failed configure) and stops. Output lines
// and the final outcome are posted to the event loop's mailbox; the executor never touches the
// replicated state, which only the event loop owns.
//
// Threading: Start() and Cancel() are called by the event loop thread; the playbooks run on the
// executor's own thread. The destructor cancels a running job and joins the thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mgr/playbook_runner.h"

namespace clustermgr::mgr {

struct JobStep {
  PlaybookSpec playbook;
  std::vector<PlaybookSpec> on_failure;  // run in order when `playbook` fails (not on cancel)
};

struct JobScript {
  std::string job_id;
  std::vector<JobStep> steps;
};

// What the worker thread tells the event loop.
struct JobEvent {
  enum class Kind { kLine, kFinished };
  Kind kind = Kind::kLine;
  std::string job_id;
  std::string line;        // kLine
  bool succeeded = false;  // kFinished: every step's playbook succeeded
  bool cancelled = false;  // kFinished: Cancel() stopped it
  std::string error;       // kFinished: the first failure, one line
};

class JobExecutor {
 public:
  using Post = std::function<void(JobEvent)>;  // must be thread-safe (Mailbox::Post)

  explicit JobExecutor(Post post) : post_(std::move(post)) {}
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

 private:
  void RunScript(const JobScript& script);
  // Runs one playbook, forwarding its lines; false when it did not succeed.
  bool RunPlaybook(const std::string& job_id, const PlaybookSpec& spec, std::string* error);

  Post post_;
  std::thread worker_;
  mutable std::mutex mu_;  // guards the fields below
  std::string running_job_;
  bool cancelled_ = false;
  PlaybookRun* current_ = nullptr;
};

}  // namespace clustermgr::mgr
