// The `clustermgr` argument parser (Boost.Program_options): separates flags from command words,
// wherever they stand (`clustermgr --json node get n1` = `clustermgr node get n1 --json`). It
// knows every flag of every command; which flags a command accepts is checked later
// (tools/cli.cc), against the command the words name.
//
// Flags: -u/--url URL[,URL...] (repeatable: the endpoints add up), -j/--json, --timeout SECONDS,
// --server-key KEY|FILE, --key FILE, -h/--help, --version (global); -g/--group GROUP (also
// --host-group), -e/--extra-vars JSON, -f/--follow, -w/--wait, --out PATH, -n/--count N,
// --serial N (per command). A value
// is the next argument, follows '=' in the long form (--url=tcp://...) or sticks to the short
// one (-utcp://...). "--" ends flags; "-" alone is a word (stdin for `config set -`). No bundling
// of short flags and no abbreviated long flags. Another repeated flag keeps its last value.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace clustermgr::cli {

struct Args {
  // Global.
  std::vector<std::string> urls;  // every -u value as typed, in order (may hold commas)
  bool json = false;
  std::optional<std::string> timeout;     // as typed; validated by the caller
  std::optional<std::string> server_key;  // CURVE: the server's public key, or a file holding it
  std::optional<std::string> key;         // CURVE: this client's secret key file
  bool help = false;
  bool version = false;
  // Per command.
  std::optional<std::string> group;  // -g, --group or --host-group
  std::optional<std::string> extra_vars;
  bool follow = false;
  bool wait = false;
  std::optional<std::string> out;     // keygen
  std::optional<std::string> count;   // audit -n N, as typed
  std::optional<std::string> serial;  // update / upgrade --serial N, as typed
  // Command words and their operands, in order.
  std::vector<std::string> words;
};

struct ParseResult {
  Args args;
  std::string error;  // a usage error, one line; empty = parsed
  bool ok() const { return error.empty(); }
};

// `argv` excludes the program name.
[[nodiscard]] ParseResult ParseArgs(const std::vector<std::string>& argv);

}  // namespace clustermgr::cli
