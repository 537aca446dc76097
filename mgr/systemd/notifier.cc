#include "mgr/systemd/notifier.h"

#include <systemd/sd-daemon.h>

namespace clustermgr::mgr {

SystemdNotifier::SystemdNotifier() {
  uint64_t usec = 0;
  // unset_environment 0: the variables stay for nothing else to read; children get scrubbed
  // environments of their own (the playbook runner).
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_ms_ = usec / 1000;
}

void SystemdNotifier::Ready(const std::string& status) {
  sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
}

void SystemdNotifier::Tick(uint64_t now_ms) {
  if (watchdog_ms_ == 0 || now_ms - last_feed_ms_ < watchdog_ms_ / 2) return;
  sd_notify(0, "WATCHDOG=1");
  last_feed_ms_ = now_ms;
}

void SystemdNotifier::Stopping() { sd_notify(0, "STOPPING=1"); }

}  // namespace clustermgr::mgr
