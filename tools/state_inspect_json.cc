// state-inspect's JSON: the state, a store's sections and stats, and the diff lines
// (tools/state_inspect.h).
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crdt/records.h"
#include "store/codec.h"
#include "store/inspect.h"
#include "tools/state_inspect.h"

namespace clustermgr::tools {
namespace {

using nlohmann::json;
using store::Section;

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// A string as JSON: itself when it is UTF-8 (JSON cannot hold anything else), else its bytes
// in hex, so that every distinct string prints distinctly.
json Str(const std::string& s) {
  if (ValidUtf8(s)) return s;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 0xf]);
  }
  return json{{"hex", hex}};
}

// A JSON-text value as the JSON it holds, or as text when it does not parse.
json JsonText(const std::string& text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return json{{"text", Str(text)}};
  return parsed;
}

json Stamp(const crdt::WriteTag& tag) {
  return json{{"epoch", tag.stamp.epoch},
              {"hlc", tag.stamp.hlc.ToString()},
              {"origin", Str(tag.stamp.origin)},
              {"seq", tag.seq}};
}

json ValueJson(const std::string& v, bool is_json) { return is_json ? JsonText(v) : Str(v); }

json ValueJson(const crdt::InventoryRecord& r, bool) {
  json tags = json::object();
  for (const auto& [k, v] : r.tags) tags[ValidUtf8(k) ? k : Str(k).dump()] = Str(v);
  return json{{"status", std::string(crdt::ToString(r.status))},
              {"state", std::string(crdt::ToString(r.state))},
              {"prev_status", std::string(crdt::ToString(r.prev_status))},
              {"prev_state", std::string(crdt::ToString(r.prev_state))},
              {"addr", Str(r.addr)},
              {"tags", tags},
              {"serf_status", Str(r.serf_status)},
              {"updated_ms", r.updated_ms}};
}

json ValueJson(const crdt::JobRecord& j, bool) {
  json nodes = json::array();
  for (const std::string& n : j.nodes) nodes.push_back(Str(n));
  json out{{"id", Str(j.id)},
           {"desc", Str(j.desc)},
           {"nodes", nodes},
           {"host_group", Str(j.host_group)},
           {"status", std::string(crdt::ToString(j.status))},
           {"error", Str(j.error)},
           {"epoch", j.epoch},
           {"owner", Str(j.owner)},
           {"created_ms", j.created_ms},
           {"started_ms", j.started_ms},
           {"ended_ms", j.ended_ms},
           {"log_lines", j.log_lines},
           {"log_chunks", j.log_chunks}};
  if (!j.hosts.empty()) {  // jobs of older versions have no per-host summary
    json hosts = json::array();
    for (const crdt::HostSummary& h : j.hosts) {
      hosts.push_back({{"host", Str(h.host)},
                       {"ok", h.ok},
                       {"changed", h.changed},
                       {"unreachable", h.unreachable},
                       {"failed", h.failed},
                       {"skipped", h.skipped}});
    }
    out["hosts"] = hosts;
  }
  return out;
}

template <typename V>
json EntryJson(const crdt::LwwEntry<V>& e, bool is_json) {
  json out{{"stamp", Stamp(e.tag)}};
  if (e.tombstone()) {
    out["tombstone"] = true;
  } else {
    out["value"] = ValueJson(*e.value, is_json);
  }
  return out;
}

// How each LWW section names its key in JSON.
json KeyJson(const std::string& k) { return Str(k); }
json KeyJson(const crdt::NodeVarKey& k) { return json::array({Str(k.first), Str(k.second)}); }
json KeyJson(const crdt::JobLogKey& k) { return json::array({Str(k.first), k.second}); }

template <typename K, typename V>
json MapJson(const crdt::LwwMap<K, V>& map, bool is_json) {
  json out = json::array();
  for (const auto& [k, e] : map.entries()) {
    json item = EntryJson(e, is_json);
    item["key"] = KeyJson(k);
    out.push_back(std::move(item));
  }
  return out;
}

std::string DotString(const crdt::Dot& d) {
  return (ValidUtf8(d.origin) ? d.origin : Str(d.origin).dump()) + ":" + std::to_string(d.counter);
}

json ContextJson(const crdt::CausalContext& ctx) {
  json compact = json::object();
  for (const auto& [origin, n] : ctx.compact().entries()) {
    compact[ValidUtf8(origin) ? origin : Str(origin).dump()] = n;
  }
  json cloud = json::array();
  for (const crdt::Dot& d : ctx.cloud()) cloud.push_back(DotString(d));
  return json{{"compact", compact}, {"cloud", cloud}};
}

