// Inside the clustermgr CLI (tools/cli.h): the command table and what its handlers share.
// cli.cc resolves the command words, checks operands and flags against the table, and runs the
// handler (tools/cli_commands.cc) with a Context.
#pragma once

#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/cli_args.h"
#include "tools/cli_endpoints.h"

namespace clustermgr::cli {

enum FlagBit : unsigned {
  kGroup = 1,
  kExtraVars = 2,
  kFollow = 4,
  kOut = 8,
  kWait = 16,
  kCount = 32,
  kSerial = 64
};
constexpr unsigned kAllFlagBits[] = {kGroup, kExtraVars, kFollow, kWait, kOut, kCount, kSerial};

struct Context {
  Endpoints& rpc;
  const Args& args;
  std::vector<std::string> operands;
  std::ostream& out;
  std::ostream& err;
  std::istream& in;
  bool curve = false;         // the client talks CURVE
  bool live = false;          // --wait draws its progress as a live block (a terminal)
  bool tag_endpoint = false;  // JSON objects say which endpoint answered

  // Runs an RPC on the endpoints (see Endpoints::Call).
  template <typename F>
  auto Call(F&& call) {
    return rpc.Call(std::forward<F>(call));
  }
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
  std::string_view example;    // arguments after "clustermgr " in the help's example
  bool data_document = false;  // --json prints the daemon's data as is (no "endpoint" added)
};

// Every command, in the order help lists them.
std::span<const Command> Commands();
// keygen talks to no server: it takes no --server-key/--key.
bool IsKeygen(const Command& command);

// "clustermgr: <message>" on err; returns the failure exit status.
int Fail(std::ostream& err, const std::string& message);
// A usage error, pointing at --help; returns the usage exit status.
int Usage(std::ostream& err, const std::string& message);

}  // namespace clustermgr::cli
