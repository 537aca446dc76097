// TagPublisher: sets this manager's own Serf tags (role, endpoints, and whatever else the daemon
// keeps in its one tag set) without blocking the event loop.
//
// SerfClient's requests block their caller until the agent answers or the request times out, so
// they run on this publisher's own thread. The event loop hands over the whole desired tag set
// with Publish(); the thread applies it with one `tags` request, deleting the tags it set before
// that are no longer in the set. A failure (agent down, refused) is retried with backoff (0.2 s
// doubling to 5 s) until it succeeds or a newer set arrives. Resend() applies the current set
// again: call it when the client reconnects, because a restarted agent comes back with only the
// tags of its command line.
//
// Threading: Publish and Resend are thread-safe and never block. The client must outlive the
// publisher; the destructor stops and joins the thread (waiting for a request in flight).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "net/serf_client.h"

namespace clustermgr::mgr {

class TagPublisher {
 public:
  explicit TagPublisher(net::SerfClient* client);
  ~TagPublisher();
  TagPublisher(const TagPublisher&) = delete;
  TagPublisher& operator=(const TagPublisher&) = delete;

  void Publish(std::map<std::string, std::string> tags);
  void Resend();

  // Requests that succeeded so far (for tests).
  uint64_t applied() const;

 private:
  void Run();

  net::SerfClient* client_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> wanted_;  // guarded by mu_
  uint64_t generation_ = 0;                    // guarded by mu_; bumped by Publish/Resend
  bool stop_ = false;                          // guarded by mu_
  uint64_t applied_ = 0;                       // guarded by mu_
  std::thread thread_;
};

}  // namespace clustermgr::mgr
