// Encoding and decoding of replication messages (net/gossip.capnp) to and from the value types
// of net/gossip_types.h.
//
// Decoding treats its input as hostile (any peer, or anything that can reach the gossip ports,
// can send bytes): it refuses inputs above GossipLimits::max_message_bytes before reading,
// copies the bytes into word-aligned memory, reads them with a traversal limit proportional to
// the message's own size (no amplification) and a shallow nesting limit, converts the whole
// message at once, range-checks what the schema cannot (protocol version, list lengths, text
// sizes, seq >= 1 for deltas), and catches every exception. It never throws; a bad message is
// an error value the caller counts and drops.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/gossip_types.h"

namespace clustermgr::net {

struct GossipLimits {
  // Larger inputs are refused before any decoding (the transport also sets ZMQ_MAXMSGSIZE).
  std::size_t max_message_bytes = std::size_t{16} << 20;
  // The deepest legal message (GossipMessage > SyncReply > List(DeltaMsg) > DeltaMsg > Data)
  // nests 5 levels; 8 leaves room for appended fields.
  int nesting_limit = 8;
  // Sanity bounds on lists the traversal limit alone would admit in the millions.
  std::size_t max_vector_origins = 10'000;
  std::size_t max_deltas = 100'000;
  std::size_t max_text_bytes = 1024;  // names, origins, endpoints
};

// Standard unpacked Cap'n Proto framing. Cannot fail for values of gossip_types.h.
std::string EncodeGossip(const GossipMessage& message);

// Errors (kCorruption, one line naming the problem): not a whole number of words, above the
// size limit, a Cap'n Proto limit or bounds error, protocol version 0, an unknown union member,
// a list or text beyond GossipLimits, a delta with seq 0 or an empty origin.
Result<GossipMessage> DecodeGossip(std::string_view bytes, const GossipLimits& limits = {});

}  // namespace clustermgr::net
