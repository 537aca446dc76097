#include "mgr/ansible/run_support.h"

#include <cstring>
#include <nlohmann/json.hpp>

namespace clustermgr::mgr::run {

std::string Quote(std::string_view value) {
  return nlohmann::json(std::string(value))
      .dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

bool HasControlChars(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

}  // namespace clustermgr::mgr::run
