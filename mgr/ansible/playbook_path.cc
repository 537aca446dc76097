#include "mgr/ansible/playbook_path.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "mgr/ansible/run_support.h"

namespace clustermgr::mgr {

using run::HasControlChars;

PlaybookPath ResolvePlaybookPath(std::string_view playbook_dir, std::string_view playbook) {
  PlaybookPath out;
  if (playbook.empty()) {
    out.error = "no playbook specified";
    return out;
  }
  if (playbook.front() == '/') {
    out.error =
        "playbook " + Quote(playbook) + " must be a path relative to the playbook directory";
    return out;
  }
  bool dotdot = false;
  for (std::string_view rest = playbook; !rest.empty();) {
    std::size_t slash = rest.find('/');
    if (rest.substr(0, slash) == "..") dotdot = true;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (dotdot || HasControlChars(playbook)) {
    out.error = "playbook " + Quote(playbook) + " must not contain \"..\" or control characters";
    return out;
  }

  std::string dir(playbook_dir.empty() ? "." : playbook_dir);
  std::unique_ptr<char, decltype(&std::free)> real_dir(::realpath(dir.c_str(), nullptr),
                                                       &std::free);
  struct stat st {};
  int dir_error = 0;
  if (real_dir == nullptr || ::stat(real_dir.get(), &st) != 0) {
    dir_error = errno;
  } else if (!S_ISDIR(st.st_mode)) {
    dir_error = ENOTDIR;
  }
  if (dir_error != 0) {
    out.error = "playbook directory " + Quote(dir) + " is not usable: " + ErrnoText(dir_error);
    return out;
  }
  out.dir = real_dir.get();

  std::string joined = out.dir + "/" + std::string(playbook);
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(joined.c_str(), nullptr), &std::free);
  if (real == nullptr) {
    int err = errno;
    if (err == ENOENT) {
      out.error = "playbook " + Quote(playbook) + " not found in " + Quote(out.dir);
    } else {
      out.error = "playbook " + Quote(playbook) + " in " + Quote(out.dir) +
                  " is not usable: " + ErrnoText(err);
    }
    return out;
  }
  std::string_view resolved = real.get();
  std::string prefix = out.dir == "/" ? "/" : out.dir + "/";
  if (!resolved.starts_with(prefix) || resolved.size() == prefix.size()) {
    out.error = "playbook " + Quote(playbook) + " resolves outside the playbook directory " +
                Quote(out.dir);
    return out;
  }
  if (::stat(real.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    out.error = "playbook " + Quote(playbook) + " in " + Quote(out.dir) + " is not a regular file";
    return out;
  }
  out.path = std::filesystem::path(joined).lexically_normal().string();
  return out;
}

}  // namespace clustermgr::mgr
