// The inside of SerfClient (net/serf_client.h), shared by its source files: the callers' side
// and the public calls (serf_client.cc), the reader thread's connection handling
// (serf_client_connection.cc), and the session: handshake, replies and member streams
// (serf_client_stream.cc). Not part of the net layer's interface.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/errno_text.h"
#include "base/event_fd.h"
#include "base/mutex.h"
#include "base/thread_annotations.h"
#include "net/serf_client.h"
#include "net/serf_codec.h"

namespace clustermgr::net {
namespace serf_client_detail {

using Clock = std::chrono::steady_clock;

// What follows a reply header: nothing, a membersResponse or a joinResponse.
enum class ReplyKind { kNone, kMembers, kJoin };

// Completion of one request, run exactly once on the reader thread. `body` is the reply body
// when the command has one and the reply carried it, else null.
using DoneFn = std::function<void(const Status&, const msgpack::object* body)>;

struct Request {
  std::string command;
  std::string body;  // encoded body, empty when the command has none
  ReplyKind reply = ReplyKind::kNone;
  DoneFn done;
  Clock::time_point deadline;
};

// Sent by callers to the reader thread.
struct Command {
  enum class Kind { kRequest, kSubscribe, kUnsubscribe };
  Kind kind = Kind::kRequest;
  Request request;  // kRequest; for kUnsubscribe only done and deadline are used
  SerfClient::SubscriptionId subscription = 0;
  SerfClient::MemberHandler handler;  // kSubscribe
};

// A request sent on the current connection and not yet answered.
struct Pending {
  std::string command;
  ReplyKind reply = ReplyKind::kNone;
  DoneFn done;  // null once the caller was told it timed out; the reply is still consumed
  Clock::time_point deadline;
  std::string error;  // the header's error, kept while its body is read
};

inline std::string Millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace serf_client_detail

struct SerfClient::Impl {
  using Clock = serf_client_detail::Clock;
  using Command = serf_client_detail::Command;
  using Pending = serf_client_detail::Pending;
  using ReplyKind = serf_client_detail::ReplyKind;
  using Request = serf_client_detail::Request;

  explicit Impl(SerfClientOptions o);
  ~Impl();

  // ---- shared between callers and the reader thread (guarded by mu) ----
  const SerfClientOptions options;
  mutable Mutex mu;
  std::condition_variable state_cv;
  std::deque<Command> queue GUARDED_BY(mu);
  bool stopping GUARDED_BY(mu) = false;
  bool connected GUARDED_BY(mu) = false;
  uint64_t attempts GUARDED_BY(mu) = 0;  // connection attempts that finished, either way
  Status last_error GUARDED_BY(mu) = Status(Code::kUnavailable, "serf rpc: not connected yet");
  std::atomic<uint64_t> next_subscription{1};
  const EventFd wake = EventFd::CreateOrDie();  // Enqueue() and stopping wake the reader
  std::thread thread;

  bool OnReaderThread() const { return std::this_thread::get_id() == thread.get_id(); }
  void Enqueue(Command command);
  template <typename T>
  Result<T> Call(const char* command, std::string body, ReplyKind reply,
                 std::function<Result<T>(const msgpack::object*)> decode);

  // ---- reader thread only ----
  struct Subscription {
    MemberHandler handler;
    uint64_t stream_seq = 0;  // 0 while not open on the current connection
    bool live = false;        // the resync was delivered; records go straight through
    std::vector<SerfMemberEvent> held;
  };
  std::map<SubscriptionId, Subscription> subscriptions;

  // The current connection.
  int fd = -1;
  bool ready = false;  // handshake and auth done
  std::unique_ptr<SerfStreamDecoder> decoder;
  std::string out;
  std::size_t out_off = 0;
  uint64_t last_seq = 0;
  std::map<uint64_t, Pending> pending;
  std::map<uint64_t, SubscriptionId> streams;  // stream seq -> subscription; 0 = stopped
  std::optional<uint64_t> body_for;            // seq whose body is the next object
  bool body_is_record = false;
  std::vector<Request> held_requests;  // arrived while the connection was being set up
  Status conn_error;                   // set when the connection must end

  void Run();
  Status RunConnection(bool* was_ready);
  void CloseConnection(const Status& why);
  void Backoff(std::chrono::milliseconds delay);
  Status Dial();
  bool StopRequested();
  void ProcessCommands();
  void ExpireDeadlines(Clock::time_point now);
  int PollTimeoutMs(Clock::time_point now) const;
  void ReadAvailable();
  void HandleObject(const msgpack::object& obj);
  void DeliverRecord(uint64_t seq, const msgpack::object& obj);
  uint64_t Send(Request request);
  void Flush();
  void StartSession();
  void ProbeAuth();
  void OnSessionReady();
  void OpenStream(SubscriptionId id);
  void SetState(bool now_connected, const Status& error);
  Status MapAgentError(const std::string& command, const std::string& error) const;
  Status NotConnected() const;
  void Fail(const Status& status) {
    if (conn_error.ok()) conn_error = status;
  }
};

}  // namespace clustermgr::net
