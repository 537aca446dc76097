#include "net/testing/fake_gossip_transport.h"

#include <cstdlib>
#include <iostream>

#include "net/gossip_endpoint.h"

namespace clustermgr::net {

FakeGossipNetwork::~FakeGossipNetwork() {
  for (auto& [endpoint, node] : nodes_) node->network_ = nullptr;
}

std::unique_ptr<FakeGossipTransport> FakeGossipNetwork::Attach(const std::string& endpoint) {
  if (nodes_.count(endpoint)) {
    std::cerr << "FakeGossipNetwork: " << endpoint << " is attached twice\n";
    std::abort();
  }
  std::unique_ptr<FakeGossipTransport> t(new FakeGossipTransport(this, endpoint));
  nodes_[endpoint] = t.get();
  return t;
}

void FakeGossipNetwork::Detach(const std::string& endpoint) { nodes_.erase(endpoint); }

void FakeGossipNetwork::Partition(const std::string& a, const std::string& b) {
  cut_.insert(std::minmax(a, b));
}

void FakeGossipNetwork::Heal(const std::string& a, const std::string& b) {
  cut_.erase(std::minmax(a, b));
}

bool FakeGossipNetwork::Cut(const std::string& a, const std::string& b) const {
  return cut_.count(std::minmax(a, b)) > 0;
}

size_t FakeGossipNetwork::pending() const {
  size_t n = 0;
  for (const auto& [endpoint, node] : nodes_) n += node->inbox_.size();
  return n;
}

bool FakeGossipNetwork::Chance(double p) {
  return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p;
}

void FakeGossipNetwork::Deliver(const std::string& to, GossipIncoming in) {
  auto it = nodes_.find(to);
  if (it == nodes_.end()) return;
  FakeGossipTransport* node = it->second;
  // Through the real codec: what arrives is what the wire would carry.
  const std::string bytes = EncodeGossip(in.message);
  auto decoded = DecodeGossip(bytes);
  if (!decoded.ok()) {
    std::cerr << "FakeGossipNetwork: a message does not survive the codec: "
              << decoded.status().ToString() << "\n";
    std::abort();
  }
  size_t& largest = largest_[GossipBodyName(in.message.body)];
  largest = std::max(largest, bytes.size());
  in.message = std::move(decoded).value();
  in.bytes = bytes.size();
  node->counters_.received++;
  node->counters_.bytes_received += bytes.size();
  if (Chance(faults_.drop)) {
    ++dropped_;
    return;
  }
  const int copies = Chance(faults_.duplicate) ? 2 : 1;
  duplicated_ += copies - 1;
  for (int i = 0; i < copies; ++i) {
    ++delivered_;
    if (Chance(faults_.reorder) && !node->inbox_.empty()) {
      const size_t at = std::uniform_int_distribution<size_t>(0, node->inbox_.size())(rng_);
      node->inbox_.insert(node->inbox_.begin() + static_cast<std::ptrdiff_t>(at), in);
    } else {
      node->inbox_.push_back(in);
    }
  }
}

FakeGossipTransport::~FakeGossipTransport() {
  if (network_) network_->Detach(endpoint_);
}

Status FakeGossipTransport::Connect(const std::string& peer) {
  if (auto ae = AntiEntropyEndpoint(peer); !ae.ok()) return ae.status();
  peers_.insert(peer);
  return Status::Ok();
}

bool FakeGossipTransport::Publish(const GossipMessage& message) {
  ++counters_.published;
  if (!network_) return true;
  for (auto& [endpoint, node] : network_->nodes_) {
    if (node == this || !node->peers_.count(endpoint_)) continue;
    if (network_->Cut(endpoint_, endpoint)) continue;
    network_->Deliver(endpoint,
                      GossipIncoming{GossipIncoming::Via::kPublished, "", message, 0, ""});
  }
  return true;
}

bool FakeGossipTransport::Send(const std::string& peer, const GossipMessage& message) {
  if (!network_ || !peers_.count(peer) || !network_->nodes_.count(peer)) {
    ++counters_.send_failed;
    return false;
  }
  ++counters_.sent;
  if (network_->Cut(endpoint_, peer)) return true;
  network_->Deliver(peer, GossipIncoming{GossipIncoming::Via::kRequest, endpoint_, message, 0, ""});
  return true;
}

bool FakeGossipTransport::Reply(const std::string& identity, const GossipMessage& message) {
  auto it = network_ ? network_->nodes_.find(identity) : decltype(network_->nodes_)::iterator();
  if (!network_ || it == network_->nodes_.end() || !it->second->peers_.count(endpoint_)) {
    ++counters_.send_failed;  // the requester is gone or no longer deals with us
    return false;
  }
  ++counters_.sent;
  if (network_->Cut(endpoint_, identity)) return true;
  network_->Deliver(identity,
                    GossipIncoming{GossipIncoming::Via::kReply, endpoint_, message, 0, ""});
  return true;
}

std::optional<GossipIncoming> FakeGossipTransport::Receive() {
  if (inbox_.empty()) return std::nullopt;
  GossipIncoming in = std::move(inbox_.front());
  inbox_.pop_front();
  return in;
}

}  // namespace clustermgr::net
