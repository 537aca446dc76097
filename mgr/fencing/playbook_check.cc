#include "mgr/fencing/playbook_check.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/quote.h"

namespace clustermgr::mgr::fencing {
namespace {

constexpr int kMaxImportDepth = 8;

bool IsFenceRoleName(const YAML::Node& node) {
  if (!node.IsScalar()) return false;
  const std::string& name = node.Scalar();
  if (name == kFenceRole) return true;
  const std::string suffix = "/" + std::string(kFenceRole);
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsModule(const std::string& key, std::string_view module) {
  return key == module || key == "ansible.builtin." + std::string(module) ||
         key == "ansible.legacy." + std::string(module);
}

// Whether the task is the role, unconditionally.
bool TaskAppliesRole(const YAML::Node& task) {
  if (!task.IsMap() || task["when"]) return false;
  for (const auto& kv : task) {
    const std::string key = kv.first.as<std::string>("");
    if (!IsModule(key, "import_role") && !IsModule(key, "include_role")) continue;
    const YAML::Node& args = kv.second;
    if (args.IsMap()) return IsFenceRoleName(args["name"]);
    if (args.IsScalar()) return args.Scalar() == "name=" + std::string(kFenceRole);
  }
  return false;
}

bool RoleEntryIsFence(const YAML::Node& entry) {
  if (entry.IsScalar()) return IsFenceRoleName(entry);
  if (!entry.IsMap() || entry["when"]) return false;
  if (entry["role"]) return IsFenceRoleName(entry["role"]);
  return IsFenceRoleName(entry["name"]);
}

std::string Describe(const YAML::Node& task) {
  if (task.IsMap() && task["name"] && task["name"].IsScalar()) return Quote(task["name"].Scalar());
  if (task.IsMap()) {
    for (const auto& kv : task) {
      const std::string key = kv.first.as<std::string>("");
      if (key != "when" && key != "vars" && key != "tags") return "a " + Quote(key) + " task";
    }
  }
  if (task.IsScalar()) return "role " + Quote(task.Scalar());
  return "an unnamed entry";
}

Status Load(const std::string& path, std::string_view name, YAML::Node* out) {
  std::ifstream in(path);
  if (!in) {
    return Status(Code::kIoError,
                  "cannot read playbook " + Quote(name) + ": " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    *out = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    return Status(Code::kInvalidArgument,
                  "playbook " + Quote(name) + " is not valid YAML: " + e.what());
  }
  return Status::Ok();
}

Status CheckFile(const std::string& path, std::string_view name, int depth) {
  if (depth > kMaxImportDepth) {
    return Status(Code::kInvalidArgument, "playbook " + Quote(name) +
                                              ": import_playbook nests deeper than " +
                                              std::to_string(kMaxImportDepth));
  }
  YAML::Node doc;
  if (Status s = Load(path, name, &doc); !s.ok()) return s;
  if (doc.IsNull()) return Status::Ok();  // an empty playbook does nothing
  if (!doc.IsSequence()) {
    return Status(Code::kInvalidArgument, "playbook " + Quote(name) + " is not a list of plays");
  }
  int index = 0;
  for (const YAML::Node& play : doc) {
    ++index;
    if (!play.IsMap()) {
      return Status(Code::kInvalidArgument, "playbook " + Quote(name) + ": play " +
                                                std::to_string(index) + " is not a mapping");
    }
    for (const char* key : {"import_playbook", "ansible.builtin.import_playbook"}) {
      if (!play[key]) continue;
      const std::string target = play[key].as<std::string>("");
      if (target.empty() || target.find("{{") != std::string::npos) {
        return Status(Code::kFailedPrecondition,
                      "playbook " + Quote(name) + ": cannot follow import_playbook " +
                          Quote(target) + " to check that it applies the " +
                          std::string(kFenceRole) + " role");
      }
      const std::filesystem::path next =
          std::filesystem::path(path).parent_path() / std::filesystem::path(target);
      if (Status s = CheckFile(next.string(), target, depth + 1); !s.ok()) return s;
    }
    if (play["import_playbook"] || play["ansible.builtin.import_playbook"]) continue;

    const std::string play_name = play["name"] && play["name"].IsScalar()
                                      ? Quote(play["name"].Scalar())
                                      : std::to_string(index);
    // The first entry that runs, in Ansible's order.
    std::string first;
    bool fenced = false;
    bool found = false;
    for (const char* section : {"pre_tasks", "roles", "tasks", "post_tasks"}) {
      const YAML::Node list = play[section];
      if (!list || !list.IsSequence() || list.size() == 0) continue;
      const YAML::Node entry = list[0];
      found = true;
      fenced = std::string(section) == "roles" ? RoleEntryIsFence(entry) : TaskAppliesRole(entry);
      first = Describe(entry);
      break;
    }
    if (!found || fenced) continue;
    return Status(Code::kFailedPrecondition,
                  "playbook " + Quote(name) + ": play " + play_name + " does not apply the " +
                      std::string(kFenceRole) + " role first (it starts with " + first +
                      "); put \"- ansible.builtin.import_role: {name: " + std::string(kFenceRole) +
                      "}\" first in its tasks, or the role first in " + "its roles");
  }
  return Status::Ok();
}

}  // namespace

Status CheckPlaybookFenced(const std::string& path, std::string_view name) {
  return CheckFile(path, name, 0);
}

}  // namespace clustermgr::mgr::fencing
