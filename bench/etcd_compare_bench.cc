// etcd_compare_bench: clustermgr and etcd side by side on this machine, the same workloads with
// the same client concurrency. Plain program; prints one table and, with --out-dir,
// writes it as etcd-compare.md and etcd-compare.csv there (scripts/bench-vs-etcd.sh draws the
// chart from the CSV).
//
//   etcd_compare_bench [--runs R (5)] [--writes N] [--seconds S] [--keys K] [--nodes N]
//                      [--extra-vars E] [--etcd PROGRAM] [--out-dir DIR]
//
// clustermgrd comes from this program's directory, etcd from $PATH (Debian's etcd-server).
// Each system runs as 3 instances on loopback with its own temp dirs, removed at the end.
// clustermgr is driven through its client library (net/rpc_client.h), etcd through its HTTP/JSON
// gRPC gateway with keep-alive connections (libcurl); N client threads = N connections for both.
// Both are durable: clustermgrd syncs every acknowledged write (the default), etcd fsyncs its WAL
// (its default; no --unsafe-no-fsync).
//
// Figures (each over R runs: median, min and max; ratio = clustermgr / etcd):
//   write latency      1 client, N small writes rotating over the instances, p50 and p99
//   ack -> visible     after each of those acks, every other instance is polled round robin
//                      with a local read (etcd: serializable range) until all return the value
//   throughput         1, 8 and 64 client threads writing for S seconds, spread round robin
//                      over the instances; acknowledged writes per second
//   restart            one instance of a cluster holding K keys is stopped (SIGTERM) and started
//                      again; time from its start until a local read serves all K keys
//   restore            one instance is stopped and its data deleted (etcd: member remove, then
//                      member add, as a new member); time from its start until it serves all K
//   memory             VmRSS of one instance restarted on E extra-vars and N nodes, 1 s after
//                      it serves them all
//   wire bytes         payload bytes received from peers by all instances during the latency
//                      runs, less the idle rate measured just before, per write and per peer
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "bench/compare_table.h"
#include "bench/etcd_client.h"
#include "bench/etcd_cluster.h"
#include "net/rpc_client.h"
#include "store/store.h"
#include "test/support/process.h"
#include "test/support/replicated_cluster.h"

namespace {

using namespace clustermgr;
using namespace std::chrono_literals;
using bench::Clock;
using bench::Die;
using bench::Ms;
using bench::MustStatus;

struct Options {
  int runs = 5;
  int writes = 300;
  double seconds = 3;
  int keys = 100'000;
  int nodes = 10'000;
  int extra_vars = 100'000;
  std::string etcd = "etcd";
  std::string out_dir;
};

constexpr int kInstances = 3;
const std::vector<int> kConcurrency = {1, 8, 64};

using bench::Runs;

// ---- the workloads both systems run ------------------------------------------------------------

// A small-write client of one instance: the same workload code drives both systems.
class KvClient {
 public:
  virtual ~KvClient() = default;
  // Writes `value` (a few bytes) under the benchmark's key; false on failure (see error()).
  virtual bool Write(const std::string& value) = 0;
  // True when this instance's local read of the key returns `value`.
  virtual bool Sees(const std::string& value) = 0;
  virtual std::string error() const = 0;
};

// clustermgr: `global set {"k": value}` (a one-entry globals map) and `global get`.
class ClustermgrKv : public KvClient {
 public:
  explicit ClustermgrKv(const std::string& url) : client_(url) {}
  bool Write(const std::string& value) override {
    auto r = client_.GlobalSet("{\"k\":\"" + value + "\"}");
    if (!r.ok()) error_ = r.status().message();
    return r.ok();
  }
  bool Sees(const std::string& value) override {
    auto r = client_.GlobalGet();
    return r.ok() && r.value().find("\"" + value + "\"") != std::string::npos;
  }
  std::string error() const override { return error_; }

