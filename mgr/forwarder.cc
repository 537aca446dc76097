#include "mgr/forwarder.h"

#include "mgr/log/log.h"

namespace clustermgr::mgr {

Forwarder::Forwarder(std::string self, Post post, std::optional<net::CurveKeyPair> curve)
    : self_(std::move(self)),
      post_(std::move(post)),
      curve_(std::move(curve)),
      thread_([this] { Run(); }) {}

Forwarder::~Forwarder() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Forwarder::Forward(net::ReplyTo to, net::RpcRequest request, std::string endpoint,
                        std::string holder, std::string server_key, net::Caller caller) {
  {
    MutexLock lock(mu_);
    jobs_.push_back({std::move(to), std::move(request), std::move(endpoint), std::move(holder),
                     std::move(server_key), std::move(caller)});
  }
  cv_.notify_all();
}

void Forwarder::Run() {
  for (;;) {
    Job job;
    {
      MutexLock lock(mu_);
      cv_.wait(lock.native(), [this]() REQUIRES(mu_) { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (curve_ && job.server_key.empty()) {
      post_(ForwardedReply{
          std::move(job.to),
          net::RpcReply::Error(Code::kUnavailable,
                               "cannot forward to the token holder " + job.holder +
                                   ": its CURVE public key is unknown (list it in --curve-peers "
                                   "or let Serf publish its curve= tag)"),
          std::move(job.caller), std::move(job.request), true});
      continue;
    }
    const std::string client_id = job.endpoint + " " + job.server_key;
    auto& client = clients_[client_id];
    if (!client) {
      net::RpcClient::Options options;
      options.forwarded_by = self_;
      if (curve_) options.curve = net::CurveClientConfig{job.server_key, *curve_};
      client = std::make_unique<net::RpcClient>(job.endpoint, options, &context_);
    }
    CM_LOG(kDebug) << "forwarding " << net::OperationName(job.request) << " to " << job.holder
                   << " at " << job.endpoint;
    const net::ForwardedCaller caller{job.caller.key, job.caller.name,
                                      std::string(net::RoleName(job.caller.role))};
    auto result = client->Call(job.request, std::chrono::milliseconds(0), caller);
    net::RpcReply reply;
    const bool undelivered = !result.ok();
    if (result.ok()) {
      reply = std::move(result).value();
    } else {
      reply = net::RpcReply::Error(
          result.status().code(),
          "forwarding to the token holder " + job.holder + " failed: " + result.status().message());
      clients_.erase(client_id);  // a fresh socket next time
    }
    post_(ForwardedReply{std::move(job.to), std::move(reply), std::move(job.caller),
                         std::move(job.request), undelivered});
  }
}

}  // namespace clustermgr::mgr
