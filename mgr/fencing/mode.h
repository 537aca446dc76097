// --node-fencing: how strictly clustermgrd insists that playbooks apply the fencing role.
#pragma once

#include <optional>
#include <string_view>

namespace clustermgr::mgr::fencing {

enum class Mode {
  kRequire,  // a run whose playbook does not apply the role is refused before it starts
  kWarn,     // it runs, and the job log says it is unfenced
  kOff,      // nothing is checked
};

// "require" | "warn" | "off"; nullopt for anything else.
std::optional<Mode> ParseMode(std::string_view text);
std::string_view ToString(Mode mode);

}  // namespace clustermgr::mgr::fencing
