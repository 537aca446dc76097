#include "mgr/ansible/ansible_config.h"

#include "mgr/ansible/ansible_inventory.h"
#include "mgr/ansible/extra_vars.h"

namespace clustermgr::mgr {
namespace {

using nlohmann::json;

Status Bad(std::string text) { return Status(Code::kInvalidArgument, std::move(text)); }

bool IsPlaybookKey(const std::string& key) { return key.size() > 9 && key.ends_with("_playbook"); }

// A playbook is named by a relative path inside the playbook dir: no "..", no absolute path.
bool SafePlaybookName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name[0] == '/') return false;
  if (name.find("..") != std::string::npos) return false;
  return name.find_first_of("\n\r\t\"'\\") == std::string::npos;
}

bool HasControlCharacter(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

AnsibleConfig EffectiveConfig(const AnsibleConfig& defaults,
                              const std::map<std::string, std::string>& replicated) {
  AnsibleConfig c = defaults;
  for (const auto& [key, text] : replicated) {
    json value = json::parse(text, nullptr, false);
    if (value.is_discarded()) continue;
    if (key == "extra_variables" && value.is_object()) c.extra_variables = value;
    if (key == "forks" && value.is_number_integer()) c.forks = value.get<int>();
    if (!value.is_string()) continue;
    const std::string s = value.get<std::string>();
    if (key == "configure_playbook") c.configure_playbook = s;
    if (key == "cleanup_playbook") c.cleanup_playbook = s;
    if (key == "upgrade_playbook") c.upgrade_playbook = s;
    if (key == "user") c.user = s;
    if (key == "private_key") c.private_key = s;
  }
  return c;
}

json ToJson(const AnsibleConfig& c) {
  return json{{"ansible",
               {{"playbook_dir", c.playbook_dir},
                {"configure_playbook", c.configure_playbook},
                {"cleanup_playbook", c.cleanup_playbook},
                {"upgrade_playbook", c.upgrade_playbook},
                {"user", c.user},
                {"private_key", c.private_key},
                {"forks", c.forks},
                {"operator_extra_variables", c.operator_extra_variables},
                {"extra_variables", c.extra_variables}}}};
}

Result<std::map<std::string, std::string>> ParseConfigSet(
    const std::string& text, const AnsibleConfig& defaults,
    const std::set<std::string>& allowed_vars) {
  const std::string& playbook_dir = defaults.playbook_dir;
  if (text.size() > kMaxConfigSetBytes) {
    return Bad("the configuration is too large: " + std::to_string(text.size()) +
               " bytes, the limit is " + std::to_string(kMaxConfigSetBytes) + " bytes");
  }
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Bad("the configuration must be a JSON object like {\"ansible\": {...}}");
  }
  for (const auto& [section, value] : doc.items()) {
    if (section != "ansible") {
      return Bad("only the \"ansible\" section of the configuration can be changed, not " +
                 QuoteForMessage(section));
    }
  }
  if (!doc.contains("ansible") || !doc["ansible"].is_object()) {
    return Bad("the configuration needs an \"ansible\" object");
  }
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : doc["ansible"].items()) {
    if (key == "playbook_dir") {
      if (!value.is_string() || value.get<std::string>() != playbook_dir) {
        return Bad(
            "ansible.playbook_dir is set by each daemon's --playbook-dir and cannot be "
            "changed at run time");
      }
      continue;
    }
    if (key == "operator_extra_variables") {
      if (value != defaults.operator_extra_variables) {
        return Bad(
            "ansible.operator_extra_variables are each daemon's --extra-vars and cannot be "
            "changed at run time (set extra_variables)");
      }
      continue;
    }
    bool known = false;
    for (const char* k : kConfigKeys) known |= key == k;
    if (!known) return Bad("unknown ansible configuration key " + QuoteForMessage(key));
    if (key == "extra_variables") {
      if (!value.is_object()) return Bad("ansible.extra_variables must be a JSON object");
      // The same limits as every other extra-vars layer; also keeps a hostile depth away from
      // the recursive dump() below.
      if (std::string error = CheckExtraVars(value); !error.empty()) {
        return Bad("ansible.extra_variables: " + error);
      }
      if (std::string error = CheckReservedExtraVars(value, allowed_vars); !error.empty()) {
        return Bad("ansible.extra_variables: " + error);
      }
    } else if (key == "forks") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
          value.get<int64_t>() > kMaxAnsibleForks) {
        return Bad("ansible.forks must be an integer from 0 to " +
                   std::to_string(kMaxAnsibleForks) + " (0: Ansible's default), not " +
                   QuoteForMessage(value.dump()));
      }
    } else if (!value.is_string()) {
      return Bad("ansible." + key + " must be a string");
    } else if (IsPlaybookKey(key) && !SafePlaybookName(value.get<std::string>())) {
      return Bad("ansible." + key + " must name a file inside the playbook dir: " +
                 QuoteForMessage(value.get<std::string>()));
    } else if (HasControlCharacter(value.get<std::string>())) {
      // user and private_key become ansible-playbook arguments and log text: one line each.
      return Bad("ansible." + key + " must not contain control characters: " +
                 QuoteForMessage(value.get<std::string>()));
    }
    out.emplace(key, value.dump());
  }
  return out;
}

}  // namespace clustermgr::mgr
