// Status and Result: how every layer reports an expected failure.
//
// A Status is ok or carries a code and a one-line message meant for an operator. Broken
// invariants are not Statuses: they abort. Result<T> is a value or a non-ok Status.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace clustermgr {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong; nothing changed
  kNotFound,            // the named thing does not exist
  kFailedPrecondition,  // refused by the current state (lifecycle rules, an active job)
  kUnavailable,         // cannot be served now (no peer, no token holder); may succeed later
  kCorruption,          // stored or received bytes do not decode or break an invariant
  kIoError,             // the OS or LevelDB failed
  kOutcomeUnknown,      // the request may or may not have taken effect (a timeout)
  kInternal,            // a bug or an unexpected library error
  kUnimplemented,       // the operation is unknown to the other side
  kPermissionDenied,    // the caller's credentials or role do not allow this
  kCancelled,           // abandoned: the client or server is shutting down
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<CodeName>: <message>" for logs; operators see message() alone.
  std::string ToString() const;

  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "a Result needs a value or a failed Status");
  }
  Result(Code code, std::string message) : Result(Status(code, std::move(message))) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  Code code() const { return status().code(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace clustermgr
