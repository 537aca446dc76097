// msgpack encoding and decoding of Serf RPC messages, without any I/O.
//
// The wire format (serf cmd/serf/command/agent/ipc.go): a stream of msgpack objects with no
// framing. A request is a header map {Command, Seq} optionally followed by a body map; a
// response is a header map {Seq, Error} optionally followed by a body map. Whether a body
// follows depends on the command (and, for some errors, on the error), so the reader must know
// what it asked for: see SerfClient. Both sides are here because the fake agent used in tests
// (net/testing/serf_fake_agent.h) speaks the server side.
//
// Peer input is hostile: SerfStreamDecoder bounds the bytes it buffers for one message and the
// sizes msgpack may allocate for, and no function here throws; a malformed or wrongly typed
// object gives Code::kCorruption.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/serf_types.h"

namespace clustermgr::net {

struct SerfRequestHeader {
  std::string command;
  uint64_t seq = 0;
};

struct SerfResponseHeader {
  uint64_t seq = 0;
  std::string error;  // empty on success
};

// ---- Encoding: each function returns the bytes of one msgpack object. ----

// Client side.
std::string EncodeRequestHeader(const SerfRequestHeader& header);
std::string EncodeHandshakeBody(int32_t version);                  // {Version}
std::string EncodeAuthBody(const std::string& auth_key);           // {AuthKey}
std::string EncodeStreamBody(const std::string& type);             // {Type}
std::string EncodeStopBody(uint64_t stream_seq);                   // {Stop}
std::string EncodeMembersFilteredBody(const SerfMemberFilter& f);  // {Tags, Status, Name}
std::string EncodeJoinBody(const std::vector<std::string>& addrs,
                           bool replay);  // {Existing, Replay}
std::string EncodeTagsBody(const std::map<std::string, std::string>& set,
                           const std::vector<std::string>& remove);  // {Tags, DeleteTags}

// Server side (fake agent, tests). Member addresses are sent as 4 or 16 raw bytes like Go's
// net.IP; an address that does not parse is sent as an empty byte string.
std::string EncodeResponseHeader(const SerfResponseHeader& header);
std::string EncodeMembersBody(const std::vector<SerfMember>& members);  // {Members}
std::string EncodeMemberEventBody(const SerfMemberEvent& event);        // {Event, Members}
std::string EncodeJoinResponseBody(int32_t num);                        // {Num}

// ---- Decoding one object. Unknown map keys are ignored (newer agents add fields). ----

// Client side. All return kCorruption for a wrongly shaped object.
Status DecodeResponseHeader(const msgpack::object& obj, SerfResponseHeader* out);
Status DecodeMembersBody(const msgpack::object& obj, std::vector<SerfMember>* out);
Status DecodeMemberEventBody(const msgpack::object& obj, SerfMemberEvent* out);
Status DecodeJoinResponseBody(const msgpack::object& obj, int32_t* num);
Status DecodeMember(const msgpack::object& obj, SerfMember* out);

// Server side.
Status DecodeRequestHeader(const msgpack::object& obj, SerfRequestHeader* out);
Status DecodeHandshakeBody(const msgpack::object& obj, int32_t* version);
Status DecodeAuthBody(const msgpack::object& obj, std::string* auth_key);
Status DecodeStreamBody(const msgpack::object& obj, std::string* type);
Status DecodeStopBody(const msgpack::object& obj, uint64_t* stream_seq);
Status DecodeMembersFilteredBody(const msgpack::object& obj, SerfMemberFilter* filter);
Status DecodeJoinBody(const msgpack::object& obj, std::vector<std::string>* addrs,
                          bool* replay);
Status DecodeTagsBody(const msgpack::object& obj, std::map<std::string, std::string>* set,
                          std::vector<std::string>* remove);

// Textual form of raw address bytes (4 or 16; IPv4-mapped IPv6 shown as IPv4). False for any
// other length.
bool SerfAddrBytesToText(const std::string& bytes, std::string* text);

// Incremental decoder of a byte stream into msgpack objects, with bounds.
//
// Not thread-safe (one connection's reader owns it). After an error it stays failed.
class SerfStreamDecoder {
 public:
  struct Limits {
    // Largest single message buffered. A member list of 1000 nodes with full tag sets is about
    // 600 KiB; allocations inside msgpack stay within a small multiple of this.
    std::size_t max_message_bytes = 4u << 20;
    std::size_t max_array = 65536;
    std::size_t max_map = 65536;
    std::size_t max_str = 1u << 20;
    std::size_t max_depth = 16;
  };

  SerfStreamDecoder() : SerfStreamDecoder(Limits{}) {}
  explicit SerfStreamDecoder(const Limits& limits);

  // Appends bytes received from the peer.
  void Feed(const char* data, std::size_t size);
  // Zero-copy alternative to Feed: write at most `capacity` bytes at WriteBuffer(capacity),
  // then Commit the count written.
  char* WriteBuffer(std::size_t capacity);
  void Commit(std::size_t size);

  // Extracts the next complete object into *out. Returns true when one was extracted, false
  // when more bytes are needed, kCorruption when the bytes are not msgpack, exceed a limit or the
  // buffered incomplete message exceeds max_message_bytes.
  Result<bool> Next(msgpack::object_handle* out);

  // Bytes buffered that belong to the message being assembled.
  std::size_t pending_bytes() const;

 private:
  Limits limits_;
  msgpack::unpacker unpacker_;
  Status failed_;
};

}  // namespace clustermgr::net
