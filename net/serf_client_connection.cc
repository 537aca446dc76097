// SerfClient's reader thread: connecting, reconnecting with backoff, the poll loop, commands
// from callers, deadlines and writes (net/serf_client_impl.h).
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "net/serf_client_impl.h"

namespace clustermgr::net {
namespace {

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

}  // namespace

using serf_client_detail::Clock;
using serf_client_detail::DoneFn;
using serf_client_detail::Millis;

// ---- reader thread ----

bool SerfClient::Impl::StopRequested() {
  MutexLock lock(mu);
  return stopping;
}

void SerfClient::Impl::Run() {
  auto backoff = options.reconnect_min;
  while (!StopRequested()) {
    bool was_ready = false;
    Status why = RunConnection(&was_ready);
    CloseConnection(why);
    if (StopRequested()) break;
    if (was_ready) backoff = options.reconnect_min;
    Backoff(backoff);
    backoff = std::min(backoff * 2, options.reconnect_max);
  }
  // Fail whatever callers queued meanwhile.
  std::deque<Command> left;
  {
    MutexLock lock(mu);
    left.swap(queue);
    connected = false;
    last_error = Status(Code::kCancelled, "serf rpc: client closed");
    state_cv.notify_all();
  }
  for (auto& c : left) {
    if (c.request.done)
      c.request.done(Status(Code::kCancelled, "serf rpc: client closed"), nullptr);
  }
}

void SerfClient::Impl::Backoff(std::chrono::milliseconds delay) {
  const auto until = Clock::now() + delay;
  while (!StopRequested()) {
    ProcessCommands();  // no connection: requests fail fast, subscriptions are recorded
    const auto now = Clock::now();
    if (now >= until) return;
    pollfd p{wake.fd(), POLLIN, 0};
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    if (poll(&p, 1, static_cast<int>(ms)) > 0) {
      wake.Consume();
    }
  }
}

Status SerfClient::Impl::NotConnected() const {
  MutexLock lock(mu);
  return Status(Code::kUnavailable, "serf rpc: not connected to " + options.address + " (" +
                                        last_error.message() + ")");
}

void SerfClient::Impl::SetState(bool now_connected, const Status& error) {
  {
    MutexLock lock(mu);
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

Status SerfClient::Impl::Dial() {
  std::string host, port;
  if (!SplitHostPort(options.address, &host, &port)) {
    return {Code::kInvalidArgument,
            "serf rpc: bad address \"" + options.address + "\" (want host:port)"};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return {Code::kUnavailable,
            "serf rpc: cannot resolve " + options.address + ": " + gai_strerror(rc)};
  }
  std::string error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) {
      error = ErrnoText(errno);
      continue;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0) {
      fd = s;
      break;
    }
    if (errno != EINPROGRESS) {
      error = ErrnoText(errno);
      close(s);
      continue;
    }
    const auto until = Clock::now() + options.connect_timeout;
    bool done = false;
    while (!done) {
      if (StopRequested()) {
        close(s);
        freeaddrinfo(res);
        return {Code::kCancelled, "serf rpc: client closed"};
      }
      const auto now = Clock::now();
      if (now >= until) {
        error = "timed out after " + Millis(options.connect_timeout);
        break;
      }
      pollfd p[2] = {{s, POLLOUT, 0}, {wake.fd(), POLLIN, 0}};
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      int n = poll(p, 2, static_cast<int>(ms));
      if (n < 0 && errno != EINTR) {
        error = ErrnoText(errno);
        break;
      }
      if (n > 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          fd = s;
        } else {
          error = ErrnoText(err);
        }
        done = true;
      }
      // A wake-up only matters for stopping here: queued commands are looked at once the
      // connection is set up (RunConnection processes the queue on every turn).
      if (n > 0 && (p[1].revents & POLLIN)) {
        wake.Consume();
      }
    }
    if (fd == s) break;
    close(s);
  }
  freeaddrinfo(res);
  if (fd < 0) {
    return {Code::kUnavailable, "serf rpc: cannot connect to " + options.address + ": " + error};
  }
  return Status::Ok();
}

Status SerfClient::Impl::RunConnection(bool* was_ready) {
  Status st = Dial();
  if (!st.ok()) return st;
  SerfStreamDecoder::Limits limits;
  limits.max_message_bytes = options.max_message_bytes;
  decoder = std::make_unique<SerfStreamDecoder>(limits);
  conn_error = Status::Ok();
  ready = false;
  StartSession();
  while (true) {
    if (StopRequested()) return {Code::kCancelled, "serf rpc: client closed"};
    ProcessCommands();
    ExpireDeadlines(Clock::now());
    if (ready) *was_ready = true;
    if (!conn_error.ok()) return conn_error;

    pollfd p[2] = {{fd, static_cast<short>(POLLIN | (out_off < out.size() ? POLLOUT : 0)), 0},
                   {wake.fd(), POLLIN, 0}};
    int n = poll(p, 2, PollTimeoutMs(Clock::now()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return {Code::kOutcomeUnknown, "serf rpc: poll failed: " + ErrnoText(errno)};
    }
    if (p[1].revents & POLLIN) {
      wake.Consume();
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ReadAvailable();
    if (conn_error.ok() && (p[0].revents & POLLOUT)) Flush();
    if (ready) *was_ready = true;
    if (!conn_error.ok()) return conn_error;
  }
}

void SerfClient::Impl::CloseConnection(const Status& why) {
  // Callers waiting on this connection learn why it ended; a protocol error is passed on as
  // is so that the caller sees what was wrong with the reply.
  Status to_callers = why;
  if (why.code() != Code::kCorruption && why.code() != Code::kCancelled &&
      why.code() != Code::kOutcomeUnknown) {
    to_callers = Status(Code::kOutcomeUnknown, why.message());
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
  if (why.code() == Code::kCancelled) return;
  SetState(false, why);
}

void SerfClient::Impl::ProcessCommands() {
  std::deque<Command> batch;
  {
    MutexLock lock(mu);
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
          c.request.done(Status(Code::kInvalidArgument,
                                "serf rpc: unknown subscription " + std::to_string(c.subscription)),
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
          c.request.done(Status::Ok(), nullptr);
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
    done(Status(Code::kOutcomeUnknown,
                "serf rpc " + command + " timed out after " + Millis(options.request_timeout)),
         nullptr);
  }
  for (auto it = held_requests.begin(); it != held_requests.end();) {
    if (it->deadline <= now) {
      Request r = std::move(*it);
      it = held_requests.erase(it);
      r.done(Status(Code::kOutcomeUnknown, "serf rpc " + r.command + " timed out after " +
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
      Fail({Code::kOutcomeUnknown, "serf rpc: write to the agent failed: " + ErrnoText(errno)});
      return;
    }
    out_off += static_cast<std::size_t>(n);
  }
  if (out_off == out.size()) {
    out.clear();
    out_off = 0;
  }
}

}  // namespace clustermgr::net
