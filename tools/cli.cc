#include "tools/cli.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "net/curve_keys.h"
#include "net/rpc_client.h"
#include "tools/cli_args.h"
#include "tools/cli_output.h"

namespace clustermgr::cli {
namespace {

using std::chrono::milliseconds;

// How long one `job get -f` long-poll may be parked on the daemon. Each call's deadline is the
// --timeout plus this.
constexpr milliseconds kFollowWait{5000};
// A daemon that answers a long-poll at once with nothing new is not re-asked sooner than this.
constexpr milliseconds kFollowMinInterval{200};

enum FlagBit : unsigned { kGroup = 1, kExtraVars = 2, kFollow = 4, kOut = 8, kCount = 16 };

constexpr std::string_view kDefaultKeyFile = "clustermgr.key";

struct Context {
  net::RpcClient& client;
  const Args& args;
  std::vector<std::string> operands;
  std::ostream& out;
  std::ostream& err;
  std::istream& in;
  bool curve = false;  // the client talks CURVE
};

using Handler = int (*)(Context&);

struct Command {
  std::string_view name;
  std::string_view synopsis;  // operands and flags, for help and usage errors
  int min_operands;
  int max_operands;  // -1 = unbounded
  unsigned allowed;  // FlagBits accepted
  unsigned required;
  std::string_view summary;
  Handler run;
};

int Fail(std::ostream& err, const std::string& message) {
  err << "clustermgr: " << message << "\n";
  return kExitFailed;
}

int Fail(Context& c, const net::RpcError& e) {
  std::string text = e.message.empty() ? std::string(net::RpcCodeName(e.code)) : e.message;
  // A CURVE handshake that fails (either side plain, or a key the server does not accept) looks
  // like a server that never answers: say what to check.
  if (e.code == net::RpcCode::kUnavailable && text.rfind("could not connect", 0) == 0) {
    text += c.curve ? " (check --server-key, and that the server lists this client's key)"
                    : " (if the server uses CURVE, pass --server-key and --key)";
  }
  return Fail(c.err, text);
}

int Usage(std::ostream& err, const std::string& message) {
  err << "clustermgr: " << message << "; see 'clustermgr --help'\n";
  return kExitUsage;
}

void PrintJson(Context& c, const Json& j) { c.out << j.dump(2) << "\n"; }

std::string ExtraVars(const Context& c) { return c.args.extra_vars.value_or(""); }
std::string Group(const Context& c) { return c.args.group.value_or(""); }

// ---- handlers -------------------------------------------------------------------------------

int NodeGet(Context& c) {
  auto r = c.client.NodeGet(c.operands[0]);
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, ToJson(r.value()));
  } else {
    PrintNode(c.out, r.value());
  }
  return kExitOk;
}

int NodesGet(Context& c) {
  auto r = c.client.NodesGet();
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, ToJsonArray(r.value()));
  } else {
    PrintNodes(c.out, r.value());
  }
  return kExitOk;
}

int JobStarted(Context& c, const net::RpcResult<net::JobAccepted>& r) {
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, Json{{"job_id", r.value().job_id}});
  } else {
    c.out << "job " << r.value().job_id << " started\n";
  }
  return kExitOk;
}

int Commission(Context& c) {
  return JobStarted(c, c.client.Commission(c.operands, Group(c), ExtraVars(c)));
}
int Decommission(Context& c) {
  return JobStarted(c, c.client.Decommission(c.operands, ExtraVars(c)));
}
int Update(Context& c) {
  return JobStarted(c, c.client.Update(c.operands, Group(c), ExtraVars(c)));
}
int Discover(Context& c) { return JobStarted(c, c.client.Discover(c.operands, ExtraVars(c))); }

int ShowJsonText(Context& c, const net::RpcResult<std::string>& r) {
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, JsonFromText(r.value()));
  } else {
    PrintJsonText(c.out, r.value());
  }
  return kExitOk;
}

int Acknowledge(Context& c, const net::RpcResult<net::Ack>& r, std::string_view what) {
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, Json{{"ok", true}});
  } else {
    c.out << what << "\n";
  }
  return kExitOk;
}

int GlobalGet(Context& c) { return ShowJsonText(c, c.client.GlobalGet()); }
int GlobalSet(Context& c) {
  return Acknowledge(c, c.client.GlobalSet(ExtraVars(c)), "global extra-vars set");
}
int ConfigGet(Context& c) { return ShowJsonText(c, c.client.ConfigGet()); }

