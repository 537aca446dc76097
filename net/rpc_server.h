// The daemon's end of the RPC protocol: a ZeroMQ ROUTER socket that the daemon's single event
// loop polls. It frames and decodes requests and encodes replies; it decides nothing.
//
// Driving it (all on the thread that owns the server):
//
//   auto server = RpcServer::Bind(context, "tcp://127.0.0.1:9007", options);
//   zmq::pollitem_t items[] = {server.value()->PollItem(), ...other sockets...};
//   for (;;) {
//     zmq::poll(items, n, timeout_until_next_timer);
//     while (auto in = server.value()->TryReceive()) {
//       // answer now ...
//       server.value()->Reply(in->reply_to, RpcReply::Ok(NodeInfo{...}));
//       // ... or keep in->reply_to and answer later (a parked long-poll, a forwarded request)
//     }
//   }
//
// Wire shape (see net/rpc.capnp): a client frame sequence [empty delimiter][Request]; the ROUTER
// prepends the peer's routing identity. A body without the delimiter ([Request] alone, as a
// bare DEALER might send) is accepted too, and the reply mirrors the shape it came in.
//
// Hostile input never crashes the server and never reaches the caller: a body above
// Options::max_request_bytes, a malformed envelope, an undecodable body (bad framing, Cap'n
// Proto traversal or nesting limit, protocol version 0) is answered at once with an
// invalidArgument reply; an operation this build does not know with unimplemented. Bodies above
// Options::transport_max_frame_bytes are refused by libzmq itself (ZMQ_MAXMSGSIZE: it drops the
// connection, bounding memory) and are not seen here. Every such event is counted.
//
// Thread-safety: none. One thread creates, polls, receives from and replies with a server (or
// hands it over to another thread with a happens-before edge). ZeroMQ, Cap'n Proto and KJ
// exceptions are caught inside; no method throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "net/access.h"
#include "net/connection_limit.h"
#include "net/curve_keys.h"
#include "net/rpc_codec.h"
#include "net/rpc_types.h"

namespace clustermgr::net {

// Where a reply goes: the peer's routing identity and the id of its request. Copyable; keep it
// to reply later. Replying to a peer that has since gone away is harmless (counted, dropped).
struct ReplyTo {
  std::string identity;  // ZeroMQ routing id (opaque bytes)
  std::uint64_t request_id = 0;
  bool delimited = true;  // the request came with an empty delimiter frame
  // Set by the daemon, not the wire: the request came through the in-process HTTP gateway (its
  // reply goes back there, `request_id` being the gateway's call id), not through this socket.
  bool gateway = false;
  // Set by the daemon for its request counters: when the request arrived (steady clock, us) and
  // its operation name ("" for replies nobody counts).
  std::uint64_t received_us = 0;
  std::string operation;
};

struct IncomingRequest {
  ReplyTo reply_to;
  std::uint32_t protocol_version = 0;  // the client's schema version (>= 1)
  std::string forwarded_by;            // non-empty when another daemon forwarded it
  std::string caller_key;              // the client's CURVE public key (Z85); "" when plain
  RpcRequest request;
  ForwardedCaller forwarded_caller;  // the original caller a forwarding daemon names
  // The TCP connection the request came on (libzmq's ZMQ_SRCFD), -1 when unknown: lets the
  // owner shut a connection down (CloseConnection) whose key is no longer allowed. Valid only
  // until the next poll of the socket (libzmq may close and reuse it after).
  int source_fd = -1;
  // Who called through an HTTP gateway, as the owner resolved the gateway's caller (name and
  // role; no key). Unset for requests that came through this socket (their caller is
  // caller_key).
  Caller gateway_caller;
};

// Shuts down (shutdown(2), not close: the descriptor stays libzmq's) the TCP connection `fd` if
// it is still a connected socket; libzmq then drops the peer as if it had gone. Returns whether
// it did. Thread-safety: any thread; harmless on a descriptor that is not a socket.
bool CloseConnection(int fd);

// Monotonic counters since Bind. A snapshot is a plain copy.
struct RpcServerCounters {
  std::uint64_t received = 0;                // messages read off the socket, good or bad
  std::uint64_t requests = 0;                // well-formed requests returned by TryReceive
  std::uint64_t rejected_oversize = 0;       // body above max_request_bytes (answered)
  std::uint64_t rejected_malformed = 0;      // bad envelope or undecodable body (answered)
  std::uint64_t rejected_unimplemented = 0;  // unknown operation (answered)
  std::uint64_t replies_sent = 0;
  std::uint64_t replies_dropped = 0;    // peer gone (unroutable) or its queue full
  std::uint64_t replies_too_large = 0;  // reply above max_reply_bytes, replaced by an error
  std::uint64_t socket_errors = 0;      // unexpected ZeroMQ errors (logged by the caller)
};

class RpcServer {
 public:
  struct Options {
    // Bodies up to this are decoded; bigger ones are answered with invalidArgument.
    std::size_t max_request_bytes = kMaxRequestBytes;
    // libzmq's own per-frame limit (ZMQ_MAXMSGSIZE), the hard memory bound. Above the soft limit
    // so that a moderately oversize request still gets an answer instead of a disconnect.
    std::size_t transport_max_frame_bytes = 2 * kMaxRequestBytes;
    // A reply bigger than this is replaced by an internal error (clients cap what they accept).
    std::size_t max_reply_bytes = kMaxReplyBytes;
    DecodeLimits decode_limits = kRequestDecodeLimits;
    // Written into replies whose `instance` is empty.
    std::string instance_name;
    // Bound on the connections the socket holds at once, pending handshakes included
    // (net/connection_limit.h); and the handshake timeout.
    std::size_t max_connections = kDefaultMaxConnections;
    int handshake_ivl_ms = kHandshakeIvlMs;
    // Set: the socket is a CURVE server (clients are judged by the context's ZAP handler,
    // net/zap_handler.h, under curve->zap_domain). Unset: plain TCP, anyone may call.
    std::optional<CurveServerConfig> curve;
  };

