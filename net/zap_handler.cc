#include "net/zap_handler.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "net/curve_keys.h"

namespace clustermgr::net {
namespace {

constexpr std::int64_t kLogEverySeconds = 60;
// Bounds the rate limiter's memory against a flood of fresh keys.
constexpr std::size_t kMaxRememberedKeys = 4096;

std::int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Z85(const zmq::message_t& raw) {
  if (raw.size() != 32) return std::string();
  char text[kZ85KeyLength + 1] = {};
  if (zmq_z85_encode(text, static_cast<const uint8_t*>(raw.data()), 32) == nullptr) return {};
  return text;
}

}  // namespace

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context, Policy policy,
                                                      Log log) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::rep);
    socket.set(zmq::sockopt::linger, 0);
    try {
      socket.bind(kZapEndpoint);
    } catch (const zmq::error_t& e) {
      return Status(Code::kUnavailable, std::string("cannot bind the ZAP handler at ") +
                                            kZapEndpoint + ": " + e.what());
    }
    Result<EventFd> stop = EventFd::Create();
    if (!stop.ok()) return stop.status();
    return std::unique_ptr<ZapHandler>(new ZapHandler(std::move(socket), std::move(policy),
                                                      std::move(log), std::move(stop).value()));
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("cannot create the ZAP socket: ") + e.what());
  }
}

ZapHandler::ZapHandler(zmq::socket_t socket, Policy policy, Log log, EventFd stop)
    : socket_(std::move(socket)),
      policy_(std::move(policy)),
      log_(std::move(log)),
      stop_(std::move(stop)),
      thread_([this] { Run(); }) {}

ZapHandler::~ZapHandler() {
  stop_.Signal();
  thread_.join();
}

bool ZapHandler::Admit(const std::string& domain, const std::string& mechanism,
                       const std::string& key) {
  if (mechanism != "CURVE" || key.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (domain == kZapDomainRpc) return policy_.rpc_keys.count(key) > 0;
  if (domain == kZapDomainGossip) return policy_.gossip_keys.count(key) > 0;
  return false;
}

void ZapHandler::SetPolicy(Policy policy) {
  std::lock_guard<std::mutex> lock(mu_);
  policy_ = std::move(policy);
}

void ZapHandler::LogDenied(const std::string& domain, const std::string& mechanism,
                           const std::string& key, const std::string& address) {
  if (!log_) return;
  const std::string who = key.empty() ? mechanism + "@" + address : key;
  const std::int64_t now = NowSeconds();
  auto it = last_logged_s_.find(who);
  if (it != last_logged_s_.end() && now - it->second < kLogEverySeconds) return;
  if (last_logged_s_.size() >= kMaxRememberedKeys) last_logged_s_.clear();
  last_logged_s_[who] = now;
  std::string line = "refused a " + mechanism + " connection from " + address + " to the " +
                     (domain.empty() ? std::string("(no domain)") : domain) + " endpoint";
  if (!key.empty()) {
    line += ": key " + key + " is not in the " +
            std::string(domain == kZapDomainGossip ? "--curve-peers"
                                                   : "--curve-clients/--curve-peers") +
            " list";
  }
  line += " (logged once a minute per key)";
  log_(line);
}

void ZapHandler::Run() {
  for (;;) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, stop_.fd(), ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return;  // the context is terminating
    }
    if (items[1].revents & ZMQ_POLLIN) return;
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    try {
      // version, request id, domain, address, routing id, mechanism, credentials...
      std::vector<zmq::message_t> frames;
      for (bool more = true; more;) {
        zmq::message_t part;
        if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
        more = part.more();
        if (frames.size() < 8) frames.push_back(std::move(part));
      }
      // REP must answer every request, even one that is not ZAP (libzmq never sends those).
      frames.resize(std::max<std::size_t>(frames.size(), 6));
      const std::string version = frames[0].to_string();
      const std::string domain = frames[2].to_string();
      const std::string address = frames[3].to_string();
      const std::string mechanism = frames[5].to_string();
      const std::string key =
          mechanism == "CURVE" && frames.size() >= 7 ? Z85(frames[6]) : std::string();
      const bool ok = version == "1.0" && Admit(domain, mechanism, key);
      if (ok) {
        ++admitted_;
      } else {
        ++denied_;
        LogDenied(domain, mechanism, key, address);
      }
      const auto more = zmq::send_flags::sndmore;
      socket_.send(zmq::str_buffer("1.0"), more);
      socket_.send(frames[1], more);  // request id
      socket_.send(zmq::buffer(std::string(ok ? "200" : "400")), more);
      socket_.send(zmq::buffer(std::string(ok ? "OK" : "key not allowed")), more);
      socket_.send(zmq::buffer(ok ? key : std::string()), more);
      socket_.send(zmq::message_t(), zmq::send_flags::none);  // no metadata
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
    }
  }
}

}  // namespace clustermgr::net
