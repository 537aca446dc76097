#include "net/testing/fake_rpc_handler.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <type_traits>
#include <zmq.hpp>

namespace clustermgr::net {

DeadEndpoint::DeadEndpoint() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
}

DeadEndpoint::~DeadEndpoint() {
  if (fd_ >= 0) ::close(fd_);
}

FakeManager::FakeManager(std::string instance, RpcServer::Options options)
    : instance_(std::move(instance)) {
  options.instance_name = instance_;
  auto bound_future = bound_.get_future();
  thread_ = std::thread([this, options] { Run(options); });
  endpoint_ = bound_future.get();  // empty = bind failed (the loop has ended)
}

FakeManager::~FakeManager() {
  stop_ = true;
  thread_.join();
}

void FakeManager::AddNode(NodeInfo node) {
  std::lock_guard lock(mu_);
  nodes_[node.name] = std::move(node);
}

void FakeManager::AddJob(JobInfo job, std::vector<std::string> log) {
  std::lock_guard lock(mu_);
  job.log_line_count = log.size();
  const std::string id = job.id;
  job_order_.push_back(id);
  jobs_[id] = Job{std::move(job), std::move(log)};
}

void FakeManager::AppendLog(const std::string& job_id, const std::string& line) {
  std::lock_guard lock(mu_);
  Job& job = jobs_.at(job_id);
  job.log.push_back(line);
  job.info.log_line_count = job.log.size();
}

void FakeManager::EndJob(const std::string& job_id, JobStatus status, std::string error) {
  std::lock_guard lock(mu_);
  Job& job = jobs_.at(job_id);
  job.info.status = status;
  job.info.error = std::move(error);
  job.info.ended_ms = 1700000000000;
}

void FakeManager::SetGlobals(std::string json) {
  std::lock_guard lock(mu_);
  globals_ = std::move(json);
}

void FakeManager::SetConfig(std::string json) {
  std::lock_guard lock(mu_);
  config_ = std::move(json);
}

void FakeManager::SetMembers(std::vector<MemberInfo> members) {
  std::lock_guard lock(mu_);
  members_ = std::move(members);
}

void FakeManager::SetToken(TokenInfo token) {
  std::lock_guard lock(mu_);
  token_ = std::move(token);
}

void FakeManager::SetStatus(StatusInfo status) {
  std::lock_guard lock(mu_);
  status_ = std::move(status);
}

void FakeManager::SetForcedReply(std::optional<RpcReply> reply) {
  std::lock_guard lock(mu_);
  forced_ = std::move(reply);
}

void FakeManager::SetSilent(bool silent) {
  std::lock_guard lock(mu_);
  silent_ = silent;
}

void FakeManager::SetHoldReplies(bool hold) {
  std::lock_guard lock(mu_);
  hold_ = hold;
}

void FakeManager::ReleaseHeld() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = ++release_requested_;
  cv_.wait(lock, [&] { return release_done_ >= target || loop_ended_; });
}

std::vector<IncomingRequest> FakeManager::Received() const {
  std::lock_guard lock(mu_);
  return received_;
}

bool FakeManager::WaitForRequests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
}

bool FakeManager::WaitForParked(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return parked_count_ >= n; });
}

