#include "mgr/job_executor.h"

namespace clustermgr::mgr {

JobExecutor::~JobExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (current_) current_->Cancel();
  }
  if (worker_.joinable()) worker_.join();
}

void JobExecutor::Start(JobScript script) {
  if (worker_.joinable()) worker_.join();  // the previous job has finished: reap its thread
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_job_ = script.job_id;
    cancelled_ = false;
  }
  worker_ = std::thread([this, script = std::move(script)] { RunScript(script); });
}

bool JobExecutor::Cancel(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_job_.empty() || running_job_ != job_id) return false;
  cancelled_ = true;
  if (current_) current_->Cancel();
  return true;
}

bool JobExecutor::Busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !running_job_.empty();
}

bool JobExecutor::RunPlaybook(const std::string& job_id, const PlaybookSpec& spec,
                              std::string* error) {
  PlaybookRun run(spec);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return false;
    current_ = &run;
  }
  post_(JobEvent{JobEvent::Kind::kLine, job_id, "clustermgr: running playbook " + spec.playbook,
                 false, false, ""});
  PlaybookResult result = run.Run([&](std::string_view line) {
    post_(JobEvent{JobEvent::Kind::kLine, job_id, std::string(line), false, false, ""});
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = nullptr;
  }
  if (!result.ok() && error->empty()) *error = spec.playbook + ": " + result.error;
  return result.ok();
}

void JobExecutor::RunScript(const JobScript& script) {
  std::string error;
  bool succeeded = true;
  for (const JobStep& step : script.steps) {
    if (RunPlaybook(script.job_id, step.playbook, &error)) continue;
    succeeded = false;
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = cancelled_;
    }
    if (!cancelled) {
      std::string recovery_error;  // the first failure is what the job reports
      for (const PlaybookSpec& recovery : step.on_failure) {
        RunPlaybook(script.job_id, recovery, &recovery_error);
      }
    }
    break;
  }
  JobEvent done{JobEvent::Kind::kFinished, script.job_id, "", succeeded, false, error};
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A cancel that came after the last playbook succeeded is too late: nothing was stopped,
    // so the job is reported as it ran (its nodes keep the status the playbooks earned).
    done.cancelled = cancelled_ && !succeeded;
    running_job_.clear();
  }
  post_(std::move(done));
}

}  // namespace clustermgr::mgr
