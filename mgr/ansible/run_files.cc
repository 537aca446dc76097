#include "mgr/ansible/run_files.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "mgr/ansible/extra_vars.h"
#include "mgr/ansible/run_support.h"

namespace clustermgr::mgr::run {
namespace {

// Writes a new owner-only file; "" or an error line.
std::string WritePrivateFile(const std::string& path, std::string_view contents) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return "cannot create " + Quote(path) + ": " + ErrnoText(errno);
  while (!contents.empty()) {
    ssize_t n = ::write(fd.get(), contents.data(), contents.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return "cannot write " + Quote(path) + ": " + ErrnoText(errno);
    }
    contents.remove_prefix(static_cast<std::size_t>(n));
  }
  return "";
}

std::string Json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0) {
    return "cannot create " + Quote(dir) + ": " + ErrnoText(errno);
  }
  return "";
}

// Ansible loads every file of <inventory dir>/host_vars/<host>/ as that host's variables.
std::string WriteHostVars(const PlaybookSpec& spec, const std::string& dir) {
  if (std::string err = MakeDir(dir); !err.empty()) return err;
  for (const InventoryHost& host : spec.hosts) {
    auto ours = spec.host_vars.find(host.name);
    auto theirs = spec.client_host_vars.find(host.name);
    if (ours == spec.host_vars.end() && theirs == spec.client_host_vars.end()) continue;
    const std::string host_dir = dir + "/" + host.name;
    if (std::string err = MakeDir(host_dir); !err.empty()) return err;
    if (ours != spec.host_vars.end()) {
      if (std::string err = WritePrivateFile(host_dir + "/operator.json", Json(ours->second));
          !err.empty()) {
        return err;
      }
    }
    if (theirs != spec.client_host_vars.end()) {
      if (std::string err =
              WritePrivateFile(host_dir + "/client.yml", ToUnsafeYaml(theirs->second));
          !err.empty()) {
        return err;
      }
    }
  }
  return "";
}

}  // namespace

RunDir::~RunDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string RunDir::Create(std::string parent) {
  if (parent.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");
    parent = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
  }
  std::string pattern = parent + "/clustermgr-ansible-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return "cannot create a temp dir in " + Quote(parent) + ": " + ErrnoText(errno);
  }
  path_ = pattern;  // mkdtemp makes it 0700
  return "";
}

std::string WriteRunFiles(const PlaybookSpec& spec, const std::string& inventory, const RunDir& dir,
                          RunFiles* files) {
  files->hosts = dir.path() + "/hosts";
  files->vars = dir.path() + "/extra-vars.json";
  files->local_temp = dir.path() + "/tmp";
  if (std::string err = WritePrivateFile(files->hosts, inventory); !err.empty()) return err;
  if (std::string err = WritePrivateFile(files->vars, Json(spec.extra_vars)); !err.empty()) {
    return err;
  }
  if (!spec.client_vars.empty()) {
    files->client_vars = dir.path() + "/client-vars.yml";
    if (std::string err = WritePrivateFile(files->client_vars, ToUnsafeYaml(spec.client_vars));
        !err.empty()) {
      return err;
    }
  }
  if (!spec.host_vars.empty() || !spec.client_host_vars.empty()) {
    if (std::string err = WriteHostVars(spec, dir.path() + "/host_vars"); !err.empty()) {
      return err;
    }
  }
  return MakeDir(files->local_temp);
}

}  // namespace clustermgr::mgr::run
