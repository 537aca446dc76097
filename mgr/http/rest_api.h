// The predecessor's REST API (clusterm) in clustermgr terms: decoding its request body, and
// encoding clustermgr's answers in its JSON shapes. Pure functions; the gateway (gateway.h)
// does the HTTP and the event loop the work. docs/http-api.md describes the API.
//
// Thread-safety: none needed (no state).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/rpc_types.h"

namespace clustermgr::mgr::http {

// Largest request body the gateway reads (bigger ones are answered 413 unread).
inline constexpr std::size_t kMaxBodyBytes = std::size_t{1} << 20;

struct MonitorNode {
  std::string label;
  std::string serial;
  std::string addr;
};

struct MonitorEventBody {
  std::string name;  // "Discovered" or "Disappeared", any case
  std::vector<MonitorNode> nodes;
};

// The body of every POST ("APIRequest"). Absent and null fields are empty.
struct ApiRequest {
  std::vector<std::string> nodes;
  std::vector<std::string> addrs;
  std::string host_group;
  std::string extra_vars;  // a JSON object encoded as a string
  std::string job;
  std::optional<MonitorEventBody> monitor_event;
  nlohmann::json config;  // null when absent
};

// Decodes a POST body. An empty body is an empty request. Field names match case-insensitively
// (as the predecessor's decoder did); unknown fields are ignored. Errors (kInvalidArgument, one
// line): not JSON, not an object, a field of the wrong type.
Result<ApiRequest> ParseApiRequest(std::string_view body);

// The predecessor's extra_vars rule: blank (whitespace only) means "{}".
std::string BlankExtraVarsAsEmptyObject(const std::string& extra_vars);

// "active" and "last" are the job labels the API knows.
bool IsJobLabel(const std::string& label);
// `Invalid or empty job label specified: "<label>"`.
std::string BadJobLabelText(const std::string& label);

// Node: {"monitoring_state": {...}, "inventory_state": {...}, "configuration_state": {...}}.
nlohmann::json NodeJson(const net::NodeInfo& node);
// {"<name>": <node>, ...} ({} when there are none).
nlohmann::json NodesJson(const net::NodeList& nodes);
// The same document as NodesJson(nodes).dump(), written directly: several times faster for the
// thousands of nodes GET /info/nodes may return. A byte that starts no UTF-8 sequence is
// written as U+FFFD (Serf tags are not checked for UTF-8).
std::string NodesJsonText(const net::NodeList& nodes);
// Job: {"desc", "task", "status", "error", "logs"}.
nlohmann::json JobJson(const net::JobDetail& job);
// {"extra_vars": <globals>} from the globals' JSON text.
nlohmann::json GlobalsJson(const std::string& globals_text);

// The parts of the predecessor's configuration that exist outside its "ansible" section: shown
// by GET /config, and fixed (a POST that changes them is refused). They are set at start.
struct FixedConfig {
  std::string serf_addr;       // --serf-rpc
  bool serf_auth_key = false;  // a --serf-auth-key is set (shown redacted, never in clear)
  std::string manager_addr;    // --http-bind
};
// The text a redacted Serf auth key shows as.
inline constexpr const char* kRedactedKey = "(redacted)";

// GET /config: clustermgr's config document ({"ansible": {...}}, as `config get` returns it) in
// the predecessor's shape ({"serf", "inventory", "ansible", "manager"}; ansible.extra_variables
// a JSON string). Errors: kInternal when `ansible_text` is not such a document.
Result<nlohmann::json> LegacyConfigJson(const std::string& ansible_text, const FixedConfig& fixed);

// POST /config: the predecessor's posted configuration as a `config set` document. Missing keys
// are empty, as the predecessor read them. Errors (kInvalidArgument, the predecessor's texts):
// null -> `nil value specified for clusterm configuration`; a serf, inventory or manager section
// that differs from the current one -> `"<section>" configuration can't be changed. Only changes
// to ansible configuration are allowed.`; extra_variables that is not a JSON object in a string.
Result<std::string> ConfigSetFromLegacy(const nlohmann::json& posted, const FixedConfig& fixed);

// The path as Go's path.Clean makes it, keeping a trailing '/' (the predecessor's router
// redirects a request whose path differs from this).
std::string CleanPath(std::string_view path);

}  // namespace clustermgr::mgr::http
