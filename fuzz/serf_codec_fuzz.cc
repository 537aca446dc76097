// Fuzzes the Serf RPC msgpack decoding (net/serf_codec.h) as SerfClient drives it: bytes from the
// agent's socket go through SerfStreamDecoder in arbitrary chunks, and every object it yields
// is given to every object decoder (client and fake-agent side). Decoded member records then go
// through SerfMembership, which turns them into node and manager events.
//
// Input: one byte that picks the chunk sizes, then the stream. Nothing may crash or throw; a
// decoder either fills its output or returns kProtocol. Decoded members must re-encode and
// decode to the same record (the agent's encoding is ours too, in the fake agent).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "net/serf_codec.h"
#include "net/serf_membership.h"

namespace {

using namespace clustermgr::net;  // NOLINT: a fuzz target's whole vocabulary

// Small limits, so that the limit paths are reached with small inputs.
SerfStreamDecoder::Limits SmallLimits() {
  SerfStreamDecoder::Limits limits;
  limits.max_message_bytes = 4096;
  limits.max_array = 64;
  limits.max_map = 64;
  limits.max_str = 1024;
  limits.max_depth = 8;
  return limits;
}

msgpack::object_handle Unpack(const std::string& bytes) {
  return msgpack::unpack(bytes.data(), bytes.size());
}

void DecodeEverything(const msgpack::object& obj, SerfMembership* membership) {
  SerfResponseHeader response;
  (void)DecodeResponseHeader(obj, &response);

  std::vector<SerfMember> members;
  if (DecodeMembersBody(obj, &members).ok()) {
    auto again = Unpack(EncodeMembersBody(members));
    std::vector<SerfMember> decoded;
    FUZZ_CHECK(DecodeMembersBody(again.get(), &decoded).ok());
    // Addresses that are not IPs are sent empty by the encoder; compare the rest.
    FUZZ_CHECK(decoded.size() == members.size());
    for (size_t i = 0; i < members.size(); ++i) {
      FUZZ_CHECK(decoded[i].name == members[i].name && decoded[i].tags == members[i].tags);
    }
    (void)membership->Apply({SerfEventType::kResync, "resync", members});
  }
  SerfMemberEvent event;
  if (DecodeMemberEventBody(obj, &event).ok()) {
    for (const SerfNodeEvent& e : membership->Apply(event)) (void)ToString(e);
  }
  int32_t num = 0;
  (void)DecodeJoinResponseBody(obj, &num);
  SerfMember member;
  if (DecodeMember(obj, &member).ok()) (void)member.Endpoint();

  SerfRequestHeader request;
  (void)DecodeRequestHeader(obj, &request);
  int32_t version = 0;
  (void)DecodeHandshakeBody(obj, &version);
  std::string text;
  (void)DecodeAuthBody(obj, &text);
  (void)DecodeStreamBody(obj, &text);
  uint64_t stop = 0;
  (void)DecodeStopBody(obj, &stop);
  SerfMemberFilter filter;
  (void)DecodeMembersFilteredBody(obj, &filter);
  std::vector<std::string> addrs;
  bool replay = false;
  (void)DecodeJoinBody(obj, &addrs, &replay);
  std::map<std::string, std::string> set;
  std::vector<std::string> remove;
  (void)DecodeTagsBody(obj, &set, &remove);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 64;  // 1..64 bytes per read
  const char* stream = reinterpret_cast<const char*>(data + 1);
  const size_t length = size - 1;

  SerfStreamDecoder decoder(SmallLimits());
  SerfMembership membership;
  size_t fed = 0;
  while (fed < length) {
    const size_t n = std::min(chunk, length - fed);
    decoder.Feed(stream + fed, n);
    fed += n;
    for (;;) {
      msgpack::object_handle oh;
      clustermgr::Result<bool> got = decoder.Next(&oh);
      if (!got.ok()) return 0;  // the client drops the connection
      if (!*got) break;
      DecodeEverything(oh.get(), &membership);
    }
  }
  (void)decoder.pending_bytes();
  return 0;
}
