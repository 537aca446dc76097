#include "mgr/repl/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "base/errno_text.h"

namespace clustermgr::mgr {
namespace {

// True when another process holds LevelDB's lock on `dir`/LOCK (LevelDB takes a POSIX fcntl
// write lock on it for as long as the DB is open).
Result<bool> LockedByOther(const std::string& dir) {
  const std::string path = dir + "/LOCK";
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    return Status(Code::kIoError, "cannot open " + path + ": " + ErrnoText(errno));
  }
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  const bool busy = ::fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
  ::close(fd);
  return busy;
}

}  // namespace

Result<std::string> DiscardDataDir(const std::string& dir_in, uint64_t now_unix_ms) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return std::string();
  if (std::filesystem::is_directory(dir, ec) && std::filesystem::is_empty(dir, ec)) {
    return std::string();
  }
  auto locked = LockedByOther(dir);
  if (!locked.ok()) return locked.status();
  if (*locked) {
    return Status(Code::kUnavailable,
                  "data dir " + dir + " is in use by another clustermgrd (LevelDB lock held)");
  }
  const std::time_t seconds = static_cast<std::time_t>(now_unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::string target = dir + ".discarded-" + stamp;
  for (int n = 2; std::filesystem::exists(target, ec); ++n) {
    target = dir + ".discarded-" + stamp + "-" + std::to_string(n);
  }
  if (::rename(dir.c_str(), target.c_str()) != 0) {
    return Status(Code::kIoError,
                  "cannot move data dir " + dir + " aside to " + target + ": " + ErrnoText(errno));
  }
  return target;
}

}  // namespace clustermgr::mgr