int ConfigSet(Context& c) {
  const std::string& source = c.operands[0];
  std::string text;
  if (source == "-") {
    std::ostringstream buffer;
    buffer << c.in.rdbuf();
    text = buffer.str();
  } else {
    std::ifstream file(source, std::ios::binary);
    if (!file) return Fail(c.err, "cannot read \"" + source + "\"");
    std::ostringstream buffer;
    buffer << file.rdbuf();
    if (file.bad()) return Fail(c.err, "cannot read \"" + source + "\"");
    text = buffer.str();
  }
  return Acknowledge(c, c.client.ConfigSet(text), "configuration set");
}

// Prints lines as they arrive until the job ends. Exit 0 only if it completed.
int FollowJob(Context& c, net::JobDetail detail) {
  std::uint64_t next = detail.first_line + detail.log_lines.size();
  if (!c.args.json) {
    for (const auto& line : detail.log_lines) c.out << line << "\n";
    c.out.flush();
  }
  net::JobStatus status = detail.job.status;
  std::string error = detail.job.error;
  while (!net::JobEnded(status)) {
    const auto asked = std::chrono::steady_clock::now();
    auto r = c.client.JobLogFollow(detail.job.id, next, kFollowWait);
    if (!r.ok()) return Fail(c, r.error());
    net::JobLogChunk& chunk = r.value();
    if (chunk.first_line > next) {
      std::string gap = "[... " + std::to_string(chunk.first_line - next) +
                        " log lines dropped by the daemon's cap ...]";
      if (c.args.json) {
        detail.log_lines.push_back(gap);
      } else {
        c.out << gap << "\n";
      }
    }
    for (auto& line : chunk.lines) {
      if (c.args.json) {
        detail.log_lines.push_back(std::move(line));
      } else {
        c.out << line << "\n";
      }
    }
    c.out.flush();
    next = chunk.first_line + chunk.lines.size();
    if (chunk.ended) {
      status = net::JobEnded(chunk.status) ? chunk.status : net::JobStatus::kComplete;
      error = chunk.error;
      break;
    }
    if (chunk.lines.empty() && std::chrono::steady_clock::now() - asked < kFollowMinInterval) {
      std::this_thread::sleep_for(kFollowMinInterval);  // pacing a daemon that does not park
    }
  }
  detail.job.status = status;
  detail.job.error = error;
  detail.job.log_line_count = next;
  if (c.args.json) {
    PrintJson(c, ToJson(detail));
  } else {
    c.out << "--- job " << detail.job.id << " " << net::ToString(status)
          << (error.empty() ? "" : ": " + error) << " ---\n";
  }
  if (status == net::JobStatus::kComplete) return kExitOk;
  c.err << "clustermgr: job " << detail.job.id << " " << net::ToString(status)
        << (error.empty() ? "" : ": " + error) << "\n";
  return kExitFailed;
}

int JobGet(Context& c) {
  auto r = c.client.JobGet(c.operands[0]);
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.follow) return FollowJob(c, std::move(r.value()));
  if (c.args.json) {
    PrintJson(c, ToJson(r.value()));
    return kExitOk;
  }
  PrintJob(c.out, r.value().job);
  if (!r.value().log_lines.empty()) {
    c.out << "--- log";
    if (r.value().first_line > 0) c.out << " from line " << r.value().first_line;
    c.out << " ---\n";
    for (const auto& line : r.value().log_lines) c.out << line << "\n";
  }
  return kExitOk;
}

int JobsList(Context& c) {
  auto r = c.client.JobsList();
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, ToJsonArray(r.value()));
  } else {
    PrintJobs(c.out, r.value());
  }
  return kExitOk;
}

int JobCancel(Context& c) {
  auto r = c.client.JobCancel(c.operands.empty() ? "" : c.operands[0]);
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, Json{{"job_id", r.value()}});
  } else {
    c.out << "job " << r.value() << " cancelled\n";
  }
  return kExitOk;
}

int Members(Context& c) {
  auto r = c.client.Members();
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, ToJsonArray(r.value()));
  } else {
    PrintMembers(c.out, r.value());
  }
  return kExitOk;
}

