// SystemdNotifier: tells systemd (a Type=notify unit) that clustermgrd is ready, feeds the
// service watchdog, and says when it stops, through libsystemd's sd_notify. Outside systemd
// ($NOTIFY_SOCKET unset) every call does nothing.
//
// The watchdog interval comes from $WATCHDOG_USEC (WatchdogSec= in the unit); Tick sends
// "WATCHDOG=1" every half interval. Call Tick from the thread whose liveness it vouches for
// (the daemon's event loop). Not thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace clustermgr::mgr {

class SystemdNotifier {
 public:
  SystemdNotifier();

  // "READY=1" with a STATUS= line.
  void Ready(const std::string& status);
  // Feeds the watchdog when half its interval has passed since the last feed.
  void Tick(uint64_t now_ms);
  void Stopping();

  // The watchdog interval systemd asked for, 0 when none.
  uint64_t watchdog_interval_ms() const { return watchdog_ms_; }

 private:
  uint64_t watchdog_ms_ = 0;
  uint64_t last_feed_ms_ = 0;
};

}  // namespace clustermgr::mgr
