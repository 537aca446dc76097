#include "net/serf_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "net/serf_codec.h"

namespace clustermgr::net {
namespace {

using Clock = std::chrono::steady_clock;

// What follows a reply header: nothing, a membersResponse or a joinResponse.
enum class ReplyKind { kNone, kMembers, kJoin };

// Completion of one request, run exactly once on the reader thread. `body` is the reply body
// when the command has one and the reply carried it, else null.
using DoneFn = std::function<void(const SerfStatus&, const msgpack::object* body)>;

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

// Errors the agent sends in a bare header even for commands that normally have a body
// (ipc.go: checked before dispatching to the command's handler).
bool IsHeaderOnlyError(const std::string& error) {
  return error == kSerfErrAuthRequired || error == kSerfErrHandshakeRequired ||
         error == kSerfErrUnsupportedCommand;
}

std::string Millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

std::string Errno(int err) { return std::strerror(err); }

// Splits "host:port" / "[v6]:port".
bool SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return false;
    }
    *host = address.substr(1, close - 1);
    *port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    *host = address.substr(0, colon);
    *port = address.substr(colon + 1);
  }
  return !host->empty() && !port->empty();
}

constexpr std::size_t kReadChunk = 64 * 1024;
// Records held back while a stream waits for its member list; far more than a burst can be.
constexpr std::size_t kMaxHeldRecords = 100000;

}  // namespace

struct SerfClient::Impl {
  explicit Impl(SerfClientOptions o);
  ~Impl();

  // ---- shared between callers and the reader thread (guarded by mu) ----
  const SerfClientOptions options;
  mutable std::mutex mu;
  std::condition_variable state_cv;
  std::deque<Command> queue;
  bool stopping = false;
  bool connected = false;
  uint64_t attempts = 0;  // connection attempts that finished, either way
  SerfStatus last_error{SerfErrc::kNotConnected, "serf rpc: not connected yet"};
  std::atomic<uint64_t> next_subscription{1};
  int wake_fd = -1;
  std::thread thread;

  bool OnReaderThread() const { return std::this_thread::get_id() == thread.get_id(); }
  void Enqueue(Command command);
  template <typename T>
  SerfResult<T> Call(const char* command, std::string body, ReplyKind reply,
                     std::function<SerfResult<T>(const msgpack::object*)> decode);

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
  SerfStatus conn_error;               // set when the connection must end

  void Run();
  SerfStatus RunConnection(bool* was_ready);
  void CloseConnection(const SerfStatus& why);
  void Backoff(std::chrono::milliseconds delay);
  SerfStatus Dial();
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
  void SetState(bool now_connected, const SerfStatus& error);
  SerfStatus MapAgentError(const std::string& command, const std::string& error) const;
  SerfStatus NotConnected() const;
  void Fail(const SerfStatus& status) {
    if (conn_error.ok()) conn_error = status;
  }
};

SerfClient::Impl::Impl(SerfClientOptions o) : options(std::move(o)) {
  wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    std::perror("serf client: eventfd");
    std::abort();  // no fd for a wake-up pipe: the process is out of resources
  }
  thread = std::thread([this] { Run(); });
}

SerfClient::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
  }
  uint64_t one = 1;
  (void)!write(wake_fd, &one, sizeof one);
  thread.join();
  close(wake_fd);
}

void SerfClient::Impl::Enqueue(Command command) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!stopping) {
      queue.push_back(std::move(command));
      uint64_t one = 1;
      (void)!write(wake_fd, &one, sizeof one);
      return;
    }
  }
  if (command.request.done) {
    command.request.done(SerfStatus(SerfErrc::kClosed, "serf rpc: client closed"), nullptr);
  }
}

