#include "net/serf_codec.h"

#include <arpa/inet.h>

#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <string_view>

namespace clustermgr::net {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

Status Malformed(std::string_view what) {
  return {Code::kCorruption, "serf rpc: malformed message: " + std::string(what)};
}

std::string ToString(const msgpack::sbuffer& buf) { return std::string(buf.data(), buf.size()); }

void PackStr(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void PackStringMap(Packer& pk, const std::map<std::string, std::string>& m) {
  pk.pack_map(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    PackStr(pk, k);
    PackStr(pk, v);
  }
}

void PackStringArray(Packer& pk, const std::vector<std::string>& v) {
  pk.pack_array(static_cast<uint32_t>(v.size()));
  for (const auto& s : v) PackStr(pk, s);
}

void PackMember(Packer& pk, const SerfMember& m) {
  pk.pack_map(11);
  PackStr(pk, "Name");
  PackStr(pk, m.name);
  PackStr(pk, "Addr");
  unsigned char raw[16];
  uint32_t raw_len = 0;
  if (inet_pton(AF_INET, m.addr.c_str(), raw) == 1) {
    raw_len = 4;
  } else if (inet_pton(AF_INET6, m.addr.c_str(), raw) == 1) {
    raw_len = 16;
  }
  pk.pack_bin(raw_len);
  pk.pack_bin_body(reinterpret_cast<const char*>(raw), raw_len);
  PackStr(pk, "Port");
  pk.pack(m.port);
  PackStr(pk, "Tags");
  PackStringMap(pk, m.tags);
  PackStr(pk, "Status");
  PackStr(pk, m.status);
  const std::pair<const char*, uint8_t> versions[] = {
      {"ProtocolMin", m.protocol_min}, {"ProtocolMax", m.protocol_max},
      {"ProtocolCur", m.protocol_cur}, {"DelegateMin", m.delegate_min},
      {"DelegateMax", m.delegate_max}, {"DelegateCur", m.delegate_cur}};
  for (const auto& [key, value] : versions) {
    PackStr(pk, key);
    pk.pack(static_cast<unsigned>(value));
  }
}

// Go's codec writes strings as str and []byte as bin; older encoders used raw for both.
bool AsString(const msgpack::object& o, std::string* out) {
  if (o.type == msgpack::type::STR) {
    out->assign(o.via.str.ptr, o.via.str.size);
    return true;
  }
  if (o.type == msgpack::type::BIN) {
    out->assign(o.via.bin.ptr, o.via.bin.size);
    return true;
  }
  if (o.type == msgpack::type::NIL) {  // Go encodes a nil []byte as nil
    out->clear();
    return true;
  }
  return false;
}

bool AsUint(const msgpack::object& o, uint64_t* out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  *out = o.via.u64;
  return true;
}

bool AsInt64(const msgpack::object& o, int64_t* out) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    *out = o.via.i64;
    return true;
  }
  if (o.type == msgpack::type::POSITIVE_INTEGER &&
      o.via.u64 <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    *out = static_cast<int64_t>(o.via.u64);
    return true;
  }
  return false;
}

bool AsInt32(const msgpack::object& o, int32_t* out) {
  int64_t v = 0;
  if (!AsInt64(o, &v) || v < std::numeric_limits<int32_t>::min() ||
      v > std::numeric_limits<int32_t>::max()) {
    return false;
  }
  *out = static_cast<int32_t>(v);
  return true;
}

bool AsUint8(const msgpack::object& o, uint8_t* out) {
  uint64_t v = 0;
  if (!AsUint(o, &v) || v > 0xff) return false;
  *out = static_cast<uint8_t>(v);
  return true;
}

bool AsStringMap(const msgpack::object& o, std::map<std::string, std::string>* out) {
  out->clear();
  if (o.type == msgpack::type::NIL) return true;  // Go nil map
  if (o.type != msgpack::type::MAP) return false;
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    std::string k, v;
    if (!AsString(o.via.map.ptr[i].key, &k) || !AsString(o.via.map.ptr[i].val, &v)) return false;
    (*out)[std::move(k)] = std::move(v);
  }
  return true;
}

bool AsStringArray(const msgpack::object& o, std::vector<std::string>* out) {
  out->clear();
  if (o.type == msgpack::type::NIL) return true;  // Go nil slice
  if (o.type != msgpack::type::ARRAY) return false;
  out->reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    std::string s;
    if (!AsString(o.via.array.ptr[i], &s)) return false;
    out->push_back(std::move(s));
  }
  return true;
}

