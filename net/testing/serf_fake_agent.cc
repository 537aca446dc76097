#include "net/testing/serf_fake_agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include "net/serf_codec.h"

namespace clustermgr::net {
namespace {

// Commands whose request carries a body (serf client/rpc_client.go).
bool HasBody(const std::string& command) {
  static const std::set<std::string> kWithBody = {
      "handshake",   "auth",    "event",      "force-leave",   "join",  "members-filtered",
      "stream",      "stop",    "monitor",    "tags",          "query", "respond",
      "install-key", "use-key", "remove-key", "get-coordinate"};
  return kWithBody.count(command) != 0;
}

}  // namespace

struct FakeSerfAgent::Conn {
  int fd = -1;
  SerfStreamDecoder decoder;
  std::string out;
  bool close_after_flush = false;
  bool handshaken = false;
  bool authed = false;
  std::optional<SerfRequestHeader> awaiting_body;
  std::set<uint64_t> streams;
  std::string self_name;  // the member this endpoint speaks for ("": the first member)
};

struct FakeSerfAgent::Request {
  SerfRequestHeader header;
  const msgpack::object* body = nullptr;
};

namespace {

// A non-blocking socket listening on 127.0.0.1:<ephemeral>, or an error.
Result<std::pair<int, uint16_t>> ListenLoopback() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(Code::kUnavailable, std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Status st(Code::kUnavailable,
              std::string("fake serf agent: cannot listen: ") + std::strerror(errno));
    close(fd);
    return st;
  }
  return std::pair<int, uint16_t>{fd, ntohs(addr.sin_port)};
}

}  // namespace

Result<std::unique_ptr<FakeSerfAgent>> FakeSerfAgent::Start(Options options) {
  std::unique_ptr<FakeSerfAgent> agent(new FakeSerfAgent(std::move(options)));
  auto listener = ListenLoopback();
  if (!listener.ok()) return listener.status();
  agent->listen_fd_ = listener->first;
  agent->port_ = listener->second;
  FakeSerfAgent* raw = agent.get();
  agent->thread_ = std::thread([raw] { raw->Run(); });
  return agent;
}

Result<std::string> FakeSerfAgent::AddEndpoint(const std::string& self_name) {
  auto listener = ListenLoopback();
  if (!listener.ok()) return listener.status();
  const int fd = listener->first;
  bool added = false;
  RunOnServer([&] {
    more_listeners_.emplace_back(fd, self_name);
    added = true;
  });
  if (!added) {  // stopping
    close(fd);
    return Status(Code::kUnavailable, "fake serf agent: stopped");
  }
  return "127.0.0.1:" + std::to_string(listener->second);
}

FakeSerfAgent::FakeSerfAgent(Options options) : options_(std::move(options)) {}

FakeSerfAgent::~FakeSerfAgent() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.Signal();
  if (thread_.joinable()) thread_.join();
  for (auto& [fd, c] : conns_) close(fd);
  for (auto& [fd, name] : more_listeners_) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string FakeSerfAgent::address() const { return "127.0.0.1:" + std::to_string(port_); }

void FakeSerfAgent::SetMembers(std::vector<SerfMember> members) {
  std::lock_guard<std::mutex> lock(mu_);
  members_ = std::move(members);
  member_index_.clear();
  for (std::size_t i = 0; i < members_.size(); ++i) member_index_[members_[i].name] = i;
}

std::size_t FakeSerfAgent::member_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_.size();
}

SerfMember* FakeSerfAgent::FindMember(const std::string& name) {
  auto it = member_index_.find(name);
  return it == member_index_.end() ? nullptr : &members_[it->second];
}

std::vector<SerfMember> FakeSerfAgent::members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_;
}

void FakeSerfAgent::InjectReply(const std::string& command, RawReply reply, bool close_after) {
  std::lock_guard<std::mutex> lock(mu_);
  injections_[command].emplace_back(std::move(reply), close_after);
}

int FakeSerfAgent::connections_accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepted_;
}

std::vector<std::string> FakeSerfAgent::commands() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commands_;
}

bool FakeSerfAgent::WaitForStreams(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return open_streams_ >= count; });
}

void FakeSerfAgent::RunOnServer(std::function<void()> fn) {
  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto done = std::make_shared<Done>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    tasks_.push_back([fn = std::move(fn), done] {
      fn();
      std::lock_guard<std::mutex> l(done->mu);
      done->done = true;
      done->cv.notify_all();
    });
  }
  wake_.Signal();
  std::unique_lock<std::mutex> lock(done->mu);
  done->cv.wait(lock, [&] { return done->done; });
}

