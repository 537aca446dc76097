// FakeSerfAgent: an in-process stand-in for a Serf agent's RPC endpoint, for tests of the
// client and of code built on it (the monitor, the daemon) without `serf` processes. It speaks
// the server side of the protocol (cmd/serf/command/agent/ipc.go): handshake, auth, members,
// members-filtered, tags, join, leave, stream, stop; and it can be told to misbehave (raw reply
// bytes, dropped connections) to test the client's handling of hostile input.
//
// It also stands in for a whole fleet: it serves tens of thousands of members, a storm of
// member events (ApplyMemberEvent) and several agents' RPC endpoints at once (AddEndpoint), so
// that several managers, each with "its own agent", share one simulated membership.
//
// Differences from the real agent: members-filtered matches tags, status and name exactly
// (the agent uses anchored regular expressions); `tags` changes the member named by the
// endpoint the connection came in on (Options::self_name, or the first member, for the first
// endpoint) and emits a member-update to open streams of every endpoint; `leave` closes only the
// requesting connection; the body of a request refused for missing auth is read and dropped
// (the agent would misread it as the next header).
//
// Threading: one server thread owns the listening socket and every connection. All public
// methods are thread-safe; those that change what clients see run on the server thread and
// return once it has done so.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/event_fd.h"
#include "base/status.h"
#include "net/serf_types.h"

namespace clustermgr::net {

class FakeSerfAgent {
 public:
  struct Options {
    std::string auth_key{};   // when set, commands other than handshake/auth need `auth`
    std::string self_name{};  // the member whose tags `tags` changes (default: the first member)
  };
  // Produces the raw bytes sent instead of the normal reply, given the request's seq.
  using RawReply = std::function<std::string(uint64_t seq)>;

  // Listens on 127.0.0.1:<ephemeral>. Errors: kUnavailable if it cannot listen.
  static Result<std::unique_ptr<FakeSerfAgent>> Start(Options options);
  static Result<std::unique_ptr<FakeSerfAgent>> Start() { return Start(Options{}); }
  ~FakeSerfAgent();
  FakeSerfAgent(const FakeSerfAgent&) = delete;
  FakeSerfAgent& operator=(const FakeSerfAgent&) = delete;

  std::string address() const;  // "127.0.0.1:port" of the first endpoint

  // Another RPC endpoint on 127.0.0.1:<ephemeral>, as if it were the agent of member
  // `self_name`: `tags` requests that arrive on it change that member. It shares the member
  // list and the event streams with every other endpoint. Returns its "127.0.0.1:port".
  // Errors: kUnavailable if it cannot listen.
  Result<std::string> AddEndpoint(const std::string& self_name);

  // The member list `members` returns. Does not emit events (use EmitMemberEvent).
  void SetMembers(std::vector<SerfMember> members);
  std::vector<SerfMember> members() const;
  std::size_t member_count() const;
  // Sends a record to every open stream of every connection.
  void EmitMemberEvent(const SerfMemberEvent& event);
  // What the agent does when its cluster changes: applies the event to the member list (join
  // and update add or replace each member by name, leave and failed set its status to "left" /
  // "failed", reap removes it), then sends the record to every open stream. Returns once the
  // record is queued for every stream.
  void ApplyMemberEvent(const SerfMemberEvent& event);
  // The next request with this command gets `reply(seq)` verbatim instead of its normal reply
  // (after its body was read); then the connection is closed if `close_after`. One-shot;
  // several injections for one command are used in order.
  void InjectReply(const std::string& command, RawReply reply, bool close_after = false);
  // Closes every client connection, as an agent restart does; the listener stays.
  void DisconnectAll();

  // Observations.
  int connections_accepted() const;
  std::vector<std::string> commands() const;  // every command received, in order
  // Waits until `count` streams are open across connections.
  bool WaitForStreams(std::size_t count, std::chrono::milliseconds timeout);

 private:
  struct Conn;
  struct Request;
  explicit FakeSerfAgent(Options options);
  void Run();
  void RunOnServer(std::function<void()> fn);
  void Accept(int listen_fd, const std::string& self_name);
  void ReadFrom(Conn& c);
  // False when the connection must be closed.
  bool HandleRequest(Conn& c, const Request& request);
  void SendTo(Conn& c, const std::string& bytes);
  void CloseConn(int fd);

  // The member named `name`, or null. Requires mu_.
  SerfMember* FindMember(const std::string& name);

  const Options options_;
  int listen_fd_ = -1;
  const EventFd wake_ = EventFd::CreateOrDie();  // wakes the serving thread
  uint16_t port_ = 0;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                                          // guarded by mu_
  std::vector<std::function<void()>> tasks_;                   // guarded by mu_
  std::vector<SerfMember> members_;                            // guarded by mu_
  std::unordered_map<std::string, std::size_t> member_index_;  // name -> members_ index; mu_
  std::map<std::string, std::vector<std::pair<RawReply, bool>>> injections_;  // guarded by mu_
  std::vector<std::string> commands_;                                         // guarded by mu_
  int accepted_ = 0;                                                          // guarded by mu_
  std::size_t open_streams_ = 0;                                              // guarded by mu_

  std::map<int, std::unique_ptr<Conn>> conns_;  // server thread only
  // Endpoints beyond the first: listening socket and the member it speaks for. Server thread.
  std::vector<std::pair<int, std::string>> more_listeners_;
};

}  // namespace clustermgr::net
