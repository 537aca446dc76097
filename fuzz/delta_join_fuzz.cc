// Fuzzes the join of decoded deltas (join must be commutative, associative and idempotent).
//
// Input: a little-endian uint16 length n, then n bytes of one encoded Delta, then the bytes of a
// second one (store/codec.h EncodeDelta). Both must decode or be refused without a crash. When
// both decode, the join laws are checked on them and on a small base state, and the joined
// state must survive an encode/decode round trip.
//
// The laws hold for deltas honest writers produce. Two writes that carry the same LWW stamp but
// differ (a stamp is issued once, so only a forged or corrupt delta has that) are resolved by
// arrival order, so commutativity is not checked for such a pair: see ConflictingStamps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crdt/cluster_state.h"
#include "fuzz/base_state.h"
#include "fuzz/fuzz_check.h"
#include "store/codec.h"

namespace {

using namespace clustermgr;  // NOLINT: a fuzz target's whole vocabulary

const crdt::ClusterState& Base() { return fuzz::BaseState(); }

// True when some key holds entries in `a` and `b` with equal stamps but different contents.
template <typename K, typename V>
bool Conflict(const crdt::LwwMap<K, V>& a, const crdt::LwwMap<K, V>& b) {
  for (const auto& [key, entry] : a.entries()) {
    const auto* other = b.Find(key);
    if (other && other->tag.stamp == entry.tag.stamp && !(*other == entry)) return true;
  }
  return false;
}

bool ConflictingStamps(const crdt::ClusterState& a, const crdt::ClusterState& b) {
  return Conflict(a.globals, b.globals) || Conflict(a.node_vars, b.node_vars) ||
         Conflict(a.inventory, b.inventory) || Conflict(a.jobs, b.jobs) ||
         Conflict(a.job_logs, b.job_logs) || Conflict(a.config, b.config);
}

crdt::ClusterState Joined(crdt::ClusterState a, const crdt::ClusterState& b) {
  a.Join(b);
  return a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t n = std::min<size_t>(data[0] | (size_t{data[1]} << 8), size - 2);
  const std::string_view first(reinterpret_cast<const char*>(data + 2), n);
  const std::string_view second(reinterpret_cast<const char*>(data + 2 + n), size - 2 - n);
  auto a = store::DecodeDelta(first);
  auto b = store::DecodeDelta(second);
  if (!a.ok() || !b.ok()) return 0;
  const crdt::ClusterState& x = a->state;
  const crdt::ClusterState& y = b->state;

  // Idempotence.
  FUZZ_CHECK(Joined(x, x) == x);
  FUZZ_CHECK(Joined(y, y) == y);
  const crdt::ClusterState xy = Joined(x, y);
  FUZZ_CHECK(Joined(xy, y) == xy);
  FUZZ_CHECK(Joined(xy, x) == xy);

  if (!ConflictingStamps(x, y) && !ConflictingStamps(x, Base()) && !ConflictingStamps(y, Base())) {
    // Commutativity, and associativity over the base state.
    FUZZ_CHECK(Joined(y, x) == xy);
    FUZZ_CHECK(Joined(Joined(Base(), x), y) == Joined(Base(), xy));
    FUZZ_CHECK(Joined(Joined(Base(), y), x) == Joined(Base(), xy));
  }

  auto again = store::DecodeState(store::EncodeState(xy));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == xy);
  return 0;
}
