// Small helpers of a playbook run's error lines, beside the base ones it re-exports (Quote,
// ErrnoText, Fd).
#pragma once

#include <string>
#include <string_view>

#include "base/errno_text.h"
#include "base/fd.h"
#include "base/quote.h"

namespace clustermgr::mgr::run {

// Whether `s` holds a byte below 0x20 or DEL.
bool HasControlChars(std::string_view s);

}  // namespace clustermgr::mgr::run
