// Playbook path confinement: a playbook named by a client must be a regular file inside the
// daemon's playbook directory, whatever the name or its symlinks say.
#pragma once

#include <string>
#include <string_view>

namespace clustermgr::mgr {

struct [[nodiscard]] PlaybookPath {
  std::string path;   // absolute: realpath(playbook_dir) + "/" + playbook
  std::string dir;    // realpath(playbook_dir)
  std::string error;  // empty on success; one line
  bool ok() const { return error.empty(); }
};

// Confines a playbook name to the playbook directory. Errors:
//   `no playbook specified`
//   `playbook <p> must be a path relative to the playbook directory` (absolute name)
//   `playbook <p> must not contain ".." or control characters`
//   `playbook directory <d> is not usable: <strerror>` (missing, not a directory, ...)
//   `playbook <p> not found in <realdir>`
//   `playbook <p> in <realdir> is not usable: <strerror>`
//   `playbook <p> resolves outside the playbook directory <realdir>` (symlink escape)
//   `playbook <p> in <realdir> is not a regular file`
// Names are shown JSON-quoted. The returned path keeps the name's own symlinks (Ansible derives
// playbook_dir from it) but is checked through realpath().
PlaybookPath ResolvePlaybookPath(std::string_view playbook_dir, std::string_view playbook);

}  // namespace clustermgr::mgr
