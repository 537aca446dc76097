#include "mgr/forwarder.h"

#include "mgr/log.h"

namespace clustermgr::mgr {

Forwarder::Forwarder(std::string self, Post post)
    : self_(std::move(self)), post_(std::move(post)), thread_([this] { Run(); }) {}

Forwarder::~Forwarder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Forwarder::Forward(net::ReplyTo to, net::RpcRequest request, std::string endpoint,
                        std::string holder) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back({std::move(to), std::move(request), std::move(endpoint), std::move(holder)});
  }
  cv_.notify_all();
}

void Forwarder::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    auto& client = clients_[job.endpoint];
    if (!client) {
      net::RpcClient::Options options;
      options.forwarded_by = self_;
      client = std::make_unique<net::RpcClient>(job.endpoint, options, &context_);
    }
    CM_LOG(kDebug) << "forwarding " << net::OperationName(job.request) << " to " << job.holder
                   << " at " << job.endpoint;
    auto result = client->Call(job.request);
    net::RpcReply reply;
    if (result.ok()) {
      reply = std::move(result).value();
    } else {
      reply =
          net::RpcReply::Error(result.error().code, "forwarding to the token holder " + job.holder +
                                                        " failed: " + result.error().message);
      clients_.erase(job.endpoint);  // a fresh socket next time
    }
    post_(ForwardedReply{std::move(job.to), std::move(reply)});
  }
}

}  // namespace clustermgr::mgr
