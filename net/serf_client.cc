#include "net/serf_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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

using serf_client_detail::Clock;
using serf_client_detail::Command;
using serf_client_detail::Millis;
using serf_client_detail::ReplyKind;

SerfClient::Impl::Impl(SerfClientOptions o) : options(std::move(o)) {
  thread = std::thread([this] { Run(); });
}

SerfClient::Impl::~Impl() {
  {
    MutexLock lock(mu);
    stopping = true;
  }
  wake.Signal();
  thread.join();
}

void SerfClient::Impl::Enqueue(Command command) {
  {
    MutexLock lock(mu);
    if (!stopping) {
      queue.push_back(std::move(command));
      wake.Signal();
      return;
    }
  }
  if (command.request.done) {
    command.request.done(Status(Code::kCancelled, "serf rpc: client closed"), nullptr);
  }
}

template <typename T>
Result<T> SerfClient::Impl::Call(const char* command, std::string body, ReplyKind reply,
                                 std::function<Result<T>(const msgpack::object*)> decode) {
  if (OnReaderThread()) {
    return Status(Code::kInvalidArgument,
                  std::string("serf rpc ") + command +
                      ": blocking call from a stream handler would deadlock");
  }
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<T>> result;
  };
  auto slot = std::make_shared<Slot>();
  Command c;
  c.kind = Command::Kind::kRequest;
  c.request.command = command;
  c.request.body = std::move(body);
  c.request.reply = reply;
  c.request.deadline = Clock::now() + options.request_timeout;
  c.request.done = [slot, decode](const Status& status, const msgpack::object* obj) {
    std::optional<Result<T>> r;
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
    return Status(Code::kOutcomeUnknown, std::string("serf rpc ") + command + " timed out after " +
                                             Millis(options.request_timeout));
  }
  return std::move(*slot->result);
}

// ---- SerfClient ----

SerfClient::SerfClient(SerfClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

SerfClient::~SerfClient() = default;

Result<std::unique_ptr<SerfClient>> SerfClient::Connect(SerfClientOptions options) {
  const auto budget = options.connect_timeout + 2 * options.request_timeout;
  auto client = std::make_unique<SerfClient>(std::move(options));
  Impl& impl = *client->impl_;
  MutexLock lock(impl.mu);
  if (!impl.state_cv.wait_for(lock.native(), budget,
                              [&]() REQUIRES(impl.mu) { return impl.attempts > 0; })) {
    return Status(Code::kOutcomeUnknown, "serf rpc: connecting to " + impl.options.address +
                                             " timed out after " + Millis(budget));
  }
  if (!impl.connected) {
    Status error = impl.last_error;
    lock.Unlock();
    return error;
  }
  lock.Unlock();
  return client;
}

Status SerfClient::WaitConnected(std::chrono::milliseconds timeout) {
  MutexLock lock(impl_->mu);
  if (impl_->state_cv.wait_for(lock.native(), timeout,
                               [&]() REQUIRES(impl_->mu) { return impl_->connected; })) {
    return Status::Ok();
  }
  if (impl_->attempts == 0) {
    return {Code::kOutcomeUnknown,
            "serf rpc: no connection to " + impl_->options.address + " within " + Millis(timeout)};
  }
  return impl_->last_error;
}

Status SerfClient::ConnectionStatus() const {
  MutexLock lock(impl_->mu);
  if (impl_->connected) return Status::Ok();
  return impl_->last_error;
}

const std::string& SerfClient::address() const { return impl_->options.address; }

Result<std::vector<SerfMember>> SerfClient::Members() {
  return impl_->Call<std::vector<SerfMember>>(
      "members", "", ReplyKind::kMembers,
      [](const msgpack::object* body) -> Result<std::vector<SerfMember>> {
        std::vector<SerfMember> members;
        Status st = DecodeMembersBody(*body, &members);
        if (!st.ok()) return st;
        return members;
      });
}

Result<std::vector<SerfMember>> SerfClient::MembersFiltered(const SerfMemberFilter& filter) {
  return impl_->Call<std::vector<SerfMember>>(
      "members-filtered", EncodeMembersFilteredBody(filter), ReplyKind::kMembers,
      [](const msgpack::object* body) -> Result<std::vector<SerfMember>> {
        std::vector<SerfMember> members;
        Status st = DecodeMembersBody(*body, &members);
        if (!st.ok()) return st;
        return members;
      });
}

Status SerfClient::SetTags(const std::map<std::string, std::string>& set,
                           const std::vector<std::string>& remove) {
  auto r = impl_->Call<bool>("tags", EncodeTagsBody(set, remove), ReplyKind::kNone,
                             [](const msgpack::object*) -> Result<bool> { return true; });
  return r.status();
}

Result<int32_t> SerfClient::Join(const std::vector<std::string>& addresses, bool replay) {
  return impl_->Call<int32_t>("join", EncodeJoinBody(addresses, replay), ReplyKind::kJoin,
                              [](const msgpack::object* body) -> Result<int32_t> {
                                int32_t num = 0;
                                Status st = DecodeJoinResponseBody(*body, &num);
                                if (!st.ok()) return st;
                                return num;
                              });
}

Status SerfClient::Leave() {
  auto r = impl_->Call<bool>("leave", "", ReplyKind::kNone,
                             [](const msgpack::object*) -> Result<bool> { return true; });
  return r.status();
}

Result<SerfClient::SubscriptionId> SerfClient::SubscribeMembers(MemberHandler handler) {
  if (!handler) {
    return Status(Code::kInvalidArgument, "serf rpc: empty member handler");
  }
  if (impl_->StopRequested()) return Status(Code::kCancelled, "serf rpc: client closed");
  Command c;
  c.kind = Command::Kind::kSubscribe;
  c.subscription = impl_->next_subscription++;
  c.handler = std::move(handler);
  const SubscriptionId id = c.subscription;
  impl_->Enqueue(std::move(c));
  return id;
}

Status SerfClient::Unsubscribe(SubscriptionId id) {
  if (impl_->OnReaderThread()) {
    return {Code::kInvalidArgument,
            "serf rpc stop: blocking call from a stream handler would deadlock"};
  }
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Status> result;
  };
  auto slot = std::make_shared<Slot>();
  Command c;
  c.kind = Command::Kind::kUnsubscribe;
  c.subscription = id;
  c.request.command = "stop";
  c.request.deadline = Clock::now() + impl_->options.request_timeout;
  c.request.done = [slot](const Status& st, const msgpack::object*) {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->result = st;
    slot->cv.notify_all();
  };
  const auto deadline = c.request.deadline;
  impl_->Enqueue(std::move(c));
  std::unique_lock<std::mutex> lock(slot->mu);
  if (!slot->cv.wait_until(lock, deadline + std::chrono::seconds(1),
                           [&] { return slot->result.has_value(); })) {
    return {Code::kOutcomeUnknown, "serf rpc stop timed out"};
  }
  return *slot->result;
}

}  // namespace clustermgr::net
