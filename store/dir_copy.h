// DirCopy: a private, consistent copy of a LevelDB data dir that another process may be
// writing, so that state-inspect can read a live daemon's store without touching it.
//
// LevelDB cannot open a directory whose LOCK another process holds, and hard links are not safe
// (the live MANIFEST and log keep being appended, and the copy's own recovery would write
// through the link). So the files LevelDB needs (CURRENT, MANIFEST-*, *.log, *.ldb, *.sst) are
// copied byte for byte into a fresh temp dir. Consistency: LevelDB deletes or replaces a file
// only after recording the change in the MANIFEST, and the MANIFEST only grows (or CURRENT
// moves to a new one). So if CURRENT and the MANIFEST's size are the same before and after the
// copy, the set of live files did not change while copying, and each copied log is a prefix of
// the live one (a torn last record is what LevelDB's recovery drops as an unfinished write).
// Otherwise (or when a file vanished mid-copy) the attempt is discarded and retried.
//
// Thread-safety: a DirCopy is a plain owner of its temp dir.
#pragma once

#include <memory>
#include <string>

#include "crdt/status.h"

namespace clustermgr::store {

class DirCopy {
 public:
  // Copies `src` into a new directory under $TMPDIR (or /tmp). Errors: kNotFound when `src`
  // holds no LevelDB (no CURRENT file), kIoError when `src` cannot be read or the copy cannot
  // be written, kUnavailable when `src` changed during each of `attempts` attempts.
  static Result<std::unique_ptr<DirCopy>> Make(const std::string& src, int attempts = 20);

  // Removes the copy.
  ~DirCopy();
  DirCopy(const DirCopy&) = delete;
  DirCopy& operator=(const DirCopy&) = delete;

  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }

 private:
  DirCopy(std::string source, std::string path)
      : source_(std::move(source)), path_(std::move(path)) {}

  std::string source_;
  std::string path_;
};

}  // namespace clustermgr::store