template <typename T>
SerfResult<T> SerfClient::Impl::Call(const char* command, std::string body, ReplyKind reply,
                                     std::function<SerfResult<T>(const msgpack::object*)> decode) {
  if (OnReaderThread()) {
    return SerfStatus(SerfErrc::kInvalidArgument,
                      std::string("serf rpc ") + command +
                          ": blocking call from a stream handler would deadlock");
  }
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<SerfResult<T>> result;
  };
  auto slot = std::make_shared<Slot>();
  Command c;
  c.kind = Command::Kind::kRequest;
  c.request.command = command;
  c.request.body = std::move(body);
  c.request.reply = reply;
  c.request.deadline = Clock::now() + options.request_timeout;
  c.request.done = [slot, decode](const SerfStatus& status, const msgpack::object* obj) {
    std::optional<SerfResult<T>> r;
    if (!status.ok()) {
      r.emplace(status);
    } else {
      r.emplace(decode(obj));
    }
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->result = std::move(r);
    slot->cv.notify_all();
  };
  const auto deadline = c.request.deadline;
  Enqueue(std::move(c));
  std::unique_lock<std::mutex> lock(slot->mu);
  // The reader thread enforces the deadline; the grace only guards against a bug there.
  if (!slot->cv.wait_until(lock, deadline + std::chrono::seconds(1),
                           [&] { return slot->result.has_value(); })) {
    return SerfStatus(SerfErrc::kTimeout, std::string("serf rpc ") + command + " timed out after " +
                                              Millis(options.request_timeout));
  }
  return std::move(*slot->result);
}

// ---- reader thread ----

bool SerfClient::Impl::StopRequested() {
  std::lock_guard<std::mutex> lock(mu);
  return stopping;
}

void SerfClient::Impl::Run() {
  auto backoff = options.reconnect_min;
  while (!StopRequested()) {
    bool was_ready = false;
    SerfStatus why = RunConnection(&was_ready);
    CloseConnection(why);
    if (StopRequested()) break;
    if (was_ready) backoff = options.reconnect_min;
    Backoff(backoff);
    backoff = std::min(backoff * 2, options.reconnect_max);
  }
  // Fail whatever callers queued meanwhile.
  std::deque<Command> left;
  {
    std::lock_guard<std::mutex> lock(mu);
    left.swap(queue);
    connected = false;
    last_error = SerfStatus(SerfErrc::kClosed, "serf rpc: client closed");
    state_cv.notify_all();
  }
  for (auto& c : left) {
    if (c.request.done)
      c.request.done(SerfStatus(SerfErrc::kClosed, "serf rpc: client closed"), nullptr);
  }
}

void SerfClient::Impl::Backoff(std::chrono::milliseconds delay) {
  const auto until = Clock::now() + delay;
  while (!StopRequested()) {
    ProcessCommands();  // no connection: requests fail fast, subscriptions are recorded
    const auto now = Clock::now();
    if (now >= until) return;
    pollfd p{wake_fd, POLLIN, 0};
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    if (poll(&p, 1, static_cast<int>(ms)) > 0) {
      uint64_t v;
      (void)!read(wake_fd, &v, sizeof v);
    }
  }
}

SerfStatus SerfClient::Impl::NotConnected() const {
  std::lock_guard<std::mutex> lock(mu);
  return SerfStatus(SerfErrc::kNotConnected, "serf rpc: not connected to " + options.address +
                                                 " (" + last_error.message() + ")");
}

void SerfClient::Impl::SetState(bool now_connected, const SerfStatus& error) {
  {
    std::lock_guard<std::mutex> lock(mu);
    connected = now_connected;
    if (!now_connected) last_error = error;
    ++attempts;
    state_cv.notify_all();
  }
  if (options.on_connection) {
    SerfConnectionEvent e;
    e.connected = now_connected;
    e.reason = error;
    options.on_connection(e);
  }
}

