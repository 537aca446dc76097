// The node monitor: subscribes to Serf membership through a SerfClient and delivers node and
// manager events (SerfNodeEvent, mapping in net/serf_membership.h) to the state owner.
//
// Threading: the monitor owns a SerfClient (with its reader thread) and one thread of its own.
// The client's stream handler only queues the record; the monitor thread applies it to its
// SerfMembership and calls the sink once per resulting event, in order. The sink therefore
// runs on the monitor thread, never concurrently with itself; it must not throw and should
// only hand the event on (the daemon forwards it over an inproc socket to its event loop;
// tests push it into a SerfEventQueue). The queue between the two threads is unbounded: Serf
// produces membership records at gossip speed, far below what the monitor consumes.
//
// On start, and again after every reconnect, the client delivers the full member list: alive
// members become Discovered at start, and after a reconnect the diff against what the monitor
// knew yields exactly the events that were missed.
//
// The agent holds member events back until membership has been quiet for a second (its
// coalescing: up to 3 s while machines keep joining), so a monitor with a poll interval also
// reads the member list itself every interval (between stream records) and applies it the same
// way (a diff): a fleet joining at once is seen as the agent sees it, not seconds later.
// The interval grows with the fleet (at least 50 us per member), so that a large member list is
// not decoded more often than that costs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "net/serf_client.h"
#include "net/serf_membership.h"
#include "base/status.h"

namespace clustermgr::net {

class SerfMonitor {
 public:
  using Sink = std::function<void(const SerfNodeEvent&)>;

  // Starts the monitor thread and a client for `client_options` (which connects in the
  // background and keeps reconnecting; see SerfClient). Never fails: an unreachable agent is
  // reported by WaitConnected / client().ConnectionStatus() and client_options.on_connection.
  // `expected_nodes`: see SerfMembership::ExpectNodes. `poll_interval` zero: no polling (the
  // stream alone).
  SerfMonitor(SerfClientOptions client_options, Sink sink,
              std::set<std::string> expected_nodes = {},
              std::chrono::milliseconds poll_interval = std::chrono::milliseconds(0));
  // Stops the monitor thread (after a poll it is waiting for), then the client; events not yet
  // delivered are dropped. Must not be called from the sink.
  ~SerfMonitor();
  SerfMonitor(const SerfMonitor&) = delete;
  SerfMonitor& operator=(const SerfMonitor&) = delete;

  // See SerfClient::WaitConnected.
  Status WaitConnected(std::chrono::milliseconds timeout) {
    return client_->WaitConnected(timeout);
  }
  // The monitor's client, for other requests on the same connection (e.g. setting this
  // manager's own tags). Thread-safe, see SerfClient.
  SerfClient& client() { return *client_; }

 private:
  void Run();

  const Sink sink_;
  const std::chrono::milliseconds poll_interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SerfMemberEvent> queue_;  // guarded by mu_
  bool stop_ = false;                  // guarded by mu_
  SerfMembership membership_;          // monitor thread only
  std::thread thread_;
  std::unique_ptr<SerfClient> client_;
};

}  // namespace clustermgr::net
