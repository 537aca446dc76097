// EtcdCluster: an etcd cluster of real `etcd` processes (Debian's etcd-server) on loopback, for
// the etcd comparison benchmark: members "e1".."en", each with its own client and peer port and
// data dir inside one temp dir, logs beside them. Members can be stopped, started again on the
// same ports and data dir, and replaced by a wiped new member (remove, wipe, add, start).
//
// Durability: etcd's defaults, so every acknowledged write was fsynced to the WAL of a quorum
// (no --unsafe-no-fsync).
// Thread-safety: one thread drives a cluster (EtcdClients for other threads are made from
// client_url()). Lifetime: the destructor kills every member and removes the temp dir.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "test/support/process.h"

namespace clustermgr::bench {

class EtcdCluster {
 public:
  // Starts n members with `program` (a path or a name in $PATH) and waits up to 30 s until
  // each says it is healthy. Null with *error (the reason and a log tail) when it fails.
  static std::unique_ptr<EtcdCluster> Start(int n, const std::string& program, std::string* error);
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  size_t size() const { return members_.size(); }
  const std::string& client_url(size_t i) const { return members_[i].client_url; }
  pid_t pid(size_t i) const;

  // SIGTERM (then SIGKILL after 5 s) to member i; reaped.
  void Stop(size_t i);
  // Starts member i again (same ports and data dir) without waiting for anything; false with
  // *error when the process cannot be started. `existing`: it joins as a newly added member.
  bool Launch(size_t i, bool existing, std::string* error);
  // Takes member i out of the cluster (through another member), stops it, deletes its data dir
  // and adds it back as a new member with the same name and ports, not started (Launch it with
  // existing=true). False with *error when a membership call fails.
  bool Replace(size_t i, std::string* error);

  // The tail of member i's log.
  std::string LogTail(size_t i) const;

 private:
  struct Member {
    std::string name, client_url, peer_url, data_dir, log_path;
    std::unique_ptr<test::Process> process;
  };
  EtcdCluster() = default;

  std::string program_;
  std::string dir_;
  std::string token_;
  std::string initial_cluster_;
  std::vector<Member> members_;
};

}  // namespace clustermgr::bench