void FakeSerfAgent::EmitMemberEvent(const SerfMemberEvent& event) {
  const std::string body = EncodeMemberEventBody(event);
  RunOnServer([this, body] {
    for (auto& [fd, c] : conns_) {
      for (uint64_t seq : c->streams) SendTo(*c, EncodeResponseHeader({seq, ""}) + body);
    }
  });
}

void FakeSerfAgent::ApplyMemberEvent(const SerfMemberEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const SerfMember& m : event.members) {
      SerfMember* known = FindMember(m.name);
      switch (event.type) {
        case SerfEventType::kMemberJoin:
        case SerfEventType::kMemberUpdate:
          if (known) {
            *known = m;
          } else {
            member_index_[m.name] = members_.size();
            members_.push_back(m);
          }
          break;
        case SerfEventType::kMemberLeave:
        case SerfEventType::kMemberFailed:
          if (known) known->status = event.type == SerfEventType::kMemberLeave ? "left" : "failed";
          break;
        case SerfEventType::kMemberReap:
          if (known) {
            const std::size_t i = member_index_[m.name];
            member_index_.erase(m.name);
            if (i + 1 != members_.size()) {
              members_[i] = std::move(members_.back());
              member_index_[members_[i].name] = i;
            }
            members_.pop_back();
          }
          break;
        default:
          break;
      }
    }
  }
  EmitMemberEvent(event);
}

void FakeSerfAgent::DisconnectAll() {
  RunOnServer([this] {
    std::vector<int> fds;
    for (auto& [fd, c] : conns_) fds.push_back(fd);
    for (int fd : fds) CloseConn(fd);
  });
}

void FakeSerfAgent::CloseConn(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_streams_ -= it->second->streams.size();
  }
  close(fd);
  conns_.erase(it);
}

void FakeSerfAgent::SendTo(Conn& c, const std::string& bytes) {
  c.out += bytes;
  while (!c.out.empty()) {
    ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: the poll loop flushes the rest; other errors show up as POLLERR
    }
    c.out.erase(0, static_cast<std::size_t>(n));
  }
}

void FakeSerfAgent::Run() {
  while (true) {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) t();

    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    fds.push_back({wake_.fd(), POLLIN, 0});
    for (auto& [fd, name] : more_listeners_) fds.push_back({fd, POLLIN, 0});
    const std::size_t first_conn = fds.size();
    for (auto& [fd, c] : conns_) {
      fds.push_back({fd, static_cast<short>(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) {
      wake_.Consume();
    }
    if (fds[0].revents & POLLIN) Accept(listen_fd_, options_.self_name);
    for (std::size_t i = 2; i < first_conn; ++i) {
      if (fds[i].revents & POLLIN) Accept(fds[i].fd, more_listeners_[i - 2].second);
    }
    for (std::size_t i = first_conn; i < fds.size(); ++i) {
      auto it = conns_.find(fds[i].fd);
      if (it == conns_.end()) continue;
      Conn& c = *it->second;
      if (fds[i].revents & POLLOUT) SendTo(c, "");
      if (c.close_after_flush && c.out.empty()) {
        CloseConn(c.fd);
        continue;
      }
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ReadFrom(c);
    }
  }
}

void FakeSerfAgent::Accept(int listen_fd, const std::string& self_name) {
  while (true) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;  // replies are written in pieces: do not let Nagle hold them back
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->self_name = self_name;
    conns_[fd] = std::move(c);
    std::lock_guard<std::mutex> lock(mu_);
    ++accepted_;
  }
}

void FakeSerfAgent::ReadFrom(Conn& c) {
  const int fd = c.fd;
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    CloseConn(fd);
    return;
  }
  c.decoder.Feed(buf, static_cast<std::size_t>(n));
  while (true) {
    msgpack::object_handle oh;
    Result<bool> got = c.decoder.Next(&oh);
    if (!got.ok()) {
      CloseConn(fd);  // like the agent: a request it cannot decode ends the connection
      return;
    }
    if (!*got) return;
    Request r;
    if (c.awaiting_body) {
      r.header = *c.awaiting_body;
      c.awaiting_body.reset();
      r.body = &oh.get();
    } else {
      if (!DecodeRequestHeader(oh.get(), &r.header).ok()) {
        CloseConn(fd);
        return;
      }
      if (HasBody(r.header.command)) {
        c.awaiting_body = r.header;
        continue;
      }
    }
    if (!HandleRequest(c, r)) {
      if (c.out.empty()) {
        CloseConn(fd);
      } else {
        c.close_after_flush = true;
      }
      return;
    }
  }
}

