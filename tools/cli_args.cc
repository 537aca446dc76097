#include "tools/cli_args.h"

#include <boost/program_options.hpp>

#include "tools/command_line.h"

namespace clustermgr::cli {
namespace po = boost::program_options;
namespace {

using Strings = std::vector<std::string>;

std::optional<std::string> Last(const po::variables_map& vm, const char* name) {
  if (!vm.count(name)) return std::nullopt;
  const auto& values = vm[name].as<Strings>();
  if (values.empty()) return std::nullopt;
  return values.back();
}

}  // namespace

ParseResult ParseArgs(const std::vector<std::string>& argv) {
  ParseResult result;
  Args& args = result.args;
  po::options_description flags;
  // Every value flag collects its occurrences; the last one wins (but -u adds up).
  // clang-format off
  flags.add_options()
    ("url,u", po::value<Strings>())
    ("json,j", po::bool_switch(&args.json))
    ("timeout", po::value<Strings>())
    ("server-key", po::value<Strings>())
    ("key", po::value<Strings>())
    ("help,h", po::bool_switch(&args.help))
    ("version", po::bool_switch(&args.version))
    ("group,host-group,g", po::value<Strings>())
    ("extra-vars,e", po::value<Strings>())
    ("follow,f", po::bool_switch(&args.follow))
    ("wait,w", po::bool_switch(&args.wait))
    ("out", po::value<Strings>())
    ("count,n", po::value<Strings>())
    ("serial", po::value<Strings>())
    ("words", po::value<Strings>());
  // clang-format on
  po::positional_options_description positional;
  positional.add("words", -1);
  po::variables_map vm;
  try {
    po::store(tools::ParseCommandLine(argv, flags, &positional), vm);
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    result.error = "unknown flag \"" + e.get_option_name() + "\"";
    return result;
  } catch (const po::invalid_command_line_syntax& e) {
    const std::string name = e.get_option_name();
    switch (e.kind()) {
      case po::invalid_syntax::missing_parameter:
        result.error = "flag " + name + " needs a value";
        break;
      case po::invalid_syntax::extra_parameter:
        result.error = "flag " + name + " takes no value";
        break;
      default:
        result.error = e.what();
    }
    return result;
  } catch (const std::exception& e) {
    result.error = e.what();
    return result;
  }
  if (vm.count("url")) args.urls = vm["url"].as<Strings>();
  args.timeout = Last(vm, "timeout");
  args.server_key = Last(vm, "server-key");
  args.key = Last(vm, "key");
  args.group = Last(vm, "group");
  args.extra_vars = Last(vm, "extra-vars");
  args.out = Last(vm, "out");
  args.count = Last(vm, "count");
  args.serial = Last(vm, "serial");
  if (vm.count("words")) args.words = vm["words"].as<Strings>();
  return result;
}

}  // namespace clustermgr::cli
