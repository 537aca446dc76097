// GossipTransport: the sockets of replication (net/gossip.capnp has the protocol and the socket
// layout; net/gossip_endpoint.h the endpoint scheme). The replicator (mgr/repl/replicator.h)
// decides everything; a transport only frames, bounds, decodes and moves messages.
//
// ZmqGossipTransport is the real one: a PUB and a ROUTER bound from the gossip endpoint, one SUB
// connected to every peer's PUB, one DEALER per peer connected to the peer's ROUTER. ZeroMQ
// connects in the background and reconnects with backoff (100 ms doubling to 5 s), so nothing
// here ever blocks: sends use ZMQ_DONTWAIT and report failure instead of waiting, DEALERs use
// ZMQ_IMMEDIATE so nothing queues for a peer that is not connected (Send returns false), and
// the ROUTER uses ZMQ_ROUTER_MANDATORY so a reply to a peer that went away fails visibly.
// FakeGossipTransport (net/testing/fake_gossip_transport.h) is the in-memory double for unit tests.
//
// Hostile input: every received frame is bounded (ZMQ_MAXMSGSIZE drops the connection of a peer
// sending more), decoded by DecodeGossip with its limits, and dropped and counted when it is
// malformed (wrong frame count, undecodable); such frames never reach the caller.
//
// Test fault mode: Options::drop_share drops that share of the well-formed received messages
// (all kinds), seeded, to show that anti-entropy heals losses.
//
// Thread-safety: none. One thread (the daemon's event loop) creates, polls and uses a transport.
// ZeroMQ and Cap'n Proto exceptions are caught inside; no method throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "base/status.h"
#include "net/connection_limit.h"
#include "net/curve_keys.h"
#include "net/gossip_codec.h"
#include "net/gossip_types.h"

namespace clustermgr::net {

struct GossipIncoming {
  enum class Via {
    kPublished,  // from a peer's PUB (a delta)
    kRequest,    // on our ROUTER: answer with Reply(from, ...)
    kReply,      // on the DEALER to a peer: `from` is that peer's gossip endpoint
  };
  Via via = Via::kPublished;
  std::string from;  // see Via; empty for kPublished
  GossipMessage message;
  std::size_t bytes = 0;  // encoded size
  // kRequest over CURVE: the requester's public key (Z85), as its ZAP handshake proved it. An
  // instance uses one key pair as client and server, so this is also its servers' key.
  std::string peer_key;
};

// Monotonic counters since creation.
struct GossipCounters {
  std::uint64_t received = 0;        // messages read off the sockets, good or bad
  std::uint64_t bytes_received = 0;  // their bytes
  std::uint64_t malformed = 0;       // dropped: wrong frames or undecodable
  std::uint64_t fault_dropped = 0;   // dropped by the test fault mode
  std::uint64_t published = 0;
  std::uint64_t bytes_published = 0;
  std::uint64_t sent = 0;  // requests, reports and replies
  std::uint64_t bytes_sent = 0;
  std::uint64_t send_failed = 0;  // peer not connected, gone, or its queue full
  std::uint64_t socket_errors = 0;
};

class GossipTransport {
 public:
  virtual ~GossipTransport() = default;

  // This instance's bound gossip (PUB) endpoint, with the real port.
  virtual const std::string& endpoint() const = 0;

  // Starts connecting to the peer whose gossip endpoint is `peer` (SUB to its PUB, a DEALER to
  // its ROUTER). Idempotent. Errors: kInvalidArgument (not a usable endpoint), kInternal.
  virtual Status Connect(const std::string& peer) = 0;
  // Stops talking to `peer` (no-op when unknown).
  virtual void Disconnect(const std::string& peer) = 0;
  // Over CURVE: the server key to expect at `peer` (its Serf tag `curve=`, or the key its own
  // request came with). Returns true when this changed the key of `peer` (Disconnect and
  // Connect again to use it). Errors: kFailedPrecondition (the key is not an allowed peer key).
  // Transports without CURVE accept and ignore it.
  virtual Result<bool> SetPeerKey(const std::string& peer, const std::string& key) {
    (void)peer;
    (void)key;
    return false;
  }

  // Publishes to every subscriber. False when it could not be queued (counted).
  virtual bool Publish(const GossipMessage& message) = 0;
  // Sends to a connected peer's ROUTER. False when `peer` is unknown, not connected right now,
  // or its queue is full: nothing was queued.
  virtual bool Send(const std::string& peer, const GossipMessage& message) = 0;
  // Answers a kRequest. False when the requester has gone away or its queue is full.
  virtual bool Reply(const std::string& identity, const GossipMessage& message) = 0;

