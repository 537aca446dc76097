// TagPublisher: keeps this instance's Serf tags (role, instance, endpoints, token epoch) set on
// its local Serf agent.
//
// Setting tags is a blocking RPC to the agent, and the agent forgets RPC-set tags when it
// restarts, so a thread of its own applies the desired set whenever it changes and again after
// every reconnect. The event loop only calls Set()/Resync(), which never block.
//
// Thread-safety: Set, Resync and Desired may be called from any thread.
#pragma once

#include <condition_variable>
#include <map>
#include <string>
#include <thread>

#include "base/mutex.h"
#include "net/serf_client.h"

namespace clustermgr::mgr {

class TagPublisher {
 public:
  // `client` must outlive the publisher.
  explicit TagPublisher(net::SerfClient* client);
  ~TagPublisher();
  TagPublisher(const TagPublisher&) = delete;
  TagPublisher& operator=(const TagPublisher&) = delete;

  // Sets one tag of the desired set; applied soon. Setting the value it already has is free.
  void Set(const std::string& key, const std::string& value);
  // Re-applies the whole set (after the agent restarted or the connection came back).
  void Resync();
  std::map<std::string, std::string> Desired() const;

 private:
  void Run();

  net::SerfClient* client_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> desired_ GUARDED_BY(mu_);
  bool dirty_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace clustermgr::mgr
