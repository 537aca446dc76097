#include "net/gossip_transport.h"

#include <exception>
#include <utility>

#include "net/gossip_endpoint.h"

namespace clustermgr::net {
namespace {

// A message has at most this many frames kept (identity + body on the ROUTER); more are read
// and discarded, and the message is malformed.
constexpr std::size_t kMaxFramesKept = 2;

bool IsWildcardPort(const std::string& endpoint) {
  const int port = TcpPort(endpoint);
  return port == 0 && endpoint.rfind("tcp://", 0) == 0;
}

std::string WithPort(const std::string& endpoint, const std::string& port) {
  return endpoint.substr(0, endpoint.rfind(':') + 1) + port;
}

}  // namespace

ZmqGossipTransport::ZmqGossipTransport(zmq::context_t& context, Options options)
    : context_(context),
      options_(std::move(options)),
      pub_(context, zmq::socket_type::pub),
      router_(context, zmq::socket_type::router),
      sub_(context, zmq::socket_type::sub),
      rng_(options_.drop_seed) {}

ZmqGossipTransport::~ZmqGossipTransport() = default;

void ZmqGossipTransport::ApplyCommonOptions(zmq::socket_t& socket) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.limits.max_message_bytes));
  socket.set(zmq::sockopt::sndhwm, options_.send_hwm);
  socket.set(zmq::sockopt::rcvhwm, options_.receive_hwm);
  socket.set(zmq::sockopt::reconnect_ivl, options_.reconnect_ms);
  socket.set(zmq::sockopt::reconnect_ivl_max, options_.reconnect_max_ms);
}

Result<std::unique_ptr<ZmqGossipTransport>> ZmqGossipTransport::Bind(zmq::context_t& context,
                                                                     const std::string& gossip,
                                                                     Options options) {
  const bool wildcard = IsWildcardPort(gossip);
  if (!wildcard) {
    auto ae = AntiEntropyEndpoint(gossip);
    if (!ae.ok()) return ae.status();
  }
  Status last;
  // A wildcard port needs a free pair (PORT, PORT+1): take a free PORT for the PUB, then try
  // the next one for the ROUTER, and start over when it is taken.
  for (int attempt = 0; attempt < (wildcard ? 20 : 1); ++attempt) {
    try {
      std::unique_ptr<ZmqGossipTransport> t(new ZmqGossipTransport(context, options));
      t->ApplyCommonOptions(t->pub_);
      t->ApplyCommonOptions(t->router_);
      t->ApplyCommonOptions(t->sub_);
      t->router_.set(zmq::sockopt::router_mandatory, true);
      for (zmq::socket_t* s : {&t->pub_, &t->router_}) {
        s->set(zmq::sockopt::handshake_ivl, kHandshakeIvlMs);
      }
      auto pub_limit = ConnectionLimit::Attach(context, t->pub_, options.max_connections);
      if (!pub_limit.ok()) return pub_limit.status();
      t->pub_limit_ = std::move(pub_limit).value();
      auto router_limit = ConnectionLimit::Attach(context, t->router_, options.max_connections);
      if (!router_limit.ok()) return router_limit.status();
      t->router_limit_ = std::move(router_limit).value();
      t->sub_.set(zmq::sockopt::subscribe, "");
      if (options.curve) {
        const CurveServerConfig server{options.curve->self.secret_key,
                                       std::string(kZapDomainGossip)};
        for (zmq::socket_t* s : {&t->pub_, &t->router_}) {
          if (Status st = ApplyCurveServer(*s, server); !st.ok()) return st;
        }
      }
      try {
        t->pub_.bind(wildcard ? WithPort(gossip, "*") : gossip);
      } catch (const zmq::error_t& e) {
        const Code code = (e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENODEV)
                              ? Code::kInvalidArgument
                              : Code::kUnavailable;
        return Status(code, "cannot bind gossip endpoint " + gossip + ": " + e.what());
      }
      t->bound_ = t->pub_.get(zmq::sockopt::last_endpoint);
      t->endpoint_ = options.advertise.empty() ? ConnectableEndpoint(t->bound_, InterfaceAddress())
                                               : options.advertise;
      auto ae = AntiEntropyEndpoint(t->bound_);
      if (!ae.ok()) return ae.status();
      t->ae_endpoint_ = *ae;
      try {
        t->router_.bind(t->ae_endpoint_);
      } catch (const zmq::error_t& e) {
        last = Status(Code::kUnavailable, "cannot bind anti-entropy endpoint " + t->ae_endpoint_ +
                                              " (the gossip port + 1): " + e.what());
        continue;
      }
      return t;
    } catch (const std::exception& e) {
      return Status(Code::kInternal, std::string("cannot create gossip sockets: ") + e.what());
    }
  }
  return last;
}