// Calls fn(key, value) for every entry of a map with string keys; fn returns false to reject
// the value. `what` names the object in error messages.
template <typename Fn>
Status ForEachField(const msgpack::object& o, std::string_view what, Fn fn) {
  if (o.type != msgpack::type::MAP) return Malformed(std::string(what) + " is not a map");
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object_kv& kv = o.via.map.ptr[i];
    std::string key;
    if (kv.key.type == msgpack::type::NIL || !AsString(kv.key, &key)) {
      return Malformed(std::string(what) + " has a non-string key");
    }
    if (!fn(key, kv.val)) {
      return Malformed(std::string(what) + " field " + key + " has the wrong type");
    }
  }
  return Status::Ok();
}

Status Missing(std::string_view what, std::string_view field) {
  return Malformed(std::string(what) + " lacks " + std::string(field));
}

Status DecodeMemberArray(const msgpack::object& o, std::vector<SerfMember>* out) {
  out->clear();
  if (o.type == msgpack::type::NIL) return Status::Ok();
  if (o.type != msgpack::type::ARRAY) return Malformed("Members is not an array");
  out->reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    SerfMember m;
    Status s = DecodeMember(o.via.array.ptr[i], &m);
    if (!s.ok()) return s;
    out->push_back(std::move(m));
  }
  return Status::Ok();
}

}  // namespace

std::string SerfMember::Endpoint() const {
  if (addr.find(':') != std::string::npos) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

const char* SerfEventTypeName(SerfEventType type) {
  switch (type) {
    case SerfEventType::kResync:
      return "resync";
    case SerfEventType::kMemberJoin:
      return "member-join";
    case SerfEventType::kMemberLeave:
      return "member-leave";
    case SerfEventType::kMemberFailed:
      return "member-failed";
    case SerfEventType::kMemberUpdate:
      return "member-update";
    case SerfEventType::kMemberReap:
      return "member-reap";
    case SerfEventType::kUnknown:
      return "unknown";
  }
  return "unknown";
}

SerfEventType ParseSerfEventType(std::string_view name) {
  if (name == "member-join") return SerfEventType::kMemberJoin;
  if (name == "member-leave") return SerfEventType::kMemberLeave;
  if (name == "member-failed") return SerfEventType::kMemberFailed;
  if (name == "member-update") return SerfEventType::kMemberUpdate;
  if (name == "member-reap") return SerfEventType::kMemberReap;
  return SerfEventType::kUnknown;
}

bool SerfAddrBytesToText(const std::string& bytes, std::string* text) {
  char buf[INET6_ADDRSTRLEN];
  static const unsigned char kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const char* src = bytes.data();
  int family = 0;
  if (bytes.size() == 4) {
    family = AF_INET;
  } else if (bytes.size() == 16 && std::memcmp(src, kV4Mapped, sizeof kV4Mapped) == 0) {
    family = AF_INET;
    src += 12;
  } else if (bytes.size() == 16) {
    family = AF_INET6;
  } else {
    return false;
  }
  if (inet_ntop(family, src, buf, sizeof buf) == nullptr) return false;
  *text = buf;
  return true;
}

// ---- Encoding ----

std::string EncodeRequestHeader(const SerfRequestHeader& header) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  PackStr(pk, "Command");
  PackStr(pk, header.command);
  PackStr(pk, "Seq");
  pk.pack(header.seq);
  return ToString(buf);
}

std::string EncodeHandshakeBody(int32_t version) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(1);
  PackStr(pk, "Version");
  pk.pack(version);
  return ToString(buf);
}

std::string EncodeAuthBody(const std::string& auth_key) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(1);
  PackStr(pk, "AuthKey");
  PackStr(pk, auth_key);
  return ToString(buf);
}

std::string EncodeStreamBody(const std::string& type) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(1);
  PackStr(pk, "Type");
  PackStr(pk, type);
  return ToString(buf);
}

std::string EncodeStopBody(uint64_t stream_seq) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(1);
  PackStr(pk, "Stop");
  pk.pack(stream_seq);
  return ToString(buf);
}

std::string EncodeMembersFilteredBody(const SerfMemberFilter& f) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(3);
  PackStr(pk, "Tags");
  PackStringMap(pk, f.tags);
  PackStr(pk, "Status");
  PackStr(pk, f.status);
  PackStr(pk, "Name");
  PackStr(pk, f.name);
  return ToString(buf);
}

