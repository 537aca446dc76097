#include "mgr/http/gateway.h"

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>

namespace clustermgr::mgr::http {
namespace {

using nlohmann::json;

// The predecessor answered everything as Go's default: sniffed plain text.
constexpr const char* kTextType = "text/plain; charset=utf-8";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
// The log stream: a type the server never compresses. Compressed chunks are held back until the
// compressor's buffer fills, so a client that accepts gzip (Go's does by default) would see a
// running job's lines only at its end.
constexpr const char* kStreamType = "application/octet-stream";

Status Bad(std::string text) { return Status(Code::kInvalidArgument, std::move(text)); }

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// As Go's http.Error: the text and a newline, plain text, not to be sniffed.
void Fail(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(text + "\n", kTextType);
}

void NotFound(httplib::Response& res) { Fail(res, 404, "404 page not found"); }

void SendJson(httplib::Response& res, const json& value) {
  res.status = 200;
  // Serf tags may hold bytes that are not UTF-8: replaced, never an exception.
  res.set_content(value.dump(-1, ' ', false, json::error_handler_t::replace), kTextType);
}

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

std::string SubjectOf(const SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string out;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  X509_free(cert);
  return out;
}

HttpCaller CallerOf(const httplib::Request& req) {
  if (req.ssl) {
    std::string subject = SubjectOf(req.ssl);
    if (!subject.empty()) return {HttpCaller::Kind::kCertificate, subject, req.remote_addr};
  }
  if (IsLoopbackHost(req.remote_addr)) return {HttpCaller::Kind::kLoopback, "", req.remote_addr};
  return {HttpCaller::Kind::kRemote, "", req.remote_addr};
}

const char* kTimeoutText =
    "clustermgrd did not answer in time: the request may or may not have taken effect";

}  // namespace

Result<HostPort> ParseBind(const std::string& bind) {
  std::string host = "127.0.0.1";
  std::string port = bind;
  if (!bind.empty() && bind[0] == '[') {
    const size_t close = bind.find("]:");
    if (close == std::string::npos) return Bad("--http-bind: expected [ADDRESS]:PORT: " + bind);
    host = bind.substr(1, close - 1);
    port = bind.substr(close + 2);
  } else if (const size_t colon = bind.rfind(':'); colon != std::string::npos) {
    host = bind.substr(0, colon);
    port = bind.substr(colon + 1);
    if (host.empty()) host = "127.0.0.1";
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535) {
    return Bad("--http-bind: expected ADDRESS:PORT with a port from 0 to 65535: " + bind);
  }
  return HostPort{host, std::stoi(port)};
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" ||
         host.rfind("::ffff:127.", 0) == 0;
}

Status CheckGatewayOptions(const GatewayOptions& o) {
  auto hp = ParseBind(o.bind);
  if (!hp.ok()) return hp.status();
  const int tls_files = !o.tls_cert.empty() + !o.tls_key.empty() + !o.client_ca.empty();
  if (tls_files != 0 && tls_files != 3) {
    return Bad(
        "--http-tls-cert, --http-tls-key and --http-client-ca go together (TLS with client "
        "certificates)");
  }
  if (!IsLoopbackHost(hp->host) && tls_files == 0 && !o.insecure) {
    return Bad("--http-bind " + o.bind +
               " is not a loopback address: give --http-tls-cert, --http-tls-key and "
               "--http-client-ca (clients must present certificates), or --http-insecure for "
               "plain HTTP that anyone who reaches the port may use");
  }
  return Status::Ok();
}

Gateway::Gateway(GatewayOptions options, Submit submit, CheckExtraVars check)
    : options_(std::move(options)),
      submit_(std::move(submit)),
      check_extra_vars_(std::move(check)) {}

Gateway::~Gateway() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (server_) server_->stop();
  if (listener_.joinable()) listener_.join();
}

std::string Gateway::url() const { return (tls_ ? "https://" : "http://") + address_; }

