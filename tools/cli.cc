#include "tools/cli.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "net/curve_keys.h"
#include "net/rpc_client.h"
#include "tools/cli_args.h"
#include "tools/cli_commands.h"
#include "tools/cli_endpoints.h"
#include "tools/cli_output.h"
#include "tools/job_progress.h"

namespace clustermgr::cli {
namespace {

using std::chrono::milliseconds;

// Command words that take a second word.
bool IsGroupWord(std::string_view w) {
  return w == "node" || w == "nodes" || w == "global" || w == "job" || w == "jobs" || w == "config";
}

// clusterctl's aliases: of the first command word, and of the second.
constexpr std::pair<std::string_view, std::string_view> kFirstAliases[] = {
    {"n", "node"}, {"a", "nodes"},  {"g", "global"},
    {"j", "job"},  {"c", "config"}, {"d", "discover"}};
constexpr std::pair<std::string_view, std::string_view> kSecondAliases[] = {
    {"g", "get"}, {"s", "set"}, {"c", "commission"}, {"d", "decommission"}, {"u", "update"}};

template <std::size_t N>
std::string Unalias(const std::pair<std::string_view, std::string_view> (&aliases)[N],
                    const std::string& word) {
  for (const auto& [alias, full] : aliases) {
    if (word == alias) return std::string(full);
  }
  return word;
}

template <std::size_t N>
std::string AliasFor(const std::pair<std::string_view, std::string_view> (&aliases)[N],
                     std::string_view word) {
  for (const auto& [alias, full] : aliases) {
    if (word == full) return std::string(alias);
  }
  return "";
}

std::string FirstWord(const std::string& w) { return Unalias(kFirstAliases, w); }
std::string SecondWord(const std::string& w) { return Unalias(kSecondAliases, w); }

// The aliases of a command, as clusterctl spelled them ("n c"); empty if none.
std::string AliasOf(std::string_view name) {
  const auto space = name.find(' ');
  const std::string first = AliasFor(kFirstAliases, name.substr(0, space));
  if (first.empty() || space == std::string_view::npos) return first;
  const std::string second = AliasFor(kSecondAliases, name.substr(space + 1));
  return second.empty() ? "" : first + " " + second;
}

std::string SubcommandsOf(std::string_view group) {
  std::string out;
  for (const auto& cmd : Commands()) {
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
    case kWait:
      return "-w/--wait";
    case kCount:
      return "-n/--count";
    case kSerial:
      return "--serial";
    default:
      return "-f/--follow";
  }
}

// Help rows of a flag: its spellings, then what it does (continued on further rows, so that the
// help stays within 100 columns).
using HelpRows = std::vector<std::vector<std::string>>;

HelpRows FlagHelp(unsigned bit) {
  switch (bit) {
    case kGroup:
      return {
          {"  -g, --group, --host-group GROUP", "host-group, e.g. service-master, service-worker"}};
    case kExtraVars:
      return {{"  -e, --extra-vars JSON", "extra-vars as a JSON object"}};
    case kOut:
      return {{"  --out PATH", "where to write the key pair (missing dirs are made 0700)"}};
    case kWait:
      return {{"  -w, --wait", "follow the job to its end and exit with its outcome"},
              {"", "(on a terminal a live line per host: its task and result)"}};
    case kCount:
      return {{"  -n, --count N", "how many of the newest records (default 50, at most 1000)"}};
    case kSerial:
      return {{"  --serial N", "rolling: N nodes at a time, in the order given; the others"},
              {"", "stay in service, and a failed batch stops the job"}};
    default:
      return {{"  -f, --follow", "follow the live log until the job ends"}};
  }
}

HelpRows GlobalFlagHelp() {
  return {{"  -u, --url URL[,URL...]", "RPC endpoints, tried in order (default $CLUSTERMGR_URL,"},
          {"", "else " + std::string(kDefaultUrl) + "); HOST:PORT means tcp://HOST:PORT"},
          {"  -j, --json", "print exactly one JSON document"},
          {"  --timeout SECONDS", "how long to wait for an answer (default 10)"},
          {"  --server-key KEY|FILE", "CURVE: the server's public key (or $CLUSTERMGR_SERVER_KEY)"},
          {"  --key FILE", "CURVE: this client's secret key file (or $CLUSTERMGR_KEY)"},
          {"  -h, --help", "help (after a command: that command's help)"},
          {"  --version", "print the client version"}};
}

constexpr std::string_view kExitStatusHelp =
    "exit status: 0 ok, 1 refused by the server (or a followed job did not complete), 2 usage\n"
    "error, 3 no endpoint reachable, 4 outcome unknown (a request with side effects got no\n"
    "answer: check with 'job get' or 'node get' before repeating it).\n";

// The command that `words` name (aliases resolved), and how many words it used. Null with a
// usage message when they name none.
const Command* Resolve(const std::vector<std::string>& words, std::size_t& used,
                       std::string& error) {
  std::string name = FirstWord(words[0]);
  used = 1;
  if (IsGroupWord(name)) {
    if (words.size() < 2) {
      error = "\"" + name + "\" needs a subcommand: " + SubcommandsOf(name);
      return nullptr;
    }
    name += " " + SecondWord(words[1]);
    used = 2;
  }
  for (const auto& cmd : Commands()) {
    if (cmd.name == name) return &cmd;
  }
  if (used == 2) {
    const std::string group = FirstWord(words[0]);
    error = "unknown command \"" + words[0] + " " + words[1] + "\" (\"" + group +
            "\" takes: " + SubcommandsOf(group) + ")";
  } else {
    error = "unknown command \"" + words[0] + "\"";
  }
  return nullptr;
}

std::string HelpOf(const Command& cmd) {
  std::ostringstream s;
  s << "usage: clustermgr " << cmd.name << (cmd.synopsis.empty() ? "" : " ") << cmd.synopsis
    << " [flags]\n";
  if (std::string alias = AliasOf(cmd.name); !alias.empty()) s << "alias: " << alias << "\n";
  s << "\n" << cmd.summary << "\n";
  if (cmd.allowed != 0) {
    s << "\nflags:\n";
    HelpRows rows;
    for (unsigned bit : kAllFlagBits) {
      if (cmd.allowed & bit) {
        HelpRows flag = FlagHelp(bit);
        if (cmd.required & bit) flag.front()[1] += " (required)";
        rows.insert(rows.end(), flag.begin(), flag.end());
      }
    }
    PrintTable(s, rows);
  }
  s << "\nglobal flags:\n";
  PrintTable(s, GlobalFlagHelp());
  s << "\nexample:\n  clustermgr " << cmd.example << "\n\n" << kExitStatusHelp;
  return s.str();
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

// With several endpoints, a connection that does not come up within this long (or the
// --timeout, if shorter) passes the call on to the next endpoint.
constexpr milliseconds kFailoverConnectTimeout{2000};

// Whether the operands and flags fit the command; a usage error's exit status if not.
std::optional<int> CheckUse(const Command& cmd, const std::vector<std::string>& operands,
                            const Args& args, std::ostream& err) {
  const std::string name(cmd.name);
  const std::string form =
      "usage: clustermgr " + name + (cmd.synopsis.empty() ? "" : " ") + std::string(cmd.synopsis);
  const int n = static_cast<int>(operands.size());
  if (n < cmd.min_operands) {
    return Usage(err, "\"" + name + "\": missing operand (" + form + ")");
  }
  if (cmd.max_operands >= 0 && n > cmd.max_operands) {
    return Usage(err, "\"" + name + "\": unexpected operand \"" +
                          operands[static_cast<std::size_t>(cmd.max_operands)] + "\" (" + form +
                          ")");
  }
  const unsigned given = (args.group ? kGroup : 0u) | (args.extra_vars ? kExtraVars : 0u) |
                         (args.follow ? kFollow : 0u) | (args.out ? kOut : 0u) |
                         (args.wait ? kWait : 0u) | (args.count ? kCount : 0u) |
                         (args.serial ? kSerial : 0u);
  for (unsigned bit : kAllFlagBits) {
    if ((given & bit) && !(cmd.allowed & bit)) {
      return Usage(err, "\"" + name + "\" does not take " + FlagName(bit) + " (" + form + ")");
    }
    if ((cmd.required & bit) && !(given & bit)) {
      return Usage(err, "\"" + name + "\" needs " + FlagName(bit) + " (" + form + ")");
    }
  }

  return std::nullopt;
}

// The client's options (--timeout, CURVE keys from the flags or the environment) and the
// endpoints to try; a usage or failure exit status if they are wrong.
std::optional<int> ClientSetup(const Command& cmd, const Args& args, std::ostream& err,
                               net::RpcClient::Options* options_out,
                               std::vector<std::string>* urls_out,
                               std::optional<milliseconds>* connect_timeout_out) {
  net::RpcClient::Options options;
  if (args.timeout) {
    options.timeout = ParseTimeout(*args.timeout);
    if (options.timeout.count() == 0) {
      return Usage(err,
                   "--timeout needs a positive number of seconds, not \"" + *args.timeout + "\"");
    }
  }
  std::vector<std::string> url_values = args.urls;
  if (url_values.empty()) {
    const char* env = std::getenv("CLUSTERMGR_URL");
    url_values.push_back(env != nullptr && *env != '\0' ? env : std::string(kDefaultUrl));
  }
  std::string url_error;
  std::vector<std::string> urls = ParseEndpoints(url_values, url_error);
  if (urls.empty()) return Usage(err, "-u/--url: " + url_error);
  std::optional<milliseconds> connect_timeout;
  if (urls.size() > 1) connect_timeout = std::min(options.timeout, kFailoverConnectTimeout);

  // CURVE: the flags win over $CLUSTERMGR_SERVER_KEY and $CLUSTERMGR_KEY; both or neither.
  auto from_env = [](const char* var) -> std::optional<std::string> {
    const char* v = std::getenv(var);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  const std::optional<std::string> server_key =
      args.server_key ? args.server_key : from_env("CLUSTERMGR_SERVER_KEY");
  const std::optional<std::string> key_file = args.key ? args.key : from_env("CLUSTERMGR_KEY");
  const bool keygen = IsKeygen(cmd);
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

  *options_out = std::move(options);
  *urls_out = std::move(urls);
  *connect_timeout_out = connect_timeout;
  return std::nullopt;
}

int Run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
        std::istream& in, bool live) {
  ParseResult parsed = ParseArgs(argv);
  if (!parsed.ok()) return Usage(err, parsed.error);
  const Args& args = parsed.args;
  const bool help_word = !args.words.empty() && args.words[0] == "help";
  if (args.help || help_word) {
    std::vector<std::string> rest(args.words.begin() + (help_word ? 1 : 0), args.words.end());
    if (rest.empty()) {
      out << cli::Usage();
      return kExitOk;
    }
    std::size_t used = 0;
    std::string error;
    const Command* command = Resolve(rest, used, error);
    if (command == nullptr) return Usage(err, error);
    out << HelpOf(*command);
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

  std::size_t used = 0;
  std::string resolve_error;
  const Command* command = Resolve(args.words, used, resolve_error);
  if (command == nullptr) return Usage(err, resolve_error);
  std::vector<std::string> operands(args.words.begin() + static_cast<std::ptrdiff_t>(used),
                                    args.words.end());
  if (auto code = CheckUse(*command, operands, args, err)) return *code;
  net::RpcClient::Options options;
  std::vector<std::string> urls;
  std::optional<milliseconds> connect_timeout;
  if (auto code = ClientSetup(*command, args, err, &options, &urls, &connect_timeout)) return *code;

  const bool several = urls.size() > 1;
  Endpoints endpoints(std::move(urls), options, connect_timeout);
  Context context{endpoints,
                  args,
                  std::move(operands),
                  out,
                  err,
                  in,
                  options.curve.has_value(),
                  live,
                  several && !command->data_document};
  const int code = command->run(context);
  if (several && !endpoints.skipped().empty() && !endpoints.answered().empty()) {
    err << "clustermgr: answered by " << endpoints.answered() << " (passed over: ";
    for (std::size_t i = 0; i < endpoints.skipped().size(); ++i) {
      err << (i ? "; " : "") << endpoints.skipped()[i];
    }
    err << ")\n";
  }
  return code;
}

}  // namespace

std::string Usage() {
  std::ostringstream s;
  s << "usage: clustermgr [flags] COMMAND... [flags]\n\n"
    << "Talks to clustermgrd instances over their RPC endpoints.\n"
    << "'clustermgr COMMAND --help' shows a command's flags and an example.\n\ncommands:\n";
  for (const auto& cmd : Commands()) {
    s << "  " << cmd.name << (cmd.synopsis.empty() ? "" : " ") << cmd.synopsis << "\n      "
      << cmd.summary << "\n";
  }
  s << "\naliases (clusterctl's): n node, a nodes, g global, j job, c config, d discover;\n"
       "then g get, s set, c commission, d decommission, u update (e.g. 'clustermgr n c NAME').\n";
  s << "\nflags (before or after the command words):\n";
  auto flags = GlobalFlagHelp();
  for (unsigned bit : kAllFlagBits) {
    HelpRows flag = FlagHelp(bit);
    flags.insert(flags.end(), flag.begin(), flag.end());
  }
  PrintTable(s, flags);
  s << "\n" << kExitStatusHelp;
  return s.str();
}

std::string CommandHelp(const std::string& command) {
  std::vector<std::string> words;
  std::istringstream in(command);
  for (std::string w; in >> w;) words.push_back(w);
  if (words.empty()) return "";
  std::size_t used = 0;
  std::string error;
  const Command* cmd = Resolve(words, used, error);
  return cmd == nullptr || used != words.size() ? "" : HelpOf(*cmd);
}

namespace {

int RunGuarded(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
               std::istream& in, bool live) {
  try {
    return Run(std::vector<std::string>(argv + std::min(argc, 1), argv + argc), out, err, in, live);
  } catch (const std::exception& e) {
    err << "clustermgr: internal error: " << e.what() << "\n";
    return kExitFailed;
  }
}

}  // namespace

int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
         std::istream& in) {
  return RunGuarded(argc, argv, out, err, in, /*live=*/false);
}

int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err, bool live) {
  return RunGuarded(argc, argv, out, err, std::cin, live);
}

}  // namespace clustermgr::cli
