// The fault suite's private network: Linux network namespaces joined by veth pairs to a bridge
// that lives in a namespace of its own, on the subnet 10.213.0.0/24 that exists only inside
// them. Nothing touches the root namespace's interfaces.
//
//   <prefix>br    bridge br0, one port "p-<ns>" per other namespace
//   <prefix>m1..  one per manager instance (clustermgrd + its Serf agent), 10.213.0.11..
//   <prefix>mach  the Serf agents standing in for machines, 10.213.0.20
//   <prefix>cli   the suite's own clients, 10.213.0.30 (the suite process moves itself there)
//
// <prefix> is "cmf<pid>-": Create() first deletes namespaces of an earlier run whose pid is
// dead. Every command is `ip`, `nft` or `tc` run with execve (no shell).
//
// Faults act on the bridge port of a namespace (so the namespace keeps its own addresses, and a
// daemon there can still reach its agent over them):
//   * Isolate: the bridge port goes down (the namespace's eth0 loses carrier), Heal: up again;
//   * Loss: nftables netdev ingress rules drop P% of packets in both directions (or tc netem
//     when the kernel has it); Delay: a tbf rate limit in both directions (or netem delay).
//     Which mechanism is used is probed at Create() and reported by Mechanism().
//
// Lifetime: the destructor deletes every namespace it created (also after a failure); a signal
// handler is the caller's business (it should make the program unwind to this destructor).
// Thread-safety: calls are serialised by an internal mutex.
#pragma once

#include <mutex>
#include <string>
#include <vector>

namespace clustermgr::faults {

struct NetResult {
  bool ok = true;
  std::string error;  // the failing command and its output
};

class NetLab {
 public:
  // `managers` namespaces m1..mN plus br, mach and cli. Fails with the first command that did
  // not work; the caller then exits 77 (no CAP_NET_ADMIN) or 1.
  NetResult Create(int managers);
  ~NetLab();

  const std::string& prefix() const { return prefix_; }
  std::string Ns(const std::string& role) const { return prefix_ + role; }  // role "m1", "cli"
  static std::string ManagerAddr(int i) { return "10.213.0." + std::to_string(10 + i); }  // 1-based
  static std::string MachineAddr() { return "10.213.0.20"; }
  static std::string ClientAddr() { return "10.213.0.30"; }

  // Moves the calling process into the client namespace. Call before any thread exists.
  NetResult EnterClientNamespace();

  NetResult Isolate(const std::string& role);
  NetResult Heal(const std::string& role);  // undoes Isolate, Loss and Delay on that link
  NetResult Loss(const std::string& role, int percent);
  NetResult Delay(const std::string& role, int ms);
  // "nftables netdev ingress drop (numgen random)" / "tc netem" ...
  std::string LossMechanism() const { return loss_mechanism_; }
  std::string DelayMechanism() const { return delay_mechanism_; }

  // SIGKILLs every process inside namespace `role`'s network namespace except this one (e.g.
  // playbook runs a SIGKILLed daemon left behind). Returns how many.
  int KillProcessesIn(const std::string& role);
  // The same for namespace `ns` (a full name).
  static int KillProcessesInNs(const std::string& ns);

  // Deletes namespaces named cmf<pid>-* whose pid is not running, after killing the processes
  // left in them, and those runs' dirs ($TMPDIR/clustermgr-faults-<pid>-*). Returns how many
  // namespaces it deleted.
  static int RemoveStale();
  // Runs a program (`ip`, `nft`, `tc`) and reports its failure with its output.
  static NetResult Run(const std::vector<std::string>& argv, const std::string& stdin_text = "");

 private:
  NetResult ProbeMechanisms();
  NetResult ClearShaping(const std::string& role);

  std::mutex mu_;
  std::string prefix_;
  std::vector<std::string> created_;
  std::vector<std::string> links_;  // roles with a bridge port
  bool netem_ = false;
  std::string loss_mechanism_ = "none";
  std::string delay_mechanism_ = "none";
};

}  // namespace clustermgr::faults
