#include "tools/cli_args.h"

#include <string_view>

namespace clustermgr::cli {
namespace {

enum class Flag {
  kUrl,
  kJson,
  kTimeout,
  kServerKey,
  kKey,
  kHelp,
  kVersion,
  kGroup,
  kExtraVars,
  kFollow,
  kOut,
  kCount
};

struct FlagSpec {
  std::string_view short_name;  // empty = none
  std::string_view long_name;
  Flag flag;
  bool takes_value;
};

constexpr FlagSpec kFlags[] = {
    {"-u", "--url", Flag::kUrl, true},        {"-j", "--json", Flag::kJson, false},
    {"", "--timeout", Flag::kTimeout, true},  {"", "--server-key", Flag::kServerKey, true},
    {"", "--key", Flag::kKey, true},          {"", "--out", Flag::kOut, true},
    {"-h", "--help", Flag::kHelp, false},     {"", "--version", Flag::kVersion, false},
    {"-g", "--group", Flag::kGroup, true},    {"-e", "--extra-vars", Flag::kExtraVars, true},
    {"-f", "--follow", Flag::kFollow, false}, {"-n", "--count", Flag::kCount, true},
};

const FlagSpec* Find(std::string_view name) {
  for (const auto& spec : kFlags) {
    if (name == spec.long_name || (!spec.short_name.empty() && name == spec.short_name)) {
      return &spec;
    }
  }
  return nullptr;
}

void Apply(Args& args, Flag flag, std::string value) {
  switch (flag) {
    case Flag::kUrl:
      args.url = std::move(value);
      break;
    case Flag::kJson:
      args.json = true;
      break;
    case Flag::kTimeout:
      args.timeout = std::move(value);
      break;
    case Flag::kServerKey:
      args.server_key = std::move(value);
      break;
    case Flag::kKey:
      args.key = std::move(value);
      break;
    case Flag::kOut:
      args.out = std::move(value);
      break;
    case Flag::kCount:
      args.count = std::move(value);
      break;
    case Flag::kHelp:
      args.help = true;
      break;
    case Flag::kVersion:
      args.version = true;
      break;
    case Flag::kGroup:
      args.group = std::move(value);
      break;
    case Flag::kExtraVars:
      args.extra_vars = std::move(value);
      break;
    case Flag::kFollow:
      args.follow = true;
      break;
  }
}

}  // namespace

ParseResult ParseArgs(const std::vector<std::string>& argv) {
  ParseResult result;
  Args& args = result.args;
  bool flags_done = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      args.words.push_back(arg);  // includes "-" (stdin)
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0) {
      if (auto eq = arg.find('='); eq != std::string::npos) {
        name = std::string_view(arg).substr(0, eq);
        inline_value = arg.substr(eq + 1);
      }
    }
    const FlagSpec* spec = Find(name);
    if (spec == nullptr) {
      result.error = "unknown flag \"" + std::string(name) + "\"";
      return result;
    }
    if (!spec->takes_value) {
      if (inline_value) {
        result.error = "flag " + std::string(spec->long_name) + " takes no value";
        return result;
      }
      Apply(args, spec->flag, "");
      continue;
    }
    if (inline_value) {
      Apply(args, spec->flag, std::move(*inline_value));
    } else if (i + 1 < argv.size()) {
      Apply(args, spec->flag, argv[++i]);
    } else {
      result.error = "flag " + std::string(name) + " needs a value";
      return result;
    }
  }
  return result;
}

}  // namespace clustermgr::cli