RpcServerCounters FakeManager::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void FakeManager::Run(RpcServer::Options options) {
  zmq::context_t context(1);
  auto server = RpcServer::Bind(context, "tcp://127.0.0.1:*", std::move(options));
  if (!server.ok()) {
    {
      std::lock_guard lock(mu_);
      loop_ended_ = true;
    }
    bound_.set_value("");
    return;
  }
  RpcServer& s = *server.value();
  bound_.set_value(s.endpoint());
  std::vector<Parked> parked;
  Held held;
  while (!stop_) {
    zmq::pollitem_t item = s.PollItem();
    // A short poll so that state changes made by the test (new log lines, releases) are seen
    // promptly; it is the fake's heartbeat, not a synchronisation sleep.
    zmq::poll(&item, 1, std::chrono::milliseconds(5));
    std::unique_lock lock(mu_);
    if (release_requested_ > release_done_) {
      for (auto& [to, reply] : held) s.Reply(to, reply);
      held.clear();
      release_done_ = release_requested_;
      cv_.notify_all();
    }
    while (auto in = s.TryReceive()) {
      received_.push_back(*in);
      cv_.notify_all();
      if (silent_) continue;
      if (forced_) {
        Send(s, held, in->reply_to, *forced_);
        continue;
      }
      if (auto* follow = std::get_if<JobLogFollowRequest>(&in->request)) {
        parked.push_back(
            Parked{in->reply_to, *follow,
                   std::chrono::steady_clock::now() + std::chrono::milliseconds(follow->wait_ms)});
        continue;
      }
      Send(s, held, in->reply_to, Answer(in->request));
    }
    // Long-polls: answer those with news, an unknown job, or an expired wait.
    const auto now = std::chrono::steady_clock::now();
    for (auto it = parked.begin(); it != parked.end();) {
      auto job = jobs_.find(it->request.job_id);
      bool news = job == jobs_.end() || job->second.log.size() > it->request.from_line ||
                  JobEnded(job->second.info.status);
      if (news || now >= it->deadline) {
        Send(s, held, it->to, FollowAnswer(it->request));
        it = parked.erase(it);
      } else {
        ++it;
      }
    }
    parked_count_ = parked.size();
    counters_ = s.counters();
    cv_.notify_all();
  }
  std::lock_guard lock(mu_);
  loop_ended_ = true;
  cv_.notify_all();
}

void FakeManager::Send(RpcServer& s, Held& held, const ReplyTo& to, RpcReply reply) {
  if (hold_) {
    held.emplace_back(to, std::move(reply));
  } else {
    s.Reply(to, reply);
  }
}

RpcReply FakeManager::FollowAnswer(const JobLogFollowRequest& r) {
  auto it = jobs_.find(r.job_id);
  if (it == jobs_.end()) {
    return RpcReply::Error(Code::kNotFound, "info for \"" + r.job_id + "\" job doesn't exist");
  }
  const Job& job = it->second;
  JobLogChunk chunk;
  chunk.first_line = std::min<std::uint64_t>(r.from_line, job.log.size());
  chunk.lines.assign(job.log.begin() + static_cast<std::ptrdiff_t>(chunk.first_line),
                     job.log.end());
  chunk.status = job.info.status;
  chunk.error = job.info.error;
  chunk.ended = JobEnded(job.info.status);
  return RpcReply::Ok(std::move(chunk));
}

const FakeManager::Job* FakeManager::ActiveJob() const {
  for (const auto& id : job_order_) {
    const Job& job = jobs_.at(id);
    if (job.info.status == JobStatus::kQueued || job.info.status == JobStatus::kRunning) {
      return &job;
    }
  }
  return nullptr;
}

std::optional<RpcReply> FakeManager::CheckNodes(const std::vector<std::string>& names) const {
  if (const Job* active = ActiveJob()) {
    return RpcReply::Error(
        Code::kFailedPrecondition,
        "there is already an active job, please try in sometime. Job: " + active->info.desc);
  }
  if (names.empty()) {
    return RpcReply::Error(Code::kInvalidArgument, "atleast one node should be specified");
  }
  for (const auto& n : names) {
    if (nodes_.count(n) == 0) {
      return RpcReply::Error(Code::kNotFound,
                             "node with name or address \"" + n + "\" doesn't exists");
    }
  }
  return std::nullopt;
}

RpcReply FakeManager::StartJob(std::string desc, std::vector<std::string> nodes) {
  JobInfo job;
  job.id = std::to_string(++next_job_);
  job.desc = std::move(desc);
  job.nodes = std::move(nodes);
  job.status = JobStatus::kRunning;
  job.owner = instance_;
  job.epoch = 1;
  job.created_ms = job.started_ms = 1700000000000;
  std::string id = job.id;
  job_order_.push_back(id);
  jobs_[id] = Job{std::move(job), {}};
  return RpcReply::Ok(JobAccepted{id});
}