std::string EncodeJoinBody(const std::vector<std::string>& addrs, bool replay) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  PackStr(pk, "Existing");
  PackStringArray(pk, addrs);
  PackStr(pk, "Replay");
  pk.pack(replay);
  return ToString(buf);
}

std::string EncodeTagsBody(const std::map<std::string, std::string>& set,
                           const std::vector<std::string>& remove) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  PackStr(pk, "Tags");
  PackStringMap(pk, set);
  PackStr(pk, "DeleteTags");
  PackStringArray(pk, remove);
  return ToString(buf);
}

std::string EncodeResponseHeader(const SerfResponseHeader& header) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  PackStr(pk, "Seq");
  pk.pack(header.seq);
  PackStr(pk, "Error");
  PackStr(pk, header.error);
  return ToString(buf);
}

std::string EncodeMembersBody(const std::vector<SerfMember>& members) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(1);
  PackStr(pk, "Members");
  pk.pack_array(static_cast<uint32_t>(members.size()));
  for (const auto& m : members) PackMember(pk, m);
  return ToString(buf);
}

std::string EncodeMemberEventBody(const SerfMemberEvent& event) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  PackStr(pk, "Event");
  PackStr(pk, event.event.empty() ? SerfEventTypeName(event.type) : event.event);
  PackStr(pk, "Members");
  pk.pack_array(static_cast<uint32_t>(event.members.size()));
  for (const auto& m : event.members) PackMember(pk, m);
  return ToString(buf);
}

std::string EncodeJoinResponseBody(int32_t num) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(1);
  PackStr(pk, "Num");
  pk.pack(num);
  return ToString(buf);
}

// ---- Decoding ----

Status DecodeResponseHeader(const msgpack::object& obj, SerfResponseHeader* out) {
  bool have_seq = false;
  bool have_error = false;
  Status s = ForEachField(obj, "response header", [&](const std::string& k, const auto& v) {
    if (k == "Seq") return have_seq = AsUint(v, &out->seq);
    if (k == "Error") return have_error = AsString(v, &out->error);
    return true;
  });
  if (!s.ok()) return s;
  if (!have_seq) return Missing("response header", "Seq");
  if (!have_error) return Missing("response header", "Error");
  return Status::Ok();
}

Status DecodeMember(const msgpack::object& obj, SerfMember* out) {
  bool have_name = false;
  bool addr_ok = true;
  Status s = ForEachField(obj, "member", [&](const std::string& k, const auto& v) {
    if (k == "Name") return have_name = AsString(v, &out->name);
    if (k == "Addr") {
      std::string raw;
      if (!AsString(v, &raw)) return false;
      out->addr.clear();
      if (!raw.empty()) addr_ok = SerfAddrBytesToText(raw, &out->addr);
      return true;
    }
    if (k == "Port") {
      uint64_t port = 0;
      if (!AsUint(v, &port) || port > 0xffff) return false;
      out->port = static_cast<uint16_t>(port);
      return true;
    }
    if (k == "Tags") return AsStringMap(v, &out->tags);
    if (k == "Status") return AsString(v, &out->status);
    if (k == "ProtocolMin") return AsUint8(v, &out->protocol_min);
    if (k == "ProtocolMax") return AsUint8(v, &out->protocol_max);
    if (k == "ProtocolCur") return AsUint8(v, &out->protocol_cur);
    if (k == "DelegateMin") return AsUint8(v, &out->delegate_min);
    if (k == "DelegateMax") return AsUint8(v, &out->delegate_max);
    if (k == "DelegateCur") return AsUint8(v, &out->delegate_cur);
    return true;
  });
  if (!s.ok()) return s;
  if (!have_name) return Missing("member", "Name");
  if (!addr_ok) return Malformed("member " + out->name + " has an address of bad length");
  return Status::Ok();
}

Status DecodeMembersBody(const msgpack::object& obj, std::vector<SerfMember>* out) {
  bool have_members = false;
  Status inner;
  Status s = ForEachField(obj, "members response", [&](const std::string& k, const auto& v) {
    if (k == "Members") {
      have_members = true;
      inner = DecodeMemberArray(v, out);
    }
    return true;
  });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  if (!have_members) return Missing("members response", "Members");
  return Status::Ok();
}

