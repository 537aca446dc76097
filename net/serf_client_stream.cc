// SerfClient's session on a connection (reader thread): handshake and auth, replies, member
// streams and their resync (net/serf_client_impl.h).
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

// Errors the agent sends in a bare header even for commands that normally have a body
// (ipc.go: checked before dispatching to the command's handler).
bool IsHeaderOnlyError(const std::string& error) {
  return error == kSerfErrAuthRequired || error == kSerfErrHandshakeRequired ||
         error == kSerfErrUnsupportedCommand;
}

constexpr std::size_t kReadChunk = 64 * 1024;
// Records held back while a stream waits for its member list; far more than a burst can be.
constexpr std::size_t kMaxHeldRecords = 100000;

}  // namespace

using serf_client_detail::Clock;
using serf_client_detail::ReplyKind;

void SerfClient::Impl::ReadAvailable() {
  // Bounded so that a fast sender cannot starve commands and deadlines.
  for (int round = 0; round < 16 && conn_error.ok(); ++round) {
    char* buf = decoder->WriteBuffer(kReadChunk);
    ssize_t n = recv(fd, buf, kReadChunk, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      Fail({Code::kOutcomeUnknown, "serf rpc: read from the agent failed: " + ErrnoText(errno)});
      return;
    }
    if (n == 0) {
      const std::size_t partial = decoder->pending_bytes();
      Fail({Code::kOutcomeUnknown,
            partial == 0 ? std::string("serf rpc: connection closed by the agent")
                         : "serf rpc: connection closed by the agent in the middle of a message (" +
                               std::to_string(partial) + " bytes received)"});
      return;
    }
    decoder->Commit(static_cast<std::size_t>(n));
    while (conn_error.ok()) {
      msgpack::object_handle oh;
      Result<bool> got = decoder->Next(&oh);
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
      p.done(Status::Ok(), &obj);
    }
    return;
  }

  SerfResponseHeader header;
  Status st = DecodeResponseHeader(obj, &header);
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
      Fail({Code::kCorruption, "serf rpc: stream record with error: " + header.error});
      return;
    }
    body_for = header.seq;
    body_is_record = true;
    return;
  }
  Fail({Code::kCorruption,
        "serf rpc: reply for unknown sequence number " + std::to_string(header.seq)});
}

void SerfClient::Impl::DeliverRecord(uint64_t seq, const msgpack::object& obj) {
  SerfMemberEvent event;
  Status st = DecodeMemberEventBody(obj, &event);
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
      Fail({Code::kCorruption, "serf rpc: too many stream records before the member list"});
      return;
    }
    sub.held.push_back(std::move(event));
    return;
  }
  MemberHandler handler = sub.handler;  // a copy: the handler may subscribe more
  handler(event);
}

Status SerfClient::Impl::MapAgentError(const std::string& command, const std::string& error) const {
  if (error.empty()) return Status::Ok();
  if (error == kSerfErrAuthRequired) {
    return {Code::kPermissionDenied, "serf rpc auth required: the agent at " + options.address +
                                         " expects an RPC auth key (" + error + ")"};
  }
  if (command == "handshake") {
    return {Code::kFailedPrecondition, "serf rpc handshake refused: " + error};
  }
  if (command == "auth") return {Code::kPermissionDenied, "serf rpc auth failed: " + error};
  return {Code::kFailedPrecondition, "serf rpc " + command + " failed: " + error};
}

void SerfClient::Impl::StartSession() {
  Request hs;
  hs.command = "handshake";
  hs.body = EncodeHandshakeBody(kSerfIpcVersion);
  hs.deadline = Clock::now() + options.request_timeout;
  hs.done = [this](const Status& st, const msgpack::object*) {
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
    auth.done = [this](const Status& st2, const msgpack::object*) {
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
  probe.done = [this](const Status& st, const msgpack::object*) {
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
  SetState(true, Status::Ok());
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
  stream.done = [this, id, seq](const Status& st, const msgpack::object*) {
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
    members.done = [this, id, seq](const Status& st2, const msgpack::object* body) {
      if (!st2.ok()) {
        Fail(st2);
        return;
      }
      SerfMemberEvent resync;
      resync.type = SerfEventType::kResync;
      resync.event = SerfEventTypeName(SerfEventType::kResync);
      Status ds = DecodeMembersBody(*body, &resync.members);
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

}  // namespace clustermgr::net
