// replication_bench: figures for replication between real clustermgrd processes on loopback
// (plain program; prints what it measures). clustermgrd is taken from this program's directory.
//
//   replication_bench [--writes N] [--seconds S] [--entries E] [--no-sync]
//
// 1. Visibility: N writes (`global set`, rotating over the instances, one at a time); after each
//    acknowledgement one watcher thread polls `global get` on every other instance, round
//    robin, until all show the write. Reports p50/p99/max of ack -> visible at all others, with
//    3 and with 5 instances. Resolution: one poll round (about (n-1) RPC round trips).
// 2. Throughput: 8 client threads, each with its own connection, `global set` to the instances
//    round robin for S seconds; then the time until every instance has applied everything.
//    Reports acknowledged writes/s and replicated writes/s (acks / time to full replication).
// 3. Restore: a data dir holding E globals written as E single-entry deltas of another origin
//    (so the 10,000-delta log cannot serve a newcomer: it needs a snapshot) is served by one
//    instance; a second, empty instance starts with --peer to it. Reports the time from its
//    start until its applied vector equals the first's, and the snapshot's chunk count.
// 4. Gossip bytes: from the instances' counters during (1): bytes published per delta (each
//    subscriber gets one copy), and the anti-entropy background per peer per second when idle.
// Data dirs live in a temp dir, removed at the end. Writes are synced unless --no-sync.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "net/rpc_client.h"
#include "store/store.h"
#include "base/testing/temp_dir.h"
#include "test/support/process.h"

