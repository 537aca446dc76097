// FakeManager: a test double of clustermgrd's RPC face. It runs a real RpcServer on
// tcp://127.0.0.1 with an ephemeral port in its own thread and answers from canned, in-memory
// state, so the client library and the CLI can be tested over real ZeroMQ without the daemon.
// It imitates the daemon's error texts for the few refusals tests need (unknown node, active
// job, bad label, empty host-group); it does NOT implement the lifecycle rules.
//
// Test knobs: silence (receive, never answer), holding replies (answer later, in order, on
// ReleaseHeld), long-polls parked until log lines arrive, the job ends or the wait passes, and
// a record of every request received.
//
// Thread-safety: every public method may be called from any thread (one mutex guards the
// state); the server socket is used only by the fake's own thread. Part of net_testing, for
// tests, benchmarks and fuzz targets only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/rpc_server.h"
#include "net/rpc_types.h"

namespace clustermgr::net {

// A tcp://127.0.0.1:PORT endpoint where nobody listens, for "server unreachable" tests. The port
// stays bound (without listen, so connections are refused) for the object's lifetime, so that
// no other test running in parallel can pick it up.
class DeadEndpoint {
 public:
  DeadEndpoint();
  ~DeadEndpoint();
  DeadEndpoint(const DeadEndpoint&) = delete;
  DeadEndpoint& operator=(const DeadEndpoint&) = delete;

  // Empty if no port could be reserved.
  const std::string& endpoint() const { return endpoint_; }

 private:
  int fd_ = -1;
  std::string endpoint_;
};

class FakeManager {
 public:
  explicit FakeManager(std::string instance = "fake-1", RpcServer::Options options = {});
  ~FakeManager();
  FakeManager(const FakeManager&) = delete;
  FakeManager& operator=(const FakeManager&) = delete;

  // "tcp://127.0.0.1:PORT".
  const std::string& endpoint() const { return endpoint_; }
  const std::string& instance() const { return instance_; }

  // ---- canned state ---------------------------------------------------------------------------

  void AddNode(NodeInfo node);
  // Jobs are kept in insertion order; the last added is "last"; a Queued/Running one is "active".
  void AddJob(JobInfo job, std::vector<std::string> log = {});
  void AppendLog(const std::string& job_id, const std::string& line);
  void EndJob(const std::string& job_id, JobStatus status, std::string error = "");
  void SetGlobals(std::string json);
  void SetConfig(std::string json);
  void SetMembers(std::vector<MemberInfo> members);
  void SetToken(TokenInfo token);
  void SetStatus(StatusInfo status);
  // Every request is answered with this instead (nullopt = normal behaviour).
  void SetForcedReply(std::optional<RpcReply> reply);

  // ---- behaviour knobs ------------------------------------------------------------------------

  // Receive and record requests but never answer them.
  void SetSilent(bool silent);
  // While holding, answers are computed but kept; ReleaseHeld sends them in order and returns
  // once they are on the socket.
  void SetHoldReplies(bool hold);
  void ReleaseHeld();

  // ---- observation ----------------------------------------------------------------------------

  std::vector<IncomingRequest> Received() const;
  // Waits until at least n requests have been received; false at the deadline.
  bool WaitForRequests(std::size_t n, std::chrono::milliseconds timeout) const;
  // Waits until n long-polls are parked (so a test appends lines only once the CLI waits).
  bool WaitForParked(std::size_t n, std::chrono::milliseconds timeout) const;
  RpcServerCounters counters() const;

 private:
  struct Job {
    JobInfo info;
    std::vector<std::string> log;
  };
  struct Parked {
    ReplyTo to;
    JobLogFollowRequest request;
    std::chrono::steady_clock::time_point deadline;
  };
  using Held = std::deque<std::pair<ReplyTo, RpcReply>>;

  void Run(RpcServer::Options options);
  void Send(RpcServer& s, Held& held, const ReplyTo& to, RpcReply reply);
  // The rest are called with mu_ held.
  RpcReply FollowAnswer(const JobLogFollowRequest& r);
  const Job* ActiveJob() const;
  // Refusals shared by commission, decommission and update (texts from clusterm).
  std::optional<RpcReply> CheckNodes(const std::vector<std::string>& names) const;
  RpcReply StartJob(std::string desc, std::vector<std::string> nodes);
  RpcReply Answer(const RpcRequest& request);
  RpcReply AnswerJobGet(const JobGetRequest& r);
  RpcReply AnswerJobCancel(const JobCancelRequest& r);

  const std::string instance_;
  std::string endpoint_;
  std::promise<std::string> bound_;  // the bound endpoint, handed from the loop to the ctor
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  // Guarded by mu_:
  std::map<std::string, NodeInfo> nodes_;
  std::map<std::string, Job> jobs_;
  std::vector<std::string> job_order_;
  std::uint64_t next_job_ = 100;
  std::string globals_ = "{}";
  std::string config_ = "{}";
  std::vector<MemberInfo> members_;
  TokenInfo token_;
  StatusInfo status_;
  std::optional<RpcReply> forced_;
  bool silent_ = false;
  bool hold_ = false;
  std::uint64_t release_requested_ = 0;
  std::uint64_t release_done_ = 0;
  bool loop_ended_ = false;
  std::size_t parked_count_ = 0;
  std::vector<IncomingRequest> received_;
  RpcServerCounters counters_;
};

}  // namespace clustermgr::net
