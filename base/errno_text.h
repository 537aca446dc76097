// The operator-facing text of an errno value ("No space left on device"), for messages that say
// what the OS refused.
#pragma once

#include <string>

namespace clustermgr {

std::string ErrnoText(int err);

}  // namespace clustermgr
