#include "base/status.h"

namespace clustermgr {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kNotFound:
      return "not found";
    case Code::kFailedPrecondition:
      return "failed precondition";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kCorruption:
      return "corruption";
    case Code::kIoError:
      return "I/O error";
    case Code::kOutcomeUnknown:
      return "outcome unknown";
    case Code::kInternal:
      return "internal";
    case Code::kUnimplemented:
      return "unimplemented";
    case Code::kPermissionDenied:
      return "permission denied";
    case Code::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace clustermgr