int Token(Context& c) {
  auto r = c.client.Token();
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, ToJson(r.value()));
  } else {
    PrintToken(c.out, r.value());
  }
  return kExitOk;
}

int Audit(Context& c) {
  uint32_t count = 0;  // the daemon's default
  if (c.args.count) {
    const std::string& text = *c.args.count;
    char* end = nullptr;
    const unsigned long n = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || end != text.c_str() + text.size() || text[0] == '-' || n < 1 || n > 1000) {
      return Usage(c.err, "-n/--count takes a number from 1 to 1000, not \"" + text + "\"");
    }
    count = static_cast<uint32_t>(n);
  }
  auto r = c.client.AuditList(count);
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, JsonFromText(r.value()));
  } else {
    PrintAudit(c.out, JsonFromText(r.value()));
  }
  return kExitOk;
}

int Keygen(Context& c) {
  const std::string path = c.args.out.value_or(std::string(kDefaultKeyFile));
  if (path.empty()) return Fail(c.err, "--out needs a file name");
  auto pair = net::GenerateCurveKeyPair();
  if (!pair.ok()) return Fail(c.err, pair.status().message());
  // The .pub line is labelled with the file's stem, ready to be appended to an allow-list.
  std::string label = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (label.size() > 4 && label.substr(label.size() - 4) == ".key") label.resize(label.size() - 4);
  if (clustermgr::Status s = net::WriteKeyPairFiles(path, *pair, label); !s.ok()) {
    return Fail(c.err, s.message());
  }
  if (c.args.json) {
    PrintJson(c, Json{{"public_key", pair->public_key},
                      {"secret_key_file", path},
                      {"public_key_file", path + ".pub"}});
  } else {
    c.out << pair->public_key << "\n"
          << "wrote the key pair to " << path << " (secret, mode 0600) and its public key to "
          << path << ".pub\n";
  }
  return kExitOk;
}

int Status(Context& c) {
  auto r = c.client.Status();
  if (!r.ok()) return Fail(c, r.error());
  if (c.args.json) {
    PrintJson(c, ToJson(r.value()));
  } else {
    PrintStatus(c.out, r.value());
  }
  return kExitOk;
}

constexpr Command kCommands[] = {
    {"node get", "NAME", 1, 1, 0, 0, "inventory, monitoring and configuration of a node", NodeGet},
    {"nodes get", "", 0, 0, 0, 0, "the same for every node", NodesGet},
    {"node commission", "NAME -g GROUP [-e JSON]", 1, 1, kGroup | kExtraVars, kGroup,
     "provision a node with the configure playbook", Commission},
    {"nodes commission", "NAME... -g GROUP [-e JSON]", 1, -1, kGroup | kExtraVars, kGroup,
     "provision several nodes", Commission},
    {"node decommission", "NAME [-e JSON]", 1, 1, kExtraVars, 0,
     "clean a node up with the cleanup playbook", Decommission},
    {"nodes decommission", "NAME... [-e JSON]", 1, -1, kExtraVars, 0, "clean several nodes up",
     Decommission},
    {"node update", "NAME [-g GROUP] [-e JSON]", 1, 1, kGroup | kExtraVars, 0,
     "clean up then configure a node; may change its group", Update},
    {"nodes update", "NAME... [-g GROUP] [-e JSON]", 1, -1, kGroup | kExtraVars, 0,
     "update several nodes", Update},
    {"discover", "IP... [-e JSON]", 1, -1, kExtraVars, 0,
     "configure new addresses so that their nodes join", Discover},
    {"global get", "", 0, 0, 0, 0, "show the global extra-vars", GlobalGet},
    {"global set", "-e JSON", 0, 0, kExtraVars, kExtraVars, "replace the global extra-vars",
     GlobalSet},
    {"job get", "active|last|ID [-f]", 1, 1, kFollow, 0,
     "a job's status and log; -f follows the live log", JobGet},
    {"jobs list", "", 0, 0, 0, 0, "every job", JobsList},
    {"job cancel", "[ID]", 0, 1, 0, 0, "cancel a job (default: the active one)", JobCancel},
    {"config get", "", 0, 0, 0, 0, "show the runtime Ansible configuration", ConfigGet},
    {"config set", "FILE|-", 1, 1, 0, 0, "replace it from a JSON file or stdin", ConfigSet},
    {"members", "", 0, 0, 0, 0, "manager instances and their replication state", Members},
    {"token", "", 0, 0, 0, 0, "who holds the side-effect token, epoch and quorum", Token},
    {"status", "", 0, 0, 0, 0, "this instance: version, state size, peers, store", Status},
    {"audit", "[-n N]", 0, 0, kCount, 0,
     "the newest N (default 50, at most 1000) audit records: who changed what, and the outcome",
     Audit},
    {"keygen", "[--out PATH]", 0, 0, kOut, 0,
     "write a CURVE key pair: PATH (default clustermgr.key, secret, 0600) and PATH.pub", Keygen},
};

