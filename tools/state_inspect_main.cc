// state-inspect: see tools/state_inspect.h.
#include <iostream>
#include <string>
#include <vector>

#include "tools/state_inspect.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return clustermgr::tools::RunStateInspect(args, std::cout, std::cerr);
}
