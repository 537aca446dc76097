// InspectDir: reads a data dir for state-inspect and tests without ever writing to it, even
// while a daemon holds it: a private copy (store/dir_copy.h) is opened and every record loaded,
// with every problem listed instead of stopping at the first.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "store/contents.h"

namespace clustermgr::store {

struct Inspection {
  StoreContents contents;  // with the decoded delta log in contents.deltas
  // Records that do not decode or lie in no known section, then Verify's findings.
  std::vector<Problem> problems;
};

// Errors: those of DirCopy::Make (kNotFound: no store in `dir`); kCorruption or kIoError when
// LevelDB cannot open the copy or read through it. Problems with the records themselves are
// not errors: they are listed in Inspection::problems.
Result<Inspection> InspectDir(const std::string& dir);

}  // namespace clustermgr::store