Result<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options, Submit submit,
                                                CheckExtraVars check_extra_vars) {
  if (Status s = CheckGatewayOptions(options); !s.ok()) return s;
  const HostPort hp = ParseBind(options.bind).value();
  std::unique_ptr<Gateway> g(
      new Gateway(std::move(options), std::move(submit), std::move(check_extra_vars)));
  const GatewayOptions& o = g->options_;
  if (!o.tls_cert.empty()) {
    std::string error;
    auto server = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      ERR_clear_error();
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      if (SSL_CTX_use_certificate_chain_file(&ctx, o.tls_cert.c_str()) != 1) {
        error = "--http-tls-cert " + o.tls_cert + ": " + OpenSslError();
      } else if (SSL_CTX_use_PrivateKey_file(&ctx, o.tls_key.c_str(), SSL_FILETYPE_PEM) != 1) {
        error = "--http-tls-key " + o.tls_key + ": " + OpenSslError();
      } else if (SSL_CTX_check_private_key(&ctx) != 1) {
        error = "--http-tls-key does not match --http-tls-cert: " + OpenSslError();
      } else if (SSL_CTX_load_verify_locations(&ctx, o.client_ca.c_str(), nullptr) != 1) {
        error = "--http-client-ca " + o.client_ca + ": " + OpenSslError();
      }
      if (!error.empty()) return false;
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca.c_str())) {
        SSL_CTX_set_client_CA_list(&ctx, names);
      }
      // No certificate, or one the CA did not sign: the handshake fails.
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      return true;
    });
    if (!server->is_valid()) {
      return Bad(error.empty() ? "TLS set-up failed: " + OpenSslError() : error);
    }
    g->server_ = std::move(server);
    g->tls_ = true;
  } else {
    g->server_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& server = *g->server_;
  const int threads = std::max(2, o.threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_payload_max_length(kMaxBodyBytes);
  server.set_read_timeout(10, 0);
  // A keep-alive connection holds a worker while idle: keep that short, reuse it for many calls.
  server.set_keep_alive_timeout(2);
  server.set_keep_alive_max_count(1000);
  server.set_tcp_nodelay(true);  // a reply's header and body go out at once, not after an ACK
  server.set_write_timeout(10, 0);
  g->Routes();
  int port = hp.port;
  if (port == 0) {
    port = server.bind_to_any_port(hp.host);
    if (port < 0) port = 0;
  } else if (!server.bind_to_port(hp.host, port)) {
    port = 0;
  }
  if (port == 0) {
    return Status(Code::kUnavailable, "cannot bind --http-bind " + o.bind +
                                          ": the address is in use or not available here");
  }
  const bool v6 = hp.host.find(':') != std::string::npos;
  g->address_ = (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(port);
  Gateway* self = g.get();
  g->listener_ = std::thread([self] { self->server_->listen_after_bind(); });
  // stop() only stops a server that runs: wait for it, so the destructor cannot miss it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return g;
}

void Gateway::Complete(std::uint64_t id, Answer answer) {
  {
    MutexLock lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second) return;
    it->second = std::move(answer);
  }
  cv_.notify_all();
}

std::optional<Answer> Gateway::Ask(HttpCaller caller, http::Ask ask,
                                   std::chrono::milliseconds timeout) {
  Call call;
  call.reply_to.gateway = true;
  call.caller = std::move(caller);
  call.ask = std::move(ask);
  {
    MutexLock lock(mu_);
    if (stopping_) return std::nullopt;
    call.reply_to.request_id = next_id_++;
    pending_[call.reply_to.request_id];
  }
  const std::uint64_t id = call.reply_to.request_id;
  submit_(std::move(call));
  MutexLock lock(mu_);
  cv_.wait_for(lock.native(), timeout,
               [&]() REQUIRES(mu_) { return stopping_ || pending_[id].has_value(); });
  auto node = pending_.extract(id);
  return std::move(node.mapped());
}

std::optional<net::RpcReply> Gateway::AskRpc(HttpCaller caller, net::RpcRequest request,
                                             std::chrono::milliseconds timeout) {
  auto answer = Ask(std::move(caller), std::move(request), timeout);
  if (!answer) return std::nullopt;
  if (auto* reply = std::get_if<net::RpcReply>(&*answer)) return std::move(*reply);
  return net::RpcReply::Error(Code::kInternal, "unexpected answer from the event loop");
}

void Gateway::Routes() {
  RouteFilters();
  PostRoutes();
  GetRoutes();
  StreamAndProbeRoutes();
}

void Gateway::RouteFilters() {
  httplib::Server& s = *server_;
  s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    // The predecessor's router: an unclean path is redirected to its clean form.
    const std::string clean = CleanPath(req.path);
    if (clean != req.path) {
      const size_t q = req.target.find('?');
      res.set_redirect(clean + (q == std::string::npos ? "" : req.target.substr(q)), 301);
      return httplib::Server::HandlerResponse::Handled;
    }
    // Routes match on method, and POST routes on `Content-Type: application/json` exactly.
    if ((req.method != "GET" && req.method != "HEAD" && req.method != "POST") ||
        (req.method == "POST" && req.get_header_value("Content-Type") != "application/json")) {
      NotFound(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404 && res.body.empty()) NotFound(res);
    if (res.status == 413 && res.body.empty()) {
      Fail(res, 413,
           "request body too large: the limit is " + std::to_string(kMaxBodyBytes) + " bytes");
    }
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    Fail(res, 500, "internal error");
  });
}

