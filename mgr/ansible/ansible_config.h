// The runtime Ansible configuration (`config get` / `config set`).
//
// Daemon options give the defaults; the replicated `config` section overrides them key by key,
// so a `config set` at any instance reaches every instance and the next playbook run. The
// document is {"ansible": {...}}; only the ansible section exists and only the keys below may be
// set. playbook_dir is shown but fixed by each daemon's --playbook-dir: it is the root that
// playbook names are confined to, so a remote client cannot point it elsewhere.
//
// Extra-vars have two layers here: operator_extra_variables is the daemon's own --extra-vars
// (shown, never replicated, fixed like playbook_dir; ansible templates its values), and
// extra_variables is the replicated layer that `config set` writes (client input: reserved
// names refused, values passed so that ansible does not template them). A run sees the
// replicated layer over the operator's, key by key.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "base/status.h"

namespace clustermgr::mgr {

// The largest --ansible-forks (and ansible.forks): beyond it a run's forks exhaust the host.
inline constexpr int kMaxAnsibleForks = 1000;

struct AnsibleConfig {
  std::string playbook_dir;
  std::string configure_playbook;
  std::string cleanup_playbook;
  std::string upgrade_playbook;
  std::string user;
  std::string private_key;
  int forks = 0;  // ansible-playbook --forks; 0: Ansible's default
  nlohmann::json operator_extra_variables = nlohmann::json::object();  // --extra-vars
  nlohmann::json extra_variables = nlohmann::json::object();           // replicated (clients)
};

// Keys of the replicated config section (values are JSON text).
inline constexpr const char* kConfigKeys[] = {
    "configure_playbook", "cleanup_playbook", "upgrade_playbook", "user", "private_key", "forks",
    "extra_variables"};

// `defaults` (the daemon's options: AnsibleDefaultsOf in mgr/options.h; extra_variables empty),
// overridden by the replicated section (`replicated`: key -> JSON text). Values that do not
// decode are ignored (they were validated when set).
AnsibleConfig EffectiveConfig(const AnsibleConfig& defaults,
                              const std::map<std::string, std::string>& replicated);
// {"ansible": {...}} with every key, as `config get` shows it.
nlohmann::json ToJson(const AnsibleConfig& config);
// Largest `config set` document accepted.
inline constexpr size_t kMaxConfigSetBytes = 256 * 1024;

// Validates a `config set` document and returns the replicated section it stands for (every key
// given; absent keys fall back to `defaults`). kInvalidArgument with one line: a
// document over kMaxConfigSetBytes, not an object, another section, an unknown key, a wrong
// type, a playbook name outside the playbook dir, a string with control characters, forks not
// an integer from 0 to kMaxAnsibleForks,
// extra_variables beyond the extra-vars limits or setting a reserved name not in
// `allowed_vars` (mgr/ansible/extra_vars.h, message prefixed with `ansible.extra_variables: `), an
// operator_extra_variables other than the daemon's own. Values in messages are quoted with
// QuoteForMessage.
Result<std::map<std::string, std::string>> ParseConfigSet(
    const std::string& text, const AnsibleConfig& defaults,
    const std::set<std::string>& allowed_vars = {});

}  // namespace clustermgr::mgr
