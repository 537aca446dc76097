// Client of the Serf agent's RPC protocol (msgpack over TCP, default 127.0.0.1:7373).
//
// Commands implemented: handshake (Version 1), auth (AuthKey), members, members-filtered, tags,
// join, leave, stream (member events), stop. Requests are matched to replies by sequence
// number; stream records are demultiplexed by the sequence that opened the stream.
//
// Threading contract
// * Each SerfClient owns one reader thread, and that thread alone touches the socket: it
//   connects, writes requests, reads replies and stream records, enforces timeouts and
//   reconnects.
// * Every public method except the destructor is thread-safe. The request methods block the
//   calling thread until the reply arrives, the request times out (options.request_timeout) or
//   the connection fails.
// * Stream handlers and options.on_connection run on the reader thread, one at a time, in wire
//   order. They must not throw and must not block for long; a blocking request method called
//   from them returns kInvalidArgument (it would deadlock). Hand work to your own thread.
//
// Connection life
// * The constructor returns at once; the reader thread connects in the background, performs
//   the handshake and (when options.auth_key is set) auth, and reconnects with exponential
//   backoff (reconnect_min .. reconnect_max) whenever the connection fails or the agent
//   restarts. A request made between connections (during the backoff) fails at once with
//   kUnavailable; one made while a connection is being set up waits for it, within its
//   timeout.
// * Member subscriptions survive reconnects. Each time a subscription's stream is (re)opened
//   the client re-reads the full member list and delivers it as one synthetic kResync event
//   before any further record, so a subscriber that diffs the resync against what it knew
//   misses nothing that happened while the connection was down. Records that arrive between
//   the stream's ack and the member list are held back and delivered after the resync.
//
// Errors: every failure is a Status (base/status.h) whose message names what failed, e.g.
//   kUnavailable        "serf rpc: cannot connect to 127.0.0.1:7373: Connection refused"
//                       "serf rpc: not connected to 127.0.0.1:7373 (<last error>)"
//                       (nothing was sent: retrying is safe)
//   kFailedPrecondition "serf rpc handshake refused: Unsupported IPC version"
//                       "serf rpc tags failed: <agent's error>" (the agent refused the request)
//   kPermissionDenied   "serf rpc auth failed: Invalid authentication token"
//                       "serf rpc auth required: the agent at ... expects an RPC auth key"
//   kOutcomeUnknown     "serf rpc members timed out after 5000 ms"
//                       "serf rpc: connection closed by the agent" (sent, no reply)
//   kCorruption         "serf rpc: malformed message: ..." (the connection is then dropped)
//   kCancelled          the client is being destroyed (calls racing with the destructor)
// Malformed, oversized or unexpected msgpack is an error of that connection (it is closed and
// re-opened), never a crash.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/serf_types.h"

namespace clustermgr::net {

// Reported to SerfClientOptions::on_connection.
struct SerfConnectionEvent {
  bool connected = false;  // true: handshake (and auth) done, the client is usable
  Status reason;       // when !connected: why the connection failed or was lost
};

struct SerfClientOptions {
  // "host:port" or "[v6]:port"; host may be a name (resolved with getaddrinfo on each attempt).
  std::string address = "127.0.0.1:7373";
  // Sent with `auth` after the handshake when non-empty (agent config `rpc_auth`).
  std::string auth_key;
  std::chrono::milliseconds connect_timeout{2000};
  // Bound on every request, including the handshake and auth of each connection attempt.
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};
  // Largest single msgpack message accepted from the agent; beyond it the connection is
  // dropped with kCorruption.
  std::size_t max_message_bytes = 4u << 20;
  // Optional; runs on the reader thread when a connection becomes ready, when it is lost, and
  // after every failed attempt.
  std::function<void(const SerfConnectionEvent&)> on_connection;
};

class SerfClient {
 public:
  using MemberHandler = std::function<void(const SerfMemberEvent&)>;
  using SubscriptionId = uint64_t;

  // Starts the reader thread, which starts connecting. Never fails; see WaitConnected.
  explicit SerfClient(SerfClientOptions options);
  // Constructs a client and waits for its first connection attempt. Returns the client when
  // it connected, otherwise that attempt's error (kUnavailable, kFailedPrecondition,
  // kPermissionDenied, kOutcomeUnknown, kCorruption) and no client.
  static Result<std::unique_ptr<SerfClient>> Connect(SerfClientOptions options);

  // Stops the reader thread and closes the connection; no handler runs after it returns.
  // Like any destructor it must not race with calls on the same object, and it must not run
  // on the reader thread (i.e. inside a handler).
  ~SerfClient();
  SerfClient(const SerfClient&) = delete;
  SerfClient& operator=(const SerfClient&) = delete;

  // Blocks until the client is connected (OK) or `timeout` passes (the last connection error,
  // or kOutcomeUnknown when no attempt has finished yet).
  Status WaitConnected(std::chrono::milliseconds timeout);
  // OK when connected now, else the last connection error.
  Status ConnectionStatus() const;
  const std::string& address() const;

  // `members`: every member the agent knows, in the agent's order.
  // Errors: kUnavailable, kOutcomeUnknown, kPermissionDenied, kCorruption, kCancelled.
  Result<std::vector<SerfMember>> Members();
  // `members-filtered`: tags, status and name are regular expressions anchored by the agent.
  // An invalid expression makes the agent drop the connection: kOutcomeUnknown.
  // Errors: as Members.
  Result<std::vector<SerfMember>> MembersFiltered(const SerfMemberFilter& filter);
  // `tags`: sets and deletes tags of the agent's own member. Serf limits the encoded tag set to
  // 512 bytes; beyond it the agent answers with an error (kFailedPrecondition).
  // Errors: as Members, plus kFailedPrecondition.
  Status SetTags(const std::map<std::string, std::string>& set,
                     const std::vector<std::string>& remove = {});
  // `join`: asks the agent to join the given gossip addresses; returns how many it reached.
  // Errors: as SetTags.
  Result<int32_t> Join(const std::vector<std::string>& addresses, bool replay = false);
  // `leave`: the agent leaves the cluster gracefully and shuts down (the connection then drops
  // and the client keeps trying to reconnect). Errors: as SetTags.
  Status Leave();

  // Subscribes to member-join, member-leave, member-failed and member-update. The handler
  // first receives a kResync with the full member list, then each record; and again a kResync
  // after every reconnect. Returns at once (the stream opens whenever a connection is ready).
  // Errors: kInvalidArgument (empty handler), kCancelled.
  Result<SubscriptionId> SubscribeMembers(MemberHandler handler);
  // Stops a subscription (`stop` on the wire when its stream is open). Once this returns the
  // handler is never called again. Errors: kInvalidArgument (unknown id), kOutcomeUnknown, kCancelled.
  Status Unsubscribe(SubscriptionId id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clustermgr::net
