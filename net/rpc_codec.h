// Encoding and decoding of RPC messages (net/rpc.capnp) to and from the plain types of
// net/rpc_types.h. Used by RpcServer and RpcClient; exposed for tests and tools that need to
// craft or inspect raw frames.
//
// Decoding treats its input as hostile: it copies the bytes into word-aligned memory, reads
// them with the ReaderOptions limits below, converts the whole message at once (so no lazy
// Cap'n Proto read can throw later, in another layer) and catches every exception. It never
// throws. Encoding cannot fail for values built from the types in rpc_types.h.
// All functions are thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/rpc_types.h"

namespace clustermgr::net {

// Largest request a server accepts and answers (bigger ones get an invalidArgument reply; see
// RpcServer for the transport-level hard cap above it).
inline constexpr std::size_t kMaxRequestBytes = std::size_t{16} << 20;
// Largest reply a server sends and a client accepts (logs and node lists can be large).
inline constexpr std::size_t kMaxReplyBytes = std::size_t{64} << 20;

struct DecodeLimits {
  // Cap'n Proto traversal limit: total words a reader may visit. Twice the largest admissible
  // message, so a legitimate message always fits and an amplification (many pointers to the
  // same data, or a long list of zero-sized elements) is refused.
  std::uint64_t traversal_limit_words;
  // Cap'n Proto nesting limit. The schema nests at most 5 levels (Reply > result struct >
  // list > struct > list > text); 16 leaves room for appended fields, far below the default 64.
  int nesting_limit;
};
inline constexpr DecodeLimits kRequestDecodeLimits{2 * kMaxRequestBytes / 8, 16};
inline constexpr DecodeLimits kReplyDecodeLimits{2 * kMaxReplyBytes / 8, 16};

// The caller identity a forwarded request carries (Request.callerKey/Name/Role), as text: the
// receiver judges it (net/access.h ParseRole), the codec does not.
struct ForwardedCaller {
  std::string key;
  std::string name;
  std::string role;
  bool operator==(const ForwardedCaller&) const = default;
};

// A request as read off the wire.
struct DecodedRequest {
  std::uint64_t request_id = 0;  // 0 when the message could not be read
  std::uint32_t protocol_version = 0;
  std::string forwarded_by;
  ForwardedCaller caller;  // empty unless forwarded
  // The operation, or why there is none:
  //   kInvalidArgument: not a Cap'n Proto message, a limit exceeded, protocol version 0 or a
  //                     malformed field;
  //   kUnimplemented:   a union member this build does not know (a newer client).
  Result<RpcRequest> request{Code::kInternal, "not decoded"};
};

struct DecodedReply {
  std::uint64_t request_id = 0;
  std::uint32_t protocol_version = 0;
  // A reply whose result member this build does not know is turned into a kInternal error
  // reply ("reply not understood ..."); an unknown error code becomes kInternal with the
  // daemon's message kept.
  RpcReply reply;
};

// Standard unpacked Cap'n Proto framing (segment table + segments), as bytes.
// `caller` is written only with a non-empty `forwarded_by`.
std::string EncodeRequest(std::uint64_t request_id, const RpcRequest& request,
                          std::string_view forwarded_by = {}, const ForwardedCaller& caller = {});
std::string EncodeReply(std::uint64_t request_id, const RpcReply& reply);

// `bytes` may have any alignment and length. Never throws.
DecodedRequest DecodeRequest(std::string_view bytes,
                             const DecodeLimits& limits = kRequestDecodeLimits);
// Errors: kInternal (not a readable Reply: bad framing, limits exceeded, protocol version 0).
Result<DecodedReply> DecodeReply(std::string_view bytes,
                                 const DecodeLimits& limits = kReplyDecodeLimits);

}  // namespace clustermgr::net
