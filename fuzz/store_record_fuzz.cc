// Fuzzes the store's Cap'n Proto decoders (store/codec.h): the bytes a LevelDB record or a
// replicated delta could hold, including a hostile peer's.
//
// Input: one selector byte, then the bytes given to the decoder it picks. Every decoder must
// return a value or a kCorruption Status, never crash. Whatever decodes must survive a round
// trip (decode(encode(x)) == x); a decoded delta or state is also joined into a small live state,
// and that join must be idempotent and survive a round trip too.
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

template <typename T, typename Encode, typename Decode>
void RoundTrip(const T& value, Encode encode, Decode decode) {
  auto again = decode(encode(value));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == value);
}

void JoinIntoBase(const crdt::ClusterState& decoded) {
  crdt::ClusterState joined = Base();
  joined.Join(decoded);
  crdt::ClusterState twice = joined;
  twice.Join(decoded);
  FUZZ_CHECK(twice == joined);  // idempotent
  RoundTrip(joined, store::EncodeState, [](const std::string& b) { return store::DecodeState(b); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 10) {
    case 0:
      if (auto d = store::DecodeDelta(bytes); d.ok()) {
        RoundTrip(*d, store::EncodeDelta,
                  [](const std::string& b) { return store::DecodeDelta(b); });
        JoinIntoBase(d->state);
      }
      break;
    case 1:
      if (auto s = store::DecodeState(bytes); s.ok()) {
        RoundTrip(*s, store::EncodeState,
                  [](const std::string& b) { return store::DecodeState(b); });
        JoinIntoBase(*s);
      }
      break;
    case 2:
      if (auto m = store::DecodeMeta(bytes); m.ok()) {
        RoundTrip(*m, store::EncodeMeta, store::DecodeMeta);
      }
      break;
    case 3:
      if (auto e = store::DecodeTextEntry(bytes); e.ok()) {
        RoundTrip(*e, store::EncodeTextEntry, store::DecodeTextEntry);
      }
      break;
    case 4:
      if (auto e = store::DecodeInventoryEntry(bytes); e.ok()) {
        RoundTrip(*e, store::EncodeInventoryEntry, store::DecodeInventoryEntry);
      }
      break;
    case 5:
      if (auto e = store::DecodeJobEntry(bytes); e.ok()) {
        RoundTrip(*e, store::EncodeJobEntry, store::DecodeJobEntry);
      }
      break;
    case 6:
      if (auto e = store::DecodeElement(bytes); e.ok()) {
        FUZZ_CHECK(!e->empty());
        RoundTrip(*e, store::EncodeElement, store::DecodeElement);
      }
      break;
    case 7:
      if (auto p = store::DecodeContextPart(bytes); p.ok()) {
        RoundTrip(*p, store::EncodeContextPart, store::DecodeContextPart);
      }
      break;
    case 8:
      if (auto v = store::DecodeApplied(bytes); v.ok()) {
        RoundTrip(*v, store::EncodeApplied, store::DecodeApplied);
      }
      break;
    case 9:
      if (auto v = store::DecodeEpoch(bytes); v.ok()) {
        RoundTrip(*v, store::EncodeEpoch, store::DecodeEpoch);
      }
      break;
  }
  return 0;
}
