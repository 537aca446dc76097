#include "store/dir_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>
#include <vector>

namespace clustermgr::store {
namespace {

std::string Errno(int err) { return std::strerror(err); }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The files a LevelDB needs to open; LOCK, LOG and LOG.old are left out.
bool Wanted(std::string_view name) {
  return name == "CURRENT" || name.rfind("MANIFEST-", 0) == 0 || EndsWith(name, ".log") ||
         EndsWith(name, ".ldb") || EndsWith(name, ".sst");
}

// Reads a whole small file; ENOENT is reported through *vanished.
Status ReadSmallFile(const std::string& path, std::string* out, bool* vanished) {
  *vanished = false;
  out->clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      *vanished = true;
      return Status::Ok();
    }
    return Status(Code::kIoError, "cannot read " + path + ": " + Errno(errno));
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status(Code::kIoError, "cannot read " + path + ": " + Errno(err));
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return Status::Ok();
}

// Copies src to dst (created 0600). ENOENT on src is reported through *vanished.
Status CopyFile(const std::string& src, const std::string& dst, bool* vanished) {
  *vanished = false;
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    if (errno == ENOENT) {
      *vanished = true;
      return Status::Ok();
    }
    return Status(Code::kIoError, "cannot read " + src + ": " + Errno(errno));
  }
  const int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return Status(Code::kIoError, "cannot write " + dst + ": " + Errno(err));
  }
  std::vector<char> buf(1 << 16);
  Status status;
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      status = Status(Code::kIoError, "cannot read " + src + ": " + Errno(errno));
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        status = Status(Code::kIoError, "cannot write " + dst + ": " + Errno(errno));
        break;
      }
      done += w;
    }
    if (!status.ok()) break;
  }
  ::close(in);
  if (::close(out) != 0 && status.ok()) {
    status = Status(Code::kIoError, "cannot write " + dst + ": " + Errno(errno));
  }
  return status;
}

// What must not change while copying: CURRENT's content and the MANIFEST's size.
struct Fingerprint {
  std::string current;
  off_t manifest_size = -1;
  bool operator==(const Fingerprint&) const = default;
};

// *missing is set when there is no CURRENT or no MANIFEST it names (mid-switch or no DB).
Status TakeFingerprint(const std::string& src, Fingerprint* fp, bool* missing) {
  *fp = Fingerprint{};
  Status s = ReadSmallFile(src + "/CURRENT", &fp->current, missing);
  if (!s.ok() || *missing) return s;
  std::string manifest = fp->current;
  while (!manifest.empty() && (manifest.back() == '\n' || manifest.back() == '\r')) {
    manifest.pop_back();
  }
  if (manifest.empty() || manifest.find('/') != std::string::npos) {
    return Status(Code::kIoError, src + "/CURRENT does not name a MANIFEST file");
  }
  struct stat st {};
  if (::stat((src + "/" + manifest).c_str(), &st) != 0) {
    if (errno == ENOENT) {
      *missing = true;
      return Status::Ok();
    }
    return Status(Code::kIoError, "cannot stat " + src + "/" + manifest + ": " + Errno(errno));
  }
  fp->manifest_size = st.st_size;
  return Status::Ok();
}

Status ListWanted(const std::string& src, std::vector<std::string>* names) {
  names->clear();
  DIR* d = ::opendir(src.c_str());
  if (!d) return Status(Code::kIoError, "cannot list data dir " + src + ": " + Errno(errno));
  while (dirent* e = ::readdir(d)) {
    if (Wanted(e->d_name)) names->push_back(e->d_name);
  }
  ::closedir(d);
  return Status::Ok();
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// One attempt: *consistent tells whether the copy in `dst` may be used.
Status CopyOnce(const std::string& src, const std::string& dst, bool* consistent) {
  *consistent = false;
  Fingerprint before;
  bool missing = false;
  Status s = TakeFingerprint(src, &before, &missing);
  if (!s.ok() || missing) return s;
  std::vector<std::string> names;
  if (s = ListWanted(src, &names); !s.ok()) return s;
  // CURRENT last among the copies, so the copy never names a MANIFEST it lacks.
  for (const std::string& name : names) {
    if (name == "CURRENT") continue;
    bool vanished = false;
    if (s = CopyFile(src + "/" + name, dst + "/" + name, &vanished); !s.ok()) return s;
    if (vanished) return Status::Ok();  // a compaction deleted it: retry
  }
  bool vanished = false;
  if (s = CopyFile(src + "/CURRENT", dst + "/CURRENT", &vanished); !s.ok()) return s;
  if (vanished) return Status::Ok();
  Fingerprint after;
  if (s = TakeFingerprint(src, &after, &missing); !s.ok() || missing) return s;
  std::string copied_current;
  if (s = ReadSmallFile(dst + "/CURRENT", &copied_current, &vanished); !s.ok()) return s;
  *consistent = before == after && copied_current == before.current;
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<DirCopy>> DirCopy::Make(const std::string& src, int attempts) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status(Code::kNotFound, "data dir " + src + " does not exist");
    return Status(Code::kIoError, "cannot access data dir " + src + ": " + Errno(errno));
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
                  "cannot create a temp dir for the copy of " + src + ": " + Errno(errno));
  }
  std::unique_ptr<DirCopy> copy(new DirCopy(src, templ));
  for (int i = 0; i < attempts; ++i) {
    bool consistent = false;
    Status s = CopyOnce(src, copy->path_, &consistent);
    if (!s.ok()) return s;  // the destructor removes the temp dir
    if (consistent) return copy;
    // Start the next attempt from an empty dir: files of a discarded attempt could be stale.
    RemoveAll(copy->path_);
    if (::mkdir(copy->path_.c_str(), 0700) != 0) {
      return Status(Code::kIoError, "cannot recreate " + copy->path_ + ": " + Errno(errno));
    }
  }
  return Status(Code::kUnavailable, "data dir " + src + " changed during each of " +
                                        std::to_string(attempts) + " copy attempts");
}

DirCopy::~DirCopy() { RemoveAll(path_); }

}  // namespace clustermgr::store