// Command words that take a second word.
bool IsGroupWord(std::string_view w) {
  return w == "node" || w == "nodes" || w == "global" || w == "job" || w == "jobs" || w == "config";
}

std::string SubcommandsOf(std::string_view group) {
  std::string out;
  for (const auto& cmd : kCommands) {
    std::string_view name = cmd.name;
    if (name.size() > group.size() && name.substr(0, group.size()) == group &&
        name[group.size()] == ' ') {
      if (!out.empty()) out += ", ";
      out += name.substr(group.size() + 1);
    }
  }
  return out;
}

std::string FlagName(unsigned bit) {
  switch (bit) {
    case kGroup:
      return "-g/--group";
    case kExtraVars:
      return "-e/--extra-vars";
    case kOut:
      return "--out";
    case kCount:
      return "-n/--count";
    default:
      return "-f/--follow";
  }
}

// Timeout in whole milliseconds from seconds as typed ("10", "0.5"); 0 = invalid.
milliseconds ParseTimeout(const std::string& text) {
  char* end = nullptr;
  double seconds = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(seconds) ||
      seconds <= 0 || seconds > 86400) {
    return milliseconds(0);
  }
  return milliseconds(std::max<long long>(1, std::llround(seconds * 1000)));
}

int Run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
        std::istream& in) {
  ParseResult parsed = ParseArgs(argv);
  if (!parsed.ok()) return Usage(err, parsed.error);
  const Args& args = parsed.args;
  if (args.help || (!args.words.empty() && args.words[0] == "help")) {
    out << cli::Usage();
    return kExitOk;
  }
  if (args.version) {
    if (args.json) {
      out << Json{{"version", kVersion}, {"protocol_version", net::kRpcProtocolVersion}}.dump(2)
          << "\n";
    } else {
      out << "clustermgr " << kVersion << " (protocol " << net::kRpcProtocolVersion << ")\n";
    }
    return kExitOk;
  }
  if (args.words.empty()) return Usage(err, "no command given");

  // Resolve the command words.
  std::string name = args.words[0];
  std::size_t used = 1;
  if (IsGroupWord(name)) {
    if (args.words.size() < 2) {
      return Usage(err, "\"" + name + "\" needs a subcommand: " + SubcommandsOf(name));
    }
    name += " " + args.words[1];
    used = 2;
  }
  const Command* command = nullptr;
  for (const auto& cmd : kCommands) {
    if (cmd.name == name) command = &cmd;
  }
  if (command == nullptr) {
    if (used == 2) {
      return Usage(err, "unknown command \"" + name + "\" (\"" + args.words[0] +
                            "\" takes: " + SubcommandsOf(args.words[0]) + ")");
    }
    return Usage(err, "unknown command \"" + name + "\"");
  }
  std::vector<std::string> operands(args.words.begin() + static_cast<std::ptrdiff_t>(used),
                                    args.words.end());
  const std::string form = "usage: clustermgr " + std::string(command->name) +
                           (command->synopsis.empty() ? "" : " ") + std::string(command->synopsis);
  const int n = static_cast<int>(operands.size());
  if (n < command->min_operands) {
    return Usage(err, "\"" + name + "\": missing operand (" + form + ")");
  }
  if (command->max_operands >= 0 && n > command->max_operands) {
    return Usage(err, "\"" + name + "\": unexpected operand \"" +
                          operands[static_cast<std::size_t>(command->max_operands)] + "\" (" +
                          form + ")");
  }
  const unsigned given = (args.group ? kGroup : 0u) | (args.extra_vars ? kExtraVars : 0u) |
                         (args.follow ? kFollow : 0u) | (args.out ? kOut : 0u) |
                         (args.count ? kCount : 0u);
  for (unsigned bit : {kGroup, kExtraVars, kFollow, kOut, kCount}) {
    if ((given & bit) && !(command->allowed & bit)) {
      return Usage(err, "\"" + name + "\" does not take " + FlagName(bit) + " (" + form + ")");
    }
    if ((command->required & bit) && !(given & bit)) {
      return Usage(err, "\"" + name + "\" needs " + FlagName(bit) + " (" + form + ")");
    }
  }

  net::RpcClient::Options options;
  if (args.timeout) {
    options.timeout = ParseTimeout(*args.timeout);
    if (options.timeout.count() == 0) {
      return Usage(err,
                   "--timeout needs a positive number of seconds, not \"" + *args.timeout + "\"");
    }
  }
  std::string url(kDefaultUrl);
  if (args.url) {
    url = *args.url;
  } else if (const char* env = std::getenv("CLUSTERMGR_URL"); env != nullptr && *env != '\0') {
    url = env;
  }
  if (url.empty()) return Usage(err, "-u/--url needs a non-empty endpoint");

  // CURVE: the flags win over $CLUSTERMGR_SERVER_KEY and $CLUSTERMGR_KEY; both or neither.
  auto from_env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  const std::optional<std::string> server_key =
      args.server_key ? args.server_key : from_env("CLUSTERMGR_SERVER_KEY");
  const std::optional<std::string> key_file = args.key ? args.key : from_env("CLUSTERMGR_KEY");
  const bool keygen = command->run == Keygen;
  if (!keygen && server_key.has_value() != key_file.has_value()) {
    return Usage(err, server_key ? "--server-key needs --key FILE (this client's secret key)"
                                 : "--key needs --server-key KEY|FILE (the server's public key)");
  }
  if (!keygen && server_key) {
    auto server = net::LoadPublicKeyArg(*server_key);
    if (!server.ok()) return Fail(err, "--server-key: " + server.status().message());
    auto pair = net::LoadSecretKeyFile(*key_file);
    if (!pair.ok()) return Fail(err, "--key: " + pair.status().message());
    options.curve = net::CurveClientConfig{*server, *pair};
  }

  net::RpcClient client(url, options);
  Context context{client, args, std::move(operands), out, err, in, options.curve.has_value()};
  return command->run(context);
}

}  // namespace