json ElementsJson(const crdt::OrSet<crdt::HostGroupKey>& set) {
  json out = json::array();
  for (const auto& [e, dots] : set.entries()) {
    json d = json::array();
    for (const crdt::Dot& dot : dots) d.push_back(DotString(dot));
    out.push_back(json{{"node", Str(e.first)}, {"group", Str(e.second)}, {"dots", d}});
  }
  return out;
}

json VectorJson(const crdt::VersionVector& vv) {
  json out = json::object();
  for (const auto& [origin, n] : vv.entries())
    out[ValidUtf8(origin) ? origin : Str(origin).dump()] = n;
  return out;
}

template <typename K, typename V>
void DiffMap(const char* section, const crdt::LwwMap<K, V>& a, const crdt::LwwMap<K, V>& b,
             bool is_json, std::vector<std::string>* out) {
  auto line = [&](const K& k, const crdt::LwwEntry<V>* x, const crdt::LwwEntry<V>* y) {
    out->push_back(std::string(section) + " " + KeyJson(k).dump() + ": A " +
                   (x ? EntryJson(*x, is_json).dump() : "absent") + " | B " +
                   (y ? EntryJson(*y, is_json).dump() : "absent"));
  };
  auto i = a.entries().begin();
  auto j = b.entries().begin();
  while (i != a.entries().end() || j != b.entries().end()) {
    if (j == b.entries().end() || (i != a.entries().end() && i->first < j->first)) {
      line(i->first, &i->second, nullptr);
      ++i;
    } else if (i == a.entries().end() || j->first < i->first) {
      line(j->first, nullptr, &j->second);
      ++j;
    } else {
      if (i->second != j->second) line(i->first, &i->second, &j->second);
      ++i;
      ++j;
    }
  }
}

}  // namespace

json StateJson(const crdt::ClusterState& s) {
  return json{{"globals", MapJson(s.globals, true)},
              {"node_vars", MapJson(s.node_vars, true)},
              {"host_groups", json{{"elements", ElementsJson(s.host_groups)},
                                   {"context", ContextJson(s.host_groups.context())}}},
              {"inventory", MapJson(s.inventory, false)},
              {"jobs", MapJson(s.jobs, false)},
              {"job_logs", MapJson(s.job_logs, false)},
              {"config", MapJson(s.config, true)},
              {"token_epoch", s.token_epoch.value()}};
}

json SectionJson(const store::StoreContents& c, Section section) {
  const crdt::ClusterState& s = c.state;
  switch (section) {
    case Section::kMeta: {
      if (!c.meta) return nullptr;
      const store::Metadata& m = *c.meta;
      return json{
          {"schema_version", m.schema_version}, {"instance", Str(m.instance)},
          {"incarnation", Str(m.incarnation)},  {"origin", Str(m.origin())},
          {"local_seq", m.local_seq},           {"hlc_high_water", m.hlc_high_water.ToString()},
          {"created_ms", m.created_ms}};
    }
    case Section::kApplied:
      return VectorJson(c.applied);
    case Section::kDeltaLog: {
      json out = json::array();
      for (const crdt::Delta& d : c.deltas) {
        out.push_back(
            json{{"origin", Str(d.origin)}, {"seq", d.seq}, {"state", StateJson(d.state)}});
      }
      return out;
    }
    case Section::kGlobals:
      return MapJson(s.globals, true);
    case Section::kNodeVars:
      return MapJson(s.node_vars, true);
    case Section::kHostGroups:
      return json{{"elements", ElementsJson(s.host_groups)},
                  {"context", ContextJson(s.host_groups.context())}};
    case Section::kHostGroupContext:
      return ContextJson(s.host_groups.context());
    case Section::kInventory:
      return MapJson(s.inventory, false);
    case Section::kJobs:
      return MapJson(s.jobs, false);
    case Section::kJobLogs:
      return MapJson(s.job_logs, false);
    case Section::kConfig:
      return MapJson(s.config, true);
    case Section::kTokenEpoch:
      return s.token_epoch.value();
  }
  return nullptr;
}

json StatsJson(const store::StoreContents& c) {
  json out;
  if (c.meta) out["meta"] = SectionJson(c, Section::kMeta);
  json sections = json::object();
  uint64_t records = 0;
  uint64_t bytes = 0;
  for (Section s : store::AllSections()) {
    auto it = c.sections.find(s);
    const store::SectionStats st = it == c.sections.end() ? store::SectionStats{} : it->second;
    sections[std::string(store::SectionName(s))] =
        json{{"records", st.records}, {"bytes", st.bytes}, {"tombstones", st.tombstones}};
    records += st.records;
    bytes += st.bytes;
  }
  out["sections"] = sections;
  out["total"] = json{{"records", records}, {"bytes", bytes}};
  out["applied"] = VectorJson(c.applied);
  json log = json::object();
  for (const auto& [origin, seqs] : c.delta_log) {
    if (seqs.empty()) continue;
    log[ValidUtf8(origin) ? origin : Str(origin).dump()] =
        json{{"count", seqs.size()}, {"first", *seqs.begin()}, {"last", *seqs.rbegin()}};
  }
  out["delta_log"] = log;
  return out;
}

