#include "test/support/serf_agent.h"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// JSON string literal (the key is test data; escape what JSON requires).
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool PortTaken(const std::string& log) {
  return log.find("address already in use") != std::string::npos;
}

}  // namespace

SerfAgent::SerfAgent(SerfAgentOptions options, std::string dir, bool keep_dir)
    : options_(std::move(options)), dir_(std::move(dir)), keep_dir_(keep_dir) {}

SerfAgent::~SerfAgent() {
  client_.reset();
  process_.reset();  // SIGKILLs a running agent
  if (!keep_dir_) RemoveTree(dir_);
}

std::unique_ptr<SerfAgent> SerfAgent::Start(SerfAgentOptions options, std::string* error) {
  const std::string dir = MakeTempDir("clustermgr-serf");
  if (dir.empty()) {
    *error = "cannot create a temp dir";
    return nullptr;
  }
  const bool keep = std::getenv("CLUSTERMGR_KEEP_TEST_DIRS") != nullptr;
  const bool auto_name = options.name.empty();
  std::unique_ptr<SerfAgent> agent(new SerfAgent(std::move(options), dir, keep));
  if (!agent->options_.rpc_auth.empty()) {
    std::ofstream cfg(dir + "/config.json");
    cfg << "{\"rpc_auth\": " << JsonString(agent->options_.rpc_auth) << "}\n";
    if (!cfg) {
      *error = "cannot write " + dir + "/config.json";
      return nullptr;
    }
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    agent->bind_port_ = FreeLoopbackPort();
    agent->rpc_port_ = FreeLoopbackPort();
    if (auto_name) agent->options_.name = "agent-" + std::to_string(agent->bind_port_);
    if (agent->Launch(agent->options_.join, error)) return agent;
    if (!PortTaken(agent->LogTail())) return nullptr;
  }
  return nullptr;
}

net::SerfClientOptions SerfAgent::ClientOptions() const {
  net::SerfClientOptions o;
  o.address = rpc_address();
  o.auth_key = options_.rpc_auth;
  o.connect_timeout = 1s;
  o.request_timeout = 20s;  // `leave` waits for the leave broadcast
  o.reconnect_min = 10ms;
  o.reconnect_max = 200ms;
  return o;
}

bool SerfAgent::Launch(const std::vector<std::string>& join, std::string* error) {
  client_.reset();
  process_.reset();
  {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_.clear();
  }
  ProcessOptions p;
  p.program = options_.serf_binary;
  p.args = {"agent",
            "-profile=local",
            "-node=" + options_.name,
            "-bind=" + bind_address(),
            "-rpc-addr=" + rpc_address(),
            "-log-level=" + options_.log_level};
  if (!options_.rpc_auth.empty()) p.args.push_back("-config-file=" + dir_ + "/config.json");
  for (const auto& [k, v] : options_.tags) {
    p.args.push_back("-tag");
    p.args.push_back(k + "=" + v);
  }
  for (const auto& j : join) p.args.push_back("-join=" + j);
  p.output_path = log_path();
  p.working_dir = dir_;
  process_ = Process::Start(p, error);
  if (!process_) return false;

  // The control client retries with a short backoff until the agent's RPC listener is up;
  // meanwhile watch that the agent has not died.
  client_ = std::make_unique<net::SerfClient>(ClientOptions());
  (void)client_->SubscribeMembers([this](const net::SerfMemberEvent& e) { OnMemberEvent(e); });
  const auto deadline = Clock::now() + options_.start_timeout;
  auto fail = [&](const std::string& why) {
    *error = "serf agent " + options_.name + " " + why + "; log:\n" + LogTail();
    client_.reset();
    process_->Kill();
    return false;
  };
  while (true) {
    if (client_->WaitConnected(200ms).ok()) break;
    if (!process_->Running()) {
      return fail("exited during start (" + Process::DescribeStatus(*process_->exit_status()) +
                  ")");
    }
    if (Clock::now() >= deadline) {
      return fail("did not answer RPC within " + std::to_string(options_.start_timeout.count()) +
                  " ms (" + client_->ConnectionStatus().message() + ")");
    }
  }
  // Its own member list arrived; with join addresses, the join is done (serf joins before it
  // reports itself running, but its RPC listener is up earlier).
  const std::size_t want = join.empty() ? 1 : 2;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (!WaitForAliveMembers(want, std::max(left, 1ms))) {
    return fail(process_->Running() ? "did not join " + std::to_string(join.size()) + " address(es)"
                                    : "exited during start");
  }
  return true;
}

void SerfAgent::OnMemberEvent(const net::SerfMemberEvent& e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (e.type == net::SerfEventType::kResync) statuses_.clear();
  for (const auto& m : e.members) statuses_[m.name] = m.status;
  if (e.type == net::SerfEventType::kMemberReap) {
    for (const auto& m : e.members) statuses_.erase(m.name);
  }
  cv_.notify_all();
}

bool SerfAgent::WaitForAliveMembers(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    std::size_t alive = 0;
    for (const auto& [name, status] : statuses_) alive += status == "alive" ? 1 : 0;
    return alive >= count;
  });
}

bool SerfAgent::WaitForMemberStatus(const std::string& name, const std::string& status,
                                    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = statuses_.find(name);
    return it != statuses_.end() && it->second == status;
  });
}

std::string SerfAgent::Log() const {
  std::ifstream in(log_path(), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string SerfAgent::LogTail(std::size_t bytes) const {
  std::string log = Log();
  return log.size() <= bytes ? log : log.substr(log.size() - bytes);
}

void SerfAgent::Kill() {
  client_.reset();
  if (process_) process_->Kill();
}

void SerfAgent::Terminate() {
  client_.reset();
  if (process_) process_->Stop();
}

Status SerfAgent::Leave(std::chrono::milliseconds timeout) {
  if (!client_ || !process_) return {Code::kUnavailable, "serf agent not running"};
  Status st = client_->Leave();
  client_.reset();
  if (!st.ok()) return st;
  if (!process_->Wait(timeout)) {
    return {Code::kOutcomeUnknown, "serf agent " + options_.name + " did not exit after leave"};
  }
  return Status::Ok();
}

bool SerfAgent::Interrupt(std::chrono::milliseconds timeout) {
  if (!process_) return false;
  client_.reset();
  process_->Signal(SIGINT);
  return process_->Wait(timeout).has_value();
}

bool SerfAgent::Restart(std::string* error, std::optional<std::vector<std::string>> join) {
  Kill();
  const std::vector<std::string> addrs = join ? *join : options_.join;
  // Same ports: the old sockets are gone with the process (Go sets SO_REUSEADDR), but another
  // process could have grabbed a port meanwhile; that is reported as an error.
  return Launch(addrs, error);
}

Status SerfAgent::SetTags(const std::map<std::string, std::string>& set,
                                   const std::vector<std::string>& remove) {
  if (!client_) return {Code::kUnavailable, "serf agent not running"};
  Status st = client_->SetTags(set, remove);
  if (st.ok()) {
    for (const auto& k : remove) options_.tags.erase(k);
    for (const auto& [k, v] : set) options_.tags[k] = v;
  }
  return st;
}

Result<int32_t> SerfAgent::Join(const std::vector<std::string>& addresses) {
  if (!client_) return Status(Code::kUnavailable, "serf agent not running");
  return client_->Join(addresses);
}

Result<std::vector<net::SerfMember>> SerfAgent::Members() {
  if (!client_) return Status(Code::kUnavailable, "serf agent not running");
  return client_->Members();
}

}  // namespace clustermgr::test
