#include "net/rpc_client.h"

#include <algorithm>
#include <exception>
#include <limits>
#include <type_traits>
#include <utility>
#include <variant>
#include <zmq.hpp>

namespace clustermgr::net {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// zmq::poll that treats an interrupted wait (EINTR) as a spurious wake-up instead of throwing.
void PollOne(zmq::pollitem_t* item, milliseconds timeout) {
  try {
    zmq::poll(item, 1, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    item->revents = 0;
  }
}

// Reads one whole multipart message: [delimiter] body (the body is the last frame). nullopt when
// nothing was waiting, or (*foreign set) when the message is not in the shape our server always
// answers in, so it cannot be a reply of ours.
std::optional<zmq::message_t> ReceiveReplyBody(zmq::socket_t& socket, bool* foreign) {
  std::vector<zmq::message_t> frames;
  bool more = true;
  while (more) {
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) break;
    more = part.more();
    if (frames.size() < 3) frames.push_back(std::move(part));
  }
  if (frames.empty()) return std::nullopt;
  const bool shape_ok = (frames.size() == 2 && frames[0].size() == 0) ||
                        (frames.size() == 1 && frames[0].size() != 0);
  if (!shape_ok) {
    *foreign = true;
    return std::nullopt;
  }
  return std::move(frames.back());
}

}  // namespace

std::string FormatDuration(milliseconds d) {
  auto ms = d.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  std::string frac = std::to_string(ms % 1000);
  frac.insert(0, 3 - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return std::to_string(ms / 1000) + "." + frac + "s";
}

RpcClient::RpcClient(std::string url) : RpcClient(std::move(url), Options()) {}

RpcClient::RpcClient(std::string url, Options options, zmq::context_t* context)
    : url_(std::move(url)), options_(std::move(options)), context_(context) {
  if (context_ == nullptr) {
    owned_context_ = std::make_unique<zmq::context_t>(1);
    context_ = owned_context_.get();
  }
}

RpcClient::~RpcClient() { ResetSocket(); }

void RpcClient::ResetSocket() {
  try {
    socket_.reset();  // linger 0: nothing pending is kept
  } catch (...) {
  }
}

Result<bool> RpcClient::EnsureSocket() {
  if (socket_) return true;
  try {
    auto socket = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    // Queue only to completed connections: a request is never parked for a server that is not
    // there, to be delivered (and acted on) after this call has given up.
    socket->set(zmq::sockopt::immediate, true);
    socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.max_reply_bytes));
    if (options_.curve) {
      if (clustermgr::Status s = ApplyCurveClient(*socket, *options_.curve); !s.ok()) {
        return clustermgr::Status(Code::kInvalidArgument, s.message());
      }
    }
    socket->connect(url_);
    socket_ = std::move(socket);
    return true;
  } catch (const zmq::error_t& e) {
    return clustermgr::Status(Code::kInvalidArgument, "invalid URL \"" + url_ + "\": " + e.what());
  } catch (const std::exception& e) {
    return clustermgr::Status(Code::kInternal, "cannot create RPC socket: " + std::string(e.what()));
  }
}

