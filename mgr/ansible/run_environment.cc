#include "mgr/ansible/run_environment.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "mgr/ansible/run_support.h"

extern char** environ;

namespace clustermgr::mgr::run {
namespace {

bool IsEnvName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Whether a variable of the daemon's environment is passed to ansible-playbook.
bool Inherited(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "SSH_AUTH_SOCK"};
  for (std::string_view n : kNames) {
    if (name == n) return true;
  }
  return name.starts_with("LC_") || name.starts_with("ANSIBLE_");
}

}  // namespace

void Environment::Set(std::string_view name, std::string_view value) {
  for (auto& [n, v] : vars_) {
    if (n == name) {
      v = value;
      return;
    }
  }
  vars_.emplace_back(name, value);
}

const std::string* Environment::Get(std::string_view name) const {
  for (const auto& [n, v] : vars_) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::vector<std::string> Environment::Entries() const {
  std::vector<std::string> out;
  out.reserve(vars_.size());
  for (const auto& [n, v] : vars_) out.push_back(n + "=" + v);
  return out;
}

std::string BaseEnvironment(const PlaybookSpec& spec, Environment* env) {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry = *e;
    std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    if (Inherited(entry.substr(0, eq))) env->Set(entry.substr(0, eq), entry.substr(eq + 1));
  }
  if (env->Get("PATH") == nullptr) env->Set("PATH", "/usr/local/bin:/usr/bin:/bin");
  env->Set("ANSIBLE_HOST_KEY_CHECKING", "False");
  env->Set("ANSIBLE_FORCE_COLOR", "0");
  env->Set("ANSIBLE_NOCOLOR", "1");
  env->Set("PYTHONUNBUFFERED", "1");
  env->Set("ANSIBLE_RETRY_FILES_ENABLED", "False");
  env->Set("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS", "ignore");
  if (!spec.roles_path.empty()) {
    if (HasControlChars(spec.roles_path) || spec.roles_path.find(':') != std::string::npos) {
      return "invalid roles dir " + Quote(spec.roles_path);
    }
    std::error_code ec;
    const std::string roles = std::filesystem::absolute(spec.roles_path, ec).string();
    const std::string* inherited = env->Get("ANSIBLE_ROLES_PATH");
    const std::string rest = inherited != nullptr && !inherited->empty()
                                 ? *inherited
                                 : "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles";
    env->Set("ANSIBLE_ROLES_PATH", (ec ? spec.roles_path : roles) + ":" + rest);
  }
  for (const auto& [name, value] : spec.env) {
    if (!IsEnvName(name) || value.find('\0') != std::string::npos) {
      return "invalid environment variable " + Quote(name);
    }
  }
  return "";
}

void FinishEnvironment(const PlaybookSpec& spec, const std::string& local_temp, Environment* env) {
  env->Set("ANSIBLE_LOCAL_TEMP", local_temp);
  // A cancelled or killed task leaves its module payload dir in TMPDIR: keep it in the run dir,
  // which is removed after the run (or at the next start, after a crash).
  env->Set("TMPDIR", local_temp);
  for (const auto& [name, value] : spec.env) env->Set(name, value);
}

std::string FindProgram(const std::string& program, const std::string& path_var,
                        std::string* error) {
  if (program.empty()) {
    *error = "no ansible-playbook program configured";
    return "";
  }
  if (program.find('/') != std::string::npos) {
    std::error_code ec;
    std::string abs = std::filesystem::absolute(program, ec).string();
    if (ec || ::access(abs.c_str(), X_OK) != 0) {
      *error = "cannot run " + Quote(program) + ": " + ErrnoText(ec ? ec.value() : errno);
      return "";
    }
    return abs;
  }
  std::string_view rest = path_var;
  while (true) {
    std::size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      std::error_code ec;
      std::string abs = std::filesystem::absolute(candidate, ec).string();
      return ec ? candidate : abs;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  *error = "cannot find " + Quote(program) + " in PATH " + Quote(path_var);
  return "";
}

}  // namespace clustermgr::mgr::run