std::string Usage() {
  std::ostringstream s;
  s << "usage: clustermgr [flags] COMMAND... [flags]\n\n"
    << "Talks to a clustermgrd instance over its RPC endpoint.\n\ncommands:\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& cmd : kCommands) {
    std::string form = std::string(cmd.name);
    if (!cmd.synopsis.empty()) form += " " + std::string(cmd.synopsis);
    rows.push_back({"  " + form, std::string(cmd.summary)});
  }
  PrintTable(s, rows);
  s << "\nflags (before or after the command words):\n";
  PrintTable(
      s, {{"  -u, --url URL",
           "RPC endpoint (default " + std::string(kDefaultUrl) + ", or $CLUSTERMGR_URL)"},
          {"  -j, --json", "print exactly one JSON document"},
          {"  --timeout SECONDS", "how long to wait for an answer (default 10)"},
          {"  --server-key KEY|FILE", "CURVE: the server's public key (or $CLUSTERMGR_SERVER_KEY)"},
          {"  --key FILE", "CURVE: this client's secret key file (or $CLUSTERMGR_KEY)"},
          {"  --out PATH", "keygen: where to write the key pair"},
          {"  -g, --group GROUP", "host-group, e.g. service-master, service-worker"},
          {"  -e, --extra-vars JSON", "extra-vars as a JSON object"},
          {"  -f, --follow", "job get: follow the live log until the job ends"},
          {"  -h, --help", "this help"},
          {"  --version", "print the client version"}});
  s << "\nexit status: 0 success, 1 refused or unreachable (or a followed job did not "
       "complete),\n2 usage error.\n";
  return s.str();
}

int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
         std::istream& in) {
  try {
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
    return Run(args, out, err, in);
  } catch (const std::exception& e) {
    err << "clustermgr: internal error: " << e.what() << "\n";
    return kExitFailed;
  }
}

int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  return Main(argc, argv, out, err, std::cin);
}

}  // namespace clustermgr::cli
