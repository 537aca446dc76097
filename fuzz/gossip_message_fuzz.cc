// Fuzzes replication's wire messages (net/gossip.capnp) as a peer's hostile bytes reach them:
// DecodeGossip with the transport's limits, then what the replicator does with what decodes —
// the deltas of a published delta or a syncReply (store::DecodeDelta) or of a delta run
// (store::DecodeDeltaRun), and the state of a snapshot chunk (store::DecodeState), are joined
// into a live state.
//
// Input: the bytes of one gossip message, as it arrives in a ZeroMQ frame.
// Checks: a decoded message re-encodes to bytes that decode to the same message; every decoded
// payload joins idempotently into a base state (joining it twice changes nothing), the join is
// a superset in the CRDT order (joining the base again changes nothing), and the joined state
// survives an encode/decode round trip.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "crdt/cluster_state.h"
#include "fuzz/base_state.h"
#include "fuzz/fuzz_check.h"
#include "net/gossip_codec.h"
#include "store/codec.h"

namespace {

using namespace clustermgr;  // NOLINT: a fuzz target's whole vocabulary

const crdt::ClusterState& Base() { return fuzz::BaseState(); }

void CheckJoin(const crdt::ClusterState& incoming) {
  crdt::ClusterState live = Base();
  live.Join(incoming);
  crdt::ClusterState twice = live;
  twice.Join(incoming);
  FUZZ_CHECK(twice == live);
  crdt::ClusterState again = live;
  again.Join(Base());
  FUZZ_CHECK(again == live);
  auto decoded = store::DecodeState(store::EncodeState(live));
  FUZZ_CHECK(decoded.ok());
  FUZZ_CHECK(*decoded == live);
}

void CheckDelta(const net::GossipDelta& d) {
  auto delta = store::DecodeDelta(d.payload);
  if (delta.ok()) CheckJoin(delta->state);
}

// A run that decodes encodes back to the same deltas, each of which joins like any state.
void CheckRun(const net::GossipDeltaRun& r) {
  auto deltas = store::DecodeDeltaRun(r.run);
  if (!deltas.ok()) return;
  auto again = store::DecodeDeltaRun(store::EncodeDeltaRun(*deltas));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *deltas);
  for (const crdt::Delta& d : *deltas) CheckJoin(d.state);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  net::GossipLimits limits;
  limits.max_message_bytes = 1 << 20;  // libFuzzer inputs stay far below; keeps runs fast
  auto message = net::DecodeGossip(bytes, limits);
  if (!message.ok()) return 0;

  auto round_trip = net::DecodeGossip(net::EncodeGossip(*message), limits);
  FUZZ_CHECK(round_trip.ok());
  FUZZ_CHECK(*round_trip == *message);

  if (const auto* d = std::get_if<net::GossipDelta>(&message->body)) CheckDelta(*d);
  if (const auto* b = std::get_if<net::GossipDeltaBatch>(&message->body)) {
    for (const auto& d : b->deltas) CheckDelta(d);
  }
  if (const auto* r = std::get_if<net::GossipDeltaRun>(&message->body)) CheckRun(*r);
  if (const auto* r = std::get_if<net::SyncReply>(&message->body)) {
    for (const auto& d : r->deltas) CheckDelta(d);
  }
  if (const auto* c = std::get_if<net::SnapshotChunk>(&message->body)) {
    auto state = store::DecodeState(c->state);
    if (state.ok()) CheckJoin(*state);
  }
  return 0;
}
