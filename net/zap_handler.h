// ZapHandler: the ZAP (ZeroMQ RFC 27) authenticator of an instance's CURVE servers. It owns a
// REP socket bound at inproc://zeromq.zap.01 in the instance's context and a thread answering
// libzmq's authentication requests, so it must be started before any CURVE server socket of
// that context accepts a connection (libzmq lets every client in when no handler is bound).
//
// Policy: a CURVE client is admitted when its public key is listed for the server's ZAP domain
// (ZMQ_ZAP_DOMAIN, see net/curve_keys.h): domain "rpc" admits Policy::rpc_keys, domain
// "gossip" Policy::gossip_keys; every other domain and mechanism is denied. An admitted
// connection gets its key (Z85) as ZAP User-Id, so servers read who sent a message with
// PeerKeyOf. A denied key is reported to `log` at most once per key per minute.
//
// The policy may be replaced while the handler runs (SetPolicy, e.g. after the allow-lists were
// re-read): it judges every handshake from then on. Connections admitted before stay up; their
// owner checks each message's key against its own current lists.
//
// Thread-safety: Start/destructor from one thread; SetPolicy from any thread; `log` is called on
// the handler's thread. Counters are atomics, readable from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "base/event_fd.h"
#include "base/status.h"

namespace clustermgr::net {

inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

class ZapHandler {
 public:
  struct Policy {
    std::set<std::string> rpc_keys;            // Z85 keys admitted by the RPC server
    std::set<std::string> gossip_keys;         // Z85 keys admitted by the gossip PUB and ROUTER
    std::map<std::string, std::string> names;  // optional labels for log lines
  };
  using Log = std::function<void(const std::string& line)>;

  // Binds the ZAP endpoint in `context` (which must outlive the handler) and starts the thread.
  // Errors: kUnavailable (another handler is bound in this context), kInternal.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context, Policy policy, Log log);
  ~ZapHandler();  // stops and joins the thread
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  void SetPolicy(Policy policy);

  std::uint64_t admitted() const { return admitted_; }
  std::uint64_t denied() const { return denied_; }

 private:
  ZapHandler(zmq::socket_t socket, Policy policy, Log log, EventFd stop);
  void Run();
  // The decision for one request; fills the reply's status and user id.
  bool Admit(const std::string& domain, const std::string& mechanism, const std::string& key);
  void LogDenied(const std::string& domain, const std::string& mechanism, const std::string& key,
                 const std::string& address);

  zmq::socket_t socket_;  // handler thread only (after Start)
  std::mutex mu_;
  Policy policy_;  // guarded by mu_
  const Log log_;
  const EventFd stop_;                                 // the destructor wakes the thread to end it
  std::map<std::string, std::int64_t> last_logged_s_;  // handler thread only
  std::atomic<std::uint64_t> admitted_{0};
  std::atomic<std::uint64_t> denied_{0};
  std::thread thread_;
};

}  // namespace clustermgr::net
