#include "net/rpc_server.h"

#include <sys/socket.h>

#include <exception>
#include <string_view>
#include <utility>
#include <vector>

namespace clustermgr::net {
namespace {

// An envelope has at most identity, delimiter and body; anything after is read and discarded.
constexpr std::size_t kMaxFramesKept = 3;

std::string SizeText(std::size_t bytes) {
  if (bytes >= (std::size_t{1} << 20) && bytes % (std::size_t{1} << 20) == 0) {
    return std::to_string(bytes >> 20) + " MiB";
  }
  return std::to_string(bytes) + " bytes";
}

}  // namespace

bool CloseConnection(int fd) {
  if (fd < 0) return false;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  // Only a connected socket (getpeername succeeds) is shut down.
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  return shutdown(fd, SHUT_RDWR) == 0;
}

Result<std::unique_ptr<RpcServer>> RpcServer::Bind(zmq::context_t& context,
                                                   const std::string& endpoint, Options options) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 0);
    // Unroutable replies fail loudly (EHOSTUNREACH) instead of vanishing, so they are counted.
    socket.set(zmq::sockopt::router_mandatory, true);
    socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.transport_max_frame_bytes));
    socket.set(zmq::sockopt::handshake_ivl, options.handshake_ivl_ms);
    auto limit = ConnectionLimit::Attach(context, socket, options.max_connections);
    if (!limit.ok()) return Status(Code::kInternal, limit.status().message());
    if (options.curve) {
      if (Status s = ApplyCurveServer(socket, *options.curve); !s.ok()) {
        return Status(s.code() == Code::kUnavailable ? Code::kUnavailable : Code::kInvalidArgument,
                      s.message());
      }
    }
    try {
      socket.bind(endpoint);
    } catch (const zmq::error_t& e) {
      Code code = (e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENODEV)
                      ? Code::kInvalidArgument
                      : Code::kUnavailable;
      return Status(code, "cannot bind RPC endpoint " + endpoint + ": " + e.what());
    }
    std::string bound = socket.get(zmq::sockopt::last_endpoint);
    return std::unique_ptr<RpcServer>(new RpcServer(std::move(socket), std::move(limit).value(),
                                                    std::move(bound), std::move(options)));
  } catch (const std::exception& e) {
    return Status(Code::kInternal, "cannot create RPC socket: " + std::string(e.what()));
  }
}

RpcServer::RpcServer(zmq::socket_t socket, std::unique_ptr<ConnectionLimit> limit,
                     std::string endpoint, Options options)
    : socket_(std::move(socket)),
      limit_(std::move(limit)),
      endpoint_(std::move(endpoint)),
      options_(std::move(options)) {}

RpcServer::~RpcServer() = default;

std::optional<IncomingRequest> RpcServer::TryReceive() {
  limit_->Drain();
  for (;;) {
    std::vector<zmq::message_t> frames;
    std::size_t frame_count = 0;
    try {
      zmq::message_t part;
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) return std::nullopt;
      bool more = part.more();
      frames.push_back(std::move(part));
      frame_count = 1;
      // A multipart message arrives whole, so the remaining parts are already here.
      while (more) {
        zmq::message_t next;
        if (!socket_.recv(next, zmq::recv_flags::dontwait)) break;
        more = next.more();
        ++frame_count;
        if (frames.size() < kMaxFramesKept) frames.push_back(std::move(next));
      }
    } catch (const std::exception&) {
      ++counters_.socket_errors;
      return std::nullopt;
    }
    ++counters_.received;

    // ROUTER guarantees frame 0 is the identity; the rest is the peer's.
    ReplyTo to;
    to.identity = frames[0].to_string();
    std::string_view body;
    bool envelope_ok = false;
    if (frame_count == 3 && frames[1].size() == 0) {
      to.delimited = true;
      body = frames[2].to_string_view();
      envelope_ok = true;
    } else if (frame_count == 2 && frames[1].size() != 0) {
      to.delimited = false;
      body = frames[1].to_string_view();
      envelope_ok = true;
    }
    if (!envelope_ok) {
      ++counters_.rejected_malformed;
      to.delimited = frame_count >= 2 && frames[1].size() == 0;
      Reply(to, RpcReply::Error(Code::kInvalidArgument,
                                "malformed request: expected [empty delimiter][request], got " +
                                    std::to_string(frame_count - 1) + " frame(s)"));
      continue;
    }
    if (body.size() > options_.max_request_bytes) {
      ++counters_.rejected_oversize;
      Reply(to,
            RpcReply::Error(Code::kInvalidArgument, "request of " + std::to_string(body.size()) +
                                                        " bytes exceeds the limit of " +
                                                        SizeText(options_.max_request_bytes)));
      continue;
    }

    DecodedRequest decoded = DecodeRequest(body, options_.decode_limits);
    to.request_id = decoded.request_id;
    if (!decoded.request.ok()) {
      if (decoded.request.code() == Code::kUnimplemented) {
        ++counters_.rejected_unimplemented;
      } else {
        ++counters_.rejected_malformed;
      }
      Reply(to, RpcReply::Error(decoded.request.code(), decoded.request.status().message()));
      continue;
    }
    ++counters_.requests;
    // Connection properties ride on the frames that came off the wire (not the ROUTER's
    // identity frame): the body is one of them.
    IncomingRequest in;
    in.reply_to = std::move(to);
    in.protocol_version = decoded.protocol_version;
    in.forwarded_by = std::move(decoded.forwarded_by);
    in.caller_key = options_.curve ? PeerKeyOf(frames.back()) : std::string();
    in.request = std::move(decoded.request).value();
    in.forwarded_caller = std::move(decoded.caller);
    in.source_fd = zmq_msg_get(frames.back().handle(), ZMQ_SRCFD);
    return in;
  }
}

bool RpcServer::Reply(const ReplyTo& to, const RpcReply& reply) {
  std::string body;
  try {
    if (reply.instance.empty() && !options_.instance_name.empty()) {
      RpcReply named = reply;
      named.instance = options_.instance_name;
      body = EncodeReply(to.request_id, named);
    } else {
      body = EncodeReply(to.request_id, reply);
    }
    if (body.size() > options_.max_reply_bytes) {
      ++counters_.replies_too_large;
      RpcReply error = RpcReply::Error(Code::kInternal, "reply of " + std::to_string(body.size()) +
                                                            " bytes exceeds the limit of " +
                                                            SizeText(options_.max_reply_bytes));
      error.instance = reply.instance.empty() ? options_.instance_name : reply.instance;
      body = EncodeReply(to.request_id, error);
    }
  } catch (const std::exception&) {
    // Encoding plain values cannot fail short of memory exhaustion; do not let it escape.
    ++counters_.socket_errors;
    return false;
  }
  return SendFrames(to, body);
}

bool RpcServer::SendFrames(const ReplyTo& to, const std::string& body) {
  try {
    const auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
    if (!socket_.send(zmq::buffer(to.identity), more)) {
      ++counters_.replies_dropped;  // EAGAIN: the peer's queue is full
      return false;
    }
    // Once the first frame is accepted, the rest of the message is too (atomic delivery).
    if (to.delimited) socket_.send(zmq::message_t(), more);
    socket_.send(zmq::buffer(body), zmq::send_flags::dontwait);
    ++counters_.replies_sent;
    return true;
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      ++counters_.replies_dropped;  // the peer has gone away
    } else {
      ++counters_.socket_errors;
    }
    return false;
  } catch (const std::exception&) {
    ++counters_.socket_errors;
    return false;
  }
}

}  // namespace clustermgr::net
