// Ansible extra-vars: parsing user-supplied JSON with limits, and the layered merge that decides
// which value a playbook sees (docs/operations.md).
//
// Extra-vars arrive from clients (commission/update/discover `-e`, `global set`), from the
// daemon's `--extra-vars` option and from the replicated config. They are hostile input: they
// are bounded in size and nesting, and their top-level keys (which become Ansible variable names
// and CRDT keys) are restricted to a safe character set.
//
// Thread-safety: every function here is pure and may be called from any thread.
// Errors are reported in the returned value; nothing here throws.

#ifndef CLUSTERMGR_MGR_EXTRA_VARS_H_
#define CLUSTERMGR_MGR_EXTRA_VARS_H_

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace clustermgr::mgr {

struct ExtraVarsLimits {
  // Total size of the JSON text, in bytes.
  std::size_t max_bytes = 64 * 1024;
  // Nesting of objects and arrays; the top-level object counts as 1, so `{"a":{"b":[1]}}` is 3.
  int max_depth = 32;
  // Length of a top-level key, in bytes.
  std::size_t max_key_bytes = 128;
};

// Result of ParseExtraVars. `vars` is always a JSON object (empty on error).
struct [[nodiscard]] ExtraVarsParse {
  nlohmann::json vars = nlohmann::json::object();
  std::string error;  // empty on success; one line, valid UTF-8
  bool ok() const { return error.empty(); }
};

// Parses a user-supplied extra-vars string. The empty string means `{}` (clusterm does the
// same); anything else, including whitespace only, must be one JSON object.
//
// Errors, checked in this order (texts are exact, they reach users and tests):
//   * text longer than limits.max_bytes:
//       `"extra_vars" is too large: <n> bytes, the limit is <max> bytes`
//   * not JSON (detail is the parser's message without its exception-id prefix), or JSON but not
//     an object (detail is `not a JSON object`):
//       `"extra_vars" should be a valid json. Error: <detail>`
//   * nested deeper than limits.max_depth:
//       `"extra_vars" is nested too deeply, the limit is <max> levels`
//   * a top-level key that fails IsValidExtraVarKey (the key is shown JSON-quoted, shortened):
//       `"extra_vars" has an invalid key <key>: keys are 1 to <max> letters, digits, '_', '-', '.'`
// Duplicate keys: the last one wins (as in most JSON parsers).
ExtraVarsParse ParseExtraVars(std::string_view text, const ExtraVarsLimits& limits = {});

// Checks a value that is already JSON (e.g. decoded from replicated state) against the same
// rules as ParseExtraVars: object, depth, serialized size, top-level keys (depth before size, so
// a hostile depth never reaches the recursive serializer). Returns "" when valid, otherwise the
// same error texts as ParseExtraVars (size is that of the compact serialization).
std::string CheckExtraVars(const nlohmann::json& vars, const ExtraVarsLimits& limits = {});

// True for 1..max_key_bytes characters from [A-Za-z0-9_.-].
bool IsValidExtraVarKey(std::string_view key, std::size_t max_key_bytes = 128);

// ---- reserved names -------------------------------------------------------------------------
//
// Client extra-vars (commission / decommission / update / discover `-e`, `global set`, the
// `extra_variables` of `config set`) must not choose how ansible connects or what it executes on
// the manager host. A name is reserved when it
//   * starts with "ansible_" (any case): connection, host, port, user, password, ssh, become,
//     interpreter, shell and module settings are all ansible_* variables;
//   * is one of Ansible's magic variables (kAnsibleMagicVars), which a play reads as facts about
//     the inventory and the run;
//   * is set by clustermgr itself for every run (kManagerVars: clustermgr_job_id,
//     clustermgr_epoch), so that a playbook can trust them.
// The operator may allow named ansible_* or magic names for clients (--allow-extra-var NAME);
// the clustermgr_* names can never be allowed. The daemon's own --extra-vars may set anything.
inline constexpr const char* kManagerVars[] = {"clustermgr_epoch", "clustermgr_job_id"};
inline constexpr const char* kAnsibleMagicVars[] = {"group_names",
                                                    "groups",
                                                    "hostvars",
                                                    "inventory_dir",
                                                    "inventory_file",
                                                    "inventory_hostname",
                                                    "inventory_hostname_short",
                                                    "omit",
                                                    "play_hosts",
                                                    "playbook_dir",
                                                    "role_name",
                                                    "role_names",
                                                    "role_path",
                                                    "vars"};

// True when `name` is reserved (see above) and not in `allowed`. kManagerVars are reserved
// whatever `allowed` holds.
bool IsReservedExtraVar(std::string_view name, const std::set<std::string>& allowed = {});

// Checks the top-level keys of client extra-vars. "" when none is reserved; otherwise, for the
// first reserved key in key order, one line:
//   `"extra_vars" sets the reserved variable "ansible_connection": clients cannot choose how
//    ansible connects or runs (an operator may allow it with --allow-extra-var)`
// (the clustermgr_* names end `: it is set by clustermgr for every run`).
std::string CheckReservedExtraVars(const nlohmann::json& vars,
                                   const std::set<std::string>& allowed = {});

// Removes reserved keys (as IsReservedExtraVar judges them) from an object; returns their names.
// For values that come back from the replicated state, which may predate these rules.
std::vector<std::string> DropReservedExtraVars(nlohmann::json* vars,
                                               const std::set<std::string>& allowed = {});

// ---- values ansible must not template -------------------------------------------------------

// A YAML document equivalent to the JSON object `vars` in which every string (values, list
// elements and nested keys) carries Ansible's `!unsafe` tag, so ansible-playbook never evaluates
// a Jinja expression in it: `{{ lookup('pipe', 'id') }}` stays that text. Numbers, booleans and
// null keep their types. The text is ASCII (other characters are \u / \U escapes), so no
// character can upset the YAML reader. `vars` must be an object nested at most
// ExtraVarsLimits::max_depth levels (checked before; the writer recurses).
std::string ToUnsafeYaml(const nlohmann::json& vars);

// Applies one higher-priority layer onto `merged`, by top-level key:
//   * a key whose value in `higher` is JSON null does not override (and does not delete) a value
//     already in `merged`; if `merged` has no such key, the null is kept, so that the key is
//     still defined for the playbook;
//   * any other value (including "", false, 0, [] and {}) replaces the lower value whole; nested
//     objects are not merged.
// A `merged` that is not an object is first replaced by `{}`; a `higher` that is not an object
// contributes nothing. Keys come out sorted (nlohmann::json objects are ordered maps), so the
// serialization is deterministic.
void MergeExtraVarsLayer(nlohmann::json& merged, const nlohmann::json& higher);

// The daemon's merge, lowest priority first: config `extra_variables` < globals < the node's
// remembered vars < this request. Each argument is a JSON object (or null, meaning empty).
nlohmann::json MergeExtraVars(const nlohmann::json& config, const nlohmann::json& globals,
                              const nlohmann::json& node, const nlohmann::json& request);

// Separates the operator's layer from the clients' before a run: `client` is the merge of every
// client layer (config `extra_variables` < globals < node < request), `operator_vars` the
// daemon's --extra-vars. Returns the operator's values that stay in effect (keys the clients do
// not set, or set to null) and removes from `client` the nulls those keys keep. What remains in
// `client` is written unsafe (ToUnsafeYaml); the returned object is passed as is.
nlohmann::json SeparateOperatorVars(const nlohmann::json& operator_vars, nlohmann::json* client);

// The vars of one playbook run over several nodes whose merged vars may differ (each node's
// remembered vars): `common` holds every key that all hosts have with the same value, and goes to
// --extra-vars; `per_host` holds, for each host, the keys whose value differs between hosts (or
// that some hosts lack), and goes to the inventory's host_vars. A key is never in both, so the
// higher precedence of --extra-vars cannot hide a host's own value.
// The clients' and the operator's values are split separately (they are written differently,
// see mgr/ansible/playbook_runner.h); a key is in at most one of the four for any host.
struct RunVars {
  nlohmann::json common = nlohmann::json::object();
  std::map<std::string, nlohmann::json> per_host;  // host -> object; hosts with nothing omitted
  nlohmann::json operator_common = nlohmann::json::object();
  std::map<std::string, nlohmann::json> operator_per_host;
};

// Splits each host's fully merged vars (objects) into RunVars. With one host (or none), every
// key is common.
RunVars SplitPerHost(const std::map<std::string, nlohmann::json>& merged_by_host);

// The vars of a run: `client_by_host` holds each host's merge of the client layers, `operator`
// the daemon's --extra-vars. SeparateOperatorVars per host, then SplitPerHost of each kind (the
// operator's into operator_common / operator_per_host). With no host (discover) the caller passes
// one entry under any name; everything is then common.
RunVars SplitRunVars(std::map<std::string, nlohmann::json> client_by_host,
                     const nlohmann::json& operator_vars);

}  // namespace clustermgr::mgr

#endif  // CLUSTERMGR_MGR_EXTRA_VARS_H_