namespace {

using namespace clustermgr;
using namespace std::chrono_literals;
using bench::BinDir;
using bench::Clock;
using bench::Counter;
using bench::Die;
using bench::Ms;
using bench::MustStatus;
using bench::Percentile;

bool PortFree(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = s >= 0 && bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (s >= 0) close(s);
  return ok;
}

// Three consecutive free ports: RPC, gossip, gossip + 1.
int FreePortTriple() {
  static int next = 20000 + static_cast<int>(getpid() % 20000);
  for (int tries = 0; tries < 2000; ++tries, next += 3) {
    if (next > 64000) next = 20000;
    if (PortFree(next) && PortFree(next + 1) && PortFree(next + 2)) {
      const int p = next;
      next += 3;
      return p;
    }
  }
  Die("no free ports");
}

class Daemon {
 public:
  Daemon(const std::string& bin, const std::string& dir, const std::string& name,
         std::vector<std::string> extra) {
    const int port = FreePortTriple();
    url_ = "tcp://127.0.0.1:" + std::to_string(port);
    gossip_ = "tcp://127.0.0.1:" + std::to_string(port + 1);
    data_ = dir + "/" + name;
    std::vector<std::string> args = {bin + "/clustermgrd",     "--name=" + name,
                                     "--data-dir=" + data_,    "--insecure",
                                     "--rpc-bind=" + url_,     "--gossip-bind=" + gossip_,
                                     "--serf-rpc=127.0.0.1:1", "--log-level=warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string log = dir + "/" + name + ".log";
    started_ = Clock::now();
    std::string error;
    process_ = test::Process::Start({.program = args[0],
                                     .args = std::vector<std::string>(args.begin() + 1, args.end()),
                                     .output_path = log},
                                    &error);
    if (!process_) Die(error);
    net::RpcClient probe(url_,
                         net::RpcClient::Options{200ms, net::kMaxReplyBytes, "", std::nullopt});
    const auto deadline = Clock::now() + 20s;
    while (!probe.Status().ok()) {
      if (Clock::now() > deadline) Die(name + " does not come up; see " + log);
    }
  }
  ~Daemon() { process_->Stop(); }
  const std::string& url() const { return url_; }
  const std::string& gossip() const { return gossip_; }
  Clock::time_point started() const { return started_; }

 private:
  std::unique_ptr<test::Process> process_;
  std::string url_, gossip_, data_;
  Clock::time_point started_;
};

// Starts n instances in a full mesh and waits until each sees all others.
std::vector<std::unique_ptr<Daemon>> StartCluster(const std::string& bin, const std::string& dir,
                                                  int n, const std::vector<std::string>& extra) {
  std::vector<std::unique_ptr<Daemon>> out;
  std::vector<std::string> peers;
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> args = extra;
    for (const auto& p : peers) args.push_back("--peer=" + p);
    if (!peers.empty()) args.push_back("--expect=1");  // no Serf: each counts itself alone
    out.push_back(std::make_unique<Daemon>(bin, dir, "m" + std::to_string(i + 1), args));
    peers.push_back(out.back()->gossip());
  }
  std::vector<std::string> urls;
  for (auto& d : out) urls.push_back(d->url());
  bench::WaitForMesh(urls);
  return out;
}

bool AllApplied(std::vector<std::unique_ptr<net::RpcClient>>& clients) {
  std::vector<net::OriginCount> first;
  for (size_t i = 0; i < clients.size(); ++i) {
    auto s = MustStatus(*clients[i]);
    if (i == 0) {
      first = s.applied;
    } else if (!(s.applied == first)) {
      return false;
    }
  }
  return true;
}

void Visibility(const std::string& bin, int n, int writes, const std::vector<std::string>& extra) {
  TempDir tmp("repl-bench");
  auto cluster = StartCluster(bin, tmp.path(), n, extra);
  std::vector<std::unique_ptr<net::RpcClient>> clients;
  for (auto& d : cluster) clients.push_back(std::make_unique<net::RpcClient>(d->url()));
  const auto before = MustStatus(*clients[0]);
  std::vector<double> all, one;
  for (int w = 0; w < writes; ++w) {
    const int at = w % n;
    const std::string value = "v" + std::to_string(w);
    auto r = clients[at]->GlobalSet("{\"k\":\"" + value + "\"}");
    const auto acked = Clock::now();
    if (!r.ok()) Die("write: " + r.status().message());
    std::vector<bool> seen(n, false);
    seen[at] = true;
    int left = n - 1;
    while (left > 0) {
      for (int i = 0; i < n; ++i) {
        if (seen[i]) continue;
        auto g = clients[i]->GlobalGet();
        if (g.ok() && g.value().find(value) != std::string::npos) {
          seen[i] = true;
          --left;
          if (left == n - 2) one.push_back(Ms(Clock::now() - acked));
        }
      }
      if (Ms(Clock::now() - acked) > 5000) Die("a write did not become visible within 5 s");
    }
    all.push_back(Ms(Clock::now() - acked));
  }
  const auto after = MustStatus(*clients[0]);
  std::printf(
      "visibility, %d instances, %d writes: ack -> visible at all others p50 %.2f ms, p99 %.2f "
      "ms, max %.2f ms (first other instance: p50 %.2f ms, p99 %.2f ms)\n",
      n, writes, Percentile(all, 0.5), Percentile(all, 0.99), Percentile(all, 1.0),
      Percentile(one, 0.5), Percentile(one, 0.99));
  const uint64_t published =
      Counter(after, "deltas_published") - Counter(before, "deltas_published");
  const uint64_t bytes = Counter(after, "bytes_published") - Counter(before, "bytes_published");
  if (published > 0) {
    std::printf("  gossip: %.0f bytes published per small update (one copy to each of %d peers)\n",
                static_cast<double>(bytes) / static_cast<double>(published), n - 1);
  }
  // Idle anti-entropy background.
  const auto idle0 = MustStatus(*clients[0]);
  std::this_thread::sleep_for(3s);
  const auto idle1 = MustStatus(*clients[0]);
  const double sent =
      static_cast<double>(Counter(idle1, "bytes_sent") - Counter(idle0, "bytes_sent"));
  const double received =
      static_cast<double>(Counter(idle1, "bytes_received") - Counter(idle0, "bytes_received"));
  std::printf("  idle anti-entropy: %.0f bytes/s sent and %.0f bytes/s received per peer\n",
              sent / 3 / (n - 1), received / 3 / (n - 1));
}

void Throughput(const std::string& bin, double seconds, const std::vector<std::string>& extra) {
  TempDir tmp("repl-bench");
  constexpr int kInstances = 3, kClients = 8;
  auto cluster = StartCluster(bin, tmp.path(), kInstances, extra);
  std::atomic<uint64_t> acked{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      net::RpcClient client(cluster[c % kInstances]->url());
      for (uint64_t n = 0; !stop; ++n) {
        auto r =
            client.GlobalSet("{\"k\":\"c" + std::to_string(c) + "-" + std::to_string(n) + "\"}");
        if (!r.ok()) Die("write: " + r.status().message());
        ++acked;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const auto t1 = Clock::now();
  std::vector<std::unique_ptr<net::RpcClient>> clients;
  for (auto& d : cluster) clients.push_back(std::make_unique<net::RpcClient>(d->url()));
  while (!AllApplied(clients)) std::this_thread::sleep_for(5ms);
  const auto t2 = Clock::now();
  std::printf(
      "throughput, 3 instances, 8 clients: %.0f acknowledged writes/s; %.0f replicated writes/s "
      "(all %llu applied everywhere %.0f ms after the last ack)\n",
      static_cast<double>(acked) / (Ms(t1 - t0) / 1e3),
      static_cast<double>(acked) / (Ms(t2 - t0) / 1e3),
      static_cast<unsigned long long>(acked.load()), Ms(t2 - t1));
}

void Restore(const std::string& bin, int entries, const std::vector<std::string>& extra) {
  TempDir tmp("repl-bench");
  bench::PrefillGlobalDeltas(tmp.Sub("m1"), "m1", entries);
  Daemon m1(bin, tmp.path(), "m1", extra);
  net::RpcClient c1(m1.url());
  const auto target = MustStatus(c1).applied;
  Daemon m2(bin, tmp.path(), "m2", [&] {
    auto a = extra;
    a.push_back("--peer=" + m1.gossip());
    a.push_back("--expect=1");  // no Serf: each counts itself alone
    return a;
  }());
  net::RpcClient c2(m2.url());
  for (;;) {
    auto s = MustStatus(c2);
    if (bench::Covers(s.applied, target)) {
      const double ms = Ms(Clock::now() - m2.started());
      std::printf(
          "restore of %d entries by a wiped instance: %.0f ms from its start to applied == the "
          "peer's (%llu snapshots, %llu chunks applied; %llu state entries)\n",
          entries, ms, static_cast<unsigned long long>(Counter(s, "snapshots_applied")),
          static_cast<unsigned long long>(Counter(s, "chunks_applied")),
          static_cast<unsigned long long>(s.state_entries));
      return;
    }
    if (Ms(Clock::now() - m2.started()) > 60'000) Die("restore did not finish in 60 s");
    std::this_thread::sleep_for(5ms);
  }
}

int Main(int argc, char** argv) {
  int writes = 500;
  double seconds = 5;
  int entries = 100'000;
  std::vector<std::string> extra;
  bool no_sync = false;
  namespace po = boost::program_options;
  po::options_description desc("replication_bench options");
  // clang-format off
  desc.add_options()
    ("writes", po::value(&writes)->default_value(writes)->value_name("N"),
       "writes of the latency run")
    ("seconds", po::value(&seconds)->default_value(seconds)->value_name("S"),
       "length of the throughput run")
    ("entries", po::value(&entries)->default_value(entries)->value_name("E"),
       "entries of the restore run")
    ("no-sync", po::bool_switch(&no_sync), "daemons run with --sync=false");
  // clang-format on
  bench::ParseFlags(argc, argv, "replication_bench", desc);
  if (no_sync) extra.push_back("--sync=false");
  signal(SIGPIPE, SIG_IGN);
  const std::string bin = BinDir();
  std::printf("clustermgrd from %s; writes %s\n", bin.c_str(),
              extra.empty() ? "synced" : "not synced");
  Visibility(bin, 3, writes, extra);
  Visibility(bin, 5, writes, extra);
  Throughput(bin, seconds, extra);
  Restore(bin, entries, extra);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clustermgr::bench::RunMain([&] { return Main(argc, argv); });
}
