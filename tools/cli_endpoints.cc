#include "tools/cli_endpoints.h"

#include <sstream>

namespace clustermgr::cli {

std::vector<std::string> ParseEndpoints(const std::vector<std::string>& values,
                                        std::string& error) {
  std::vector<std::string> out;
  for (const auto& value : values) {
    std::stringstream in(value);
    std::string item;
    bool any = false;
    while (std::getline(in, item, ',')) {
      any = true;
      if (item.empty()) {
        error = "empty endpoint in \"" + value + "\"";
        return {};
      }
      const auto scheme = item.find("://");
      if (scheme == std::string::npos) {
        // clusterctl's form: host:port.
        const auto colon = item.rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == item.size() ||
            item.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
          error = "endpoint \"" + item + "\" is neither tcp://HOST:PORT nor HOST:PORT";
          return {};
        }
        item = "tcp://" + item;
      } else {
        const std::string name = item.substr(0, scheme);
        if ((name != "tcp" && name != "ipc" && name != "inproc") || scheme + 3 == item.size()) {
          error = "endpoint \"" + item + "\" is neither tcp://HOST:PORT nor HOST:PORT";
          return {};
        }
      }
      out.push_back(item);
    }
    if (!any || value.back() == ',') {
      error = "empty endpoint in \"" + value + "\"";
      return {};
    }
  }
  if (out.empty()) error = "no endpoint given";
  return out;
}

Endpoints::Endpoints(std::vector<std::string> urls, net::RpcClient::Options options,
                     std::optional<std::chrono::milliseconds> connect_timeout)
    : urls_(std::move(urls)),
      options_(std::move(options)),
      connect_timeout_(connect_timeout),
      clients_(urls_.size()) {}

bool Endpoints::MayTryNext(const Status& error) const {
  using Delivery = net::RpcClient::Delivery;
  if (delivery_ == Delivery::kNotSent) return error.code() == Code::kUnavailable;
  // Sent and unanswered: the client reports a mutation as kOutcomeUnknown, which stays here.
  return delivery_ == Delivery::kNoReply && error.code() == Code::kUnavailable;
}

net::RpcClient& Endpoints::ClientAt(std::size_t index) {
  if (!clients_[index]) {
    clients_[index] = std::make_unique<net::RpcClient>(urls_[index], options_);
    if (connect_timeout_) clients_[index]->set_connect_timeout(*connect_timeout_);
  }
  return *clients_[index];
}

}  // namespace clustermgr::cli
