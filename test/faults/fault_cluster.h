// The processes of one fault schedule, each started inside its NetLab namespace with
// `ip netns exec` (execve, no shell): per manager instance a Serf agent (tag role=clustermgr)
// and a clustermgrd beside it; in the machines namespace one Serf agent per machine (tags
// NodeLabel=fs, NodeSerial=<k>, NodeAddr=10.213.1.<k>, joined to every manager's agent).
//
// Addresses: manager i binds Serf gossip <ManagerAddr(i)>:7946, Serf RPC :7373, clustermgrd RPC
// tcp://<addr>:9007 and gossip tcp://<addr>:9008 (+9009); machine k gossips on
// 10.213.0.20:<8000+k> and serves RPC on <8100+k>. Fixed ports are safe: each namespace is
// private to this run.
//
// Daemons run with --insecure --expect=N --token-settle-ms=1500 (lease 562 ms, kill grace 750 ms)
// --anti-entropy-ms=300 --delta-log-limit=40 (so that restores need snapshots), the test
// playbooks and extra-vars {"ansible_connection": "local", "marker_dir": <dir>/markers, "busy":
// 1} (each run records "<epoch> <job> <ms>" in <markers>/<node>.busy while it works); their HOME
// is a per-instance dir (ansible writes nothing to the real one).
//
// Each instance's data dir is a tmpfs of its own (FillDisk fills it), and each clustermgrd runs
// under libfaketime (LD_PRELOAD) reading its wall-clock offset from <dir>/faketime
// (SetClockOffset; the monotonic clock is left alone), so a schedule can skew one instance.
//
// Lifetime: the destructor kills every process (SIGKILL to each process group) and removes the
// run dir unless `keep`. Thread-safety: one control thread drives it; the URLs are immutable
// and may be read from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "test/faults/netlab.h"
#include "test/support/process.h"

namespace clustermgr::faults {

class NsAgent {
 public:
  NsAgent(std::string ns, std::string name, std::string addr, int bind_port, int rpc_port,
          std::vector<std::pair<std::string, std::string>> tags, std::string log_path);
  ~NsAgent();
  const std::string& name() const { return name_; }
  std::string gossip_address() const { return addr_ + ":" + std::to_string(bind_port_); }
  std::string rpc_address() const { return addr_ + ":" + std::to_string(rpc_port_); }
  // Starts the agent joined to `join` and waits until its RPC answers. False with *error.
  bool Start(const std::vector<std::string>& join, std::string* error,
             std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void Kill();
  bool Running() { return process_ && process_->Running(); }
  // RPC `join` on this agent. False when the agent did not answer or reached nobody.
  bool Join(const std::vector<std::string>& addresses);

 private:
  std::string ns_, name_, addr_;
  int bind_port_, rpc_port_;
  std::vector<std::pair<std::string, std::string>> tags_;
  std::string log_path_;
  std::unique_ptr<test::Process> process_;
};

class NsInstance {
 public:
  NsInstance(int index, std::string ns, std::string dir, std::vector<std::string> base_args);
  ~NsInstance();
  int index() const { return index_; }  // 1-based
  const std::string& name() const { return name_; }
  const std::string& rpc_url() const { return rpc_url_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string log_path() const { return dir_ + "/clustermgrd.log"; }
  NsAgent& agent() { return *agent_; }

  // Starts clustermgrd (plus `extra` for this start only) and waits until it answers `status`.
  bool Start(std::string* error, const std::vector<std::string>& extra = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void Kill();  // SIGKILL, reaped
  bool Running() { return process_ && process_->Running(); }
  // How the last run ended ("exited with 0", "killed by SIGKILL") or "is running".
  std::string ExitText();
  void Wipe();  // empties the data dir (the daemon must not run)
  std::string LogTail(std::size_t bytes = 3000) const;
  pid_t pid() const { return process_ ? process_->pid() : 0; }
  // libfaketime's spec for this instance's wall clock: "+0", "+3s", "-2s", "+0 x1.02" (drift).
  // Taken up within about a second.
  void SetClockOffset(const std::string& spec);
  // Mounts the data dir's tmpfs (size in MiB); false with *error. The destructor unmounts it.
  bool MountDataDir(int mib, std::string* error);
  // Fills the data dir's file system with a filler file (ENOSPC for the daemon); FreeDisk
  // removes it.
  void FillDisk();
  void FreeDisk();

 private:
  int index_;
  std::string ns_, name_, dir_, data_dir_, home_dir_, rpc_url_;
  std::vector<std::string> base_args_;
  bool mounted_ = false;
  std::unique_ptr<NsAgent> agent_;
  std::unique_ptr<test::Process> process_;
};

class FaultCluster {
 public:
  // Starts `managers` instances and `machines` machine agents in `lab`'s namespaces, under a
  // fresh run dir. Null with *error when something would not start.
  static std::unique_ptr<FaultCluster> Start(NetLab& lab, int managers, int machines, bool keep,
                                             std::string* error);
  ~FaultCluster();

  const std::string& dir() const { return dir_; }
  const std::string& marker_dir() const { return marker_dir_; }
  std::size_t size() const { return instances_.size(); }
  NsInstance& at(std::size_t i) { return *instances_[i]; }
  std::vector<std::string> MachineNames() const;
  // Gossip addresses of every manager agent except instance i (0-based), for a rejoin.
  std::vector<std::string> OtherAgents(std::size_t i) const;
  // Starts a Serf agent in the machines' namespace that claims to be a manager: tags role=
  // clustermgr, instance=`instance`, epoch=`epoch`, joined to every manager's agent. False with
  // *error. StopRogue kills it.
  bool StartRogue(const std::string& instance, const std::string& epoch, std::string* error);
  void StopRogue();

 private:
  std::string dir_, marker_dir_;
  bool keep_ = false;
  std::vector<std::unique_ptr<NsInstance>> instances_;
  std::vector<std::unique_ptr<NsAgent>> machines_;
  std::unique_ptr<NsAgent> rogue_;
  std::string machines_ns_;
  int rogues_ = 0;
  std::vector<std::string> machine_names_;
};

}  // namespace clustermgr::faults