SerfStatus SerfClient::Impl::Dial() {
  std::string host, port;
  if (!SplitHostPort(options.address, &host, &port)) {
    return {SerfErrc::kInvalidArgument,
            "serf rpc: bad address \"" + options.address + "\" (want host:port)"};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return {SerfErrc::kConnectFailed,
            "serf rpc: cannot resolve " + options.address + ": " + gai_strerror(rc)};
  }
  std::string error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) {
      error = Errno(errno);
      continue;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0) {
      fd = s;
      break;
    }
    if (errno != EINPROGRESS) {
      error = Errno(errno);
      close(s);
      continue;
    }
    const auto until = Clock::now() + options.connect_timeout;
    bool done = false;
    while (!done) {
      if (StopRequested()) {
        close(s);
        freeaddrinfo(res);
        return {SerfErrc::kClosed, "serf rpc: client closed"};
      }
      const auto now = Clock::now();
      if (now >= until) {
        error = "timed out after " + Millis(options.connect_timeout);
        break;
      }
      pollfd p[2] = {{s, POLLOUT, 0}, {wake_fd, POLLIN, 0}};
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      int n = poll(p, 2, static_cast<int>(ms));
      if (n < 0 && errno != EINTR) {
        error = Errno(errno);
        break;
      }
      if (n > 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          fd = s;
        } else {
          error = Errno(err);
        }
        done = true;
      }
      // A wake-up only matters for stopping here: queued commands are looked at once the
      // connection is set up (RunConnection processes the queue on every turn).
      if (n > 0 && (p[1].revents & POLLIN)) {
        uint64_t v;
        (void)!read(wake_fd, &v, sizeof v);
      }
    }
    if (fd == s) break;
    close(s);
  }
  freeaddrinfo(res);
  if (fd < 0) {
    return {SerfErrc::kConnectFailed,
            "serf rpc: cannot connect to " + options.address + ": " + error};
  }
  return SerfStatus::Ok();
}