 private:
  net::RpcClient client_;
  std::string error_;
};

// etcd: put "k" and a serializable range of "k" at this member.
class EtcdKv : public KvClient {
 public:
  explicit EtcdKv(const std::string& url) : client_(url) {}
  bool Write(const std::string& value) override { return client_.Put("k", value); }
  bool Sees(const std::string& value) override {
    bool found = false;
    auto v = client_.GetSerializable("k", &found);
    return v && found && *v == bench::Base64(value);
  }
  std::string error() const override { return client_.error(); }

 private:
  bench::EtcdClient client_;
};

struct System {
  std::string name;
  std::function<std::unique_ptr<KvClient>(int instance)> client;
  // Payload bytes all instances have received from their peers so far.
  std::function<double()> wire_bytes;
  // The process ids of the instances (for their CPU time).
  std::function<std::vector<pid_t>()> pids;
};

double CpuSeconds(const System& sys) {
  double sum = 0;
  for (pid_t pid : sys.pids()) sum += bench::CpuSeconds(pid);
  return sum;
}

// One run of N writes, one at a time, rotating over the instances: write latency, ack -> visible
// at every other instance, and wire bytes per write per peer.
void LatencyRun(const System& sys, int writes, int run, Runs& out) {
  std::vector<std::unique_ptr<KvClient>> clients;
  for (int i = 0; i < kInstances; ++i) clients.push_back(sys.client(i));
  for (int i = 0; i < kInstances; ++i) {  // connect and warm up each path
    if (!clients[i]->Write("warm" + std::to_string(i))) Die(sys.name + ": " + clients[i]->error());
  }
  const double idle0 = sys.wire_bytes();
  const auto idle_t0 = Clock::now();
  std::this_thread::sleep_for(1s);  // the idle background (heartbeats, anti-entropy) to subtract
  const double idle_rate = (sys.wire_bytes() - idle0) / Ms(Clock::now() - idle_t0);

  std::vector<double> latency, visible;
  const double bytes0 = sys.wire_bytes();
  const auto t0 = Clock::now();
  for (int w = 0; w < writes; ++w) {
    const int at = w % kInstances;
    const std::string value = "r" + std::to_string(run) + "w" + std::to_string(w);
    const auto sent = Clock::now();
    if (!clients[at]->Write(value)) Die(sys.name + " write: " + clients[at]->error());
    const auto acked = Clock::now();
    latency.push_back(Ms(acked - sent));
    std::vector<bool> seen(kInstances, false);
    seen[at] = true;
    for (int left = kInstances - 1; left > 0;) {
      for (int i = 0; i < kInstances; ++i) {
        if (!seen[i] && clients[i]->Sees(value)) {
          seen[i] = true;
          --left;
        }
      }
      if (Ms(Clock::now() - acked) > 10'000) Die(sys.name + ": a write is not visible in 10 s");
    }
    visible.push_back(Ms(Clock::now() - acked));
  }
  const double bytes = sys.wire_bytes() - bytes0 - idle_rate * Ms(Clock::now() - t0);
  out["write_p50"].push_back(bench::Percentile(latency, 0.5));
  out["write_p99"].push_back(bench::Percentile(latency, 0.99));
  out["visible_p50"].push_back(bench::Percentile(visible, 0.5));
  out["visible_p99"].push_back(bench::Percentile(visible, 0.99));
  out["wire_bytes"].push_back(std::max(0.0, bytes) / writes / (kInstances - 1));
}

// `threads` clients, each with its own connection, write as fast as they are acknowledged for
// `seconds`; returns acknowledged writes per second.
// The first error of several worker threads (Die is for the main thread: it unwinds the stack
// that owns the clusters).
class FirstError {
 public:
  void Set(const std::string& error) {
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = error;
  }
  void DieIfAny() {
    std::lock_guard lock(mu_);
    if (!error_.empty()) Die(error_);
  }

 private:
  std::mutex mu_;
  std::string error_;
};

// `threads` clients, each with its own connection, write as fast as they are acknowledged for
// `seconds`; returns acknowledged writes per second.
double ThroughputRun(const System& sys, int threads, double seconds) {
  std::atomic<uint64_t> acked{0};
  std::atomic<bool> stop{false};
  FirstError failed;
  std::latch ready(threads), go(1);
  std::vector<std::thread> workers;
  for (int c = 0; c < threads; ++c) {
    workers.emplace_back([&, c] {
      auto client = sys.client(c % kInstances);
      const std::string prefix = "c" + std::to_string(c) + "-";
      const bool warm = client->Write(prefix + "warm");  // connects
      ready.count_down();
      go.wait();
      for (uint64_t n = 0; warm && !stop; ++n) {
        if (!client->Write(prefix + std::to_string(n))) break;
        if (!stop) ++acked;
      }
      if (!stop) {
        failed.Set(sys.name + " write: " + client->error());
        stop = true;
      }
    });
  }
  ready.wait();
  const auto t0 = Clock::now();
  go.count_down();
  const auto until = t0 + std::chrono::duration<double>(seconds);
  while (!stop && Clock::now() < until) std::this_thread::sleep_for(10ms);
  stop = true;
  const double elapsed = Ms(Clock::now() - t0) / 1e3;
  for (auto& t : workers) t.join();
  failed.DieIfAny();
  return static_cast<double>(acked) / elapsed;
}

void WriteWorkloads(const System& sys, const Options& o, Runs& out) {
  for (int run = 0; run < o.runs; ++run) {
    LatencyRun(sys, o.writes, run, out);
    std::printf("  %s latency run %d: write p50 %.2f ms, visible p99 %.2f ms\n", sys.name.c_str(),
                run + 1, out["write_p50"].back(), out["visible_p99"].back());
  }
  for (int threads : kConcurrency) {
    for (int run = 0; run < o.runs; ++run) {
      const double cpu0 = CpuSeconds(sys);
      const double rate = ThroughputRun(sys, threads, o.seconds);
      out["tput_" + std::to_string(threads)].push_back(rate);
      if (threads == 8) {
        // Includes the unacknowledged writes in flight at the end: a slight overestimate.
        out["cpu_8"].push_back((CpuSeconds(sys) - cpu0) * 1e6 / (rate * o.seconds));
      }
      std::printf("  %s throughput, %d clients, run %d: %.0f writes/s\n", sys.name.c_str(), threads,
                  run + 1, rate);
    }
  }
}

// Polls `serves_all` (a local read at the instance under test) until it is true; returns the
// ms since `started`. Dies after 120 s.
double TimeUntil(Clock::time_point started, const std::function<bool()>& serves_all,
                 const std::string& what) {
  while (!serves_all()) {
    if (Ms(Clock::now() - started) > 120'000) Die(what + " did not finish within 120 s");
    std::this_thread::sleep_for(1ms);  // polling: neither system notifies a reader of this
  }
  return Ms(Clock::now() - started);
}

// ---- clustermgr --------------------------------------------------------------------------------

test::InstanceOptions Synced(const std::string& name) {
  test::InstanceOptions o;
  o.name = name;
  o.sync = true;  // clustermgrd's default; the harness turns it off unless asked
  o.extra_args = {"--log-level=warn"};  // as etcd runs (--log-level=warn)
  return o;
}

test::ReplicatedCluster::Instance& MustAdd(test::ReplicatedCluster& c,
                                           const test::InstanceOptions& o) {
  std::string error;
  auto* in = c.Add(o, &error);
  if (in == nullptr) Die(error);
  return *in;
}

void MustStart(test::ReplicatedCluster::Instance& in) {
  std::string error;
  if (!in.Start(&error)) Die(error);
}

// The number of globals instance `url` serves (one full read).
size_t GlobalCount(const std::string& url) {
  net::RpcClient c(url);
  auto g = c.GlobalGet();
  if (!g.ok()) Die("global get: " + g.status().message());
  return nlohmann::json::parse(g.value()).size();
}

std::string ClustermgrWrites(const Options& o, Runs& out) {
  test::ReplicatedCluster cluster(bench::BinDir());
  std::vector<std::string> urls;
  for (int i = 1; i <= kInstances; ++i) {
    urls.push_back(MustAdd(cluster, Synced("m" + std::to_string(i))).url());
  }
  bench::WaitForMesh(urls);
  const std::string version = MustStatus(cluster.at(0).client()).version;
  System sys;
  sys.name = "clustermgr";
  sys.client = [&](int i) { return std::make_unique<ClustermgrKv>(urls[i]); };
  sys.wire_bytes = [&] {
    double sum = 0;
    for (size_t i = 0; i < cluster.size(); ++i) {
      sum +=
          static_cast<double>(bench::Counter(MustStatus(cluster.at(i).client()), "bytes_received"));
    }
    return sum;
  };
  sys.pids = [&] {
    std::vector<pid_t> pids;
    for (size_t i = 0; i < cluster.size(); ++i) pids.push_back(cluster.at(i).pid());
    return pids;
  };
  WriteWorkloads(sys, o, out);
  return version;
}

void ClustermgrRestartRestore(const Options& o, Runs& out) {
  test::ReplicatedCluster cluster(bench::BinDir());
  auto& m1 = MustAdd(cluster, Synced("m1"));
  m1.Stop();
  m1.Wipe();
  bench::PrefillGlobalDeltas(m1.data_dir(), "m1", o.keys);
  MustStart(m1);
  const auto target = MustStatus(m1.client()).applied;
  for (int i = 2; i <= kInstances; ++i) {
    auto& in = MustAdd(cluster, Synced("m" + std::to_string(i)));
    TimeUntil(
        Clock::now(), [&] { return bench::Covers(MustStatus(in.client()).applied, target); },
        "the initial restore of " + in.name());
  }
  auto& m3 = cluster.at(kInstances - 1);
  std::unique_ptr<net::RpcClient> poll;
  auto serves_all = [&] {
    if (!poll) {
      net::RpcClient::Options options;
      options.timeout = 20ms;
      poll = std::make_unique<net::RpcClient>(m3.url(), options);
    }
    auto s = poll->Status();
    if (s.ok()) return bench::Covers(s.value().applied, target);
    if (s.status().message().rfind("could not connect", 0) == 0) {
      // Not up yet. A fresh connection tries at once: ZeroMQ retries a refused connect only
      // every 100 ms, which would hide up to that much of the start.
      poll.reset();
    } else {
      poll->set_timeout(10s);  // connected, but busy loading: wait for its answer
    }
    return false;
  };
  // Restart: stop and start on the same data; restore: the same with the data dir deleted.
  for (const std::string what : {"restart", "restore"}) {
    for (int run = 0; run < o.runs; ++run) {
      m3.Stop();
      if (what == "restore") m3.Wipe();
      poll.reset();
      FirstError failed;
      const auto t0 = Clock::now();
      {
        // Start() returns once its own probe got an answer; this thread polls meanwhile.
        std::jthread starter([&] {
          std::string error;
          if (!m3.Start(&error)) failed.Set(error);
        });
        out[what].push_back(TimeUntil(t0, serves_all, what));
      }
      failed.DieIfAny();
      if (GlobalCount(m3.url()) != static_cast<size_t>(o.keys)) Die(what + ": m3 lacks globals");
      std::printf("  clustermgr %s run %d: %.0f ms\n", what.c_str(), run + 1, out[what].back());
    }
  }
}

void ClustermgrMemory(const Options& o, Runs& out) {
  test::ReplicatedCluster cluster(bench::BinDir());
  auto& m1 = MustAdd(cluster, Synced("m1"));
  m1.Stop();
  m1.Wipe();
  {
    store::Options so;
    so.instance_name = "m1";
    so.sync = false;  // a bulk load; the daemon syncs its own writes
    auto st = store::Store::Open(m1.data_dir(), so);
    if (!st.ok()) Die(st.status().ToString());
    bench::PrefillInventory(**st, o.extra_vars, o.nodes);
  }
  for (int run = 0; run < o.runs; ++run) {
    if (run > 0) m1.Stop();
    MustStart(m1);  // Start answers once the whole store is loaded (the daemon serves from memory)
    const auto status = MustStatus(m1.client());
    std::this_thread::sleep_for(1s);
    out["rss"].push_back(static_cast<double>(bench::ResidentBytes(m1.pid())) / 1e6);
    std::printf("  clustermgr memory run %d: %.1f MB (%llu state entries)\n", run + 1,
                out["rss"].back(), static_cast<unsigned long long>(status.state_entries));
  }
}

// ---- etcd --------------------------------------------------------------------------------------

std::unique_ptr<bench::EtcdCluster> MustStartEtcd(const Options& o) {
  std::string error;
  auto c = bench::EtcdCluster::Start(kInstances, o.etcd, &error);
  if (!c) Die(error);
  return c;
}

// Puts `count` keys made by make(i), i = first .. first+count-1, in transactions of 128 puts
// from 4 threads (one connection each, to the members in turn).
void EtcdFill(bench::EtcdCluster& c, int first, int count,
              const std::function<std::pair<std::string, std::string>(int)>& make) {
  constexpr int kThreads = 4, kTxn = 128;
  FirstError failed;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      bench::EtcdClient client(c.client_url(t % c.size()));
      std::vector<std::pair<std::string, std::string>> kvs;
      for (int base = t * kTxn; base < count; base += kThreads * kTxn) {
        kvs.clear();
        for (int i = base; i < std::min(count, base + kTxn); ++i) kvs.push_back(make(first + i));
        if (!client.PutMany(kvs)) return failed.Set("etcd fill: " + client.error());
      }
    });
  }
  for (auto& t : threads) t.join();
  failed.DieIfAny();
}