  // The next well-formed received message, or nullopt when none is waiting. Never blocks.
  virtual std::optional<GossipIncoming> Receive() = 0;

  // Appends poll items (readable = a message may be waiting) for zmq::poll. They stay valid
  // until the next Connect or Disconnect.
  virtual void AppendPollItems(std::vector<zmq::pollitem_t>* items) = 0;

  virtual const GossipCounters& counters() const = 0;
};

class ZmqGossipTransport final : public GossipTransport {
 public:
  struct Options {
    GossipLimits limits;
    // Share (0..1) of received messages to drop: the hidden --test-drop-gossip fault mode.
    double drop_share = 0;
    std::uint64_t drop_seed = 1;
    // Per-socket queue bounds. PUB drops beyond its bound (anti-entropy heals that).
    int send_hwm = 10'000;
    int receive_hwm = 10'000;
    int reconnect_ms = 100;
    int reconnect_max_ms = 5'000;
    // Bound on the connections the PUB and the ROUTER each hold (net/connection_limit.h).
    std::size_t max_connections = kDefaultMaxConnections;
    // CURVE (unset = plain TCP): the PUB and ROUTER are CURVE servers (ZAP domain "gossip")
    // with `self`; the SUB and DEALERs are CURVE clients with `self`, expecting at each peer the
    // server key from `endpoint_keys`, SetPeerKey, or else `default_key` (a cluster sharing one
    // key pair). Connect fails for a peer whose key is unknown.
    struct Curve {
      CurveKeyPair self;
      std::set<std::string> peer_keys;  // the --curve-peers list: SetPeerKey accepts only these
      std::map<std::string, std::string> endpoint_keys;  // gossip endpoint -> server key
      std::string default_key;
    };
    std::optional<Curve> curve;
    // The endpoint peers are told (endpoint(): in messages and the Serf tag); empty: the bound
    // one, a wildcard host ("*", "0.0.0.0", "::") replaced by InterfaceAddress().
    std::string advertise;
  };

  // Binds the PUB at `gossip_endpoint` and the ROUTER at its anti-entropy endpoint. A tcp port
  // of 0 or * picks a free port pair (retried a few times). `context` must outlive the
  // transport. Errors: kInvalidArgument (malformed endpoint), kUnavailable (address in use, no
  // permission), kInternal.
  static Result<std::unique_ptr<ZmqGossipTransport>> Bind(zmq::context_t& context,
                                                          const std::string& gossip_endpoint,
                                                          Options options);
  ~ZmqGossipTransport() override;

  // The advertised endpoint (Options::advertise).
  const std::string& endpoint() const override { return endpoint_; }
  const std::string& bound_endpoint() const { return bound_; }
  const std::string& anti_entropy_endpoint() const { return ae_endpoint_; }
  // Besides the base errors: kFailedPrecondition when CURVE is on and no key is known for `peer`.
  Status Connect(const std::string& peer) override;
  void Disconnect(const std::string& peer) override;
  Result<bool> SetPeerKey(const std::string& peer, const std::string& key) override;
  bool Publish(const GossipMessage& message) override;
  bool Send(const std::string& peer, const GossipMessage& message) override;
  bool Reply(const std::string& identity, const GossipMessage& message) override;
  std::optional<GossipIncoming> Receive() override;
  void AppendPollItems(std::vector<zmq::pollitem_t>* items) override;
  const GossipCounters& counters() const override { return counters_; }

 private:
  ZmqGossipTransport(zmq::context_t& context, Options options);
  // Reads one message (all its frames) from `socket`; nullopt when none is waiting.
  std::optional<std::vector<zmq::message_t>> ReadFrames(zmq::socket_t& socket);
  // Decodes, fault-drops and counts; nullopt when the message is dropped.
  std::optional<GossipIncoming> Accept(GossipIncoming::Via via, std::string from,
                                       const zmq::message_t& body);
  void ApplyCommonOptions(zmq::socket_t& socket);
  bool SendOn(zmq::socket_t& socket, const std::string* identity, const std::string& body);

  zmq::context_t& context_;
  Options options_;
  std::string endpoint_;  // advertised
  std::string bound_;
  std::string ae_endpoint_;
  zmq::socket_t pub_;
  zmq::socket_t router_;
  zmq::socket_t sub_;
  std::map<std::string, zmq::socket_t> dealers_;  // by peer gossip endpoint
  std::size_t next_socket_ = 0;                   // round-robin start for Receive
  // Declared after the sockets they watch: destroyed first.
  std::unique_ptr<ConnectionLimit> pub_limit_;
  std::unique_ptr<ConnectionLimit> router_limit_;
  std::mt19937_64 rng_;
  GossipCounters counters_;
};

}  // namespace clustermgr::net