Result<RpcReply> RpcClient::Call(const RpcRequest& request, milliseconds extra_wait,
                                 const ForwardedCaller& caller) {
  last_delivery_ = Delivery::kNotSent;
  Result<bool> ready = EnsureSocket();
  if (!ready.ok()) return ready.status();

  const std::uint64_t id = next_request_id_++;
  std::string body = EncodeRequest(id, request, options_.forwarded_by, caller);
  if (body.size() > kMaxRequestBytes) {
    return clustermgr::Status(Code::kInvalidArgument, "request of " + std::to_string(body.size()) +
                                              " bytes is over the limit of " +
                                              std::to_string(kMaxRequestBytes) + " bytes");
  }
  const milliseconds budget = options_.timeout + extra_wait;
  const auto deadline = Clock::now() + budget;
  auto remaining = [&] {
    // Rounded up, so the call never gives up before its deadline.
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? left : milliseconds(0);
  };
  const milliseconds connect_budget =
      connect_timeout_ ? std::min(*connect_timeout_, budget) : budget;
  const auto connect_deadline = Clock::now() + connect_budget;
  auto connect_remaining = [&] {
    auto left = std::chrono::ceil<milliseconds>(connect_deadline - Clock::now());
    return left.count() > 0 ? left : milliseconds(0);
  };

  try {
    // Send once a connection is up (POLLOUT with ZMQ_IMMEDIATE means "connected").
    bool sent = false;
    while (!sent) {
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLOUT, 0};
      PollOne(&item, connect_remaining());
      if ((item.revents & ZMQ_POLLOUT) != 0) {
        const auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
        if (socket_->send(zmq::message_t(), more)) {
          socket_->send(zmq::buffer(body), zmq::send_flags::dontwait);
          sent = true;
          last_delivery_ = Delivery::kNoReply;
          continue;
        }
      }
      if (connect_remaining().count() == 0) {
        return clustermgr::Status(Code::kUnavailable,
                      "could not connect to " + url_ + " within " + FormatDuration(connect_budget));
      }
    }

    for (;;) {
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
      PollOne(&item, remaining());
      if ((item.revents & ZMQ_POLLIN) == 0) {
        if (remaining().count() > 0) continue;  // spurious wake-up (EINTR)
        std::string message = "no reply from " + url_ + " within " + FormatDuration(budget);
        if (IsMutation(request)) {
          return clustermgr::Status(Code::kOutcomeUnknown,
                        message + " (the request may or may not have taken effect)");
        }
        return clustermgr::Status(Code::kUnavailable, std::move(message));
      }
      bool foreign = false;
      std::optional<zmq::message_t> body_frame = ReceiveReplyBody(*socket_, &foreign);
      if (!body_frame) {
        if (foreign) ++late_replies_discarded_;
        continue;
      }
      Result<DecodedReply> decoded = DecodeReply(body_frame->to_string_view(), kReplyDecodeLimits);
      if (!decoded.ok()) {
        return clustermgr::Status(Code::kInternal,
                      "unreadable reply from " + url_ + ": " + decoded.status().message());
      }
      const std::uint64_t reply_id = decoded.value().request_id;
      // Id 0: the server could not read our request's id; only the current request can be
      // the cause (earlier ones were read well enough to be answered with their id, or the
      // answer is for the current one).
      if (reply_id != id && !(reply_id == 0 && decoded.value().reply.code != Code::kOk)) {
        ++late_replies_discarded_;
        continue;
      }
      last_delivery_ = Delivery::kAnswered;
      return std::move(decoded).value().reply;
    }
  } catch (const zmq::error_t& e) {
    ResetSocket();
    if (last_delivery_ == Delivery::kNoReply && IsMutation(request)) {
      return clustermgr::Status(Code::kOutcomeUnknown, "RPC to " + url_ + " failed: " + e.what() +
                                               " (the request may or may not have taken effect)");
    }
    return clustermgr::Status(Code::kUnavailable, "RPC to " + url_ + " failed: " + e.what());
  } catch (const std::exception& e) {
    ResetSocket();
    return clustermgr::Status(Code::kInternal, "RPC to " + url_ + " failed: " + e.what());
  }
}

template <typename T>
Result<T> RpcClient::Expect(const RpcRequest& request, milliseconds extra_wait) {
  Result<RpcReply> reply = Call(request, extra_wait);
  if (!reply.ok()) return reply.status();
  RpcReply& r = reply.value();
  if (r.code != Code::kOk) return clustermgr::Status(r.code, std::move(r.message));
  if constexpr (std::is_same_v<T, Ack>) {
    if (std::holds_alternative<std::monostate>(r.payload)) return Ack{};
  } else {
    if (T* value = std::get_if<T>(&r.payload)) return std::move(*value);
  }
  return clustermgr::Status(Code::kInternal,
                "unexpected reply to " + std::string(OperationName(request)) + " from " + url_);
}

Result<NodeInfo> RpcClient::NodeGet(const std::string& name) {
  return Expect<NodeInfo>(NodeGetRequest{name});
}

Result<std::vector<NodeInfo>> RpcClient::NodesGet() {
  auto r = Expect<NodeList>(NodesGetRequest{});
  if (!r.ok()) return r.status();
  return std::move(r.value().nodes);
}

Result<JobAccepted> RpcClient::Commission(const std::vector<std::string>& names,
                                          const std::string& group, const std::string& extra_vars) {
  return Expect<JobAccepted>(CommissionRequest{names, group, extra_vars});
}

Result<JobAccepted> RpcClient::Decommission(const std::vector<std::string>& names,
                                            const std::string& extra_vars) {
  return Expect<JobAccepted>(DecommissionRequest{names, extra_vars});
}

Result<JobAccepted> RpcClient::Update(const std::vector<std::string>& names,
                                      const std::string& group, const std::string& extra_vars,
                                      std::uint32_t serial) {
  return Expect<JobAccepted>(UpdateRequest{names, group, extra_vars, serial});
}

Result<JobAccepted> RpcClient::Upgrade(const std::vector<std::string>& names,
                                       const std::string& extra_vars, std::uint32_t serial) {
  return Expect<JobAccepted>(UpgradeRequest{names, extra_vars, serial});
}

Result<JobAccepted> RpcClient::Discover(const std::vector<std::string>& addrs,
                                        const std::string& extra_vars) {
  return Expect<JobAccepted>(DiscoverRequest{addrs, extra_vars});
}

