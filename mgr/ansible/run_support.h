// Small helpers of a playbook run: error-line text. (Descriptors: base/fd.h; errno text:
// base/errno_text.h.)
#pragma once

#include <string>
#include <string_view>

#include "base/errno_text.h"
#include "base/fd.h"

namespace clustermgr::mgr::run {

// `value` as a JSON string (invalid UTF-8 replaced), for names in error lines.
std::string Quote(std::string_view value);
// Whether `s` holds a byte below 0x20 or DEL.
bool HasControlChars(std::string_view s);

}  // namespace clustermgr::mgr::run