void EtcdWrites(const Options& o, Runs& out) {
  auto cluster = MustStartEtcd(o);
  std::vector<std::unique_ptr<bench::EtcdClient>> metrics;
  for (size_t i = 0; i < cluster->size(); ++i) {
    metrics.push_back(std::make_unique<bench::EtcdClient>(cluster->client_url(i)));
  }
  System sys;
  sys.name = "etcd";
  sys.client = [&](int i) { return std::make_unique<EtcdKv>(cluster->client_url(i)); };
  sys.wire_bytes = [&] {
    double sum = 0;
    for (auto& m : metrics) {
      auto v = m->MetricSum("etcd_network_peer_received_bytes_total");
      if (!v) Die("etcd metrics: " + m->error());
      sum += *v;
    }
    return sum;
  };
  sys.pids = [&] {
    std::vector<pid_t> pids;
    for (size_t i = 0; i < cluster->size(); ++i) pids.push_back(cluster->pid(i));
    return pids;
  };
  WriteWorkloads(sys, o, out);
}

// "etcd 3.4.23", from the first line of `etcd --version` ("etcd Version: 3.4.23").
std::string EtcdVersion(const Options& o) {
  const std::string dir = test::MakeTempDir("etcd-version");
  test::ProcessOptions p;
  p.program = o.etcd;
  p.args = {"--version"};
  p.output_path = dir + "/out";
  std::string error;
  auto process = test::Process::Start(p, &error);
  if (!process) Die(error);
  if (!process->Wait(10s)) process->Kill();
  std::string text = process->Output();
  test::RemoveTree(dir);
  text = text.substr(0, text.find('\n'));
  const std::string prefix = "etcd Version: ";
  return "etcd " + (text.rfind(prefix, 0) == 0 ? text.substr(prefix.size()) : text);
}

