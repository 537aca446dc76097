// The files of a playbook run, in a private directory (mode 0700) that dies with the run:
//   <dir>/hosts                        the inventory
//   <dir>/extra-vars.json              the operator's vars (templated by ansible)
//   <dir>/client-vars.yml              the clients' vars, `!unsafe` (only when there are any)
//   <dir>/host_vars/<host>/operator.json, client.yml   vars of single hosts
//   <dir>/tmp                          ansible's and its modules' temp files
// Every file is new and owner-only.
#pragma once

#include <string>

#include "mgr/ansible/playbook_runner.h"

namespace clustermgr::mgr::run {

// The run's private directory; removed (with everything a killed ansible left in it) on
// destruction.
class RunDir {
 public:
  RunDir() = default;
  ~RunDir();
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

  // Makes it in `parent` (empty: $TMPDIR, else /tmp). "" or an error line.
  std::string Create(std::string parent);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct RunFiles {
  std::string hosts;
  std::string vars;
  std::string client_vars;  // empty when spec.client_vars is
  std::string local_temp;
};

// Writes the files of `spec` (the inventory already rendered) into `dir`. "" or an error line
// (`cannot create <path>: <strerror>`, `cannot write <path>: <strerror>`).
std::string WriteRunFiles(const PlaybookSpec& spec, const std::string& inventory, const RunDir& dir,
                          RunFiles* files);

}  // namespace clustermgr::mgr::run
