#include "mgr/ansible/run_support.h"

#include <cstring>

namespace clustermgr::mgr::run {

bool HasControlChars(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

}  // namespace clustermgr::mgr::run
