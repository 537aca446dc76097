// Plain C++ mirror of the replication wire contract (net/gossip.capnp), so that the replicator
// and its tests hold value types, never Cap'n Proto readers. Field meanings are documented in
// net/gossip.capnp. Delta and state payloads stay opaque bytes here: the store's codec
// (store/codec.h) decodes them in the layer that knows what they are.
//
// Everything here is a value type: copyable, no hidden sharing, not synchronised.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "crdt/version_vector.h"

namespace clustermgr::net {

// The schema version this build speaks (gossipwire::PROTOCOL_VERSION).
inline constexpr std::uint32_t kGossipProtocolVersion = 2;

struct GossipPeerInfo {
  std::string name;
  std::string origin;
  std::string gossip_endpoint;
  std::string rpc_endpoint;
  bool operator==(const GossipPeerInfo&) const = default;
};

struct GossipDelta {
  std::string origin;
  std::uint64_t seq = 0;
  std::string payload;  // store::EncodeDelta bytes
  bool ack_wanted = false;
  bool operator==(const GossipDelta&) const = default;
};

// Deltas of one origin committed together, in seq order (published as one message).
struct GossipDeltaBatch {
  std::vector<GossipDelta> deltas;
  bool operator==(const GossipDeltaBatch&) const = default;
};

// Consecutive deltas of one origin in the compact form (store::EncodeDeltaRun bytes), published
// as one message.
struct GossipDeltaRun {
  std::string run;
  bool ack_wanted = false;
  bool operator==(const GossipDeltaRun&) const = default;
};

// `durable`: what of `applied` the sender has synced to disk; unset from older builds (which
// sync everything they apply, so it is `applied`). See DurableOf.
struct SyncRequest {
  crdt::VersionVector applied;
  std::optional<crdt::VersionVector> durable = std::nullopt;
  bool operator==(const SyncRequest&) const = default;
};

struct SnapshotOffer {
  std::uint64_t id = 0;  // 0: no offer
  std::uint32_t chunks = 0;
  crdt::VersionVector covered;
  std::uint64_t hlc_high_water = 0;  // packed crdt::HlcTimestamp
  bool operator==(const SnapshotOffer&) const = default;
};

struct SyncReply {
  crdt::VersionVector applied;
  std::optional<crdt::VersionVector> durable = std::nullopt;
  std::vector<GossipDelta> deltas;
  bool more = false;
  SnapshotOffer snapshot;
  std::vector<std::string> peers;  // gossip endpoints
  bool operator==(const SyncReply&) const = default;
};

struct SnapshotFetch {
  std::uint64_t id = 0;
  std::uint32_t index = 0;
  bool operator==(const SnapshotFetch&) const = default;
};

struct SnapshotChunk {
  std::uint64_t id = 0;
  std::uint32_t index = 0;
  std::string state;  // store::EncodeState bytes
  bool gone = false;
  bool operator==(const SnapshotChunk&) const = default;
};

struct Report {
  crdt::VersionVector applied;
  std::optional<crdt::VersionVector> durable = std::nullopt;
  bool operator==(const Report&) const = default;
};

// The durable vector a message states, or its applied vector when it states none.
template <typename M>
const crdt::VersionVector& DurableOf(const M& m) {
  return m.durable ? *m.durable : m.applied;
}

using GossipBody = std::variant<GossipDelta, SyncRequest, SyncReply, SnapshotFetch, SnapshotChunk,
                                Report, GossipDeltaBatch, GossipDeltaRun>;

struct GossipMessage {
  GossipPeerInfo sender;  // empty for a published delta
  GossipBody body;
  bool operator==(const GossipMessage&) const = default;
};

// "delta", "syncRequest", ... (the schema's union member names).
const char* GossipBodyName(const GossipBody& body);

}  // namespace clustermgr::net