void Gateway::PostRoutes() {
  httplib::Server& s = *server_;
  const auto timeout = options_.call_timeout;
  // Every POST: decode the body, apply the extra_vars rule, then the route's own step.
  using PostFn =
      std::function<void(const ApiRequest&, const HttpCaller& caller, httplib::Response&)>;
  auto post = [this, &s](const std::string& path, PostFn fn) {
    s.Post(path, [this, fn](const httplib::Request& req, httplib::Response& res) {
      auto parsed = ParseApiRequest(req.body);
      if (!parsed.ok()) return Fail(res, 500, parsed.status().message());
      ApiRequest r = std::move(parsed).value();
      r.extra_vars = BlankExtraVarsAsEmptyObject(r.extra_vars);
      if (std::string e = check_extra_vars_(r.extra_vars); !e.empty()) return Fail(res, 500, e);
      fn(r, CallerOf(req), res);
    });
  };
  // A request answered by success (200, empty body) or its error text (500).
  auto mutate = [this, timeout](const HttpCaller& caller, net::RpcRequest request,
                                httplib::Response& res) {
    auto reply = AskRpc(caller, std::move(request), timeout);
    if (!reply) return Fail(res, 500, kTimeoutText);
    if (reply->code != Code::kOk) return Fail(res, 500, reply->message);
    res.status = 200;
  };

  post("/commission/nodes", [mutate](const ApiRequest& r, const HttpCaller& c, auto& res) {
    mutate(c, net::CommissionRequest{r.nodes, r.host_group, r.extra_vars}, res);
  });
  post("/decommission/nodes", [mutate](const ApiRequest& r, const HttpCaller& c, auto& res) {
    mutate(c, net::DecommissionRequest{r.nodes, r.extra_vars}, res);
  });
  post("/update/nodes", [mutate](const ApiRequest& r, const HttpCaller& c, auto& res) {
    mutate(c, net::UpdateRequest{r.nodes, r.host_group, r.extra_vars}, res);
  });
  post("/discover/nodes", [mutate](const ApiRequest& r, const HttpCaller& c, auto& res) {
    mutate(c, net::DiscoverRequest{r.addrs, r.extra_vars}, res);
  });
  post("/globals", [mutate](const ApiRequest& r, const HttpCaller& c, auto& res) {
    mutate(c, net::GlobalSetRequest{r.extra_vars}, res);
  });
  post("/config", [this, mutate](const ApiRequest& r, const HttpCaller& c, auto& res) {
    auto doc = ConfigSetFromLegacy(r.config, options_.fixed);
    if (!doc.ok()) return Fail(res, 500, doc.status().message());
    mutate(c, net::ConfigSetRequest{doc.value()}, res);
  });
  post("/monitor/event", [this](const ApiRequest& r, const HttpCaller& c, auto& res) {
    const std::string name = r.monitor_event ? r.monitor_event->name : "";
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    if (lower != "discovered" && lower != "disappeared") {
      return Fail(res, 500, "Invalid or empty event name specified: " + json(name).dump());
    }
    // Not waited for: the event is queued, its processing errors are logged.
    Call call;
    call.reply_to.gateway = true;  // request_id 0: no answer wanted
    call.caller = c;
    call.ask = MonitorEvent{lower == "disappeared", r.monitor_event->nodes};
    submit_(std::move(call));
    res.status = 200;
  });
}