void EtcdRestartRestore(const Options& o, Runs& out) {
  auto cluster = MustStartEtcd(o);
  EtcdFill(*cluster, 1, o.keys, [](int i) {
    return std::pair{bench::ExtraVarName(i), bench::ExtraVarValue(i)};
  });
  const size_t last = cluster->size() - 1;
  auto serves_all = [&] {
    bench::EtcdClient client(cluster->client_url(last));
    return client.CountSerializable("extra_var_") == o.keys;
  };
  // Restart: stop and start on the same data; restore: remove the member, delete its data,
  // add it back as a new member and start it.
  for (const std::string what : {"restart", "restore"}) {
    for (int run = 0; run < o.runs; ++run) {
      std::string error;
      if (what == "restart") {
        cluster->Stop(last);
      } else if (!cluster->Replace(last, &error)) {
        Die(error);
      }
      const auto t0 = Clock::now();
      if (!cluster->Launch(last, /*existing=*/what == "restore", &error)) Die(error);
      out[what].push_back(TimeUntil(t0, serves_all, "etcd " + what));
      std::printf("  etcd %s run %d: %.0f ms\n", what.c_str(), run + 1, out[what].back());
    }
  }
}

// A node as clustermgr holds it (inventory record, host-group, three node vars), as one JSON
// value: what a user keeping this state in etcd would store per node.
std::string NodeValue(int i) {
  const std::string addr = "10." + std::to_string(i / 65536) + "." +
                           std::to_string((i / 256) % 256) + "." + std::to_string(i % 256);
  nlohmann::json j = {
      {"status", "allocated"},
      {"state", "discovered"},
      {"addr", addr},
      {"tags", {{"NodeLabel", "node"}, {"NodeSerial", std::to_string(i)}, {"NodeAddr", addr}}},
      {"serf_status", "alive"},
      {"updated_ms", 1'700'000'000'000},
      {"host_group", i % 10 == 0 ? "service-master" : "service-worker"},
      {"vars",
       {{"var0", std::to_string(i)},
        {"var1", std::to_string(i + 1)},
        {"var2", std::to_string(i + 2)}}}};
  return j.dump();
}

