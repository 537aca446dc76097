#include "store/keys.h"

#include <array>
#include <utility>

namespace clustermgr::store {
namespace {

constexpr std::array<std::pair<Section, std::string_view>, 12> kSections{{
    {Section::kMeta, "meta"},
    {Section::kApplied, "applied"},
    {Section::kDeltaLog, "delta_log"},
    {Section::kGlobals, "globals"},
    {Section::kNodeVars, "node_vars"},
    {Section::kHostGroups, "host_groups"},
    {Section::kHostGroupContext, "host_group_context"},
    {Section::kInventory, "inventory"},
    {Section::kJobs, "jobs"},
    {Section::kJobLogs, "job_logs"},
    {Section::kConfig, "config"},
    {Section::kTokenEpoch, "token_epoch"},
}};

std::string Prefix(Section s) { return std::string(1, static_cast<char>(s)); }

void PutString(std::string* out, std::string_view s) {
  for (char c : s) {
    out->push_back(c);
    if (c == '\0') out->push_back('\xff');
  }
  out->push_back('\0');
  out->push_back('\x01');
}

void PutU64(std::string* out, uint64_t n) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((n >> shift) & 0xff));
  }
}

}  // namespace

const std::vector<Section>& AllSections() {
  static const std::vector<Section> all = [] {
    std::vector<Section> v;
    for (const auto& [s, name] : kSections) v.push_back(s);
    return v;
  }();
  return all;
}

std::string_view SectionName(Section s) {
  for (const auto& [section, name] : kSections) {
    if (section == s) return name;
  }
  return "unknown";
}

std::optional<Section> ParseSectionName(std::string_view name) {
  for (const auto& [section, n] : kSections) {
    if (n == name) return section;
  }
  return std::nullopt;
}

std::optional<Section> SectionOf(std::string_view key) {
  if (key.empty()) return std::nullopt;
  for (const auto& [section, name] : kSections) {
    if (static_cast<char>(section) == key[0]) return section;
  }
  return std::nullopt;
}

std::string MetaKey() { return Prefix(Section::kMeta); }
std::string TokenEpochKey() { return Prefix(Section::kTokenEpoch); }

std::string AppliedKey(std::string_view origin) {
  std::string k = Prefix(Section::kApplied);
  PutString(&k, origin);
  return k;
}

std::string DeltaLogPrefix(std::string_view origin) {
  std::string k = Prefix(Section::kDeltaLog);
  PutString(&k, origin);
  return k;
}

std::string DeltaLogKey(std::string_view origin, uint64_t seq) {
  std::string k = DeltaLogPrefix(origin);
  PutU64(&k, seq);
  return k;
}

namespace {
std::string OneString(Section s, std::string_view a) {
  std::string k = Prefix(s);
  PutString(&k, a);
  return k;
}
std::string TwoStrings(Section s, std::string_view a, std::string_view b) {
  std::string k = OneString(s, a);
  PutString(&k, b);
  return k;
}
}  // namespace

std::string GlobalKey(std::string_view name) { return OneString(Section::kGlobals, name); }
std::string NodeVarKey(std::string_view node, std::string_view name) {
  return TwoStrings(Section::kNodeVars, node, name);
}
std::string HostGroupKey(std::string_view node, std::string_view group) {
  return TwoStrings(Section::kHostGroups, node, group);
}
std::string HostGroupContextKey(std::string_view origin) {
  return OneString(Section::kHostGroupContext, origin);
}
std::string InventoryKey(std::string_view node) { return OneString(Section::kInventory, node); }
std::string JobKey(std::string_view id) { return OneString(Section::kJobs, id); }
std::string JobLogKey(std::string_view id, uint64_t chunk) {
  std::string k = OneString(Section::kJobLogs, id);
  PutU64(&k, chunk);
  return k;
}
std::string ConfigKey(std::string_view key) { return OneString(Section::kConfig, key); }

bool TakeString(std::string_view* rest, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < rest->size()) {
    const char c = (*rest)[i];
    if (c != '\0') {
      out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= rest->size()) return false;
    const char next = (*rest)[i + 1];
    if (next == '\xff') {
      out->push_back('\0');
      i += 2;
    } else if (next == '\x01') {
      rest->remove_prefix(i + 2);
      return true;
    } else {
      return false;
    }
  }
  return false;  // no terminator
}

bool TakeU64(std::string_view* rest, uint64_t* out) {
  if (rest->size() < 8) return false;
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n = (n << 8) | static_cast<uint8_t>((*rest)[i]);
  rest->remove_prefix(8);
  *out = n;
  return true;
}

std::optional<DecodedKey> DecodeKey(std::string_view key) {
  const std::optional<Section> section = SectionOf(key);
  if (!section) return std::nullopt;
  DecodedKey out;
  out.section = *section;
  std::string_view rest = key.substr(1);
  bool ok = true;
  switch (*section) {
    case Section::kMeta:
    case Section::kTokenEpoch:
      break;
    case Section::kApplied:
    case Section::kGlobals:
    case Section::kHostGroupContext:
    case Section::kInventory:
    case Section::kJobs:
    case Section::kConfig:
      ok = TakeString(&rest, &out.a);
      break;
    case Section::kNodeVars:
    case Section::kHostGroups:
      ok = TakeString(&rest, &out.a) && TakeString(&rest, &out.b);
      break;
    case Section::kDeltaLog:
    case Section::kJobLogs:
      ok = TakeString(&rest, &out.a) && TakeU64(&rest, &out.n);
      break;
  }
  if (!ok || !rest.empty()) return std::nullopt;
  return out;
}

std::string EscapeKey(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(ch);
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

}  // namespace clustermgr::store