std::vector<std::string> DiffStates(const crdt::ClusterState& a, const crdt::ClusterState& b) {
  std::vector<std::string> out;
  DiffMap("globals", a.globals, b.globals, true, &out);
  DiffMap("node_vars", a.node_vars, b.node_vars, true, &out);
  {
    const auto& x = a.host_groups.entries();
    const auto& y = b.host_groups.entries();
    std::set<crdt::HostGroupKey> keys;
    for (const auto& [k, d] : x) keys.insert(k);
    for (const auto& [k, d] : y) keys.insert(k);
    auto dots = [](const std::set<crdt::Dot>* d) -> std::string {
      if (!d) return "absent";
      json arr = json::array();
      for (const crdt::Dot& dot : *d) arr.push_back(DotString(dot));
      return arr.dump();
    };
    for (const auto& k : keys) {
      auto i = x.find(k);
      auto j = y.find(k);
      const std::set<crdt::Dot>* di = i == x.end() ? nullptr : &i->second;
      const std::set<crdt::Dot>* dj = j == y.end() ? nullptr : &j->second;
      if (di && dj && *di == *dj) continue;
      out.push_back("host_groups " + json::array({Str(k.first), Str(k.second)}).dump() + ": A " +
                    dots(di) + " | B " + dots(dj));
    }
    if (!(a.host_groups.context() == b.host_groups.context())) {
      out.push_back("host_group_context: A " + ContextJson(a.host_groups.context()).dump() +
                    " | B " + ContextJson(b.host_groups.context()).dump());
    }
  }
  DiffMap("inventory", a.inventory, b.inventory, false, &out);
  DiffMap("jobs", a.jobs, b.jobs, false, &out);
  DiffMap("job_logs", a.job_logs, b.job_logs, false, &out);
  DiffMap("config", a.config, b.config, true, &out);
  if (a.token_epoch.value() != b.token_epoch.value()) {
    out.push_back("token_epoch: A " + std::to_string(a.token_epoch.value()) + " | B " +
                  std::to_string(b.token_epoch.value()));
  }
  return out;
}

json LiveStatsJson(const crdt::ClusterState& state) {
  // Each section's bytes: how much a state holding that section alone encodes to (as stateDump
  // encodes) beyond an empty state.
  const size_t empty = store::EncodeState(crdt::ClusterState{}).size();
  auto bytes = [empty](auto fill) {
    crdt::ClusterState part;
    fill(part);
    const size_t size = store::EncodeState(part).size();
    return size > empty ? size - empty : 0;
  };
  auto lww = [](const auto& map, uint64_t size) {
    return json{{"entries", map.size()}, {"tombstones", map.tombstones()}, {"bytes", size}};
  };
  json sections = json::object();
  sections["globals"] = lww(state.globals, bytes([&](auto& p) { p.globals = state.globals; }));
  sections["node_vars"] =
      lww(state.node_vars, bytes([&](auto& p) { p.node_vars = state.node_vars; }));
  sections["host_groups"] =
      json{{"entries", state.host_groups.entries().size()},
           {"tombstones", 0},
           {"bytes", bytes([&](auto& p) { p.host_groups = state.host_groups; })}};
  sections["inventory"] =
      lww(state.inventory, bytes([&](auto& p) { p.inventory = state.inventory; }));
  sections["jobs"] = lww(state.jobs, bytes([&](auto& p) { p.jobs = state.jobs; }));
  sections["job_logs"] = lww(state.job_logs, bytes([&](auto& p) { p.job_logs = state.job_logs; }));
  sections["config"] = lww(state.config, bytes([&](auto& p) { p.config = state.config; }));
  sections["token_epoch"] =
      json{{"entries", 1},
           {"tombstones", 0},
           {"bytes", bytes([&](auto& p) { p.token_epoch = state.token_epoch; })}};
  uint64_t entries = 0;
  for (const auto& [name, s] : sections.items()) entries += s["entries"].get<uint64_t>();
  return json{{"sections", sections},
              {"total", {{"entries", entries}, {"bytes", store::EncodeState(state).size()}}}};
}

}  // namespace clustermgr::tools
