#include "base/errno_text.h"

#include <cstring>

namespace clustermgr {

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r: thread-safe, returns the text (maybe a static string, maybe buf).
  return ::strerror_r(err, buf, sizeof buf);
}

}  // namespace clustermgr
