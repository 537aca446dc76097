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

// The command line, once read: the command, its sources in the order given and its options.
struct Invocation {
  std::string cmd;
  std::vector<Source> sources;
  std::optional<std::string> section_name;
  std::optional<std::string> server_key;
  std::optional<std::string> key_file;
  bool as_json = false;
  bool help = false;
  bool version = false;
};

// Reads args into *inv; on a usage error prints it and returns the exit code.
std::optional<int> ParseArgs(const std::vector<std::string>& args, Invocation* inv,
                             std::ostream& err) {
  // Boost.Program_options reads the words; they are then taken in the order given, because the
  // order of the sources (data dirs and --url) is the order of a diff.
  namespace po = boost::program_options;
  po::options_description flags;
  // clang-format off
  flags.add_options()
    ("help,h", po::bool_switch(&inv->help))
    ("version", po::bool_switch(&inv->version))
    ("section", po::value<std::vector<std::string>>())
    ("url", po::value<std::vector<std::string>>())
    ("server-key", po::value<std::vector<std::string>>())
    ("key", po::value<std::vector<std::string>>())
    ("json", po::bool_switch(&inv->as_json))
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
  if (inv->help || inv->version) return std::nullopt;
  bool have_cmd = false;
  for (const po::option& option : parsed.options) {
    if (option.value.empty()) continue;  // switches
    const std::string& value = option.value.front();
    if (option.string_key == "section") {
      inv->section_name = value;
    } else if (option.string_key == "url") {
      if (value.empty()) {
        err << "state-inspect: --url needs a URL\n" << Usage();
        return kExitUsage;
      }
      inv->sources.push_back({true, value, std::nullopt});
    } else if (option.string_key == "server-key") {
      inv->server_key = value;
    } else if (option.string_key == "key") {
      inv->key_file = value;
    } else if (!have_cmd) {
      inv->cmd = value;
      have_cmd = true;
    } else {
      inv->sources.push_back({false, value, std::nullopt});
    }
  }
  if (!have_cmd) {
    err << "state-inspect: a command is needed\n" << Usage();
    return kExitUsage;
  }
  return std::nullopt;
}

// --server-key and --key (or their environment variables) give every --url source its CURVE
// keys; on an error prints it and returns the exit code.
std::optional<int> ApplyKeys(Invocation* inv, std::ostream& err) {
  auto from_env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  if (!inv->server_key) inv->server_key = from_env("CLUSTERMGR_SERVER_KEY");
  if (!inv->key_file) inv->key_file = from_env("CLUSTERMGR_KEY");
  if (inv->server_key.has_value() != inv->key_file.has_value()) {
    err << "state-inspect: --server-key and --key go together\n" << Usage();
    return kExitUsage;
  }
  if (!inv->server_key) return std::nullopt;
  auto server = net::LoadPublicKeyArg(*inv->server_key);
  if (!server.ok()) {
    err << "state-inspect: --server-key: " << server.status().message() << "\n";
    return kExitUnreadable;
  }
  auto pair = net::LoadSecretKeyFile(*inv->key_file);
  if (!pair.ok()) {
    err << "state-inspect: --key: " << pair.status().message() << "\n";
    return kExitUnreadable;
  }
  for (Source& s : inv->sources) {
    if (s.live) s.curve = net::CurveClientConfig{*server, *pair};
  }
  return std::nullopt;
}

// The command's name, its number of sources and which options apply to it; on a usage error
// prints it and returns the exit code.
std::optional<int> CheckCommand(const Invocation& inv, std::ostream& err) {
  const std::string& cmd = inv.cmd;
  const bool known = cmd == "dump" || cmd == "stats" || cmd == "verify" || cmd == "diff";
  if (!known) {
    err << "state-inspect: unknown command \"" << cmd << "\"\n" << Usage();
    return kExitUsage;
  }
  const size_t want = cmd == "diff" ? 2 : 1;
  if (inv.sources.size() != want) {
    err << "state-inspect: " << cmd << " takes " << want << " data dir" << (want == 2 ? "s" : "")
        << (cmd == "verify" ? "" : " or --url") << "\n"
        << Usage();
    return kExitUsage;
  }
  if (cmd == "verify" && inv.sources[0].live) {
    err << "state-inspect: verify reads a data dir (a live --url has no store records to "
           "verify)\n";
    return kExitUsage;
  }
  if (inv.section_name && cmd != "dump") {
    err << "state-inspect: --section applies to dump only\n";
    return kExitUsage;
  }
  if (inv.as_json && cmd != "stats") {
    err << "state-inspect: --json applies to stats only (dump always prints JSON)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

int DumpCmd(const Invocation& inv, std::ostream& out, std::ostream& err) {
  std::optional<Section> section;
  if (inv.section_name) {
    section = store::ParseSectionName(*inv.section_name);
    if (!section) {
      err << "state-inspect: unknown section \"" << *inv.section_name << "\"\n" << Usage();
      return kExitUsage;
    }
    if (inv.sources[0].live && (*section == Section::kMeta || *section == Section::kApplied ||
                                *section == Section::kDeltaLog)) {
      err << "state-inspect: section " << *inv.section_name
          << " is a store's own record, not part of a live --url's state\n";
      return kExitUsage;
    }
  }
  return Dump(inv.sources[0], section, out, err);
}

}  // namespace

Result<crdt::ClusterState> FetchLiveState(const std::string& url, std::chrono::milliseconds timeout,
                                          const std::optional<net::CurveClientConfig>& curve) {
  net::RpcClient::Options options;
  options.timeout = timeout;
  options.curve = curve;
  net::RpcClient client(url, options);
  auto bytes = client.StateDump();
  if (!bytes.ok()) {
    std::string text = url + ": " + bytes.status().message();
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

int RunStateInspect(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Invocation inv;
  if (auto code = ParseArgs(args, &inv, err)) return *code;
  if (inv.help) {
    out << Usage();
    return kExitOk;
  }
  if (inv.version) {
    out << "state-inspect " CLUSTERMGR_VERSION "\n";
    return kExitOk;
  }
  if (auto code = ApplyKeys(&inv, err)) return *code;
  if (auto code = CheckCommand(inv, err)) return *code;
  if (inv.cmd == "dump") return DumpCmd(inv, out, err);
  if (inv.cmd == "stats") return Stats(inv.sources[0], inv.as_json, out, err);
  if (inv.cmd == "verify") return VerifyCmd(inv.sources[0].where, out, err);
  return Diff(inv.sources[0], inv.sources[1], out, err);
}

}  // namespace clustermgr::tools
