// How every clustermgr program but the daemon reads its command line: Boost.Program_options
// with long options spelled out in full (no abbreviations: a prefix could later name another
// option) and short options one per argument (no bundling).
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace clustermgr::tools {

// Parses `args` (argv without the program name) against `flags`, words going to `positional`
// when given. Throws boost::program_options::error on a usage error.
boost::program_options::parsed_options ParseCommandLine(
    const std::vector<std::string>& args, const boost::program_options::options_description& flags,
    const boost::program_options::positional_options_description* positional = nullptr);

// The same from main()'s argc/argv.
boost::program_options::parsed_options ParseCommandLine(
    int argc, const char* const* argv, const boost::program_options::options_description& flags);

}  // namespace clustermgr::tools
