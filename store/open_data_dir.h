// Opening a data dir: checks that the dir is usable for a store, opens LevelDB, creates the
// metadata record of a new store or checks an existing one's, and loads the contents. Used by
// Store (store/store.cc) to open and to reopen.
#pragma once

#include <leveldb/db.h>

#include <memory>
#include <string>

#include "base/status.h"
#include "store/contents.h"
#include "store/metadata.h"
#include "store/store.h"

namespace clustermgr::store {

// A data dir, opened and loaded.
struct Opened {
  std::unique_ptr<leveldb::DB> db;
  Metadata meta;
  StoreContents contents;
};

// Opens `path` (shown to operators as `shown`, e.g. the data dir of which `path` is a copy) and
// loads it; creates the store when options.create_if_missing allows.
Result<Opened> OpenAt(const std::string& path, const std::string& shown, const Options& options);

}  // namespace clustermgr::store
