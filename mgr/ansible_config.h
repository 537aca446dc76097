// The runtime Ansible configuration (`config get` / `config set`).
//
// Daemon options give the defaults; the replicated `config` section overrides them key by key,
// so a `config set` at any instance reaches every instance and the next playbook run. The
// document is {"ansible": {...}}; only the ansible section exists and only the keys below may be
// set. playbook_dir is shown but fixed by each daemon's --playbook-dir: it is the root that
// playbook names are confined to, so a remote client cannot point it elsewhere.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "crdt/status.h"
#include "mgr/options.h"

namespace clustermgr::mgr {

struct AnsibleConfig {
  std::string playbook_dir;
  std::string configure_playbook;
  std::string cleanup_playbook;
  std::string upgrade_playbook;
  std::string user;
  std::string private_key;
  nlohmann::json extra_variables = nlohmann::json::object();
};

// Keys of the replicated config section (values are JSON text).
inline constexpr const char* kConfigKeys[] = {"configure_playbook", "cleanup_playbook",
                                              "upgrade_playbook",   "user",
                                              "private_key",        "extra_variables"};

// Options, overridden by the replicated section (`replicated`: key -> JSON text). Values that do
// not decode are ignored (they were validated when set).
AnsibleConfig EffectiveConfig(const DaemonOptions& options,
                              const std::map<std::string, std::string>& replicated);
// {"ansible": {...}} with every key, as `config get` shows it.
nlohmann::json ToJson(const AnsibleConfig& config);
// Largest `config set` document accepted.
inline constexpr size_t kMaxConfigSetBytes = 256 * 1024;

// Validates a `config set` document and returns the replicated section it stands for (every key
// given; absent keys fall back to the daemon's options). kInvalidArgument with one line: a
// document over kMaxConfigSetBytes, not an object, another section, an unknown key, a wrong
// type, a playbook name outside the playbook dir, a string with control characters, or
// extra_variables beyond the extra-vars limits (mgr/extra_vars.h, message prefixed with
// `ansible.extra_variables: `). Values in messages are quoted with QuoteForMessage.
Result<std::map<std::string, std::string>> ParseConfigSet(const std::string& text,
                                                          const std::string& playbook_dir);

}  // namespace clustermgr::mgr
