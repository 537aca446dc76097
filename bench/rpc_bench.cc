// rpc_bench: round-trip latency of clustermgrd's RPC, one request in flight at a time, as the
// CLI and most clients use it (plain program; prints what it measures).
//
//   rpc_bench [--url URL] [--node NAME] [--calls N] [--warmup N] [--curve]
//                [--server-key KEY|FILE --key FILE]
//
// --curve: the cluster it starts runs CURVE (one shared key pair and a client key, see
// test/support/cluster.h) instead of --insecure, to compare the two. With --url, --server-key
// and --key make the client talk CURVE to that daemon.
//
// Without --url it starts its own cluster on loopback with the integration harness
// (test/support/cluster.h): a Serf agent, clustermgrd from the build's bin dir (synced writes,
// the default) and one machine agent, so that `node get` reads a real inventory entry. With
// --url it measures a running daemon (`node get` of --node, default the first node it lists).
//
// Measured, each over N calls after `warmup` unmeasured ones:
//   global set   a durable write: the daemon persists the delta (synced LevelDB write) before
//                it answers. On a daemon given by --url, each set writes back the globals it
//                already has, so its users see no change.
//   node get     a read of one inventory entry
// and printed as p50 / p90 / p99 / max / mean and calls per second.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "net/rpc_client.h"
#include "test/support/cluster.h"

namespace {

using namespace clustermgr;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string url;
  std::string node;
  int calls = 5000;
  int warmup = 200;
  bool curve = false;
  std::string server_key;
  std::string key;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr, "rpc_bench: %s (see --help)\n", why);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  namespace po = boost::program_options;
  Options o;
  po::options_description desc("rpc_bench options");
  // clang-format off
  desc.add_options()
    ("url", po::value(&o.url)->value_name("URL"),
       "a running clustermgrd (default: start a cluster of its own)")
    ("node", po::value(&o.node)->value_name("NAME"), "the node that node get asks for")
    ("calls", po::value(&o.calls)->default_value(o.calls)->value_name("N"), "measured calls")
    ("warmup", po::value(&o.warmup)->default_value(o.warmup)->value_name("N"),
       "calls before measuring")
    ("curve", po::bool_switch(&o.curve), "start its own cluster with CURVE")
    ("server-key", po::value(&o.server_key)->value_name("KEY|FILE"),
       "CURVE: the server's public key")
    ("key", po::value(&o.key)->value_name("FILE"), "CURVE: this client's secret key file");
  // clang-format on
  bench::ParseFlags(argc, argv, "rpc_bench", desc);
  if (o.calls < 1 || o.warmup < 0) Usage("--calls must be >= 1 and --warmup >= 0");
  if (o.server_key.empty() != o.key.empty()) Usage("--server-key and --key go together");
  if (o.curve && !o.url.empty()) Usage("--curve starts its own cluster: use --server-key/--key");
  return o;
}

// Runs `call` warmup + calls times; returns the measured latencies in microseconds. Exits on
// the first failed call.
std::vector<double> Measure(const char* what, int warmup, int calls,
                            const std::function<std::string(int)>& call) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(calls));
  for (int i = 0; i < warmup + calls; ++i) {
    const auto t0 = Clock::now();
    const std::string error = call(i);
    const auto t1 = Clock::now();
    if (!error.empty()) {
      std::fprintf(stderr, "rpc_bench: %s failed at call %d: %s\n", what, i, error.c_str());
      std::exit(1);
    }
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  return us;
}

void Report(const char* what, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    const auto idx = static_cast<std::size_t>(p * static_cast<double>(us.size() - 1) + 0.5);
    return us[std::min(idx, us.size() - 1)];
  };
  double sum = 0;
  for (double v : us) sum += v;
  const double mean = sum / static_cast<double>(us.size());
  std::printf(
      "%-11s %6zu calls  p50 %8.1f us  p90 %8.1f us  p99 %8.1f us  max %8.1f us  "
      "mean %8.1f us  %7.0f calls/s\n",
      what, us.size(), pct(0.50), pct(0.90), pct(0.99), us.back(), mean, 1e6 / mean);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  std::string cmdline;
  for (int i = 0; i < argc; ++i) cmdline += (i ? " " : "") + std::string(argv[i]);
  std::printf("command: %s\n", cmdline.c_str());

  std::unique_ptr<test::Cluster> cluster;
  std::string url = o.url;
  std::string node = o.node;
  net::RpcClient::Options client_options;
  if (!o.server_key.empty()) {
    auto server = net::LoadPublicKeyArg(o.server_key);
    auto pair = net::LoadSecretKeyFile(o.key);
    if (!server.ok() || !pair.ok()) {
      std::fprintf(stderr, "rpc_bench: %s\n",
                   (!server.ok() ? server.status() : pair.status()).message().c_str());
      return 2;
    }
    client_options.curve = net::CurveClientConfig{*server, *pair};
  }
  if (url.empty()) {
    test::ClusterOptions cluster_options;
    cluster_options.curve = o.curve;
    auto started = test::Cluster::Start(cluster_options);
    if (!started.ok()) {
      std::fprintf(stderr, "rpc_bench: %s\n", started.status().message().c_str());
      return 1;
    }
    cluster = std::move(started).value();
    auto machine = cluster->AddMachine("bench", "1");
    if (!machine.ok()) {
      std::fprintf(stderr, "rpc_bench: %s\n", machine.status().message().c_str());
      return 1;
    }
    auto seen = cluster->WaitForNode("bench-1", test::NodeIs::Discovered());
    if (!seen.ok()) {
      std::fprintf(stderr, "rpc_bench: %s\n", seen.status().message().c_str());
      return 1;
    }
    url = cluster->manager().rpc_url();
    if (node.empty()) node = "bench-1";
    client_options.curve = cluster->client_curve();
    std::printf("started clustermgrd %s (data %s, synced writes, %s)\n", url.c_str(),
                cluster->manager().data_dir().c_str(), o.curve ? "CURVE" : "--insecure: plain TCP");
  }

  net::RpcClient client(url, client_options);
  auto status = client.Status();
  if (!status.ok()) {
    std::fprintf(stderr, "rpc_bench: %s: %s\n", url.c_str(), status.status().message().c_str());
    return 1;
  }
  std::printf("daemon %s %s at %s\n", status.value().name.c_str(), status.value().version.c_str(),
              url.c_str());
  if (node.empty()) {
    auto nodes = client.NodesGet();
    if (nodes.ok() && !nodes.value().empty()) node = nodes.value().front().name;
  }

  // On a daemon we did not start, every set writes back the globals it has (so nothing changes
  // for its users); on our own, a changing value.
  std::string globals;
  if (!cluster) {
    auto current = client.GlobalGet();
    if (!current.ok()) {
      std::fprintf(stderr, "rpc_bench: global get: %s\n", current.status().message().c_str());
      return 1;
    }
    globals = current.value();
  }
  Report("global set", Measure("global set", o.warmup, o.calls, [&](int i) -> std::string {
           auto r =
               client.GlobalSet(cluster ? "{\"rpc_bench\": " + std::to_string(i) + "}" : globals);
           return r.ok() ? "" : r.status().message();
         }));
  if (node.empty()) {
    std::printf("node get    skipped: the daemon has no node (give --node NAME)\n");
  } else {
    Report("node get", Measure("node get", o.warmup, o.calls, [&](int) -> std::string {
             auto r = client.NodeGet(node);
             return r.ok() ? "" : r.status().message();
           }));
  }
  return 0;
}
