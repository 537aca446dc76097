#include "tools/state_inspect.h"

#include <boost/program_options.hpp>
#include <cstdio>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "clustermgr_version.h"
#include "crdt/records.h"
#include "net/rpc_client.h"
#include "store/codec.h"
#include "store/inspect.h"
#include "tools/command_line.h"

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
  return json{{"id", Str(j.id)},
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

std::string Usage() {
  return "usage: state-inspect dump SOURCE [--section NAME]\n"
         "       state-inspect stats SOURCE [--json]\n"
         "       state-inspect verify DIR\n"
         "       state-inspect diff SOURCE_A SOURCE_B\n"
         "SOURCE is a data dir, or --url URL for a live clustermgrd (its RPC endpoint);\n"
         "  a CURVE daemon also needs --server-key KEY|FILE and --key FILE (or\n"
         "  $CLUSTERMGR_SERVER_KEY and $CLUSTERMGR_KEY)\n"
         "sections: meta applied delta_log globals node_vars host_groups host_group_context\n"
         "          inventory jobs job_logs config token_epoch (a --url has no meta, applied,\n"
         "          delta_log)\n"
         "exit: 0 ok, 1 verify found problems / diff found differences, 2 usage, 3 unreadable "
         "dir or URL\n";
}

std::string Human(uint64_t bytes) {
  std::ostringstream s;
  if (bytes < 10 * 1024) {
    s << bytes << " B";
  } else if (bytes < 10 * 1024 * 1024) {
    s << bytes / 1024 << " KiB";
  } else {
    s << bytes / (1024 * 1024) << " MiB";
  }
  return s.str();
}

// Where a command reads a state from: a data dir (read through a private copy) or a live
// clustermgrd (its stateDump RPC).
struct Source {
  bool live = false;
  std::string where;                            // the dir or the URL
  std::optional<net::CurveClientConfig> curve;  // live only
};

// A loaded source: the state, and for a dir the whole inspection.
struct Loaded {
  crdt::ClusterState state;
  std::optional<store::Inspection> inspection;
};

// Loads `dir` for a command; on failure prints one line and sets *code.
std::optional<store::Inspection> Load(const std::string& dir, std::ostream& err, int* code) {
  auto inspection = store::InspectDir(dir);
  if (!inspection.ok()) {
    err << "state-inspect: " << inspection.status().message() << "\n";
    *code = kExitUnreadable;
    return std::nullopt;
  }
  return std::move(*inspection);
}

// Problems that keep a dir's state from being trusted for dump and diff are reported, but the
// command goes on with what decoded (verify is the command that judges).
void WarnProblems(const std::string& dir, const store::Inspection& in, std::ostream& err) {
  if (!in.problems.empty()) {
    err << "state-inspect: warning: " << dir << " has " << in.problems.size()
        << " problem(s); run state-inspect verify " << dir << "\n";
  }
}

std::optional<Loaded> LoadSource(const Source& source, std::ostream& err, int* code) {
  Loaded loaded;
  if (!source.live) {
    auto in = Load(source.where, err, code);
    if (!in) return std::nullopt;
    WarnProblems(source.where, *in, err);
    loaded.state = in->contents.state;
    loaded.inspection = std::move(in);
    return loaded;
  }
  auto state = FetchLiveState(source.where, std::chrono::seconds(10), source.curve);
  if (!state.ok()) {
    err << "state-inspect: " << state.status().message() << "\n";
    *code = kExitUnreadable;
    return std::nullopt;
  }
  loaded.state = std::move(*state);
  return loaded;
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

int Dump(const Source& source, const std::optional<Section>& section, std::ostream& out,
         std::ostream& err) {
  int code = kExitOk;
  auto in = LoadSource(source, err, &code);
  if (!in) return code;
  json doc;
  if (!section) {
    doc = StateJson(in->state);
  } else if (in->inspection) {
    doc = json{{std::string(store::SectionName(*section)),
                SectionJson(in->inspection->contents, *section)}};
  } else {
    store::StoreContents contents;
    contents.state = std::move(in->state);
    doc = json{{std::string(store::SectionName(*section)), SectionJson(contents, *section)}};
  }
  out << doc.dump(2) << "\n";
  return kExitOk;
}

// The sections of a live state, in the order of the store's sections.
constexpr const char* kLiveSections[] = {"globals", "node_vars", "host_groups", "inventory",
                                         "jobs",    "job_logs",  "config",      "token_epoch"};

void PrintLiveStats(const json& stats, std::ostream& out) {
  const char* count_name = "entries";
  out << std::left << std::setw(20) << "section" << std::right << std::setw(10) << count_name
      << std::setw(12) << "tombstones" << std::setw(12) << "bytes"
      << "\n";
  for (const char* name : kLiveSections) {
    const json& s = stats["sections"][name];
    out << std::left << std::setw(20) << name << std::right << std::setw(10)
        << s[count_name].get<uint64_t>() << std::setw(12) << s["tombstones"].get<uint64_t>()
        << std::setw(12) << Human(s["bytes"].get<uint64_t>()) << "\n";
  }
  out << std::left << std::setw(20) << "total" << std::right << std::setw(10)
      << stats["total"][count_name].get<uint64_t>() << std::setw(12) << "" << std::setw(12)
      << Human(stats["total"]["bytes"].get<uint64_t>()) << "\n";
}

int Stats(const Source& source, bool as_json, std::ostream& out, std::ostream& err) {
  int code = kExitOk;
  auto in = LoadSource(source, err, &code);
  if (!in) return code;
  if (!in->inspection) {
    const json stats = LiveStatsJson(in->state);
    if (as_json) {
      out << stats.dump(2) << "\n";
      return kExitOk;
    }
    out << "live state of " << source.where << "\n";
    PrintLiveStats(stats, out);
    return kExitOk;
  }
  const store::StoreContents& contents = in->inspection->contents;
  const json stats = StatsJson(contents);
  if (as_json) {
    out << stats.dump(2) << "\n";
    return kExitOk;
  }
  out << "data dir " << source.where << "\n";
  if (stats.contains("meta")) {
    const json& m = stats["meta"];
    out << "instance " << m["instance"].dump() << ", origin " << m["origin"].dump()
        << ", local seq " << m["local_seq"] << ", HLC high-water "
        << m["hlc_high_water"].get<std::string>() << "\n";
  }
  out << std::left << std::setw(20) << "section" << std::right << std::setw(10) << "records"
      << std::setw(12) << "tombstones" << std::setw(12) << "bytes"
      << "\n";
  for (Section section : store::AllSections()) {
    const json& s = stats["sections"][std::string(store::SectionName(section))];
    const std::string name(store::SectionName(section));
    out << std::left << std::setw(20) << name << std::right << std::setw(10)
        << s["records"].get<uint64_t>() << std::setw(12) << s["tombstones"].get<uint64_t>()
        << std::setw(12) << Human(s["bytes"].get<uint64_t>()) << "\n";
  }
  out << std::left << std::setw(20) << "total" << std::right << std::setw(10)
      << stats["total"]["records"].get<uint64_t>() << std::setw(12) << "" << std::setw(12)
      << Human(stats["total"]["bytes"].get<uint64_t>()) << "\n";
  out << "applied " << contents.applied.ToString() << "\n";
  for (const auto& [origin, log] : stats["delta_log"].items()) {
    out << "delta log " << origin << ": " << log["count"] << " deltas, seq " << log["first"] << ".."
        << log["last"] << "\n";
  }
  return kExitOk;
}

int VerifyCmd(const std::string& dir, std::ostream& out, std::ostream& err) {
  int code = kExitOk;
  auto in = Load(dir, err, &code);
  if (!in) return code;
  for (const store::Problem& p : in->problems) out << "problem: " << p.ToString() << "\n";
  uint64_t records = 0;
  for (const auto& [s, st] : in->contents.sections) records += st.records;
  if (!in->problems.empty()) {
    err << "state-inspect: " << dir << ": " << in->problems.size() << " problem(s) in " << records
        << " records\n";
    return kExitFound;
  }
  out << "ok: " << records << " records verified\n";
  return kExitOk;
}

int Diff(const Source& a, const Source& b, std::ostream& out, std::ostream& err) {
  int code = kExitOk;
  auto x = LoadSource(a, err, &code);
  if (!x) return code;
  auto y = LoadSource(b, err, &code);
  if (!y) return code;
  const std::vector<std::string> lines = DiffStates(x->state, y->state);
  for (const std::string& l : lines) out << l << "\n";
  return lines.empty() ? kExitOk : kExitFound;
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

Result<crdt::ClusterState> FetchLiveState(const std::string& url, std::chrono::milliseconds timeout,
                                          const std::optional<net::CurveClientConfig>& curve) {
  net::RpcClient::Options options;
  options.timeout = timeout;
  options.curve = curve;
  net::RpcClient client(url, options);
  auto bytes = client.StateDump();
  if (!bytes.ok()) {
    std::string text = url + ": " + bytes.error().message;
    if (!curve && text.find("could not connect") != std::string::npos) {
      text += " (if the server uses CURVE, pass --server-key and --key)";
    }
    return Status(Code::kUnavailable, text);
  }
  store::DecodeLimits limits;
  limits.max_bytes = std::max<size_t>(limits.max_bytes, bytes.value().size());
  auto state = store::DecodeState(bytes.value(), limits);
  if (!state.ok()) {
    return Status(state.status().code(),
                  url + ": the state does not decode: " + state.status().message());
  }
  return std::move(state).value();
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

int RunStateInspect(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::optional<std::string> cmd;
  std::vector<Source> sources;  // in the order given
  std::optional<std::string> section_name;
  std::optional<std::string> server_key;
  std::optional<std::string> key_file;
  bool as_json = false;
  bool help = false;
  bool version = false;
  // Boost.Program_options reads the words; they are then taken in the order given, because the
  // order of the sources (data dirs and --url) is the order of a diff.
  namespace po = boost::program_options;
  po::options_description flags;
  // clang-format off
  flags.add_options()
    ("help,h", po::bool_switch(&help))
    ("version", po::bool_switch(&version))
    ("section", po::value<std::vector<std::string>>())
    ("url", po::value<std::vector<std::string>>())
    ("server-key", po::value<std::vector<std::string>>())
    ("key", po::value<std::vector<std::string>>())
    ("json", po::bool_switch(&as_json))
    ("words", po::value<std::vector<std::string>>());
  // clang-format on
  po::positional_options_description positional;
  positional.add("words", -1);
  po::parsed_options parsed(&flags);
  try {
    parsed = ParseCommandLine(args, flags, &positional);
    po::variables_map vm;
    po::store(parsed, vm);
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    err << "state-inspect: unknown option " << e.get_option_name() << "\n" << Usage();
    return kExitUsage;
  } catch (const std::exception& e) {
    err << "state-inspect: " << e.what() << "\n" << Usage();
    return kExitUsage;
  }
  if (help) {
    out << Usage();
    return kExitOk;
  }
  if (version) {
    out << "state-inspect " CLUSTERMGR_VERSION "\n";
    return kExitOk;
  }
  for (const po::option& option : parsed.options) {
    if (option.value.empty()) continue;  // switches
    const std::string& value = option.value.front();
    if (option.string_key == "section") {
      section_name = value;
    } else if (option.string_key == "url") {
      if (value.empty()) {
        err << "state-inspect: --url needs a URL\n" << Usage();
        return kExitUsage;
      }
      sources.push_back({true, value, std::nullopt});
    } else if (option.string_key == "server-key") {
      server_key = value;
    } else if (option.string_key == "key") {
      key_file = value;
    } else if (!cmd) {
      cmd = value;
    } else {
      sources.push_back({false, value, std::nullopt});
    }
  }
  if (!cmd) {
    err << "state-inspect: a command is needed\n" << Usage();
    return kExitUsage;
  }
  auto from_env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  if (!server_key) server_key = from_env("CLUSTERMGR_SERVER_KEY");
  if (!key_file) key_file = from_env("CLUSTERMGR_KEY");
  if (server_key.has_value() != key_file.has_value()) {
    err << "state-inspect: --server-key and --key go together\n" << Usage();
    return kExitUsage;
  }
  if (server_key) {
    auto server = net::LoadPublicKeyArg(*server_key);
    if (!server.ok()) {
      err << "state-inspect: --server-key: " << server.status().message() << "\n";
      return kExitUnreadable;
    }
    auto pair = net::LoadSecretKeyFile(*key_file);
    if (!pair.ok()) {
      err << "state-inspect: --key: " << pair.status().message() << "\n";
      return kExitUnreadable;
    }
    for (Source& s : sources) {
      if (s.live) s.curve = net::CurveClientConfig{*server, *pair};
    }
  }
  const bool known = *cmd == "dump" || *cmd == "stats" || *cmd == "verify" || *cmd == "diff";
  if (!known) {
    err << "state-inspect: unknown command \"" << *cmd << "\"\n" << Usage();
    return kExitUsage;
  }
  const size_t want = *cmd == "diff" ? 2 : 1;
  if (sources.size() != want) {
    err << "state-inspect: " << *cmd << " takes " << want << " data dir" << (want == 2 ? "s" : "")
        << (*cmd == "verify" ? "" : " or --url") << "\n"
        << Usage();
    return kExitUsage;
  }
  if (*cmd == "verify" && sources[0].live) {
    err << "state-inspect: verify reads a data dir (a live --url has no store records to "
           "verify)\n";
    return kExitUsage;
  }
  if (section_name && *cmd != "dump") {
    err << "state-inspect: --section applies to dump only\n";
    return kExitUsage;
  }
  if (as_json && *cmd != "stats") {
    err << "state-inspect: --json applies to stats only (dump always prints JSON)\n";
    return kExitUsage;
  }
  if (*cmd == "dump") {
    std::optional<Section> section;
    if (section_name) {
      section = store::ParseSectionName(*section_name);
      if (!section) {
        err << "state-inspect: unknown section \"" << *section_name << "\"\n" << Usage();
        return kExitUsage;
      }
      if (sources[0].live && (*section == Section::kMeta || *section == Section::kApplied ||
                              *section == Section::kDeltaLog)) {
        err << "state-inspect: section " << *section_name
            << " is a store's own record, not part of a live --url's state\n";
        return kExitUsage;
      }
    }
    return Dump(sources[0], section, out, err);
  }
  if (*cmd == "stats") return Stats(sources[0], as_json, out, err);
  if (*cmd == "verify") return VerifyCmd(sources[0].where, out, err);
  return Diff(sources[0], sources[1], out, err);
}

}  // namespace clustermgr::tools
