#include "store/dir_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/errno_text.h"

namespace clustermgr::store {
namespace {

// ---- Reading a LevelDB MANIFEST (db/log_format.h, db/version_edit.cc of LevelDB) ----

// What one version of the DB consists of: its table files (number -> size) and the log that
// holds the writes not yet in a table.
struct LiveFiles {
  uint64_t log_number = 0;
  uint64_t prev_log_number = 0;
  std::map<uint64_t, uint64_t> tables;
};

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

bool GetSlice(std::string_view* in) {
  uint64_t n = 0;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  in->remove_prefix(n);
  return true;
}

// Applies one VersionEdit record. Tags: 1 comparator, 2 log number, 3 next file number,
// 4 last sequence, 5 compact pointer, 6 deleted file, 7 new file, 9 prev log number.
bool ApplyEdit(std::string_view in, LiveFiles* live) {
  while (!in.empty()) {
    uint64_t tag = 0, level = 0, number = 0, size = 0, ignored = 0;
    if (!GetVarint(&in, &tag)) return false;
    switch (tag) {
      case 1:
        if (!GetSlice(&in)) return false;
        break;
      case 2:
        if (!GetVarint(&in, &live->log_number)) return false;
        break;
      case 3:
      case 4:
        if (!GetVarint(&in, &ignored)) return false;
        break;
      case 5:
        if (!GetVarint(&in, &level) || !GetSlice(&in)) return false;
        break;
      case 6:
        if (!GetVarint(&in, &level) || !GetVarint(&in, &number)) return false;
        live->tables.erase(number);
        break;
      case 7:
        if (!GetVarint(&in, &level) || !GetVarint(&in, &number) || !GetVarint(&in, &size) ||
            !GetSlice(&in) || !GetSlice(&in)) {
          return false;
        }
        live->tables[number] = size;
        break;
      case 9:
        if (!GetVarint(&in, &live->prev_log_number)) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

// Replays a MANIFEST's records (LevelDB's log format: 32 KiB blocks of records with a 7-byte
// header: crc32c, little-endian length, type FULL=1 FIRST=2 MIDDLE=3 LAST=4). A record cut off
// by the end of the bytes is an append in progress and ends the replay, as in LevelDB's own
// recovery. Checksums are left to LevelDB, which verifies them when it opens the copy.
bool ReplayManifest(std::string_view bytes, LiveFiles* live) {
  constexpr size_t kBlock = 32768;
  constexpr size_t kHeader = 7;
  std::string record;
  bool in_record = false;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t left_in_block = kBlock - pos % kBlock;
    if (left_in_block < kHeader) {
      pos += left_in_block;  // trailer padding
      continue;
    }
    if (bytes.size() - pos < kHeader) return true;  // torn header at the end
    const auto* h = reinterpret_cast<const uint8_t*>(bytes.data() + pos);
    const size_t length = h[4] | (size_t{h[5]} << 8);
    const uint8_t type = h[6];
    if (type == 0 && length == 0) {
      pos += left_in_block;  // preallocated zeros
      continue;
    }
    if (kHeader + length > left_in_block) return false;
    if (bytes.size() - pos - kHeader < length) return true;  // torn payload at the end
    const std::string_view payload = bytes.substr(pos + kHeader, length);
    pos += kHeader + length;
    switch (type) {
      case 1:
        if (!ApplyEdit(payload, live)) return false;
        in_record = false;
        break;
      case 2:
        record.assign(payload);
        in_record = true;
        break;
      case 3:
        if (!in_record) return false;
        record.append(payload);
        break;
      case 4:
        if (!in_record) return false;
        record.append(payload);
        if (!ApplyEdit(record, live)) return false;
        in_record = false;
        break;
      default:
        return false;
    }
  }
  return true;
}

// ---- Files ----

bool ParseNumbered(std::string_view name, std::string_view suffix, uint64_t* number) {
  if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) {
    return false;
  }
  const std::string digits(name.substr(0, name.size() - suffix.size()));
  if (digits.find_first_not_of("0123456789") != std::string::npos) return false;
  *number = std::strtoull(digits.c_str(), nullptr, 10);
  return true;
}

std::string TableName(uint64_t number, const char* suffix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06llu%s", static_cast<unsigned long long>(number), suffix);
  return buf;
}

// Reads a whole file; ENOENT is reported through *vanished.
Status ReadFile(const std::string& path, std::string* out, bool* vanished) {
  *vanished = false;
  out->clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      *vanished = true;
      return Status::Ok();
    }
    return Status(Code::kIoError, "cannot read " + path + ": " + ErrnoText(errno));
  }
  std::vector<char> buf(1 << 16);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status(Code::kIoError, "cannot read " + path + ": " + ErrnoText(err));
    }
    if (n == 0) break;
    out->append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return Status::Ok();
}

Status WriteFile(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kIoError, "cannot write " + path + ": " + ErrnoText(errno));
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status(Code::kIoError, "cannot write " + path + ": " + ErrnoText(err));
    }
    done += static_cast<size_t>(w);
  }
  if (::close(fd) != 0)
    return Status(Code::kIoError, "cannot write " + path + ": " + ErrnoText(errno));
  return Status::Ok();
}

Status CopyFile(const std::string& src, const std::string& dst, bool* vanished) {
  std::string bytes;
  if (Status s = ReadFile(src, &bytes, vanished); !s.ok() || *vanished) return s;
  return WriteFile(dst, bytes);
}

off_t SizeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

