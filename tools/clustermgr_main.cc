// clustermgr: the command-line client. All logic lives in tools/cli.cc.
#include <iostream>

#include "tools/cli.h"

int main(int argc, char** argv) { return clustermgr::cli::Main(argc, argv, std::cout, std::cerr); }
