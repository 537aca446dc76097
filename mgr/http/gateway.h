// Gateway: clustermgrd's HTTP server (cpp-httplib). It serves the predecessor's REST API
// (rest_api.h, docs/http-api.md), GET /metrics, /healthz and /readyz.
//
// It owns no daemon state. Each request becomes a Call (the same net::RpcRequest the RPC path
// uses, or a metrics scrape, a health probe, a monitor event) that carries the caller's identity
// and is handed to the daemon's event loop through `submit`; the HTTP worker thread then waits
// for the loop's Answer, which the loop delivers with Complete(). Side effects therefore take the
// RPC path: validation, forwarding to the token holder, logging of mutations with the caller.
//
// Security: a non-loopback address needs TLS with client certificates (tls_cert, tls_key,
// client_ca: a client must present a certificate signed by client_ca) or `insecure`; see
// CheckGatewayOptions. Every call names its caller (http_caller.h: a TLS client certificate's
// subject, or a plain loopback or remote address); the loop decides the caller's role from it
// (ResolveCaller). Request bodies above kMaxBodyBytes are refused unread (413).
//
// Threading: the server runs its own threads (an acceptor and a pool of workers). Start(),
// Complete() and the destructor are thread-safe. `submit` is called on worker threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "base/mutex.h"
#include "base/status.h"
#include "mgr/http/http_caller.h"
#include "mgr/http/metrics.h"
#include "mgr/http/rest_api.h"
#include "net/rpc_server.h"
#include "net/rpc_types.h"

namespace httplib {
class Server;
}

namespace clustermgr::mgr::http {

struct GatewayOptions {
  std::string bind;       // "HOST:PORT", "PORT" (loopback) or "[V6]:PORT"; port 0 picks a free one
  std::string tls_cert;   // PEM certificate chain; with tls_key and client_ca: HTTPS
  std::string tls_key;    // PEM private key
  std::string client_ca;  // PEM CA certificate(s) that client certificates must chain to
  bool insecure = false;  // allow plain HTTP on a non-loopback address
  FixedConfig fixed;      // the configuration sections GET /config shows besides "ansible"
  // How long a worker waits for the event loop's answer.
  std::chrono::milliseconds call_timeout{60'000};
  // How long one wait for new job log lines lasts while streaming /info/logs/{job}.
  std::chrono::milliseconds follow_wait{5'000};
  // Worker threads: a streaming log request holds one while it streams, an idle keep-alive
  // connection for up to 2 s.
  int threads = 16;
};

// The host and port of `bind`. Errors (kInvalidArgument): no port, a port out of range.
struct HostPort {
  std::string host;
  int port = 0;
};
Result<HostPort> ParseBind(const std::string& bind);
bool IsLoopbackHost(const std::string& host);

// The option rules: TLS files all or none; a non-loopback address only with TLS or insecure.
// Errors (kInvalidArgument, one line naming the options).
Status CheckGatewayOptions(const GatewayOptions& options);

// What the loop is asked.
struct MetricsScrape {};
struct HealthProbe {
  bool readiness = false;  // false: liveness (/healthz), true: /readyz
};
struct MonitorEvent {  // POST /monitor/event, validated
  bool disappeared = false;
  std::vector<MonitorNode> nodes;
};
using Ask = std::variant<net::RpcRequest, MetricsScrape, HealthProbe, MonitorEvent>;

struct Call {
  net::ReplyTo reply_to;  // gateway = true, request_id = the call's id: give it to Complete()
  HttpCaller caller;      // see the header comment
  Ask ask;
};

// What the loop answers: an RPC reply (for a net::RpcRequest and a MonitorEvent, or a refusal of
// a MetricsScrape by a caller without a role), the metric families (MetricsScrape), or a health
// verdict (HealthProbe; `reason` one line when not ok).
struct Health {
  bool ok = true;
  std::string reason;
};
using Answer = std::variant<net::RpcReply, std::vector<MetricFamily>, Health>;

class Gateway {
 public:
  using Submit = std::function<void(Call)>;
  // Returns "" for valid extra-vars text, else the error line.
  using CheckExtraVars = std::function<std::string(std::string_view)>;

  // Binds and starts serving. Errors: kInvalidArgument (CheckGatewayOptions; unreadable or
  // mismatched TLS files, with OpenSSL's reason), kUnavailable (the address cannot be bound).
  static Result<std::unique_ptr<Gateway>> Start(GatewayOptions options, Submit submit,
                                                CheckExtraVars check_extra_vars);
  // Stops serving; calls still waiting are answered "clustermgrd is stopping".
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // "HOST:PORT" actually bound (the real port).
  const std::string& address() const { return address_; }
  bool tls() const { return tls_; }
  // The base URL: "http://127.0.0.1:9007" or "https://...".
  std::string url() const;

  // Thread-safe: the answer to the call whose reply_to.request_id is `id`. An answer to a call
  // that gave up waiting is dropped.
  void Complete(std::uint64_t id, Answer answer);

 private:
  struct Pending;
  Gateway(GatewayOptions options, Submit submit, CheckExtraVars check);
  void Routes();
  // The parts of Routes(): path cleaning, method and content-type filters, error handlers; the
  // POST routes; the GET routes; the job log stream, /metrics, /healthz and /readyz.
  void RouteFilters();
  void PostRoutes();
  void GetRoutes();
  void StreamAndProbeRoutes();
  // Submits and waits; nullopt when the loop did not answer within `timeout` or on stop.
  std::optional<Answer> Ask(HttpCaller caller, http::Ask ask, std::chrono::milliseconds timeout);
  std::optional<net::RpcReply> AskRpc(HttpCaller caller, net::RpcRequest request,
                                      std::chrono::milliseconds timeout);

  GatewayOptions options_;
  Submit submit_;
  CheckExtraVars check_extra_vars_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  std::string address_;
  bool tls_ = false;

  Mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, std::optional<Answer>> pending_ GUARDED_BY(mu_);
  std::uint64_t next_id_ GUARDED_BY(mu_) = 1;
  bool stopping_ GUARDED_BY(mu_) = false;
};

}  // namespace clustermgr::mgr::http
