// The on-disk key layout of the store: one LevelDB record per CRDT entry, grouped in sections.
//
// Every key starts with one section byte; the rest is an order-preserving encoding of the
// entry's key, so that LevelDB's bytewise order equals the order of the in-memory std::maps
// (loads insert in order; a prefix scan visits one origin's delta log in seq order).
//
//   component encodings
//     str(s)  the bytes of s with 0x00 escaped as 00 FF, then the terminator 00 01. Order-
//             preserving for (s, t) pairs: the terminator sorts below every continuation, so
//             "a" < "a\0" < "ab" and ("a", "z") < ("ab", "")
//     u64(n)  8 bytes big-endian
//
//   byte  section          key                           value (store/records.capnp)
//   0x01  meta             01                            Meta (schema version, instance, ...)
//   0x02  applied          02 str(origin)                AppliedRecord: highest contiguous seq
//   0x03  delta log        03 str(origin) u64(seq)       Delta, exactly as EncodeDelta writes it
//   0x10  globals          10 str(name)                  LwwEntry (text or tombstone)
//   0x11  node vars        11 str(node) str(name)        LwwEntry (text or tombstone)
//   0x12  host groups      12 str(node) str(group)       ElementRecord: the element's dots
//   0x13  host-group ctx   13 str(origin)                ContextRecord: compact counter + cloud
//   0x14  inventory        14 str(node)                  LwwEntry (inventory or tombstone)
//   0x15  jobs             15 str(job id)                LwwEntry (job or tombstone)
//   0x16  job logs         16 str(job id) u64(chunk)     LwwEntry (text or tombstone)
//   0x17  config           17 str(key)                   LwwEntry (text or tombstone)
//   0x18  token epoch      18                            EpochRecord
//
// Evolution: section bytes are never reused or renumbered; a new section takes a new byte and
// bumps the schema version in Meta only if older builds must not open the store (an older
// build reports a key in an unknown section as corruption). Values evolve append-only
// (records.capnp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clustermgr::store {

enum class Section : uint8_t {
  kMeta = 0x01,
  kApplied = 0x02,
  kDeltaLog = 0x03,
  kGlobals = 0x10,
  kNodeVars = 0x11,
  kHostGroups = 0x12,
  kHostGroupContext = 0x13,
  kInventory = 0x14,
  kJobs = 0x15,
  kJobLogs = 0x16,
  kConfig = 0x17,
  kTokenEpoch = 0x18,
};

// Every section, in key order.
const std::vector<Section>& AllSections();
// "meta", "applied", "delta_log", "globals", "node_vars", "host_groups", "host_group_context",
// "inventory", "jobs", "job_logs", "config", "token_epoch".
std::string_view SectionName(Section s);
std::optional<Section> ParseSectionName(std::string_view name);
// The section a key belongs to, or nullopt for an empty key or an unknown section byte.
std::optional<Section> SectionOf(std::string_view key);

// Key builders.
std::string MetaKey();
std::string AppliedKey(std::string_view origin);
std::string DeltaLogKey(std::string_view origin, uint64_t seq);
// The first key of `origin`'s delta log (all its seqs sort at or after it).
std::string DeltaLogPrefix(std::string_view origin);
std::string GlobalKey(std::string_view name);
std::string NodeVarKey(std::string_view node, std::string_view name);
std::string HostGroupKey(std::string_view node, std::string_view group);
std::string HostGroupContextKey(std::string_view origin);
std::string InventoryKey(std::string_view node);
std::string JobKey(std::string_view id);
std::string JobLogKey(std::string_view id, uint64_t chunk);
std::string ConfigKey(std::string_view key);
std::string TokenEpochKey();

// Reads the components of a key back. Each Take* consumes one component from the front of
// *rest and fails (returns false, *rest unspecified) on a malformed encoding.
bool TakeString(std::string_view* rest, std::string* out);
bool TakeU64(std::string_view* rest, uint64_t* out);

// The components of a key, decoded according to its section: one or two strings and, for the
// delta log and job logs, a number. Fails on an unknown section or trailing bytes.
struct DecodedKey {
  Section section = Section::kMeta;
  std::string a;   // origin, name, node or job id
  std::string b;   // node var name or group
  uint64_t n = 0;  // delta seq or log chunk
};
std::optional<DecodedKey> DecodeKey(std::string_view key);

// A key as an operator reads it: printable ASCII as is, every other byte as \xNN (LevelDB's
// EscapeString convention), e.g. "\x10ab\x00\x01".
std::string EscapeKey(std::string_view key);

}  // namespace clustermgr::store
