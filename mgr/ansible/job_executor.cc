#include "mgr/ansible/job_executor.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "mgr/fencing/run_report.h"

namespace clustermgr::mgr {

JobExecutor::~JobExecutor() {
  {
    MutexLock lock(mu_);
    cancelled_ = true;
    if (current_) current_->Cancel();
  }
  if (worker_.joinable()) worker_.join();
}

void JobExecutor::Start(JobScript script) {
  if (worker_.joinable()) worker_.join();  // the previous job has finished: reap its thread
  {
    MutexLock lock(mu_);
    running_job_ = script.job_id;
    cancelled_ = false;
  }
  worker_ = std::thread([this, script = std::move(script)] { RunScript(script); });
}

bool JobExecutor::Cancel(const std::string& job_id) {
  MutexLock lock(mu_);
  if (running_job_.empty() || running_job_ != job_id) return false;
  cancelled_ = true;
  if (current_) current_->Cancel();
  return true;
}

void JobExecutor::RenewLease() {
  MutexLock lock(mu_);
  lease_until_ = std::chrono::steady_clock::now() + lease_;
  if (current_) current_->RenewLease();
}

void JobExecutor::EndLease() {
  MutexLock lock(mu_);
  lease_until_ = {};
}

bool JobExecutor::Busy() const {
  MutexLock lock(mu_);
  return !running_job_.empty();
}

// What the job did to each host so far.
struct JobExecutor::HostTally {
  std::vector<std::string> hosts;                   // in inventory order
  std::map<std::string, std::string> fenced;        // host -> fence message
  std::set<std::string> failed;                     // failed or unreachable, fenced ones excluded
  std::map<std::string, fencing::HostRecap> recap;  // summed over the runs
  std::set<std::string> known;                      // = hosts, for lookups
  void AddHosts(const PlaybookSpec& spec) {
    for (const InventoryHost& h : spec.hosts) {
      if (known.insert(h.name).second) hosts.push_back(h.name);
    }
  }
  std::string Summary() const {
    std::string out = "clustermgr: hosts:";
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      const std::string& h = hosts[i];
      out += (i == 0 ? " " : ", ") + h;
      if (auto it = fenced.find(h); it != fenced.end()) {
        out += " fenced (" + it->second.substr(std::string_view("fenced: ").size()) + ")";
      } else if (failed.count(h)) {
        out += " failed";
      } else {
        out += " ok";
      }
    }
    return out;
  }
};

JobExecutor::RunOutcome JobExecutor::RunPlaybook(const std::string& job_id, PlaybookSpec spec,
                                                 HostTally* tally, std::string* error) {
  auto line = [&](std::string text) {
    post_(JobEvent{JobEvent::Kind::kLine, job_id, std::move(text), false, false, "", {}, {}, -1});
  };
  tally->AddHosts(spec);
  // A fenced host is left alone for the rest of the job.
  if (!tally->fenced.empty() && !spec.hosts.empty()) {
    std::erase_if(spec.hosts,
                  [&](const InventoryHost& h) { return tally->fenced.count(h.name) > 0; });
    std::erase_if(spec.host_vars,
                  [&](const auto& kv) { return tally->fenced.count(kv.first) > 0; });
    if (spec.hosts.empty()) {
      line("clustermgr: not running playbook " + spec.playbook + ": every host is fenced");
      return RunOutcome::kFenced;
    }
  }
  spec.lease = lease_;
  PlaybookRun run(spec);
  bool lapsed = false;
  {
    MutexLock lock(mu_);
    if (cancelled_) return RunOutcome::kFailed;
    // The token was lost, or the loop has not vouched for it for a lease period: nothing of
    // this job may start any more, recovery playbooks included.
    lapsed = lease_.count() > 0 && std::chrono::steady_clock::now() >= lease_until_;
    if (lapsed) {
      cancelled_ = true;
    } else {
      current_ = &run;
    }
  }
  if (lapsed) {
    const std::string why = "not running playbook " + spec.playbook +
                            ": this instance's side-effect token lease lapsed";
    line("clustermgr: " + why);
    if (error->empty()) *error = why;
    return RunOutcome::kFailed;
  }
  line("clustermgr: running playbook " + spec.playbook);
  fencing::RunReport report;
  PlaybookResult result = run.Run([&](std::string_view text) {
    report.Feed(text);
    line(std::string(text));
  });
  {
    MutexLock lock(mu_);
    current_ = nullptr;
    if (result.lease_lapsed) cancelled_ = true;  // no recovery, no further step
  }
  if (result.lease_lapsed) line("clustermgr: " + spec.playbook + ": " + result.error);
  for (const auto& [host, counts] : report.recap()) tally->recap[host] += counts;
  for (const auto& [host, message] : report.fenced()) {
    if (tally->fenced.emplace(host, message).second) {
      line("clustermgr: " + host + " is fenced (" + message +
           "): a newer token holder has touched it; this job leaves it alone");
    }
  }
  if (result.ok()) return RunOutcome::kSucceeded;
  // ansible-playbook exits 2 when hosts failed; if they all failed the fencing check, the run
  // did what it could everywhere else.
  if (!result.cancelled && result.exit_code == 2 && report.OnlyFenced()) {
    return RunOutcome::kFenced;
  }
  for (const std::string& host : report.FailedHosts()) tally->failed.insert(host);
  if (error->empty()) *error = spec.playbook + ": " + result.error;
  return RunOutcome::kFailed;
}