void Gateway::GetRoutes() {
  httplib::Server& s = *server_;
  const auto timeout = options_.call_timeout;
  // GETs: a read through the loop, encoded in the predecessor's shape.
  auto get =
      [this, &s, timeout](
          const std::string& pattern,
          std::function<std::optional<net::RpcRequest>(const httplib::Request&, httplib::Response&)>
              to_request,
          std::function<void(const net::RpcReply&, httplib::Response&)> out) {
        s.Get(pattern, [this, timeout, to_request, out](const httplib::Request& req,
                                                        httplib::Response& res) {
          std::optional<net::RpcRequest> request = to_request(req, res);
          if (!request) return;  // answered already
          auto reply = AskRpc(CallerOf(req), std::move(*request), timeout);
          if (!reply) return Fail(res, 500, kTimeoutText);
          if (reply->code != Code::kOk) return Fail(res, 500, reply->message);
          out(*reply, res);
        });
      };
  get(R"(/info/node/([^/]+))",
      [](const httplib::Request& req, auto&) -> std::optional<net::RpcRequest> {
        return net::NodeGetRequest{Trim(req.matches[1])};
      },
      [](const net::RpcReply& r, auto& res) {
        SendJson(res, NodeJson(std::get<net::NodeInfo>(r.payload)));
      });
  get(
      "/info/nodes",
      [](const auto&, auto&) -> std::optional<net::RpcRequest> { return net::NodesGetRequest{}; },
      [](const net::RpcReply& r, auto& res) {
        res.status = 200;
        res.set_content(NodesJsonText(std::get<net::NodeList>(r.payload)), kTextType);
      });
  get(
      "/info/globals",
      [](const auto&, auto&) -> std::optional<net::RpcRequest> { return net::GlobalGetRequest{}; },
      [](const net::RpcReply& r, auto& res) {
        SendJson(res, GlobalsJson(std::get<net::JsonText>(r.payload).text));
      });
  get(R"(/info/job/([^/]+))",
      [](const httplib::Request& req, auto& res) -> std::optional<net::RpcRequest> {
        const std::string label = Trim(req.matches[1]);
        if (!IsJobLabel(label)) {
          Fail(res, 500, BadJobLabelText(label));
          return std::nullopt;
        }
        return net::JobGetRequest{label};
      },
      [](const net::RpcReply& r, auto& res) {
        SendJson(res, JobJson(std::get<net::JobDetail>(r.payload)));
      });
  get(
      "/config",
      [](const auto&, auto&) -> std::optional<net::RpcRequest> { return net::ConfigGetRequest{}; },
      [this](const net::RpcReply& r, auto& res) {
        auto legacy = LegacyConfigJson(std::get<net::JsonText>(r.payload).text, options_.fixed);
        if (!legacy.ok()) return Fail(res, 500, legacy.status().message());
        SendJson(res, legacy.value());
      });
}

void Gateway::StreamAndProbeRoutes() {
  httplib::Server& s = *server_;
  const auto timeout = options_.call_timeout;
  // The job's log from the moment the client attached, streamed until the job ends.
  s.Get(R"(/info/logs/([^/]+))",
        [this, timeout](const httplib::Request& req, httplib::Response& res) {
          const std::string label = Trim(req.matches[1]);
          if (!IsJobLabel(label)) return Fail(res, 500, BadJobLabelText(label));
          const HttpCaller caller = CallerOf(req);
          auto reply = AskRpc(caller, net::JobGetRequest{label}, timeout);
          if (!reply) return Fail(res, 500, kTimeoutText);
          if (reply->code != Code::kOk) return Fail(res, 500, reply->message);
          const net::JobInfo& job = std::get<net::JobDetail>(reply->payload).job;
          if (job.status != net::JobStatus::kRunning) return Fail(res, 500, "job is not Running");
          const auto wait = options_.follow_wait;
          res.set_chunked_content_provider(
              kStreamType, [this, caller, wait, timeout, id = job.id, next = job.log_line_count](
                               size_t, httplib::DataSink& sink) mutable {
                if (sink.is_writable && !sink.is_writable()) return false;
                net::JobLogFollowRequest follow{id, next, static_cast<std::uint32_t>(wait.count())};
                auto chunk_reply = AskRpc(caller, follow, wait + timeout);
                if (!chunk_reply || chunk_reply->code != Code::kOk) {
                  sink.done();  // stopping, or the job is gone: end the stream
                  return true;
                }
                const auto& chunk = std::get<net::JobLogChunk>(chunk_reply->payload);
                std::string text;
                for (const std::string& line : chunk.lines) text += line + "\n";
                if (!text.empty() && !sink.write(text.data(), text.size())) return false;
                next = chunk.first_line + chunk.lines.size();
                if (chunk.ended) sink.done();
                return true;
              });
        });

  s.Get("/metrics", [this, timeout](const httplib::Request& req, httplib::Response& res) {
    auto answer = Ask(CallerOf(req), MetricsScrape{}, timeout);
    if (auto* refused = answer ? std::get_if<net::RpcReply>(&*answer) : nullptr) {
      return Fail(res, 403, refused->message);  // the caller's role may not read metrics
    }
    auto* families = answer ? std::get_if<std::vector<MetricFamily>>(&*answer) : nullptr;
    if (!families) return Fail(res, 503, "clustermgrd did not answer in time");
    res.status = 200;
    res.set_content(RenderPrometheusText(*families), kMetricsType);
  });
  auto health = [this](bool readiness) {
    return [this, readiness](const httplib::Request& req, httplib::Response& res) {
      auto answer = Ask(CallerOf(req), HealthProbe{readiness}, std::chrono::seconds(5));
      auto* h = answer ? std::get_if<Health>(&*answer) : nullptr;
      if (!h) return Fail(res, 503, "not alive: the event loop did not answer within 5 s");
      if (!h->ok) return Fail(res, 503, h->reason);
      res.status = 200;
      res.set_content(readiness ? "ready\n" : "ok\n", kTextType);
    };
  };
  s.Get("/healthz", health(false));
  s.Get("/readyz", health(true));
}

}  // namespace clustermgr::mgr::http
