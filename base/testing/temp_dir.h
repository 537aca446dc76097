// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with everything in it when the
// owner goes away. For tests and benchmarks of every layer (hermetic data dirs).
//
// Thread-safety: a plain owner.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace clustermgr {

class TempDir {
 public:
  // Creates "<tmp>/<prefix>.XXXXXX" (mode 0700; path() is its canonical form, free of symlinks);
  // aborts if it cannot (a test environment problem).
  explicit TempDir(const std::string& prefix = "clustermgr-test") {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
    if (!::mkdtemp(templ.data())) {
      std::perror(("mkdtemp " + templ).c_str());
      std::abort();
    }
    std::error_code ec;
    const std::filesystem::path real = std::filesystem::canonical(templ, ec);  // no symlinks
    path_ = ec ? templ : real.string();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace clustermgr
