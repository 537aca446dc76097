#include "store/testing/temp_dir.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace clustermgr::store {

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  if (!::mkdtemp(templ.data())) {
    std::perror(("mkdtemp " + templ).c_str());
    std::abort();
  }
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace clustermgr::store