Result<bool> ZmqGossipTransport::SetPeerKey(const std::string& peer, const std::string& key) {
  if (!options_.curve) return false;
  if (!options_.curve->peer_keys.count(key)) {
    return Status(Code::kFailedPrecondition,
                  "key " + key + " of " + peer + " is not in the --curve-peers list");
  }
  std::string& known = options_.curve->endpoint_keys[peer];
  if (known == key) return false;
  known = key;
  return true;
}

Status ZmqGossipTransport::Connect(const std::string& peer) {
  if (dealers_.count(peer)) return Status::Ok();
  auto ae = AntiEntropyEndpoint(peer);
  if (!ae.ok()) return ae.status();
  std::optional<CurveClientConfig> curve;
  if (options_.curve) {
    auto it = options_.curve->endpoint_keys.find(peer);
    const std::string key =
        it != options_.curve->endpoint_keys.end() ? it->second : options_.curve->default_key;
    if (key.empty()) {
      return Status(Code::kFailedPrecondition, "no CURVE server key known for " + peer +
                                                   " (list it in --curve-peers as \"KEY NAME " +
                                                   peer +
                                                   "\", or let Serf publish its curve= tag)");
    }
    curve = CurveClientConfig{key, options_.curve->self};
  }
  try {
    zmq::socket_t dealer(context_, zmq::socket_type::dealer);
    ApplyCommonOptions(dealer);
    dealer.set(zmq::sockopt::immediate, true);
    if (curve) {
      if (Status s = ApplyCurveClient(dealer, *curve); !s.ok()) return s;
      // The SUB is one socket for all peers: libzmq takes the server key at connect time.
      if (Status s = ApplyCurveClient(sub_, *curve); !s.ok()) return s;
    }
    dealer.connect(*ae);
    sub_.connect(peer);
    dealers_.emplace(peer, std::move(dealer));
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    const Code code = (e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENODEV)
                          ? Code::kInvalidArgument
                          : Code::kInternal;
    return Status(code, "cannot connect to peer " + peer + ": " + e.what());
  } catch (const std::exception& e) {
    return Status(Code::kInternal, "cannot connect to peer " + peer + ": " + e.what());
  }
}

void ZmqGossipTransport::Disconnect(const std::string& peer) {
  auto it = dealers_.find(peer);
  if (it == dealers_.end()) return;
  dealers_.erase(it);
  try {
    sub_.disconnect(peer);
  } catch (const std::exception&) {
    ++counters_.socket_errors;  // not connected (ENOENT): nothing to undo
  }
}

bool ZmqGossipTransport::SendOn(zmq::socket_t& socket, const std::string* identity,
                                const std::string& body) {
  try {
    if (identity) {
      if (!socket.send(zmq::buffer(*identity),
                       zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        ++counters_.send_failed;
        return false;
      }
    }
    if (!socket.send(zmq::buffer(body), zmq::send_flags::dontwait)) {
      ++counters_.send_failed;  // EAGAIN: not connected (ZMQ_IMMEDIATE) or the queue is full
      return false;
    }
    return true;
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      ++counters_.send_failed;  // the requester went away
    } else {
      ++counters_.socket_errors;
    }
    return false;
  } catch (const std::exception&) {
    ++counters_.socket_errors;
    return false;
  }
}

bool ZmqGossipTransport::Publish(const GossipMessage& message) {
  const std::string body = EncodeGossip(message);
  if (!SendOn(pub_, nullptr, body)) return false;
  ++counters_.published;
  counters_.bytes_published += body.size();
  return true;
}

bool ZmqGossipTransport::Send(const std::string& peer, const GossipMessage& message) {
  auto it = dealers_.find(peer);
  if (it == dealers_.end()) {
    ++counters_.send_failed;
    return false;
  }
  const std::string body = EncodeGossip(message);
  if (!SendOn(it->second, nullptr, body)) return false;
  ++counters_.sent;
  counters_.bytes_sent += body.size();
  return true;
}