SerfStatus SerfClient::Impl::RunConnection(bool* was_ready) {
  SerfStatus st = Dial();
  if (!st.ok()) return st;
  SerfStreamDecoder::Limits limits;
  limits.max_message_bytes = options.max_message_bytes;
  decoder = std::make_unique<SerfStreamDecoder>(limits);
  conn_error = SerfStatus::Ok();
  ready = false;
  StartSession();
  while (true) {
    if (StopRequested()) return {SerfErrc::kClosed, "serf rpc: client closed"};
    ProcessCommands();
    ExpireDeadlines(Clock::now());
    if (ready) *was_ready = true;
    if (!conn_error.ok()) return conn_error;

    pollfd p[2] = {{fd, static_cast<short>(POLLIN | (out_off < out.size() ? POLLOUT : 0)), 0},
                   {wake_fd, POLLIN, 0}};
    int n = poll(p, 2, PollTimeoutMs(Clock::now()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return {SerfErrc::kConnectionLost, "serf rpc: poll failed: " + Errno(errno)};
    }
    if (p[1].revents & POLLIN) {
      uint64_t v;
      (void)!read(wake_fd, &v, sizeof v);
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ReadAvailable();
    if (conn_error.ok() && (p[0].revents & POLLOUT)) Flush();
    if (ready) *was_ready = true;
    if (!conn_error.ok()) return conn_error;
  }
}

void SerfClient::Impl::CloseConnection(const SerfStatus& why) {
  // Callers waiting on this connection learn why it ended; a protocol error is passed on as
  // is so that the caller sees what was wrong with the reply.
  SerfStatus to_callers = why;
  if (why.code() != SerfErrc::kProtocol && why.code() != SerfErrc::kClosed &&
      why.code() != SerfErrc::kConnectionLost) {
    to_callers = SerfStatus(SerfErrc::kConnectionLost, why.message());
  }
  if (fd >= 0) close(fd);
  fd = -1;
  ready = false;
  decoder.reset();
  out.clear();
  out_off = 0;
  body_for.reset();
  streams.clear();
  for (auto& [id, sub] : subscriptions) {
    sub.stream_seq = 0;
    sub.live = false;
    sub.held.clear();
  }
  auto old_pending = std::move(pending);
  pending.clear();
  auto old_held = std::move(held_requests);
  held_requests.clear();
  for (auto& [seq, p] : old_pending) {
    if (p.done) p.done(to_callers, nullptr);
  }
  for (auto& r : old_held) r.done(to_callers, nullptr);
  if (why.code() == SerfErrc::kClosed) return;
  SetState(false, why);
}

void SerfClient::Impl::ProcessCommands() {
  std::deque<Command> batch;
  {
    std::lock_guard<std::mutex> lock(mu);
    batch.swap(queue);
  }
  for (auto& c : batch) {
    switch (c.kind) {
      case Command::Kind::kRequest:
        if (ready) {
          Send(std::move(c.request));
        } else if (fd >= 0) {
          held_requests.push_back(std::move(c.request));
        } else {
          c.request.done(NotConnected(), nullptr);
        }
        break;
      case Command::Kind::kSubscribe: {
        Subscription& sub = subscriptions[c.subscription];
        sub.handler = std::move(c.handler);
        if (ready) OpenStream(c.subscription);
        break;
      }
      case Command::Kind::kUnsubscribe: {
        auto it = subscriptions.find(c.subscription);
        if (it == subscriptions.end()) {
          c.request.done(SerfStatus(SerfErrc::kInvalidArgument, "serf rpc: unknown subscription " +
                                                                    std::to_string(c.subscription)),
                         nullptr);
          break;
        }
        const uint64_t stream_seq = it->second.stream_seq;
        subscriptions.erase(it);
        if (ready && stream_seq != 0) {
          streams[stream_seq] = 0;  // records still in flight are read and dropped
          Request stop;
          stop.command = "stop";
          stop.body = EncodeStopBody(stream_seq);
          stop.deadline = c.request.deadline;
          stop.done = std::move(c.request.done);
          Send(std::move(stop));
        } else {
          c.request.done(SerfStatus::Ok(), nullptr);
        }
        break;
      }
    }
  }
}

void SerfClient::Impl::ExpireDeadlines(Clock::time_point now) {
  // Entries stay in `pending`: their replies must still be read to keep the stream in step.
  std::vector<std::pair<DoneFn, std::string>> expired;
  for (auto& [seq, p] : pending) {
    if (p.done && p.deadline <= now) {
      expired.emplace_back(std::move(p.done), p.command);
      p.done = nullptr;
    }
  }
  for (auto& [done, command] : expired) {
    done(SerfStatus(SerfErrc::kTimeout,
                    "serf rpc " + command + " timed out after " + Millis(options.request_timeout)),
         nullptr);
  }
  for (auto it = held_requests.begin(); it != held_requests.end();) {
    if (it->deadline <= now) {
      Request r = std::move(*it);
      it = held_requests.erase(it);
      r.done(SerfStatus(SerfErrc::kTimeout, "serf rpc " + r.command + " timed out after " +
                                                Millis(options.request_timeout) +
                                                " (connection to the agent not ready)"),
             nullptr);
    } else {
      ++it;
    }
  }
}

int SerfClient::Impl::PollTimeoutMs(Clock::time_point now) const {
  std::optional<Clock::time_point> next;
  for (const auto& [seq, p] : pending) {
    if (p.done && (!next || p.deadline < *next)) next = p.deadline;
  }
  for (const auto& r : held_requests) {
    if (!next || r.deadline < *next) next = r.deadline;
  }
  if (!next) return -1;
  if (*next <= now) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(*next - now).count());
}

void SerfClient::Impl::ReadAvailable() {
  // Bounded so that a fast sender cannot starve commands and deadlines.
  for (int round = 0; round < 16 && conn_error.ok(); ++round) {
    char* buf = decoder->WriteBuffer(kReadChunk);
    ssize_t n = recv(fd, buf, kReadChunk, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      Fail({SerfErrc::kConnectionLost, "serf rpc: read from the agent failed: " + Errno(errno)});
      return;
    }
    if (n == 0) {
      const std::size_t partial = decoder->pending_bytes();
      Fail({SerfErrc::kConnectionLost,
            partial == 0 ? std::string("serf rpc: connection closed by the agent")
                         : "serf rpc: connection closed by the agent in the middle of a message (" +
                               std::to_string(partial) + " bytes received)"});
      return;
    }
    decoder->Commit(static_cast<std::size_t>(n));
    while (conn_error.ok()) {
      msgpack::object_handle oh;
      SerfResult<bool> got = decoder->Next(&oh);
      if (!got.ok()) {
        Fail(got.status());
        return;
      }
      if (!*got) break;
      HandleObject(oh.get());
    }
  }
}

void SerfClient::Impl::HandleObject(const msgpack::object& obj) {
  if (body_for) {
    const uint64_t seq = *body_for;
    body_for.reset();
    if (body_is_record) {
      DeliverRecord(seq, obj);
      return;
    }
    auto it = pending.find(seq);
    Pending p = std::move(it->second);
    pending.erase(it);
    if (!p.done) return;  // the caller already gave up
    if (!p.error.empty()) {
      p.done(MapAgentError(p.command, p.error), nullptr);
    } else {
      p.done(SerfStatus::Ok(), &obj);
    }
    return;
  }

  SerfResponseHeader header;
  SerfStatus st = DecodeResponseHeader(obj, &header);
  if (!st.ok()) {
    Fail(st);
    return;
  }
  if (auto it = pending.find(header.seq); it != pending.end()) {
    if (it->second.reply != ReplyKind::kNone && !IsHeaderOnlyError(header.error)) {
      it->second.error = header.error;
      body_for = header.seq;
      body_is_record = false;
      return;
    }
    Pending p = std::move(it->second);
    pending.erase(it);
    if (p.done) p.done(MapAgentError(p.command, header.error), nullptr);
    return;
  }
  if (streams.count(header.seq) != 0) {
    if (!header.error.empty()) {
      Fail({SerfErrc::kProtocol, "serf rpc: stream record with error: " + header.error});
      return;
    }
    body_for = header.seq;
    body_is_record = true;
    return;
  }
  Fail({SerfErrc::kProtocol,
        "serf rpc: reply for unknown sequence number " + std::to_string(header.seq)});
}

void SerfClient::Impl::DeliverRecord(uint64_t seq, const msgpack::object& obj) {
  SerfMemberEvent event;
  SerfStatus st = DecodeMemberEventBody(obj, &event);
  if (!st.ok()) {
    Fail(st);
    return;
  }
  const SubscriptionId id = streams[seq];
  auto it = subscriptions.find(id);
  if (id == 0 || it == subscriptions.end() || it->second.stream_seq != seq) return;
  Subscription& sub = it->second;
  if (!sub.live) {
    if (sub.held.size() >= kMaxHeldRecords) {
      Fail({SerfErrc::kProtocol, "serf rpc: too many stream records before the member list"});
      return;
    }
    sub.held.push_back(std::move(event));
    return;
  }
  MemberHandler handler = sub.handler;  // a copy: the handler may subscribe more
  handler(event);
}

uint64_t SerfClient::Impl::Send(Request request) {
  const uint64_t seq = ++last_seq;
  out += EncodeRequestHeader({request.command, seq});
  out += request.body;
  Pending p;
  p.command = std::move(request.command);
  p.reply = request.reply;
  p.done = std::move(request.done);
  p.deadline = request.deadline;
  pending.emplace(seq, std::move(p));
  Flush();
  return seq;
}

void SerfClient::Impl::Flush() {
  while (out_off < out.size() && conn_error.ok()) {
    ssize_t n = send(fd, out.data() + out_off, out.size() - out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      Fail({SerfErrc::kConnectionLost, "serf rpc: write to the agent failed: " + Errno(errno)});
      return;
    }
    out_off += static_cast<std::size_t>(n);
  }
  if (out_off == out.size()) {
    out.clear();
    out_off = 0;
  }
}

SerfStatus SerfClient::Impl::MapAgentError(const std::string& command,
                                           const std::string& error) const {
  if (error.empty()) return SerfStatus::Ok();
  if (error == kSerfErrAuthRequired) {
    return {SerfErrc::kAuthFailed, "serf rpc auth required: the agent at " + options.address +
                                       " expects an RPC auth key (" + error + ")"};
  }
  if (command == "handshake") {
    return {SerfErrc::kHandshakeRefused, "serf rpc handshake refused: " + error};
  }
  if (command == "auth") return {SerfErrc::kAuthFailed, "serf rpc auth failed: " + error};
  return {SerfErrc::kRemote, "serf rpc " + command + " failed: " + error};
}

void SerfClient::Impl::StartSession() {
  Request hs;
  hs.command = "handshake";
  hs.body = EncodeHandshakeBody(kSerfIpcVersion);
  hs.deadline = Clock::now() + options.request_timeout;
  hs.done = [this](const SerfStatus& st, const msgpack::object*) {
    if (!st.ok()) {
      Fail(st);
      return;
    }
    if (options.auth_key.empty()) {
      ProbeAuth();
      return;
    }
    Request auth;
    auth.command = "auth";
    auth.body = EncodeAuthBody(options.auth_key);
    auth.deadline = Clock::now() + options.request_timeout;
    auth.done = [this](const SerfStatus& st2, const msgpack::object*) {
      if (!st2.ok()) {
        Fail(st2);
        return;
      }
      OnSessionReady();
    };
    Send(std::move(auth));
  };
  Send(std::move(hs));
}

// Without a key we cannot tell whether the agent wants one until a command is refused, so
// ask with `stop` of a stream that does not exist: no side effect, and it passes the agent's
// auth check like any command.
void SerfClient::Impl::ProbeAuth() {
  Request probe;
  probe.command = "stop";
  probe.body = EncodeStopBody(0);
  probe.deadline = Clock::now() + options.request_timeout;
  probe.done = [this](const SerfStatus& st, const msgpack::object*) {
    if (!st.ok()) {
      Fail(st);
      return;
    }
    OnSessionReady();
  };
  Send(std::move(probe));
}

void SerfClient::Impl::OnSessionReady() {
  ready = true;
  SetState(true, SerfStatus::Ok());
  auto held = std::move(held_requests);
  held_requests.clear();
  for (auto& r : held) Send(std::move(r));
  for (auto& [id, sub] : subscriptions) OpenStream(id);
}

void SerfClient::Impl::OpenStream(SubscriptionId id) {
  Request stream;
  stream.command = "stream";
  stream.body = EncodeStreamBody(std::string(kSerfMemberEventFilter));
  stream.deadline = Clock::now() + options.request_timeout;
  const uint64_t seq = last_seq + 1;  // the seq Send is about to use
  stream.done = [this, id, seq](const SerfStatus& st, const msgpack::object*) {
    if (!st.ok()) {
      streams.erase(seq);
      Fail(st);  // the subscription is retried on the next connection
      return;
    }
    auto it = subscriptions.find(id);
    if (it == subscriptions.end() || it->second.stream_seq != seq) return;
    // The stream is registered: a member list read now misses nothing (records that race
    // with it are held back and replayed after the resync).
    Request members;
    members.command = "members";
    members.reply = ReplyKind::kMembers;
    members.deadline = Clock::now() + options.request_timeout;
    members.done = [this, id, seq](const SerfStatus& st2, const msgpack::object* body) {
      if (!st2.ok()) {
        Fail(st2);
        return;
      }
      SerfMemberEvent resync;
      resync.type = SerfEventType::kResync;
      resync.event = SerfEventTypeName(SerfEventType::kResync);
      SerfStatus ds = DecodeMembersBody(*body, &resync.members);
      if (!ds.ok()) {
        Fail(ds);
        return;
      }
      auto sit = subscriptions.find(id);
      if (sit == subscriptions.end() || sit->second.stream_seq != seq) return;
      MemberHandler handler = sit->second.handler;
      auto held = std::move(sit->second.held);
      sit->second.held.clear();
      sit->second.live = true;
      handler(resync);
      for (const auto& e : held) handler(e);
    };
    Send(std::move(members));
  };
  subscriptions[id].stream_seq = seq;
  subscriptions[id].live = false;
  subscriptions[id].held.clear();
  streams[seq] = id;
  [[maybe_unused]] const uint64_t sent = Send(std::move(stream));
  assert(sent == seq);
}

// ---- SerfClient ----

SerfClient::SerfClient(SerfClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

SerfClient::~SerfClient() = default;

SerfResult<std::unique_ptr<SerfClient>> SerfClient::Connect(SerfClientOptions options) {
  const auto budget = options.connect_timeout + 2 * options.request_timeout;
  auto client = std::make_unique<SerfClient>(std::move(options));
  Impl& impl = *client->impl_;
  std::unique_lock<std::mutex> lock(impl.mu);
  if (!impl.state_cv.wait_for(lock, budget, [&] { return impl.attempts > 0; })) {
    return SerfStatus(SerfErrc::kTimeout, "serf rpc: connecting to " + impl.options.address +
                                              " timed out after " + Millis(budget));
  }
  if (!impl.connected) {
    SerfStatus error = impl.last_error;
    lock.unlock();
    return error;
  }
  lock.unlock();
  return client;
}

SerfStatus SerfClient::WaitConnected(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->state_cv.wait_for(lock, timeout, [&] { return impl_->connected; })) {
    return SerfStatus::Ok();
  }
  if (impl_->attempts == 0) {
    return {SerfErrc::kTimeout,
            "serf rpc: no connection to " + impl_->options.address + " within " + Millis(timeout)};
  }
  return impl_->last_error;
}

SerfStatus SerfClient::ConnectionStatus() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->connected) return SerfStatus::Ok();
  return impl_->last_error;
}

