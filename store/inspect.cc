#include "store/inspect.h"

#include <leveldb/db.h>

#include <memory>

#include "store/dir_copy.h"

namespace clustermgr::store {

Result<Inspection> InspectDir(const std::string& dir) {
  auto copy = DirCopy::Make(dir);
  if (!copy.ok()) return copy.status();
  leveldb::Options options;
  options.create_if_missing = false;
  options.paranoid_checks = true;
  leveldb::DB* raw = nullptr;
  if (leveldb::Status s = leveldb::DB::Open(options, (*copy)->path(), &raw); !s.ok()) {
    return Status(s.IsCorruption() ? Code::kCorruption : Code::kIoError,
                  "cannot open (a copy of) data dir " + dir + ": " + s.ToString());
  }
  std::unique_ptr<leveldb::DB> db(raw);
  Inspection out;
  LoadOptions load;
  load.keep_deltas = true;
  if (Status s = LoadContents(db.get(), load, &out.contents, &out.problems); !s.ok()) {
    return Status(s.code(), "data dir " + dir + ": " + s.message());
  }
  for (Problem& p : Verify(out.contents)) out.problems.push_back(std::move(p));
  return out;
}

}  // namespace clustermgr::store
