#include "tools/command_line.h"

namespace clustermgr::tools {
namespace po = boost::program_options;

po::parsed_options ParseCommandLine(const std::vector<std::string>& args,
                                    const po::options_description& flags,
                                    const po::positional_options_description* positional) {
  po::command_line_parser parser(args);
  parser.options(flags).style(po::command_line_style::unix_style &
                              ~po::command_line_style::allow_guessing &
                              ~po::command_line_style::allow_sticky);
  if (positional != nullptr) parser.positional(*positional);
  return parser.run();
}

po::parsed_options ParseCommandLine(int argc, const char* const* argv,
                                    const po::options_description& flags) {
  return ParseCommandLine(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc), flags);
}

}  // namespace clustermgr::tools