const std::string& SerfClient::address() const { return impl_->options.address; }

SerfResult<std::vector<SerfMember>> SerfClient::Members() {
  return impl_->Call<std::vector<SerfMember>>(
      "members", "", ReplyKind::kMembers,
      [](const msgpack::object* body) -> SerfResult<std::vector<SerfMember>> {
        std::vector<SerfMember> members;
        SerfStatus st = DecodeMembersBody(*body, &members);
        if (!st.ok()) return st;
        return members;
      });
}

SerfResult<std::vector<SerfMember>> SerfClient::MembersFiltered(const SerfMemberFilter& filter) {
  return impl_->Call<std::vector<SerfMember>>(
      "members-filtered", EncodeMembersFilteredBody(filter), ReplyKind::kMembers,
      [](const msgpack::object* body) -> SerfResult<std::vector<SerfMember>> {
        std::vector<SerfMember> members;
        SerfStatus st = DecodeMembersBody(*body, &members);
        if (!st.ok()) return st;
        return members;
      });
}

SerfStatus SerfClient::SetTags(const std::map<std::string, std::string>& set,
                               const std::vector<std::string>& remove) {
  auto r = impl_->Call<bool>("tags", EncodeTagsBody(set, remove), ReplyKind::kNone,
                             [](const msgpack::object*) -> SerfResult<bool> { return true; });
  return r.status();
}