Status List(const std::string& dir, std::vector<std::string>* names) {
  names->clear();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status(Code::kIoError, "cannot list " + dir + ": " + ErrnoText(errno));
  while (dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") names->push_back(e->d_name);
  }
  ::closedir(d);
  return Status::Ok();
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// One attempt. Returns ok with *done false when `src` changed under it (retry). `dst` may
// hold tables copied whole by an earlier attempt: a table is immutable once the MANIFEST
// names it, so a copy at the recorded size is kept and a retry is quick.
//
// Why the result is consistent: the copied MANIFEST describes one version of the DB (its
// torn last record, if any, is ignored by LevelDB and here alike): tables, plus a log holding
// the writes since. Every table it names is copied at its recorded size; its log, and every
// newer log, is copied as it is now, which is that version plus later writes in order (a log
// is complete before a newer one is written). A file of that version that is gone (a later
// compaction deleted it) makes the attempt fail and retry with a newer MANIFEST.
Status CopyOnce(const std::string& src, const std::string& dst, bool* done) {
  *done = false;
  bool vanished = false;
  std::string current;
  if (Status s = ReadFile(src + "/CURRENT", &current, &vanished); !s.ok() || vanished) return s;
  while (!current.empty() && (current.back() == '\n' || current.back() == '\r')) {
    current.pop_back();
  }
  if (current.rfind("MANIFEST-", 0) != 0 || current.find('/') != std::string::npos) {
    return Status(Code::kCorruption, src + "/CURRENT does not name a MANIFEST file");
  }
  std::string manifest;
  if (Status s = ReadFile(src + "/" + current, &manifest, &vanished); !s.ok()) return s;
  if (vanished) return Status::Ok();  // CURRENT moved on to a new MANIFEST
  LiveFiles live;
  if (!ReplayManifest(manifest, &live)) {
    return Status(Code::kCorruption, src + "/" + current + " does not parse as a LevelDB MANIFEST");
  }

  std::vector<std::string> names;
  if (Status s = List(src, &names); !s.ok()) return s;
  std::set<std::string> keep{"CURRENT", current};
  // Logs first: the version's own log is deleted soonest (by the next memtable flush).
  bool have_log = live.log_number == 0;
  for (const std::string& name : names) {
    uint64_t number = 0;
    if (!ParseNumbered(name, ".log", &number)) continue;
    if (number < live.log_number && number != live.prev_log_number) continue;
    if (Status s = CopyFile(src + "/" + name, dst + "/" + name, &vanished); !s.ok()) return s;
    if (vanished) return Status::Ok();
    have_log = have_log || number == live.log_number;
    keep.insert(name);
  }
  if (!have_log) return Status::Ok();  // flushed and deleted since: retry
  std::set<std::string> present(names.begin(), names.end());
  for (const auto& [number, size] : live.tables) {
    std::string name = TableName(number, ".ldb");
    if (!present.count(name) && present.count(TableName(number, ".sst"))) {
      name = TableName(number, ".sst");
    }
    keep.insert(name);
    const std::string to = dst + "/" + name;
    if (SizeOf(to) == static_cast<off_t>(size)) continue;
    if (Status s = CopyFile(src + "/" + name, to, &vanished); !s.ok()) return s;
    if (vanished) return Status::Ok();  // compacted away since: retry
    if (SizeOf(to) != static_cast<off_t>(size)) {
      return Status(Code::kCorruption,
                    src + "/" + name + " is not of the size its MANIFEST records");
    }
  }
  if (Status s = WriteFile(dst + "/" + current, manifest); !s.ok()) return s;
  if (Status s = WriteFile(dst + "/CURRENT", current + "\n"); !s.ok()) return s;
  // What earlier attempts copied and this version does not use.
  std::vector<std::string> copied;
  if (Status s = List(dst, &copied); !s.ok()) return s;
  for (const std::string& name : copied) {
    if (!keep.count(name)) ::unlink((dst + "/" + name).c_str());
  }
  *done = true;
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<DirCopy>> DirCopy::Make(const std::string& src, int attempts) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status(Code::kNotFound, "data dir " + src + " does not exist");
    return Status(Code::kIoError, "cannot access data dir " + src + ": " + ErrnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status(Code::kInvalidArgument, "data dir " + src + " is not a directory");
  }
  if (::access((src + "/CURRENT").c_str(), F_OK) != 0 && errno == ENOENT) {
    return Status(Code::kNotFound, "data dir " + src + " holds no store (no CURRENT file)");
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string templ = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/state-inspect.XXXXXX";
  if (!::mkdtemp(templ.data())) {
    return Status(Code::kIoError,
                  "cannot create a temp dir for the copy of " + src + ": " + ErrnoText(errno));
  }
  std::unique_ptr<DirCopy> copy(new DirCopy(src, templ));
  for (int i = 0; i < attempts; ++i) {
    bool done = false;
    copy->attempts_ = i + 1;
    Status s = CopyOnce(src, copy->path_, &done);
    if (!s.ok()) return s;  // the destructor removes the temp dir
    if (done) return copy;
    // A compaction is replacing files: give it a moment (1, 2, 4 ... 64 ms).
    std::this_thread::sleep_for(std::chrono::milliseconds(1 << std::min(i, 6)));
  }
  return Status(Code::kUnavailable, "data dir " + src + " changed during each of " +
                                        std::to_string(attempts) + " copy attempts");
}

DirCopy::~DirCopy() { RemoveAll(path_); }

}  // namespace clustermgr::store