  // Binds a ROUTER to `endpoint`, e.g. "tcp://127.0.0.1:9007"; port 0 or * picks a free port
  // (see endpoint()). `context` must outlive the server.
  // Errors: kInvalidArgument (malformed endpoint or CURVE key), kUnavailable (address in use, no
  // permission, libzmq without CURVE).
  static Result<std::unique_ptr<RpcServer>> Bind(zmq::context_t& context,
                                                 const std::string& endpoint, Options options);
  static Result<std::unique_ptr<RpcServer>> Bind(zmq::context_t& context,
                                                 const std::string& endpoint) {
    return Bind(context, endpoint, Options());
  }

  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // The endpoint actually bound, with the real port: "tcp://127.0.0.1:41234".
  const std::string& endpoint() const { return endpoint_; }

  // For zmq::poll / zmq::poller_t: readable when a message may be waiting.
  zmq::pollitem_t PollItem() { return zmq::pollitem_t{socket_.handle(), 0, ZMQ_POLLIN, 0}; }
  // Readable when connection events wait (TryReceive handles them): poll it too.
  zmq::pollitem_t ConnectionsPollItem() { return limit_->PollItem(); }
  const ConnectionLimit& connections() const { return *limit_; }
  zmq::socket_ref socket() { return socket_; }

  // Reads messages until one is a well-formed request, answering and counting the bad ones on
  // the way. Never blocks. nullopt = nothing (more) to read now: call it until then after each
  // readable poll.
  std::optional<IncomingRequest> TryReceive();

  // Sends `reply` (with `to.request_id`) to `to.identity`. Never blocks. Returns false when the
  // reply was dropped: the peer is gone (it disconnected or timed out and went away) or its
  // queue is full; the caller has nothing to do about it but may log. A reply encoding to more
  // than max_reply_bytes is replaced by a kInternal error reply saying so.
  bool Reply(const ReplyTo& to, const RpcReply& reply);

  const RpcServerCounters& counters() const { return counters_; }

 private:
  RpcServer(zmq::socket_t socket, std::unique_ptr<ConnectionLimit> limit, std::string endpoint,
            Options options);
  bool SendFrames(const ReplyTo& to, const std::string& body);

  zmq::socket_t socket_;
  std::unique_ptr<ConnectionLimit> limit_;  // after socket_: destroyed first
  std::string endpoint_;
  Options options_;
  RpcServerCounters counters_;
};

}  // namespace clustermgr::net
