// FakeGossipNetwork and FakeGossipTransport: an in-memory stand-in for ZmqGossipTransport, so
// the replicator's unit tests run without sockets, deterministically (seeded), with faults:
// dropped, duplicated and reordered messages, and partitions between endpoints.
//
// Semantics follow the real transport where the replicator can tell:
//   * Publish reaches every attached transport that Connect()ed to the publisher;
//   * Send reaches the peer's inbox as a kRequest (from = the sender's endpoint, which is also
//     the identity to Reply() to) and returns false when the peer is not attached (a peer that
//     is down) or the sender never connected to it;
//   * Reply reaches the requester's inbox as a kReply (from = the replier's endpoint);
//   * across a partition Send/Reply still return true but nothing arrives (TCP up, packets
//     lost), like a message dropped by the fault mode.
// Every delivered message goes through EncodeGossip/DecodeGossip, so the codec sees real
// traffic too. Faults apply per delivery: drop, duplicate, and reorder (the message is inserted
// at a random place in the receiver's inbox instead of its tail).
//
// Thread-safety: none; one test thread drives the network and all its transports. A transport
// detaches from the network when destroyed (a crashed instance); its inbox is lost.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>

#include "net/gossip_transport.h"

namespace clustermgr::net {

class FakeGossipTransport;

class FakeGossipNetwork {
 public:
  struct Faults {
    double drop = 0;       // share of deliveries lost
    double duplicate = 0;  // share delivered twice
    double reorder = 0;    // share inserted at a random place in the inbox
  };

  explicit FakeGossipNetwork(uint64_t seed) : rng_(seed) {}
  ~FakeGossipNetwork();
  FakeGossipNetwork(const FakeGossipNetwork&) = delete;
  FakeGossipNetwork& operator=(const FakeGossipNetwork&) = delete;

  // A transport bound at `endpoint` (must not be attached already). The network must outlive it.
  std::unique_ptr<FakeGossipTransport> Attach(const std::string& endpoint);

  void set_faults(Faults faults) { faults_ = faults; }
  // Messages between a and b (both directions) are lost until healed.
  void Partition(const std::string& a, const std::string& b);
  void Heal(const std::string& a, const std::string& b);
  void HealAll() { cut_.clear(); }

  // Messages waiting in all inboxes.
  size_t pending() const;
  uint64_t delivered() const { return delivered_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t duplicated() const { return duplicated_; }
  // Largest encoded message delivered so far, by body kind ("delta", "syncReply", ...).
  const std::map<std::string, size_t>& largest() const { return largest_; }

 private:
  friend class FakeGossipTransport;
  void Detach(const std::string& endpoint);
  void Deliver(const std::string& to, GossipIncoming in);
  bool Cut(const std::string& a, const std::string& b) const;
  bool Chance(double p);

  std::mt19937_64 rng_;
  Faults faults_;
  std::map<std::string, FakeGossipTransport*> nodes_;
  std::set<std::pair<std::string, std::string>> cut_;  // ordered pairs (a < b)
  uint64_t delivered_ = 0;
  uint64_t dropped_ = 0;
  uint64_t duplicated_ = 0;
  std::map<std::string, size_t> largest_;
};

class FakeGossipTransport final : public GossipTransport {
 public:
  ~FakeGossipTransport() override;

  const std::string& endpoint() const override { return endpoint_; }
  Status Connect(const std::string& peer) override;
  void Disconnect(const std::string& peer) override { peers_.erase(peer); }
  bool Publish(const GossipMessage& message) override;
  bool Send(const std::string& peer, const GossipMessage& message) override;
  bool Reply(const std::string& identity, const GossipMessage& message) override;
  std::optional<GossipIncoming> Receive() override;
  void AppendPollItems(std::vector<zmq::pollitem_t>*) override {}
  const GossipCounters& counters() const override { return counters_; }

  const std::set<std::string>& peers() const { return peers_; }
  size_t inbox_size() const { return inbox_.size(); }

 private:
  friend class FakeGossipNetwork;
  FakeGossipTransport(FakeGossipNetwork* network, std::string endpoint)
      : network_(network), endpoint_(std::move(endpoint)) {}

  FakeGossipNetwork* network_;
  std::string endpoint_;
  std::set<std::string> peers_;  // Connect()ed: subscribed to and dealing with
  std::deque<GossipIncoming> inbox_;
  GossipCounters counters_;
};

}  // namespace clustermgr::net
