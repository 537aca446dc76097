// The client end of the RPC protocol (net/rpc.capnp): a ZeroMQ DEALER with one request in
// flight at a time and a deadline per call. Used by the `clustermgr` CLI, by tests and by a
// daemon forwarding a request to the token holder.
//
// Every call returns a Result: the value, or a Status whose code is
//   * the daemon's own (kInvalidArgument, kNotFound, kFailedPrecondition, kUnavailable,
//     kInternal, kUnimplemented, kOutcomeUnknown) with its message verbatim;
//   * kUnavailable "could not connect to URL within T" when no connection came up in time
//     (nothing was sent), or "no reply from URL within T" for a read-only call;
//   * kOutcomeUnknown "no reply from URL within T (the request may or may not have taken
//     effect)" for a call with side effects (IsMutation);
//   * kInvalidArgument for a malformed URL, unusable CURVE keys or a request above
//     kMaxRequestBytes (not sent);
//   * kInternal for a reply that cannot be read or does not match the call.
//
// Correlation: each request carries a fresh id; a reply with another id (a late answer to a
// call that timed out) is discarded and counted, so it can never be taken for the current
// call's answer. The socket is kept across timeouts (ZMQ_IMMEDIATE keeps nothing queued for a
// peer that is not connected, so a timed-out request is not delivered after the fact to a
// server that comes up later).
//
// Thread-safety: none. A client owns a ZeroMQ socket; use one client per thread. Nothing is
// sent or connected until the first call.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/curve_keys.h"
#include "net/rpc_codec.h"
#include "net/rpc_types.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace clustermgr::net {

class RpcClient {
 public:
  struct Options {
    // How long a call waits for its reply (long-polls add their own wait on top).
    std::chrono::milliseconds timeout{10000};
    // Largest reply accepted; bigger ones make libzmq drop the connection (the call times out).
    std::size_t max_reply_bytes = kMaxReplyBytes;
    // Set by a daemon forwarding requests: its instance name (see Request.forwardedBy).
    std::string forwarded_by;
    // Set: talk CURVE to a server with public key curve->server_key, as curve->client. A CURVE
    // server refuses a plain client and the other way round; a refused handshake looks like a
    // server that does not answer ("could not connect to URL within T").
    std::optional<CurveClientConfig> curve;
  };

  // What became of the last call's request: never sent (no connection came up, or it was
  // refused locally), sent without an answer in time, or answered (an error reply included).
  // A request that was not sent, or a read-only one that was not answered, may be tried on
  // another endpoint; a mutation that was sent but not answered must not be resent.
  enum class Delivery { kNotSent, kNoReply, kAnswered };

  // `url` is a ZeroMQ endpoint, e.g. "tcp://127.0.0.1:9007". `context` may be null: the client
  // then owns a private one. Otherwise it must outlive the client.
  explicit RpcClient(std::string url);
  RpcClient(std::string url, Options options, zmq::context_t* context = nullptr);
  ~RpcClient();
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  const std::string& url() const { return url_; }
  std::chrono::milliseconds timeout() const { return options_.timeout; }
  void set_timeout(std::chrono::milliseconds timeout) { options_.timeout = timeout; }
  // Give up connecting after this long instead of the whole timeout (never longer than it), so
  // that a client with other endpoints to try moves on sooner. Unset by default.
  void set_connect_timeout(std::chrono::milliseconds timeout) { connect_timeout_ = timeout; }
  // Replies dropped because their id was not the current call's (late answers).
  std::uint64_t late_replies_discarded() const { return late_replies_discarded_; }
  Delivery last_delivery() const { return last_delivery_; }

  // Sends any request and returns the daemon's whole reply, error code included (forwarding
  // relays it as is). The RpcResult fails only for transport problems (see above); the call
  // waits up to timeout + extra_wait.
  // `caller` (with Options::forwarded_by set) names the original caller of a forwarded request.
  Result<RpcReply> Call(const RpcRequest& request,
                        std::chrono::milliseconds extra_wait = std::chrono::milliseconds(0),
                        const ForwardedCaller& caller = {});

  // Typed calls: the daemon's error codes become RpcErrors.
  Result<NodeInfo> NodeGet(const std::string& name);
  Result<std::vector<NodeInfo>> NodesGet();
  Result<JobAccepted> Commission(const std::vector<std::string>& names, const std::string& group,
                                 const std::string& extra_vars);
  Result<JobAccepted> Decommission(const std::vector<std::string>& names,
                                   const std::string& extra_vars);
  // group empty = keep each node's host-group; serial > 0: rolling, that many nodes at a time.
  Result<JobAccepted> Update(const std::vector<std::string>& names, const std::string& group,
                             const std::string& extra_vars, std::uint32_t serial = 0);
  // Runs the upgrade playbook on allocated nodes; serial as for Update.
  Result<JobAccepted> Upgrade(const std::vector<std::string>& names, const std::string& extra_vars,
                              std::uint32_t serial = 0);
  Result<JobAccepted> Discover(const std::vector<std::string>& addrs,
                               const std::string& extra_vars);
  Result<std::string> GlobalGet();  // JSON object text
  Result<Ack> GlobalSet(const std::string& extra_vars);
  Result<JobDetail> JobGet(const std::string& label);  // "active", "last" or an id
  // Long-poll: waits up to `wait` on the daemon for lines at/after from_line or the job's end.
  Result<JobLogChunk> JobLogFollow(const std::string& job_id, std::uint64_t from_line,
                                   std::chrono::milliseconds wait);
  Result<std::vector<JobInfo>> JobsList();
  Result<std::string> JobCancel(const std::string& job_id);  // "" = active; returns its id
  Result<std::string> ConfigGet();                           // JSON object text
  Result<Ack> ConfigSet(const std::string& config);
  Result<std::vector<MemberInfo>> Members();
  Result<TokenInfo> Token();
  Result<StatusInfo> Status();

  // One chunk of a state snapshot (snapshot_id 0 = take a new one); see StateDumpRequest.
  Result<StateChunk> StateDumpChunk(std::uint64_t snapshot_id, std::uint64_t offset,
                                    std::uint32_t max_bytes = 0);
  // The daemon's whole replicated state as store::EncodeState bytes (decode them with
  // store::DecodeState; net does not link the store), read chunk by chunk from one snapshot.
  // `chunk_bytes` 0 = the daemon's default. Besides the calls' errors: kInternal when a chunk
  // does not continue the snapshot, or the snapshot is larger than `max_total_bytes`
  // (nothing more is read then). A snapshot the daemon dropped meanwhile (another client took
  // newer ones) is started again, up to 3 times, then its kFailedPrecondition is returned.
  // The newest `limit` audit records (0: the daemon's default), a JSON array, oldest first.
  Result<std::string> AuditList(std::uint32_t limit = 0);
  Result<std::string> StateDump(std::uint32_t chunk_bytes = 0,
                                std::uint64_t max_total_bytes = std::uint64_t{1} << 32);

 private:
  template <typename T>
  Result<T> Expect(const RpcRequest& request, std::chrono::milliseconds extra_wait = {});
  Result<bool> EnsureSocket();
  void ResetSocket();

  std::string url_;
  Options options_;
  std::unique_ptr<zmq::context_t> owned_context_;  // declared before socket_: outlives it
  zmq::context_t* context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::uint64_t next_request_id_ = 1;
  std::uint64_t late_replies_discarded_ = 0;
  Delivery last_delivery_ = Delivery::kNotSent;
  std::optional<std::chrono::milliseconds> connect_timeout_;
};

// "10s", "1.5s", "250ms".
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace clustermgr::net