Result<std::string> RpcClient::AuditList(std::uint32_t limit) {
  auto r = Expect<JsonText>(AuditListRequest{limit});
  if (!r.ok()) return r.status();
  return std::move(r).value().text;
}

Result<std::string> RpcClient::GlobalGet() {
  auto r = Expect<JsonText>(GlobalGetRequest{});
  if (!r.ok()) return r.status();
  return std::move(r.value().text);
}

Result<Ack> RpcClient::GlobalSet(const std::string& extra_vars) {
  return Expect<Ack>(GlobalSetRequest{extra_vars});
}

Result<JobDetail> RpcClient::JobGet(const std::string& label) {
  return Expect<JobDetail>(JobGetRequest{label});
}

Result<JobLogChunk> RpcClient::JobLogFollow(const std::string& job_id, std::uint64_t from_line,
                                            milliseconds wait) {
  if (wait.count() < 0) wait = milliseconds(0);
  const auto wait_ms = static_cast<std::uint32_t>(
      std::min<std::int64_t>(wait.count(), std::numeric_limits<std::uint32_t>::max()));
  return Expect<JobLogChunk>(JobLogFollowRequest{job_id, from_line, wait_ms}, wait);
}

Result<std::vector<JobInfo>> RpcClient::JobsList() {
  auto r = Expect<JobList>(JobsListRequest{});
  if (!r.ok()) return r.status();
  return std::move(r.value().jobs);
}

Result<std::string> RpcClient::JobCancel(const std::string& job_id) {
  auto r = Expect<JobCancelled>(JobCancelRequest{job_id});
  if (!r.ok()) return r.status();
  return std::move(r.value().job_id);
}

Result<std::string> RpcClient::ConfigGet() {
  auto r = Expect<JsonText>(ConfigGetRequest{});
  if (!r.ok()) return r.status();
  return std::move(r.value().text);
}

Result<Ack> RpcClient::ConfigSet(const std::string& config) {
  return Expect<Ack>(ConfigSetRequest{config});
}

Result<std::vector<MemberInfo>> RpcClient::Members() {
  auto r = Expect<MemberList>(MembersRequest{});
  if (!r.ok()) return r.status();
  return std::move(r.value().members);
}

Result<TokenInfo> RpcClient::Token() { return Expect<TokenInfo>(TokenRequest{}); }

Result<StatusInfo> RpcClient::Status() { return Expect<StatusInfo>(StatusRequest{}); }

Result<StateChunk> RpcClient::StateDumpChunk(std::uint64_t snapshot_id, std::uint64_t offset,
                                             std::uint32_t max_bytes) {
  return Expect<StateChunk>(StateDumpRequest{snapshot_id, offset, max_bytes});
}

Result<std::string> RpcClient::StateDump(std::uint32_t chunk_bytes, std::uint64_t max_total_bytes) {
  for (int attempt = 0;; ++attempt) {
    auto first = StateDumpChunk(0, 0, chunk_bytes);
    if (!first.ok()) return first.status();
    const StateChunk& head = first.value();
    if (head.snapshot_id == 0 || head.offset != 0) {
      return clustermgr::Status(Code::kInternal, "stateDump from " + url_ + ": malformed first chunk");
    }
    if (head.total_bytes > max_total_bytes) {
      return clustermgr::Status(Code::kInternal, "stateDump from " + url_ + ": the state is " +
                                         std::to_string(head.total_bytes) +
                                         " bytes, over the limit of " +
                                         std::to_string(max_total_bytes));
    }
    std::string bytes = std::move(first.value().data);
    const std::uint64_t id = head.snapshot_id;
    const std::uint64_t total = head.total_bytes;
    bool restart = false;
    while (bytes.size() < total) {
      auto next = StateDumpChunk(id, bytes.size(), chunk_bytes);
      if (!next.ok()) {
        if (next.code() == Code::kFailedPrecondition && attempt < 3) {
          restart = true;
          break;
        }
        return next.status();
      }
      const StateChunk& c = next.value();
      if (c.snapshot_id != id || c.total_bytes != total || c.offset != bytes.size() ||
          c.data.empty() || c.data.size() > total - bytes.size()) {
        return clustermgr::Status(Code::kInternal, "stateDump from " + url_ + ": chunk at " +
                                           std::to_string(c.offset) +
                                           " does not continue snapshot " + std::to_string(id));
      }
      bytes += c.data;
    }
    if (restart) continue;
    if (bytes.size() != total) {
      return clustermgr::Status(Code::kInternal, "stateDump from " + url_ + ": snapshot " + std::to_string(id) +
                                         " has more bytes than announced");
    }
    return bytes;
  }
}

}  // namespace clustermgr::net
