#include "mgr/fencing/mode.h"

namespace clustermgr::mgr::fencing {

std::optional<Mode> ParseMode(std::string_view text) {
  if (text == "require") return Mode::kRequire;
  if (text == "warn") return Mode::kWarn;
  if (text == "off") return Mode::kOff;
  return std::nullopt;
}

std::string_view ToString(Mode mode) {
  switch (mode) {
    case Mode::kRequire:
      return "require";
    case Mode::kWarn:
      return "warn";
    case Mode::kOff:
      return "off";
  }
  return "warn";
}

}  // namespace clustermgr::mgr::fencing
