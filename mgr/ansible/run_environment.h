// The environment of the ansible-playbook child (the variables are listed in playbook_runner.h)
// and the program it runs.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mgr/ansible/playbook_runner.h"

namespace clustermgr::mgr::run {

// The child's environment as an ordered name -> value list (later entries replace earlier ones).
class Environment {
 public:
  void Set(std::string_view name, std::string_view value);
  const std::string* Get(std::string_view name) const;
  std::vector<std::string> Entries() const;  // "NAME=value"

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

// Before the run's directory exists: the variables inherited from this process's environment,
// the fixed Ansible settings and the roles path. "" or an error line: `invalid roles dir <d>`,
// `invalid environment variable <name>` (a name of spec.env).
std::string BaseEnvironment(const PlaybookSpec& spec, Environment* env);
// Once it exists: ANSIBLE_LOCAL_TEMP and TMPDIR in it, then spec.env.
void FinishEnvironment(const PlaybookSpec& spec, const std::string& local_temp, Environment* env);

// Finds `program` the way execvp would, but before fork (execvp may allocate): made absolute
// when it has a '/', else looked up in `path_var`. "" with *error set when it cannot be run.
std::string FindProgram(const std::string& program, const std::string& path_var,
                        std::string* error);

}  // namespace clustermgr::mgr::run
