// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with everything in it when the
// owner goes away. For tests and benchmarks (hermetic data dirs).
//
// Thread-safety: a plain owner.
#pragma once

#include <string>

namespace clustermgr::store {

class TempDir {
 public:
  // Creates "<tmp>/<prefix>.XXXXXX"; aborts if it cannot (a test environment problem).
  explicit TempDir(const std::string& prefix = "clustermgr-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace clustermgr::store