void EtcdMemory(const Options& o, Runs& out) {
  auto cluster = MustStartEtcd(o);
  EtcdFill(*cluster, 0, o.extra_vars, [](int i) {
    return std::pair{bench::ExtraVarName(i), bench::ExtraVarValue(i)};
  });
  EtcdFill(*cluster, 0, o.nodes, [](int i) {
    return std::pair{"node-" + std::to_string(i), NodeValue(i)};
  });
  const size_t last = cluster->size() - 1;
  for (int run = 0; run < o.runs; ++run) {
    cluster->Stop(last);
    const auto t0 = Clock::now();
    std::string error;
    if (!cluster->Launch(last, /*existing=*/false, &error)) Die(error);
    TimeUntil(
        t0,
        [&] {
          bench::EtcdClient client(cluster->client_url(last));
          return client.CountSerializable("node-") == o.nodes &&
                 client.CountSerializable("extra_var_") == o.extra_vars;
        },
        "etcd restart");
    std::this_thread::sleep_for(1s);
    out["rss"].push_back(static_cast<double>(bench::ResidentBytes(cluster->pid(last))) / 1e6);
    std::printf("  etcd memory run %d: %.1f MB\n", run + 1, out["rss"].back());
  }
}

}  // namespace

namespace {

// ---- the table ---------------------------------------------------------------------------------

// The rows, with the targets set for clustermgr.
std::vector<bench::Row> Rows(const Options& o) {
  using G = bench::Row::Goal;
  const std::string keys = std::to_string(o.keys);
  return {
      {"write_p50", "write latency at the receiving instance p50 (1 client)", "ms", false,
       G::kRatioAtMost, 0.25, "<= 1/4 of etcd"},
      {"write_p99", "write latency at the receiving instance p99 (1 client)", "ms", false, G::kNone,
       0, ""},
      {"visible_p50", "ack -> visible at every instance p50", "ms", false, G::kNone, 0, ""},
      {"visible_p99", "ack -> visible at every instance p99", "ms", false, G::kBelow, 5, "< 5 ms"},
      {"tput_1", "sustained write throughput (1 client)", "writes/s", true, G::kNone, 0, ""},
      {"tput_8", "sustained write throughput (8 clients)", "writes/s", true, G::kRatioAtLeast, 10,
       ">= 10x etcd"},
      {"tput_64", "sustained write throughput (64 clients)", "writes/s", true, G::kNone, 0, ""},
      {"cpu_8", "CPU time of all 3 instances per write (8 clients)", "us", false, G::kNone, 0, ""},
      {"restart", "restart of one instance holding " + keys + " keys until it serves them all",
       "ms", false, G::kBelow, 1000, "< 1000 ms"},
      {"restore", "wiped instance: restore " + keys + " keys from peers", "ms", false, G::kBelow,
       2000, "< 2000 ms"},
      {"rss",
       "resident memory: " + std::to_string(o.nodes) + " nodes + " + std::to_string(o.extra_vars) +
           " extra-vars",
       "MB", false, G::kBelow, 200, "< 200 MB"},
      {"wire_bytes", "bytes on the wire per small write per peer", "bytes", false, G::kNone, 0, ""},
  };
}

std::string Markdown(const std::vector<bench::Line>& lines, const Options& o,
                     const std::string& cm_version, const std::string& etcd_version,
                     const std::string& load) {
  std::string md = "# clustermgr vs etcd\n\n";
  md += "clustermgr " + cm_version + " (Release build) and " + etcd_version +
        " (Debian etcd-server), 3 instances each on loopback, on this machine (" +
        std::to_string(std::thread::hardware_concurrency()) + " cores). Each figure: median of " +
        std::to_string(o.runs) + " runs [min - max].\n\n";
  md += bench::MarkdownTable(lines, "clustermgr", "etcd");
  md += "\nLoad average (1, 5, 15 min) " + load +
        ": the machine is shared with other work, which shows most in the p99 figures.\n";
  md += R"(
Notes:
- Both durable: clustermgrd syncs every acknowledged write to disk (its default, `--sync=true`);
  etcd fsyncs its WAL before acknowledging (its default; no `--unsafe-no-fsync`).
- Clients: etcd is driven through its HTTP/JSON gRPC gateway (`/v3/kv/put`, `/v3/kv/range`
  with `serializable: true`) with keep-alive connections (libcurl) from the same C++ program;
  clustermgr through its client library (ZeroMQ + Cap'n Proto). N client threads = N
  connections for both, spread round robin over the 3 instances.
- A small write: clustermgr `global set {"k": "<value>"}`, etcd a put of key `k`; values of a
  few bytes. Latency runs: )" +
        std::to_string(o.writes) + R"( writes one at a time rotating over the instances.
- ack -> visible: from the acknowledgement until a local read at every other instance returns
  the value (clustermgr `global get`, etcd a serializable range), polled round robin: the
  resolution is one poll round (about two request round trips).
- Throughput: acknowledged writes per second over )" +
        bench::Num(o.seconds) + R"( s per run.
- CPU time: user + system time of the 3 server processes (/proc/<pid>/stat) during the
  8-client runs, per acknowledged write; the clients' CPU (libcurl and JSON for etcd) is not
  included.
- Restart: SIGTERM, then start on the same data; time from the process start until a local
  read serves all keys (clustermgr: its applied version vector covers the peers', then checked
  with a full `global get`; etcd: a serializable count-only range). Restore: clustermgr stops
  the instance, deletes its data dir and starts it with the same name and peers; etcd removes
  the member, deletes its data dir, adds it back as a new member and starts it with
  `--initial-cluster-state=existing`; timed the same way. Keys hold the same JSON values.
- Memory: VmRSS (/proc/<pid>/status) of one instance restarted on the data, 1 s after it
  serves it all. clustermgr: one instance on a data dir prefilled through the store API (each
  node: inventory record, one host-group, three node vars; plus the extra-vars); etcd: a member
  of the 3-member cluster holding the same extra-vars as keys plus one key per node with the
  same fields as a JSON value.
- Wire bytes: application payload received from peers by all instances during the latency
  runs (clustermgr: gossip counter `bytes_received`; etcd: `etcd_network_peer_received_bytes_total`
  from /metrics), less the idle background rate measured just before, per write and per peer;
  TCP/IP, ZMTP and HTTP/2 framing not included.
)";
  return md;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) Die("cannot write " + path);
}