bool FakeSerfAgent::HandleRequest(Conn& c, const Request& r) {
  const std::string& cmd = r.header.command;
  const uint64_t seq = r.header.seq;
  auto reply = [&](const std::string& error) { SendTo(c, EncodeResponseHeader({seq, error})); };
  std::optional<std::pair<RawReply, bool>> injected;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back(cmd);
    auto it = injections_.find(cmd);
    if (it != injections_.end() && !it->second.empty()) {
      injected = std::move(it->second.front());
      it->second.erase(it->second.begin());
    }
  }
  if (injected) {
    SendTo(c, injected->first(seq));
    return !injected->second;
  }
  if (cmd != "handshake" && !c.handshaken) {
    reply(std::string(kSerfErrHandshakeRequired));
    return false;
  }
  if (!options_.auth_key.empty() && !c.authed && cmd != "handshake" && cmd != "auth") {
    reply(std::string(kSerfErrAuthRequired));
    return true;
  }
  if (cmd == "handshake") {
    int32_t version = 0;
    if (!DecodeHandshakeBody(*r.body, &version).ok()) return false;
    if (version != kSerfIpcVersion) {
      reply(std::string(kSerfErrUnsupportedIpcVersion));
    } else if (c.handshaken) {
      reply("Handshake already performed");
    } else {
      c.handshaken = true;
      reply("");
    }
    return true;
  }
  if (cmd == "auth") {
    std::string key;
    if (!DecodeAuthBody(*r.body, &key).ok()) return false;
    if (key == options_.auth_key) {
      c.authed = true;
      reply("");
    } else {
      reply(std::string(kSerfErrInvalidAuthToken));
    }
    return true;
  }
  if (cmd == "members" || cmd == "members-filtered") {
    std::vector<SerfMember> list = members();
    if (cmd == "members-filtered") {
      // Exact matches only (the real agent anchors regular expressions).
      SerfMemberFilter f;
      if (!DecodeMembersFilteredBody(*r.body, &f).ok()) return false;
      std::vector<SerfMember> kept;
      for (const auto& m : list) {
        bool ok =
            (f.name.empty() || f.name == m.name) && (f.status.empty() || f.status == m.status);
        for (const auto& [k, v] : f.tags) {
          auto t = m.tags.find(k);
          ok = ok && t != m.tags.end() && t->second == v;
        }
        if (ok) kept.push_back(m);
      }
      list = std::move(kept);
    }
    SendTo(c, EncodeResponseHeader({seq, ""}) + EncodeMembersBody(list));
    return true;
  }
  if (cmd == "tags") {
    std::map<std::string, std::string> set;
    std::vector<std::string> remove;
    if (!DecodeTagsBody(*r.body, &set, &remove).ok()) return false;
    std::optional<SerfMember> changed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      SerfMember* self = c.self_name.empty() ? (members_.empty() ? nullptr : &members_.front())
                                             : FindMember(c.self_name);
      if (self) {
        for (const auto& k : remove) self->tags.erase(k);
        for (const auto& [k, v] : set) self->tags[k] = v;
        changed = *self;
      }
    }
    reply("");
    if (changed) {
      SerfMemberEvent e{SerfEventType::kMemberUpdate, "member-update", {*changed}};
      const std::string body = EncodeMemberEventBody(e);
      for (auto& [fd, other] : conns_) {
        for (uint64_t s : other->streams) SendTo(*other, EncodeResponseHeader({s, ""}) + body);
      }
    }
    return true;
  }
  if (cmd == "join") {
    std::vector<std::string> addrs;
    bool replay = false;
    if (!DecodeJoinBody(*r.body, &addrs, &replay).ok()) return false;
    SendTo(c, EncodeResponseHeader({seq, ""}) +
                  EncodeJoinResponseBody(static_cast<int32_t>(addrs.size())));
    return true;
  }
  if (cmd == "leave") {
    reply("");
    return false;
  }
  if (cmd == "stream") {
    std::string type;
    if (!DecodeStreamBody(*r.body, &type).ok()) return false;
    if (c.streams.count(seq) != 0) {
      reply("Stream with given sequence exists");
      return true;
    }
    reply("");
    c.streams.insert(seq);
    std::lock_guard<std::mutex> lock(mu_);
    ++open_streams_;
    cv_.notify_all();
    return true;
  }
  if (cmd == "stop") {
    uint64_t stream = 0;
    if (!DecodeStopBody(*r.body, &stream).ok()) return false;
    if (c.streams.erase(stream) != 0) {
      std::lock_guard<std::mutex> lock(mu_);
      --open_streams_;
    }
    reply("");
    return true;
  }
  reply(std::string(kSerfErrUnsupportedCommand));
  return false;
}

}  // namespace clustermgr::net