RpcReply FakeManager::Answer(const RpcRequest& request) {
  return std::visit(
      [&](const auto& r) -> RpcReply {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, NodeGetRequest>) {
          auto it = nodes_.find(r.name);
          if (it == nodes_.end()) {
            return RpcReply::Error(Code::kNotFound,
                                   "node with name or address \"" + r.name + "\" doesn't exists");
          }
          return RpcReply::Ok(it->second);
        } else if constexpr (std::is_same_v<T, NodesGetRequest>) {
          NodeList list;
          for (const auto& [name, node] : nodes_) list.nodes.push_back(node);
          return RpcReply::Ok(std::move(list));
        } else if constexpr (std::is_same_v<T, CommissionRequest>) {
          if (auto refused = CheckNodes(r.names)) return *refused;
          if (r.group.empty()) {
            return RpcReply::Error(Code::kInvalidArgument,
                                   "invalid or empty host-group specified: \"\"");
          }
          return StartJob("commission", r.names);
        } else if constexpr (std::is_same_v<T, DecommissionRequest>) {
          if (auto refused = CheckNodes(r.names)) return *refused;
          return StartJob("decommission", r.names);
        } else if constexpr (std::is_same_v<T, UpdateRequest>) {
          if (auto refused = CheckNodes(r.names)) return *refused;
          return StartJob("update", r.names);
        } else if constexpr (std::is_same_v<T, UpgradeRequest>) {
          if (auto refused = CheckNodes(r.names)) return *refused;
          return StartJob("upgrade", r.names);
        } else if constexpr (std::is_same_v<T, DiscoverRequest>) {
          return StartJob("discover", r.addrs);
        } else if constexpr (std::is_same_v<T, GlobalGetRequest>) {
          return RpcReply::Ok(JsonText{globals_});
        } else if constexpr (std::is_same_v<T, GlobalSetRequest>) {
          globals_ = r.extra_vars.empty() ? "{}" : r.extra_vars;
          return RpcReply::Ok();
        } else if constexpr (std::is_same_v<T, JobGetRequest>) {
          return AnswerJobGet(r);
        } else if constexpr (std::is_same_v<T, JobLogFollowRequest>) {
          return FollowAnswer(r);
        } else if constexpr (std::is_same_v<T, JobsListRequest>) {
          JobList list;
          for (const auto& id : job_order_) list.jobs.push_back(jobs_.at(id).info);
          return RpcReply::Ok(std::move(list));
        } else if constexpr (std::is_same_v<T, JobCancelRequest>) {
          return AnswerJobCancel(r);
        } else if constexpr (std::is_same_v<T, ConfigGetRequest>) {
          return RpcReply::Ok(JsonText{config_});
        } else if constexpr (std::is_same_v<T, ConfigSetRequest>) {
          config_ = r.config;
          return RpcReply::Ok();
        } else if constexpr (std::is_same_v<T, MembersRequest>) {
          return RpcReply::Ok(MemberList{members_});
        } else if constexpr (std::is_same_v<T, TokenRequest>) {
          return RpcReply::Ok(token_);
        } else if constexpr (std::is_same_v<T, StatusRequest>) {
          return RpcReply::Ok(status_);
        } else if constexpr (std::is_same_v<T, AuditListRequest>) {
          return RpcReply::Ok(JsonText{"[]"});
        } else {
          static_assert(std::is_same_v<T, StateDumpRequest>);
          return RpcReply::Error(Code::kUnimplemented, "the fake has no state to dump");
        }
      },
      request);
}

RpcReply FakeManager::AnswerJobGet(const JobGetRequest& r) {
  const Job* job = nullptr;
  if (r.label == "active") {
    job = ActiveJob();
  } else if (r.label == "last") {
    if (!job_order_.empty()) job = &jobs_.at(job_order_.back());
  } else if (r.label.empty()) {
    return RpcReply::Error(Code::kInvalidArgument, "Invalid or empty job label specified: \"\"");
  } else if (auto it = jobs_.find(r.label); it != jobs_.end()) {
    job = &it->second;
  }
  if (job == nullptr) {
    return RpcReply::Error(Code::kNotFound, "info for \"" + r.label + "\" job doesn't exist");
  }
  return RpcReply::Ok(JobDetail{job->info, 0, job->log});
}

RpcReply FakeManager::AnswerJobCancel(const JobCancelRequest& r) {
  Job* job = nullptr;
  if (r.job_id.empty()) {
    job = const_cast<Job*>(ActiveJob());
  } else if (auto it = jobs_.find(r.job_id); it != jobs_.end()) {
    job = &it->second;
  }
  if (job == nullptr || JobEnded(job->info.status)) {
    return RpcReply::Error(Code::kFailedPrecondition, "there is no active job");
  }
  job->info.status = JobStatus::kCancelled;
  return RpcReply::Ok(JobCancelled{job->info.id});
}

}  // namespace clustermgr::net