// "0.52 0.61 0.70" from /proc/loadavg.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

Options Parse(int argc, char** argv) {
  namespace po = boost::program_options;
  Options o;
  po::options_description desc("etcd_compare_bench options");
  // clang-format off
  desc.add_options()
    ("runs", po::value(&o.runs)->default_value(o.runs)->value_name("R"), "runs per workload")
    ("writes", po::value(&o.writes)->default_value(o.writes)->value_name("N"),
       "writes per latency run")
    ("seconds", po::value(&o.seconds)->default_value(o.seconds)->value_name("S"),
       "length of a throughput run")
    ("keys", po::value(&o.keys)->default_value(o.keys)->value_name("K"),
       "keys of the restart and restore runs")
    ("nodes", po::value(&o.nodes)->default_value(o.nodes)->value_name("N"),
       "nodes of the memory run")
    ("extra-vars", po::value(&o.extra_vars)->default_value(o.extra_vars)->value_name("N"),
       "extra-vars of the memory run")
    ("etcd", po::value(&o.etcd)->default_value(o.etcd)->value_name("PROGRAM"), "etcd binary")
    ("out-dir", po::value(&o.out_dir)->default_value(o.out_dir)->value_name("DIR"),
       "where the table, CSV and chart go");
  // clang-format on
  bench::ParseFlags(argc, argv, "etcd_compare_bench", desc);
  if (o.runs < 1 || o.writes < 1 || o.seconds <= 0 || o.keys < 1 || o.nodes < 0 ||
      o.extra_vars < 0) {
    std::fprintf(stderr, "etcd_compare_bench: counts must be positive\n");
    std::exit(2);
  }
  return o;
}

