// SerfStreamDecoder (net/serf_codec.h): splits the bytes read from a Serf RPC connection into
// msgpack objects, within the size limits.
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "net/serf_codec.h"

namespace clustermgr::net {

namespace {
// Copy strings out of the read buffer: decoded values are copied into our structs anyway, and
// referencing would pin whole read buffers for as long as an object handle lives.
bool NeverReference(msgpack::type::object_type, std::size_t, void*) { return false; }
}  // namespace

SerfStreamDecoder::SerfStreamDecoder(const Limits& limits)
    : limits_(limits),
      unpacker_(&NeverReference, nullptr, 64 * 1024,
                msgpack::unpack_limit(limits.max_array, limits.max_map, limits.max_str,
                                      limits.max_str, /*ext=*/1024, limits.max_depth)) {}

void SerfStreamDecoder::Feed(const char* data, std::size_t size) {
  if (size == 0) return;
  std::memcpy(WriteBuffer(size), data, size);
  Commit(size);
}

char* SerfStreamDecoder::WriteBuffer(std::size_t capacity) {
  unpacker_.reserve_buffer(capacity);
  return unpacker_.buffer();
}

void SerfStreamDecoder::Commit(std::size_t size) { unpacker_.buffer_consumed(size); }

std::size_t SerfStreamDecoder::pending_bytes() const { return unpacker_.message_size(); }

Result<bool> SerfStreamDecoder::Next(msgpack::object_handle* out) {
  if (!failed_.ok()) return failed_;
  try {
    if (unpacker_.next(*out)) return true;
  } catch (const msgpack::size_overflow& e) {
    failed_ = {Code::kCorruption,
               std::string("serf rpc: message exceeds a size limit (") + e.what() + ")"};
    return failed_;
  } catch (const std::bad_alloc&) {
    failed_ = {Code::kCorruption, "serf rpc: message too large to decode"};
    return failed_;
  } catch (const std::exception& e) {
    failed_ = {Code::kCorruption, std::string("serf rpc: invalid msgpack (") + e.what() + ")"};
    return failed_;
  }
  if (pending_bytes() > limits_.max_message_bytes) {
    failed_ = {Code::kCorruption,
               "serf rpc: message exceeds " + std::to_string(limits_.max_message_bytes) + " bytes"};
    return failed_;
  }
  return false;
}

}  // namespace clustermgr::net
