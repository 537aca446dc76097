#include "mgr/http/rest_api.h"

#include <algorithm>
#include <cctype>

namespace clustermgr::mgr::http {
namespace {

using nlohmann::json;

Status Bad(std::string text) { return Status(Code::kInvalidArgument, std::move(text)); }

bool SameKey(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The member of `object` named `key`: an exact match first, else one differing in case only.
const json* Member(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto exact = object.find(std::string(key));
  if (exact != object.end()) return &*exact;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (SameKey(it.key(), key)) return &*it;
  }
  return nullptr;
}

Status ReadString(const json& object, std::string_view key, std::string* out) {
  const json* v = Member(object, key);
  if (!v || v->is_null()) return Status::Ok();
  if (!v->is_string()) return Bad("request field \"" + std::string(key) + "\" must be a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

Status ReadStrings(const json& object, std::string_view key, std::vector<std::string>* out) {
  const json* v = Member(object, key);
  if (!v || v->is_null()) return Status::Ok();
  if (!v->is_array()) {
    return Bad("request field \"" + std::string(key) + "\" must be a list of strings");
  }
  for (const json& item : *v) {
    if (!item.is_string()) {
      return Bad("request field \"" + std::string(key) + "\" must be a list of strings");
    }
    out->push_back(item.get<std::string>());
  }
  return Status::Ok();
}

std::string Tag(const net::NodeInfo& node, const std::string& key) {
  for (const auto& [k, v] : node.monitoring) {
    if (k == key) return v;
  }
  return "";
}

std::string JoinSpaced(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : " ") + s;
  return out;
}

// The predecessor's event description, from what clustermgr records of a job.
std::string Describe(const net::JobInfo& job) {
  const std::string list = "[" + JoinSpaced(job.nodes) + "]";
  if (job.desc == "commission" || job.desc == "decommission" || job.desc == "update") {
    return job.desc + "Event: nodes:" + list;
  }
  if (job.desc == "discover") return "discoverEvent: addr: " + list;
  return job.desc;
}

// Compares one posted section of the predecessor's config with the current one; missing keys
// are the zero value.
bool SerfSame(const json* posted, const FixedConfig& fixed) {
  std::string addr, key;
  int64_t timeout = 0;
  if (posted && posted->is_object()) {
    const json* a = Member(*posted, "Addr");
    const json* k = Member(*posted, "AuthKey");
    const json* t = Member(*posted, "Timeout");
    if (a && !a->is_null()) {
      if (!a->is_string()) return false;
      addr = a->get<std::string>();
    }
    if (k && !k->is_null()) {
      if (!k->is_string()) return false;
      key = k->get<std::string>();
    }
    if (t && !t->is_null()) {
      if (!t->is_number_integer()) return false;
      timeout = t->get<int64_t>();
    }
  } else if (posted && !posted->is_null()) {
    return false;
  }
  const bool key_same = fixed.serf_auth_key ? key == kRedactedKey : key.empty();
  return addr == fixed.serf_addr && key_same && timeout == 0;
}

bool InventorySame(const json* posted) {
  if (!posted || posted->is_null()) return true;
  if (!posted->is_object()) return false;
  for (const char* backend : {"collins", "boltdb"}) {
    const json* b = Member(*posted, backend);
    if (b && !b->is_null()) return false;  // clustermgr has neither: the current one is nil
  }
  return true;
}

bool ManagerSame(const json* posted, const FixedConfig& fixed) {
  std::string addr;
  if (posted && posted->is_object()) {
    const json* a = Member(*posted, "addr");
    if (a && !a->is_null()) {
      if (!a->is_string()) return false;
      addr = a->get<std::string>();
    }
  } else if (posted && !posted->is_null()) {
    return false;
  }
  return addr == fixed.manager_addr;
}

std::string FixedSectionText(const char* section) {
  return std::string("\"") + section +
         "\" configuration can't be changed. Only changes to ansible configuration are allowed.";
}

}  // namespace

Result<ApiRequest> ParseApiRequest(std::string_view body) {
  ApiRequest out;
  if (body.empty()) return out;
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return Bad("the request body is not valid JSON");
  if (doc.is_null()) return out;
  if (!doc.is_object()) return Bad("the request body must be a JSON object");
  for (Status s :
       {ReadStrings(doc, "nodes", &out.nodes), ReadStrings(doc, "addrs", &out.addrs),
        ReadString(doc, "host_group", &out.host_group),
        ReadString(doc, "extra_vars", &out.extra_vars), ReadString(doc, "job", &out.job)}) {
    if (!s.ok()) return s;
  }
  if (const json* e = Member(doc, "monitor_event"); e && !e->is_null()) {
    if (!e->is_object()) return Bad("request field \"monitor_event\" must be an object");
    MonitorEventBody event;
    if (Status s = ReadString(*e, "name", &event.name); !s.ok()) return s;
    if (const json* nodes = Member(*e, "nodes"); nodes && !nodes->is_null()) {
      if (!nodes->is_array()) return Bad("request field \"monitor_event.nodes\" must be a list");
      for (const json& n : *nodes) {
        if (!n.is_object()) {
          return Bad("request field \"monitor_event.nodes\" must be a list of objects");
        }
        MonitorNode node;
        for (Status s : {ReadString(n, "label", &node.label), ReadString(n, "serial", &node.serial),
                         ReadString(n, "addr", &node.addr)}) {
          if (!s.ok()) return s;
        }
        event.nodes.push_back(std::move(node));
      }
    }
    out.monitor_event = std::move(event);
  }
  if (const json* c = Member(doc, "config"); c && !c->is_null()) {
    if (!c->is_object()) return Bad("request field \"config\" must be an object");
    out.config = *c;
  }
  return out;
}

std::string BlankExtraVarsAsEmptyObject(const std::string& extra_vars) {
  const bool blank = std::all_of(extra_vars.begin(), extra_vars.end(),
                                 [](unsigned char c) { return std::isspace(c); });
  return blank ? "{}" : extra_vars;
}

bool IsJobLabel(const std::string& label) { return label == "active" || label == "last"; }

std::string BadJobLabelText(const std::string& label) {
  return "Invalid or empty job label specified: " + json(label).dump();
}

json NodeJson(const net::NodeInfo& node) {
  json monitoring = {{"label", Tag(node, "NodeLabel")},
                     {"serial_number", Tag(node, "NodeSerial")},
                     {"management_address", node.addr}};
  json inventory = {{"name", node.name},
                    {"status", std::string(net::ToString(node.status))},
                    {"prev_status", std::string(net::ToString(node.prev_status))},
                    {"state", std::string(net::ToString(node.state))},
                    {"prev_state", std::string(net::ToString(node.prev_state))}};
  json configuration = {{"inventory_name", node.name},
                        {"host_group", node.host_groups.empty() ? "" : node.host_groups.front()},
                        {"ssh_address", node.addr},
                        {"inventory_vars", {{"node_name", node.name}, {"node_addr", node.addr}}}};
  return {{"monitoring_state", std::move(monitoring)},
          {"inventory_state", std::move(inventory)},
          {"configuration_state", std::move(configuration)}};
}

json NodesJson(const net::NodeList& nodes) {
  json out = json::object();
  for (const net::NodeInfo& node : nodes.nodes) out[node.name] = NodeJson(node);
  return out;
}

json JobJson(const net::JobDetail& job) {
  return {{"desc", Describe(job.job)},
          {"task", job.job.id},
          {"status", std::string(net::ToString(job.job.status))},
          {"error", job.job.error},
          {"logs", job.log_lines}};
}

json GlobalsJson(const std::string& globals_text) {
  json globals = json::parse(globals_text, nullptr, false);
  if (!globals.is_object()) globals = json::object();
  return {{"extra_vars", std::move(globals)}};
}

Result<json> LegacyConfigJson(const std::string& ansible_text, const FixedConfig& fixed) {
  json doc = json::parse(ansible_text, nullptr, false);
  if (!doc.is_object() || !doc.contains("ansible") || !doc["ansible"].is_object()) {
    return Status(Code::kInternal, "the configuration document has no \"ansible\" section");
  }
  const json& a = doc["ansible"];
  auto text = [&](const char* key) {
    return a.contains(key) && a[key].is_string() ? a[key].get<std::string>() : std::string();
  };
  json extra = a.contains("extra_variables") ? a["extra_variables"] : json::object();
  return json{{"serf",
               {{"Addr", fixed.serf_addr},
                {"AuthKey", fixed.serf_auth_key ? kRedactedKey : ""},
                {"Timeout", 0}}},
              {"inventory", json::object()},
              {"ansible",
               {{"configure_playbook", text("configure_playbook")},
                {"cleanup_playbook", text("cleanup_playbook")},
                {"upgrade_playbook", text("upgrade_playbook")},
                {"playbook_location", text("playbook_dir")},
                {"extra_variables", extra.dump()},
                {"user", text("user")},
                {"priv_key_file", text("private_key")}}},
              {"manager", {{"addr", fixed.manager_addr}}}};
}

Result<std::string> ConfigSetFromLegacy(const json& posted, const FixedConfig& fixed) {
  if (posted.is_null()) return Bad("nil value specified for clusterm configuration");
  if (!posted.is_object()) return Bad("request field \"config\" must be an object");
  if (!SerfSame(Member(posted, "serf"), fixed)) return Bad(FixedSectionText("serf"));
  if (!InventorySame(Member(posted, "inventory"))) return Bad(FixedSectionText("inventory"));
  if (!ManagerSame(Member(posted, "manager"), fixed)) return Bad(FixedSectionText("manager"));
  const json* a = Member(posted, "ansible");
  if (a && !a->is_null() && !a->is_object()) {
    return Bad("request field \"config.ansible\" must be an object");
  }
  const json empty = json::object();
  const json& ansible = a && a->is_object() ? *a : empty;
  json out = json::object();
  // The predecessor's key -> clustermgr's.
  static const std::pair<const char*, const char*> kKeys[] = {
      {"configure_playbook", "configure_playbook"},
      {"cleanup_playbook", "cleanup_playbook"},
      {"upgrade_playbook", "upgrade_playbook"},
      {"playbook_location", "playbook_dir"},
      {"user", "user"},
      {"priv_key_file", "private_key"}};
  for (const auto& [theirs, ours] : kKeys) {
    std::string value;
    if (Status s = ReadString(ansible, theirs, &value); !s.ok()) {
      return Bad("config.ansible." + std::string(theirs) + " must be a string");
    }
    out[ours] = value;
  }
  std::string extra;
  if (Status s = ReadString(ansible, "extra_variables", &extra); !s.ok()) {
    return Bad("config.ansible.extra_variables must be a JSON object encoded as a string");
  }
  json vars = json::parse(BlankExtraVarsAsEmptyObject(extra), nullptr, false);
  if (!vars.is_object()) {
    return Bad("config.ansible.extra_variables must be a JSON object encoded as a string");
  }
  out["extra_variables"] = std::move(vars);
  return json{{"ansible", std::move(out)}}.dump();
}

std::string CleanPath(std::string_view p) {
  if (p.empty()) return "/";
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view part = p.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const std::string& part : parts) out += "/" + part;
  if (out.empty()) out = "/";
  if (p.back() == '/' && out != "/") out += '/';
  return out;
}

}  // namespace clustermgr::mgr::http
