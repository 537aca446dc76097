// DirCopy: a private, consistent copy of a LevelDB data dir that another process may be
// writing, so that state-inspect can read a live daemon's store without touching it.
//
// LevelDB cannot open a directory whose LOCK another process holds, and hard links are not safe
// (the live MANIFEST and log keep being appended, and the copy's own recovery would write
// through the link). So the files of one version of the DB are copied byte for byte into a
// fresh temp dir: the MANIFEST that CURRENT names is copied and replayed (LevelDB's documented
// log and VersionEdit formats) to learn that version's table files and log; the log and any
// newer ones are copied (each is a prefix of the live one: a torn last record is what
// LevelDB's recovery drops as an unfinished write), then every table at the size the MANIFEST
// records. A file of that version deleted meanwhile (a compaction finished) fails the attempt,
// which is retried after a short backoff; a retry keeps the tables already copied whole (they
// are immutable), so it is quick even while compactions keep coming. LOCK and LOG are never
// copied.
//
// Thread-safety: a DirCopy is a plain owner of its temp dir.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace clustermgr::store {

class DirCopy {
 public:
  // Copies `src` into a new directory under $TMPDIR (or /tmp). Errors: kNotFound when `src`
  // holds no LevelDB (no CURRENT file), kIoError when `src` cannot be read or the copy cannot
  // be written, kCorruption when the MANIFEST does not parse or a table's size disagrees with
  // it, kUnavailable when `src` changed during each of `attempts` attempts.
  static Result<std::unique_ptr<DirCopy>> Make(const std::string& src, int attempts = 30);

  // Removes the copy.
  ~DirCopy();
  DirCopy(const DirCopy&) = delete;
  DirCopy& operator=(const DirCopy&) = delete;

  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }
  // How many attempts the copy took (more than 1 when the dir changed during one).
  int attempts() const { return attempts_; }

 private:
  DirCopy(std::string source, std::string path)
      : source_(std::move(source)), path_(std::move(path)) {}

  std::string source_;
  std::string path_;
  int attempts_ = 0;
};

}  // namespace clustermgr::store
