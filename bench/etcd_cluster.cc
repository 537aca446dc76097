#include "bench/etcd_cluster.h"

#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>

#include "bench/etcd_client.h"

namespace clustermgr::bench {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::unique_ptr<EtcdCluster> EtcdCluster::Start(int n, const std::string& program,
                                                std::string* error) {
  std::unique_ptr<EtcdCluster> c(new EtcdCluster());
  c->program_ = program;
  c->dir_ = test::MakeTempDir("etcd-bench");
  c->token_ = "bench-" + std::to_string(getpid());
  for (int i = 1; i <= n; ++i) {
    Member m;
    m.name = "e" + std::to_string(i);
    m.client_url = "http://127.0.0.1:" + std::to_string(test::FreeLoopbackPort());
    m.peer_url = "http://127.0.0.1:" + std::to_string(test::FreeLoopbackPort());
    m.data_dir = c->dir_ + "/" + m.name;
    m.log_path = c->dir_ + "/" + m.name + ".log";
    if (!c->initial_cluster_.empty()) c->initial_cluster_ += ",";
    c->initial_cluster_ += m.name + "=" + m.peer_url;
    c->members_.push_back(std::move(m));
  }
  for (size_t i = 0; i < c->members_.size(); ++i) {
    if (!c->Launch(i, /*existing=*/false, error)) return nullptr;
  }
  const auto deadline = Clock::now() + 30s;
  for (size_t i = 0; i < c->members_.size(); ++i) {
    EtcdClient client(c->client_url(i));
    while (!client.Healthy()) {
      if (Clock::now() > deadline || !c->members_[i].process->Running()) {
        *error = "etcd member " + c->members_[i].name + " does not become healthy (" +
                 client.error() + "):\n" + c->LogTail(i);
        return nullptr;
      }
      std::this_thread::sleep_for(20ms);  // polling a state etcd has no push notification for
    }
  }
  return c;
}

EtcdCluster::~EtcdCluster() {
  for (auto& m : members_) {
    if (m.process) m.process->Kill();
  }
  test::RemoveTree(dir_);
}

pid_t EtcdCluster::pid(size_t i) const {
  return members_[i].process ? members_[i].process->pid() : -1;
}

void EtcdCluster::Stop(size_t i) {
  if (members_[i].process) members_[i].process->Stop();
}

bool EtcdCluster::Launch(size_t i, bool existing, std::string* error) {
  Member& m = members_[i];
  test::ProcessOptions p;
  p.program = program_;
  p.args = {"--name=" + m.name,
            "--data-dir=" + m.data_dir,
            "--listen-client-urls=" + m.client_url,
            "--advertise-client-urls=" + m.client_url,
            "--listen-peer-urls=" + m.peer_url,
            "--initial-advertise-peer-urls=" + m.peer_url,
            "--initial-cluster=" + initial_cluster_,
            "--initial-cluster-token=" + token_,
            std::string("--initial-cluster-state=") + (existing ? "existing" : "new"),
            "--logger=zap",
            "--log-level=warn"};
  p.output_path = m.log_path;
  std::string why;
  m.process = test::Process::Start(p, &why);
  if (!m.process) {
    *error = "cannot start etcd " + m.name + ": " + why;
    return false;
  }
  return true;
}

namespace {

// Retries a membership change for up to 15 s: right after a leader change or a removal etcd
// refuses it for a while ("leader changed", "unhealthy cluster").
bool Retry(const std::function<bool()>& call) {
  const auto deadline = Clock::now() + 15s;
  while (!call()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

}  // namespace

bool EtcdCluster::Replace(size_t i, std::string* error) {
  const size_t other = (i + 1) % members_.size();
  EtcdClient client(client_url(other));
  std::optional<std::uint64_t> id;
  const bool listed = Retry([&] {
    auto members = client.Members();
    if (!members) return false;
    for (const auto& m : *members) {
      if (m.peer_urls.size() == 1 && m.peer_urls[0] == members_[i].peer_url) id = m.id;
    }
    return true;
  });
  if (!listed || !id) {
    *error = "member list: " + (listed ? members_[i].name + " is not a member" : client.error());
    return false;
  }
  if (!Retry([&] { return client.RemoveMember(*id); })) {
    *error = "member remove: " + client.error();
    return false;
  }
  Stop(i);
  test::RemoveTree(members_[i].data_dir);
  if (!Retry([&] { return client.AddMember(members_[i].peer_url); })) {
    *error = "member add: " + client.error();
    return false;
  }
  return true;
}

std::string EtcdCluster::LogTail(size_t i) const {
  if (!members_[i].process) return "";
  const std::string all = members_[i].process->Output();
  return all.size() > 3000 ? all.substr(all.size() - 3000) : all;
}

}  // namespace clustermgr::bench
