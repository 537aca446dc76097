// The `clustermgr` command-line client, as a library so that it runs in-process in
// tests; tools/clustermgr_main.cc only forwards to Main.
//
//   clustermgr [flags] COMMAND... [flags]
//
// Commands: node get NAME | nodes get | node commission NAME -g GROUP [-e JSON] |
// nodes commission NAME... -g GROUP [-e JSON] | node decommission NAME [-e JSON] |
// nodes decommission NAME... [-e JSON] | node update NAME [-g GROUP] [-e JSON] |
// nodes update NAME... [-g GROUP] [-e JSON] [--serial N] | node upgrade NAME [-e JSON] |
// nodes upgrade NAME... [-e JSON] [--serial N] | discover IP... [-e JSON] | global get |
// global set -e JSON | job get active|last|ID [-f] | jobs list | job cancel [ID] | config get |
// config set FILE|- | members | token | status | keygen [--out PATH] | help.
// Aliases (clusterctl's): n/a for node/nodes, g/s/c/d/u for get/set/commission/decommission/
// update, j for job, c for config, d for discover at the top level (`clustermgr n c NAME -g G`).
// Global flags: -u/--url A[,B...] (default tcp://127.0.0.1:9007, else $CLUSTERMGR_URL; several
// endpoints are tried in order, see tools/cli_endpoints.h), -j/--json, --timeout SECONDS
// (default 10), --server-key KEY|FILE and --key FILE (CURVE; else $CLUSTERMGR_SERVER_KEY and
// $CLUSTERMGR_KEY; both or neither), -h/--help (after a command: that command's help),
// --version. Flags may stand anywhere. --serial N makes an update or upgrade rolling (N nodes at
// a time). --wait on commission, decommission, update, upgrade and discover
// follows the job to its end. keygen talks to no server: it writes a CURVE key pair
// (net/curve_keys.h), creating missing parent directories (0700).
//
// Output: human-readable text on `out`, or with --json exactly one JSON document on `out`
// (nothing on failure); with several endpoints, JSON objects of the CLI's own records carry
// "endpoint": the one that answered. Errors: one line "clustermgr: <message>" on `err`; the
// daemon's messages are printed verbatim.
// Exit codes: kExitOk; kExitFailed: the server refused the request, a local file could not be
// read or written, or a followed job did not complete; kExitUsage: unknown command or flag,
// missing or extra operand, a flag the command does not take; kExitUnreachable: no endpoint
// could be reached (or none answered a read-only request); kExitOutcomeUnknown: a request with
// side effects was sent and not answered (it may or may not have taken effect), or the server
// said so.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

#include "clustermgr_version.h"

namespace clustermgr::cli {

inline constexpr std::string_view kDefaultUrl = "tcp://127.0.0.1:9007";
inline constexpr std::string_view kVersion = CLUSTERMGR_VERSION;
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitOutcomeUnknown = 4;

// argv[0] is the program name. Reads $CLUSTERMGR_URL; `config set -` reads `in`. Never throws.
// Not thread-safe with respect to the environment (getenv) only; otherwise self-contained.
int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err, std::istream& in);
// Same, reading std::cin. `live` draws --wait progress as a block of lines kept up to date
// (for a terminal); otherwise progress is printed as plain lines.
int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err, bool live);

// The --help text.
std::string Usage();
// `clustermgr COMMAND --help`: usage, aliases, flags, an example. `command` as typed, aliases
// allowed ("node commission", "n c"); empty when it names no command.
std::string CommandHelp(const std::string& command);

}  // namespace clustermgr::cli