Status DecodeMemberEventBody(const msgpack::object& obj, SerfMemberEvent* out) {
  bool have_event = false;
  Status inner;
  out->members.clear();
  Status s = ForEachField(obj, "stream record", [&](const std::string& k, const auto& v) {
    if (k == "Event") return have_event = AsString(v, &out->event);
    if (k == "Members") inner = DecodeMemberArray(v, &out->members);
    return true;
  });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  if (!have_event) return Missing("stream record", "Event");
  out->type = ParseSerfEventType(out->event);
  return Status::Ok();
}

Status DecodeJoinResponseBody(const msgpack::object& obj, int32_t* num) {
  bool have = false;
  Status s = ForEachField(obj, "join response", [&](const std::string& k, const auto& v) {
    if (k == "Num") return have = AsInt32(v, num);
    return true;
  });
  if (!s.ok()) return s;
  if (!have) return Missing("join response", "Num");
  return Status::Ok();
}

Status DecodeRequestHeader(const msgpack::object& obj, SerfRequestHeader* out) {
  bool have_cmd = false;
  bool have_seq = false;
  Status s = ForEachField(obj, "request header", [&](const std::string& k, const auto& v) {
    if (k == "Command") return have_cmd = AsString(v, &out->command);
    if (k == "Seq") return have_seq = AsUint(v, &out->seq);
    return true;
  });
  if (!s.ok()) return s;
  if (!have_cmd) return Missing("request header", "Command");
  if (!have_seq) return Missing("request header", "Seq");
  return Status::Ok();
}

Status DecodeHandshakeBody(const msgpack::object& obj, int32_t* version) {
  bool have = false;
  Status s = ForEachField(obj, "handshake request", [&](const std::string& k, const auto& v) {
    if (k == "Version") return have = AsInt32(v, version);
    return true;
  });
  if (!s.ok()) return s;
  if (!have) return Missing("handshake request", "Version");
  return Status::Ok();
}

Status DecodeAuthBody(const msgpack::object& obj, std::string* auth_key) {
  bool have = false;
  Status s = ForEachField(obj, "auth request", [&](const std::string& k, const auto& v) {
    if (k == "AuthKey") return have = AsString(v, auth_key);
    return true;
  });
  if (!s.ok()) return s;
  if (!have) return Missing("auth request", "AuthKey");
  return Status::Ok();
}

Status DecodeStreamBody(const msgpack::object& obj, std::string* type) {
  bool have = false;
  Status s = ForEachField(obj, "stream request", [&](const std::string& k, const auto& v) {
    if (k == "Type") return have = AsString(v, type);
    return true;
  });
  if (!s.ok()) return s;
  if (!have) return Missing("stream request", "Type");
  return Status::Ok();
}

Status DecodeStopBody(const msgpack::object& obj, uint64_t* stream_seq) {
  bool have = false;
  Status s = ForEachField(obj, "stop request", [&](const std::string& k, const auto& v) {
    if (k == "Stop") return have = AsUint(v, stream_seq);
    return true;
  });
  if (!s.ok()) return s;
  if (!have) return Missing("stop request", "Stop");
  return Status::Ok();
}

Status DecodeTagsBody(const msgpack::object& obj, std::map<std::string, std::string>* set,
                          std::vector<std::string>* remove) {
  set->clear();
  remove->clear();
  return ForEachField(obj, "tags request", [&](const std::string& k, const auto& v) {
    if (k == "Tags") return AsStringMap(v, set);
    if (k == "DeleteTags") return AsStringArray(v, remove);
    return true;
  });
}

Status DecodeMembersFilteredBody(const msgpack::object& obj, SerfMemberFilter* filter) {
  *filter = SerfMemberFilter{};
  return ForEachField(obj, "members-filtered request", [&](const std::string& k, const auto& v) {
    if (k == "Tags") return AsStringMap(v, &filter->tags);
    if (k == "Status") return AsString(v, &filter->status);
    if (k == "Name") return AsString(v, &filter->name);
    return true;
  });
}

Status DecodeJoinBody(const msgpack::object& obj, std::vector<std::string>* addrs,
                          bool* replay) {
  addrs->clear();
  *replay = false;
  return ForEachField(obj, "join request", [&](const std::string& k, const auto& v) {
    if (k == "Existing") return AsStringArray(v, addrs);
    if (k == "Replay") {
      if (v.type != msgpack::type::BOOLEAN) return false;
      *replay = v.via.boolean;
    }
    return true;
  });
}

}  // namespace clustermgr::net
