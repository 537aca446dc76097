// The RPC endpoints one `clustermgr` run may use, tried in order (`-u A,B,C`).
//
// A call goes to the endpoint that answered last (the first one to begin with). When its request
// could not be delivered (no connection came up), or a read-only request got no answer, the
// call moves on to the next endpoint; a request with side effects that was sent but not answered
// is never resent elsewhere (its outcome is unknown). Endpoints are written `tcp://host:port`,
// `ipc://path` or `inproc://name`; `host:port` means `tcp://host:port`.
//
// Thread-safety: none (one RpcClient per endpoint, used by the calling thread).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "net/rpc_client.h"

namespace clustermgr::cli {

// Splits -u values (and $CLUSTERMGR_URL) at commas and normalizes each endpoint. Errors: an empty
// list or item, or an endpoint that is not `scheme://...` with a known scheme nor `host:port`;
// `error` names it and the result is empty.
std::vector<std::string> ParseEndpoints(const std::vector<std::string>& values, std::string& error);

class Endpoints {
 public:
  // `urls` must not be empty. `connect_timeout`: see RpcClient::set_connect_timeout.
  Endpoints(std::vector<std::string> urls, net::RpcClient::Options options,
            std::optional<std::chrono::milliseconds> connect_timeout = std::nullopt);

  // Runs `call(client)` (returning an RpcResult) as described above. When every endpoint failed
  // to answer, the error says so for each.
  template <typename F>
  std::invoke_result_t<F, net::RpcClient&> Call(F&& call) {
    std::string unreachable;
    for (std::size_t tried = 1;; ++tried) {
      net::RpcClient& client = ClientAt(current_);
      auto result = call(client);
      delivery_ = client.last_delivery();
      if (delivery_ == net::RpcClient::Delivery::kAnswered) answered_ = urls_[current_];
      if (result.ok() || !MayTryNext(result.status()) || tried >= urls_.size()) {
        if (!result.ok() && !unreachable.empty()) {
          return Status(result.status().code(),
                             unreachable + "; " + result.status().message());
        }
        return result;
      }
      unreachable += (unreachable.empty() ? "" : "; ") + result.status().message();
      skipped_.push_back(result.status().message());
      current_ = (current_ + 1) % urls_.size();
    }
  }

  std::size_t size() const { return urls_.size(); }
  std::chrono::milliseconds timeout() const { return options_.timeout; }
  // The endpoint that answered the latest call; empty while none has.
  const std::string& answered() const { return answered_; }
  // What became of the latest call's request at the endpoint that had it last.
  net::RpcClient::Delivery last_delivery() const { return delivery_; }
  // Why endpoints were passed over so far (one message each).
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  bool MayTryNext(const Status& error) const;
  net::RpcClient& ClientAt(std::size_t index);

  std::vector<std::string> urls_;
  net::RpcClient::Options options_;
  std::optional<std::chrono::milliseconds> connect_timeout_;
  std::vector<std::unique_ptr<net::RpcClient>> clients_;  // created on first use
  std::size_t current_ = 0;
  std::string answered_;
  net::RpcClient::Delivery delivery_ = net::RpcClient::Delivery::kNotSent;
  std::vector<std::string> skipped_;
};

}  // namespace clustermgr::cli
