// clustermgr: the command-line client. All logic lives in tools/cli.cc.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "tools/cli.h"

int main(int argc, char** argv) {
  const char* term = std::getenv("TERM");
  const bool live = isatty(STDOUT_FILENO) == 1 && term != nullptr && std::strcmp(term, "dumb") != 0;
  return clustermgr::cli::Main(argc, argv, std::cout, std::cerr, live);
}