SerfResult<int32_t> SerfClient::Join(const std::vector<std::string>& addresses, bool replay) {
  return impl_->Call<int32_t>("join", EncodeJoinBody(addresses, replay), ReplyKind::kJoin,
                              [](const msgpack::object* body) -> SerfResult<int32_t> {
                                int32_t num = 0;
                                SerfStatus st = DecodeJoinResponseBody(*body, &num);
                                if (!st.ok()) return st;
                                return num;
                              });
}

SerfStatus SerfClient::Leave() {
  auto r = impl_->Call<bool>("leave", "", ReplyKind::kNone,
                             [](const msgpack::object*) -> SerfResult<bool> { return true; });
  return r.status();
}

SerfResult<SerfClient::SubscriptionId> SerfClient::SubscribeMembers(MemberHandler handler) {
  if (!handler) {
    return SerfStatus(SerfErrc::kInvalidArgument, "serf rpc: empty member handler");
  }
  if (impl_->StopRequested()) return SerfStatus(SerfErrc::kClosed, "serf rpc: client closed");
  Command c;
  c.kind = Command::Kind::kSubscribe;
  c.subscription = impl_->next_subscription++;
  c.handler = std::move(handler);
  const SubscriptionId id = c.subscription;
  impl_->Enqueue(std::move(c));
  return id;
}

SerfStatus SerfClient::Unsubscribe(SubscriptionId id) {
  if (impl_->OnReaderThread()) {
    return {SerfErrc::kInvalidArgument,
            "serf rpc stop: blocking call from a stream handler would deadlock"};
  }
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<SerfStatus> result;
  };
  auto slot = std::make_shared<Slot>();
  Command c;
  c.kind = Command::Kind::kUnsubscribe;
  c.subscription = id;
  c.request.command = "stop";
  c.request.deadline = Clock::now() + impl_->options.request_timeout;
  c.request.done = [slot](const SerfStatus& st, const msgpack::object*) {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->result = st;
    slot->cv.notify_all();
  };
  const auto deadline = c.request.deadline;
  impl_->Enqueue(std::move(c));
  std::unique_lock<std::mutex> lock(slot->mu);
  if (!slot->cv.wait_until(lock, deadline + std::chrono::seconds(1),
                           [&] { return slot->result.has_value(); })) {
    return {SerfErrc::kTimeout, "serf rpc stop timed out"};
  }
  return *slot->result;
}

}  // namespace clustermgr::net
