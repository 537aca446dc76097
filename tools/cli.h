// The `clustermgr` command-line client, as a library so that it runs in-process in
// tests; tools/clustermgr_main.cc only forwards to Main.
//
//   clustermgr [flags] COMMAND... [flags]
//
// Commands: node get NAME | nodes get | node commission NAME -g GROUP [-e JSON] |
// nodes commission NAME... -g GROUP [-e JSON] | node decommission NAME [-e JSON] |
// nodes decommission NAME... [-e JSON] | node update NAME [-g GROUP] [-e JSON] |
// nodes update NAME... [-g GROUP] [-e JSON] | discover IP... [-e JSON] | global get |
// global set -e JSON | job get active|last|ID [-f] | jobs list | job cancel [ID] | config get |
// config set FILE|- | members | token | status | keygen [--out PATH] | help.
// Global flags: -u/--url (default tcp://127.0.0.1:9007, else $CLUSTERMGR_URL), -j/--json,
// --timeout SECONDS (default 10), --server-key KEY|FILE and --key FILE (CURVE; else
// $CLUSTERMGR_SERVER_KEY and $CLUSTERMGR_KEY; both or neither), -h/--help, --version. Flags may
// stand anywhere. keygen talks to no server: it writes a CURVE key pair (net/curve_keys.h).
//
// Output: human-readable text on `out`, or with --json exactly one JSON document on `out`
// (nothing on failure). Errors: one line "clustermgr: <message>" on `err`; the daemon's
// messages are printed verbatim.
// Exit codes: 0 success; 1 the request was refused, the server was unreachable or did not
// answer, a local file could not be read, or a followed job did not complete; 2 usage error
// (unknown command or flag, missing or extra operand, a flag the command does not take).
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

namespace clustermgr::cli {

inline constexpr std::string_view kDefaultUrl = "tcp://127.0.0.1:9007";
inline constexpr std::string_view kVersion = "0.1.0";
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// argv[0] is the program name. Reads $CLUSTERMGR_URL; `config set -` reads `in`. Never throws.
// Not thread-safe with respect to the environment (getenv) only; otherwise self-contained.
int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err, std::istream& in);
// Same, reading std::cin.
int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// The --help text.
std::string Usage();

}  // namespace clustermgr::cli
