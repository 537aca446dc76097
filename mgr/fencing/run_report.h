// What one ansible-playbook run did to each host, read from its output.
//
// The runner feeds every output line; the report keeps, per host, the PLAY RECAP counters and
// whether the fencing role refused the host ("fenced: host has seen epoch N, this run carries
// M", see mgr/fencing/playbook_check.h). It understands Ansible's default output and the `yaml`
// callback's (the message may follow the `fatal: [host]: FAILED! =>` line on its own line).
//
// A fenced host is not a failure of the job: a newer token holder has touched it, so this run
// must leave it alone, and the node's status is the newer holder's to set.
//
// Thread-safety: none; one report per run, fed by the thread that reads the run's output.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

namespace clustermgr::mgr::fencing {

struct HostRecap {
  int ok = 0, changed = 0, unreachable = 0, failed = 0, skipped = 0;
  // Sums the counters of another run.
  HostRecap& operator+=(const HostRecap& o) {
    ok += o.ok;
    changed += o.changed;
    unreachable += o.unreachable;
    failed += o.failed;
    skipped += o.skipped;
    return *this;
  }
  bool operator==(const HostRecap&) const = default;
};

class RunReport {
 public:
  void Feed(std::string_view line);

  // Host -> "fenced: host has seen epoch N, this run carries M".
  const std::map<std::string, std::string>& fenced() const { return fenced_; }
  const std::map<std::string, HostRecap>& recap() const { return recap_; }
  // Hosts the recap shows failed or unreachable, fenced ones excluded.
  std::set<std::string> FailedHosts() const;
  // True when the run failed only because hosts were fenced: at least one host was fenced, the
  // recap was read, and every failed or unreachable host in it was fenced.
  bool OnlyFenced() const;

 private:
  std::map<std::string, std::string> fenced_;
  std::map<std::string, HostRecap> recap_;
  std::string last_fatal_host_;  // the host of the last "fatal: [h]: FAILED!" line
  int lines_since_fatal_ = 0;
  bool in_recap_ = false;
};

// Finds "fenced: host has seen epoch N, this run carries M" in `text`; empty when absent.
std::string FindFenceMessage(std::string_view text);

}  // namespace clustermgr::mgr::fencing