void JobExecutor::RunScript(const JobScript& script) {
  std::string error;
  bool succeeded = true;
  HostTally tally;
  int batch = -1;  // the rolling batch of the previous step
  const int batches = script.steps.empty() ? 0 : script.steps.back().batch + 1;
  for (const JobStep& step : script.steps) {
    if (step.batch != batch && step.batch >= 0) {
      if (batch >= 0) {
        JobEvent done{
            JobEvent::Kind::kBatchDone, script.job_id, "", true, false, "", {}, {}, batch};
        post_(std::move(done));
      }
      batch = step.batch;
      post_(JobEvent{JobEvent::Kind::kLine,
                     script.job_id,
                     "clustermgr: batch " + std::to_string(batch + 1) + " of " +
                         std::to_string(batches) + ": " +
                         std::to_string(step.playbook.hosts.size()) + " host(s)",
                     false,
                     false,
                     "",
                     {},
                     {},
                     -1});
    }
    if (RunPlaybook(script.job_id, step.playbook, &tally, &error) != RunOutcome::kFailed) {
      continue;
    }
    succeeded = false;
    bool cancelled;
    {
      MutexLock lock(mu_);
      cancelled = cancelled_;
    }
    if (!cancelled) {
      std::string recovery_error;  // the first failure is what the job reports
      for (const PlaybookSpec& recovery : step.on_failure) {
        (void)RunPlaybook(script.job_id, recovery, &tally, &recovery_error);
      }
    }
    break;
  }
  if (!tally.fenced.empty()) {
    post_(JobEvent{
        JobEvent::Kind::kLine, script.job_id, tally.Summary(), false, false, "", {}, {}, -1});
    if (error.empty()) {
      const auto& [host, message] = *tally.fenced.begin();
      error = host + " " + message;
      if (tally.fenced.size() > 1) {
        error += " (and " + std::to_string(tally.fenced.size() - 1) + " more host(s) fenced)";
      }
    }
  }
  JobEvent done{JobEvent::Kind::kFinished,
                script.job_id,
                "",
                succeeded,
                false,
                error,
                tally.fenced,
                std::move(tally.recap),
                -1};
  {
    MutexLock lock(mu_);
    // A cancel that came after the last playbook succeeded is too late: nothing was stopped,
    // so the job is reported as it ran (its nodes keep the status the playbooks earned).
    done.cancelled = cancelled_ && !succeeded;
    running_job_.clear();
  }
  post_(std::move(done));
}

}  // namespace clustermgr::mgr