int Main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines show up in a log as they come
  signal(SIGPIPE, SIG_IGN);
  bench::EtcdClient::GlobalInit();
  const std::string etcd_version = EtcdVersion(o);
  const std::string load_at_start = LoadAverage();
  std::printf("clustermgrd from %s; %s\n", bench::BinDir().c_str(), etcd_version.c_str());
  Runs cm, etcd;
  std::printf("small writes (latency, visibility, wire bytes, throughput)\n");
  const std::string cm_version = ClustermgrWrites(o, cm);
  EtcdWrites(o, etcd);
  std::printf("restart and restore with %d keys\n", o.keys);
  ClustermgrRestartRestore(o, cm);
  EtcdRestartRestore(o, etcd);
  std::printf("memory with %d nodes and %d extra-vars\n", o.nodes, o.extra_vars);
  ClustermgrMemory(o, cm);
  EtcdMemory(o, etcd);

  const auto rows = Rows(o);
  const auto lines = bench::Compare(rows, cm, etcd);
  const std::string md =
      Markdown(lines, o, cm_version, etcd_version,
               "at the start " + load_at_start + ", at the end " + LoadAverage());
  std::printf("\n%s", md.c_str());
  if (!o.out_dir.empty()) {
    WriteFile(o.out_dir + "/etcd-compare.md", md);
    WriteFile(o.out_dir + "/etcd-compare.csv", bench::Csv(lines, "clustermgr", "etcd"));
    std::printf("\nwrote %s/etcd-compare.md and .csv\n", o.out_dir.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clustermgr::bench::RunMain([&] { return Main(argc, argv); });
}
