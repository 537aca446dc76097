// Cap'n Proto encoding of deltas, states and the store's records (schema: store/records.capnp).
//
// Decoders treat their input as hostile: the bytes are copied into word-aligned memory, read
// with deliberate ReaderOptions limits (traversal bounded by the message's own size, shallow
// nesting), and every value is range-checked (enum values, dot counters, the union member a
// section allows). Malformed input is a kCorruption Status naming what is wrong, never a crash
// or an exception: Cap'n Proto's exceptions are caught here and do not leave the store layer.
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crdt/cluster_state.h"
#include "store/metadata.h"

namespace clustermgr::store {

struct DecodeLimits {
  // Larger inputs are refused before any decoding.
  size_t max_bytes = 64u << 20;
  // Nesting of the deepest legal message (Delta > State > List > KeyedEntry > LwwEntry >
  // Inventory > List > KeyValue) is 8.
  int nesting_limit = 16;
};

// A Delta as bytes: the delta log's record value and replication's gossip payload.
std::string EncodeDelta(const crdt::Delta& delta);
// Fails with kCorruption on anything but a well-formed Delta with seq >= 1.
Result<crdt::Delta> DecodeDelta(std::string_view bytes, const DecodeLimits& limits = {});

// A whole ClusterState (or a snapshot chunk) as bytes.
std::string EncodeState(const crdt::ClusterState& state);
Result<crdt::ClusterState> DecodeState(std::string_view bytes, const DecodeLimits& limits = {});

// Consecutive deltas of one origin (seqs s, s+1, ...; never empty) in the compact form gossip
// publishes (DeltaRun in store/records.capnp): the origin once, stamps and seqs relative to the
// run, packed. A one-write run is a fraction of its Delta encoding's size.
std::string EncodeDeltaRun(std::span<const crdt::Delta> deltas);
// Fails with kCorruption on anything but a well-formed run (origin set, seqs from >= 1, at least
// one delta). `limits.max_bytes` bounds the packed input and the unpacked message alike.
Result<std::vector<crdt::Delta>> DecodeDeltaRun(std::string_view bytes,
                                                const DecodeLimits& limits = {});

// Record values. Each decoder fails with kCorruption, naming the problem, on malformed bytes or
// on a value the record's section does not allow.
std::string EncodeMeta(const Metadata& meta);
Result<Metadata> DecodeMeta(std::string_view bytes);

std::string EncodeTextEntry(const crdt::LwwEntry<std::string>& entry);
Result<crdt::LwwEntry<std::string>> DecodeTextEntry(std::string_view bytes);
std::string EncodeInventoryEntry(const crdt::LwwEntry<crdt::InventoryRecord>& entry);
Result<crdt::LwwEntry<crdt::InventoryRecord>> DecodeInventoryEntry(std::string_view bytes);
std::string EncodeJobEntry(const crdt::LwwEntry<crdt::JobRecord>& entry);
Result<crdt::LwwEntry<crdt::JobRecord>> DecodeJobEntry(std::string_view bytes);

// The dots of one host-group element (never empty).
std::string EncodeElement(const std::set<crdt::Dot>& dots);
Result<std::set<crdt::Dot>> DecodeElement(std::string_view bytes);

// One origin's part of the host-group causal context.
struct ContextPart {
  uint64_t compact = 0;
  std::vector<uint64_t> cloud;  // ascending
  friend bool operator==(const ContextPart&, const ContextPart&) = default;
};
std::string EncodeContextPart(const ContextPart& part);
Result<ContextPart> DecodeContextPart(std::string_view bytes);

std::string EncodeApplied(uint64_t seq);
Result<uint64_t> DecodeApplied(std::string_view bytes);
std::string EncodeEpoch(uint64_t epoch);
Result<uint64_t> DecodeEpoch(std::string_view bytes);

}  // namespace clustermgr::store
