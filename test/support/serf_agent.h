// A real `serf agent -profile=local` for integration tests, on free loopback ports, with tags,
// an optional RPC auth key and join addresses. Start waits until the agent answers RPC (and,
// with join addresses, has joined); the agent can then be killed (SIGKILL: the others see it
// fail), asked to leave (RPC `leave` or SIGINT: the others see it leave), restarted on the
// same name and ports, and have its tags changed over RPC.
//
// Serf 0.8 has no -rpc-auth flag: the key goes into a JSON config file ({"rpc_auth": ...})
// passed with -config-file.
//
// Each agent keeps one control SerfClient (net/serf_client.h) while it runs, used for tags,
// leave, members and to follow the agent's own view of membership (WaitForAliveMembers).
//
// Thread-safety: one thread drives a SerfAgent; WaitForAliveMembers may be called from any.
// Files: the agent's log (stdout+stderr, appended across restarts) and config live in a
// fresh temp dir that the destructor removes, unless CLUSTERMGR_KEEP_TEST_DIRS is set.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "net/serf_client.h"
#include "test/support/process.h"

namespace clustermgr::test {

struct SerfAgentOptions {
  std::string name{};  // -node; default "agent-<gossip port>"
  std::map<std::string, std::string> tags{};
  std::string rpc_auth{};           // the agent's RPC auth key; empty: none
  std::vector<std::string> join{};  // gossip addresses ("127.0.0.1:port") to -join at start
  std::string serf_binary = "serf";
  std::string log_level = "info";
  std::chrono::milliseconds start_timeout{15000};
};

class SerfAgent {
 public:
  // Starts the agent and waits until it is ready (see above). On failure returns null and sets
  // *error (with the tail of the agent's log). Retries with new ports if a port was taken.
  static std::unique_ptr<SerfAgent> Start(SerfAgentOptions options, std::string* error);
  // SIGKILLs the agent if it still runs and removes its directory.
  ~SerfAgent();
  SerfAgent(const SerfAgent&) = delete;
  SerfAgent& operator=(const SerfAgent&) = delete;

  const std::string& name() const { return options_.name; }
  std::string rpc_address() const { return "127.0.0.1:" + std::to_string(rpc_port_); }
  // The gossip address: what other agents -join.
  std::string bind_address() const { return "127.0.0.1:" + std::to_string(bind_port_); }
  const std::map<std::string, std::string>& tags() const { return options_.tags; }
  const std::string& auth_key() const { return options_.rpc_auth; }
  // Options for a SerfClient of this agent (address and auth key; short reconnect backoff).
  net::SerfClientOptions ClientOptions() const;

  bool Running() { return process_ && process_->Running(); }
  std::string log_path() const { return dir_ + "/agent.log"; }
  std::string Log() const;  // the whole log
  std::string LogTail(std::size_t bytes = 2000) const;

  // SIGKILL and reap: no leave, the other members detect a failure.
  void Kill();
  // SIGTERM: Serf exits without leaving (a failure for the others, after a clean shutdown).
  void Terminate();
  // Graceful leave through RPC `leave`; waits for the process to exit.
  Status Leave(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Graceful leave through SIGINT; waits for the process to exit. False on timeout.
  bool Interrupt(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Starts the agent again with the same name, ports and current tags (kills it first if it
  // runs), joining `join` (default: the join addresses it was started with). Same errors as
  // Start.
  bool Restart(std::string* error, std::optional<std::vector<std::string>> join = std::nullopt);

  // RPC `tags` on this agent; the new tags are also used by Restart.
  Status SetTags(const std::map<std::string, std::string>& set,
                          const std::vector<std::string>& remove = {});
  // RPC `join` on this agent: joins the given gossip addresses; returns how many it reached.
  Result<int32_t> Join(const std::vector<std::string>& addresses);
  // RPC `members` on this agent.
  Result<std::vector<net::SerfMember>> Members();
  // Waits until this agent sees at least `count` members alive (its own view, event-driven).
  bool WaitForAliveMembers(std::size_t count, std::chrono::milliseconds timeout);
  // Waits until this agent sees member `name` with status `status` ("alive", "failed",
  // "left", ...).
  bool WaitForMemberStatus(const std::string& name, const std::string& status,
                           std::chrono::milliseconds timeout);

 private:
  SerfAgent(SerfAgentOptions options, std::string dir, bool keep_dir);
  bool Launch(const std::vector<std::string>& join, std::string* error);
  void OnMemberEvent(const net::SerfMemberEvent& event);

  SerfAgentOptions options_;
  const std::string dir_;
  const bool keep_dir_;
  int bind_port_ = 0;
  int rpc_port_ = 0;
  std::unique_ptr<Process> process_;
  std::unique_ptr<net::SerfClient> client_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> statuses_;  // member -> status, as this agent sees it
};

}  // namespace clustermgr::test
