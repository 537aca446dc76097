// Forwarder: relays side-effecting requests to the token holder.
//
// A commission (or decommission, update, discover, job cancel) sent to an instance that does not
// hold the token is sent on to the holder's RPC endpoint, marked forwarded so that it is never
// forwarded twice, and the holder's reply is relayed to the client. The call blocks for up to
// its timeout, so it runs on the forwarder's own thread; the reply comes back to the event loop
// through the `post` callback. A forward whose reply does not come back in time is reported as
// kOutcomeUnknown: the holder may have started the job.
//
// Thread-safety: Forward() is called by the event loop; `post` is called on the forwarder thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "base/mutex.h"
#include "net/access.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/rpc_types.h"

namespace clustermgr::mgr {

struct ForwardedReply {
  net::ReplyTo to;
  net::RpcReply reply;
  net::Caller caller;        // whom the request was forwarded for
  net::RpcRequest request;   // what was forwarded
  bool undelivered = false;  // the holder was not reached or did not answer (the reply says why)
};

class Forwarder {
 public:
  using Post = std::function<void(ForwardedReply)>;

  // `self` is this instance's name, sent as the request's forwardedBy. `curve`: this instance's
  // key pair, used as CURVE client key towards holders (unset: plain TCP).
  Forwarder(std::string self, Post post, std::optional<net::CurveKeyPair> curve = std::nullopt);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Queues `request` for `endpoint`; its reply is posted later, in order. Over CURVE,
  // `server_key` is the holder's public key; an empty one is answered with kUnavailable.
  // `caller` travels with the request (Request.callerKey/Name/Role) for the holder to judge.
  void Forward(net::ReplyTo to, net::RpcRequest request, std::string endpoint, std::string holder,
               std::string server_key = "", net::Caller caller = {});

 private:
  struct Job {
    net::ReplyTo to;
    net::RpcRequest request;
    std::string endpoint;
    std::string holder;
    std::string server_key;
    net::Caller caller;
  };
  void Run();

  const std::string self_;
  const Post post_;
  const std::optional<net::CurveKeyPair> curve_;
  zmq::context_t context_;
  std::map<std::string, std::unique_ptr<net::RpcClient>>
      clients_;  // by endpoint+key; forwarder thread
  Mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace clustermgr::mgr