bool ZmqGossipTransport::Reply(const std::string& identity, const GossipMessage& message) {
  const std::string body = EncodeGossip(message);
  if (!SendOn(router_, &identity, body)) return false;
  ++counters_.sent;
  counters_.bytes_sent += body.size();
  return true;
}

std::optional<std::vector<zmq::message_t>> ZmqGossipTransport::ReadFrames(zmq::socket_t& socket) {
  std::vector<zmq::message_t> frames;
  try {
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) return std::nullopt;
    bool more = part.more();
    frames.push_back(std::move(part));
    std::size_t count = 1;
    // A multipart message arrives whole: the other parts are already here.
    while (more) {
      zmq::message_t next;
      if (!socket.recv(next, zmq::recv_flags::dontwait)) break;
      more = next.more();
      if (++count <= kMaxFramesKept) frames.push_back(std::move(next));
    }
    if (count > kMaxFramesKept) frames.clear();  // malformed: too many frames
  } catch (const std::exception&) {
    ++counters_.socket_errors;
    return std::nullopt;
  }
  ++counters_.received;
  return frames;
}

std::optional<GossipIncoming> ZmqGossipTransport::Accept(GossipIncoming::Via via, std::string from,
                                                         const zmq::message_t& body) {
  counters_.bytes_received += body.size();
  auto decoded = DecodeGossip(body.to_string_view(), options_.limits);
  if (!decoded.ok()) {
    ++counters_.malformed;
    return std::nullopt;
  }
  if (options_.drop_share > 0 &&
      std::uniform_real_distribution<double>(0, 1)(rng_) < options_.drop_share) {
    ++counters_.fault_dropped;
    return std::nullopt;
  }
  GossipIncoming in;
  if (options_.curve && via == GossipIncoming::Via::kRequest) in.peer_key = PeerKeyOf(body);
  in.via = via;
  in.from = std::move(from);
  in.message = std::move(decoded).value();
  in.bytes = body.size();
  return in;
}

std::optional<GossipIncoming> ZmqGossipTransport::Receive() {
  pub_limit_->Drain();
  router_limit_->Drain();
  // Sockets in a fixed order: SUB, ROUTER, then each DEALER; start where the last call left
  // off so that no socket starves the others.
  struct Source {
    zmq::socket_t* socket;
    GossipIncoming::Via via;
    const std::string* peer;
  };
  std::vector<Source> sources;
  sources.reserve(2 + dealers_.size());
  sources.push_back({&sub_, GossipIncoming::Via::kPublished, nullptr});
  sources.push_back({&router_, GossipIncoming::Via::kRequest, nullptr});
  for (auto& [peer, dealer] : dealers_) {
    sources.push_back({&dealer, GossipIncoming::Via::kReply, &peer});
  }
  for (std::size_t n = 0; n < sources.size(); ++n) {
    const std::size_t i = (next_socket_ + n) % sources.size();
    Source& s = sources[i];
    // Drain this socket until a good message turns up or it is empty.
    while (auto frames = ReadFrames(*s.socket)) {
      std::optional<GossipIncoming> in;
      if (s.via == GossipIncoming::Via::kRequest) {
        if (frames->size() != 2) {
          ++counters_.malformed;
          continue;
        }
        in = Accept(s.via, (*frames)[0].to_string(), (*frames)[1]);
      } else {
        if (frames->size() != 1) {
          ++counters_.malformed;
          continue;
        }
        in = Accept(s.via, s.peer ? *s.peer : std::string(), (*frames)[0]);
      }
      if (in) {
        next_socket_ = i + 1;
        return in;
      }
    }
  }
  return std::nullopt;
}

void ZmqGossipTransport::AppendPollItems(std::vector<zmq::pollitem_t>* items) {
  items->push_back({sub_.handle(), 0, ZMQ_POLLIN, 0});
  items->push_back({router_.handle(), 0, ZMQ_POLLIN, 0});
  items->push_back(pub_limit_->PollItem());  // connection events (Receive drains them)
  items->push_back(router_limit_->PollItem());
  for (auto& [peer, dealer] : dealers_) items->push_back({dealer.handle(), 0, ZMQ_POLLIN, 0});
}

}  // namespace clustermgr::net
