// Result types of the Serf RPC code (net/serf_*). Local to the Serf client: the project has no
// shared status type yet, and these never leave net/ as exceptions.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace clustermgr::net {

// Why a Serf call failed. Every public call of SerfClient documents which of these it returns.
enum class SerfErrc {
  kOk = 0,
  kInvalidArgument,   // the caller's input was refused before anything was sent
  kNotConnected,      // no usable connection to the agent right now (the client keeps retrying)
  kConnectFailed,     // TCP connect to the agent failed or timed out
  kHandshakeRefused,  // the agent refused the IPC handshake (e.g. "Unsupported IPC version")
  kAuthFailed,        // bad or missing RPC auth key
  kTimeout,           // no reply within the request timeout
  kProtocol,          // malformed, oversized or unexpected msgpack from the peer
  kRemote,            // the agent answered with an error string
  kConnectionLost,    // the connection dropped before the reply arrived
  kClosed,            // the client is shutting down
};

// Name of a code, for logs and test messages ("timeout", "protocol", ...).
const char* SerfErrcName(SerfErrc code);

// A status: ok, or a code with a human-readable message that already says what failed
// ("serf rpc auth failed: Invalid authentication token").
class [[nodiscard]] SerfStatus {
 public:
  SerfStatus() = default;
  SerfStatus(SerfErrc code, std::string message) : code_(code), message_(std::move(message)) {}
  static SerfStatus Ok() { return {}; }

  bool ok() const { return code_ == SerfErrc::kOk; }
  SerfErrc code() const { return code_; }
  const std::string& message() const { return message_; }
  // "ok" or the message.
  std::string ToString() const { return ok() ? std::string("ok") : message_; }

 private:
  SerfErrc code_ = SerfErrc::kOk;
  std::string message_;
};

// A value or a non-ok status.
template <typename T>
class [[nodiscard]] SerfResult {
 public:
  SerfResult(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  SerfResult(SerfStatus status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return status_.ok(); }
  const SerfStatus& status() const { return status_; }
  // Only valid when ok().
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  SerfStatus status_;
  std::optional<T> value_;
};

}  // namespace clustermgr::net
