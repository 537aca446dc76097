// http_bench: latency of clustermgrd's HTTP gateway (mgr/http), one request in flight at a time
// over a keep-alive connection (libcurl), next to the RPC path (plain program; prints what it
// measures).
//
//   http_bench [--nodes N] [--calls N] [--reads N] [--warmup N]
//
// It starts its own daemon with the integration harness (test/support/cluster.h): a Serf agent
// and clustermgrd from the build's bin dir (--insecure, synced writes, --http-bind on a free
// loopback port), stops it, loads N inventory nodes (default 1,000: record, host-group and
// three node vars each) into its store, and starts it again. Then, each after `warmup`
// unmeasured calls:
//   GET /info/nodes   --reads times: the whole inventory in the predecessor's JSON shape
//   global set        --calls times over HTTP (POST /globals), then over RPC: a synced write
// printed as p50 / p90 / p99 / max / mean.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "net/rpc_client.h"
#include "store/store.h"
#include "test/support/cluster.h"
#include "test/support/process.h"

namespace {

using namespace clustermgr;
using Clock = std::chrono::steady_clock;

struct Options {
  int nodes = 1000;
  int calls = 2000;
  int reads = 300;
  int warmup = 50;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "http_bench: %s\nusage: http_bench [--nodes N] [--calls N] [--reads N] "
               "[--warmup N]\n",
               why);
  std::exit(2);
}

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "http_bench: %s\n", why.c_str());
  std::exit(1);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
    const int v = std::atoi(argv[++i]);
    if (a == "--nodes") {
      o.nodes = v;
    } else if (a == "--calls") {
      o.calls = v;
    } else if (a == "--reads") {
      o.reads = v;
    } else if (a == "--warmup") {
      o.warmup = v;
    } else {
      Usage(("unknown argument " + a).c_str());
    }
  }
  if (o.nodes < 0 || o.calls < 1 || o.reads < 1 || o.warmup < 0) Usage("bad counts");
  return o;
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One keep-alive connection, as a monitoring system or a script with a session would use.
class Http {
 public:
  explicit Http(std::string base) : base_(std::move(base)), curl_(curl_easy_init()) {
    if (!curl_) Die("curl_easy_init failed");
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &body_);
    curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
  }
  ~Http() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }
  // Returns "" on a 200, else what went wrong.
  std::string Get(const std::string& path) {
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
    return Perform(path);
  }
  std::string Post(const std::string& path, const std::string& body) {
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    return Perform(path);
  }
  const std::string& body() const { return body_; }

 private:
  std::string Perform(const std::string& path) {
    body_.clear();
    const std::string url = base_ + path;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    const CURLcode rc = curl_easy_perform(curl_);
    if (rc != CURLE_OK) return curl_easy_strerror(rc);
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    return code == 200 ? "" : "HTTP " + std::to_string(code) + ": " + body_;
  }

  std::string base_;
  CURL* curl_;
  curl_slist* headers_ = nullptr;
  std::string body_;
};

std::vector<double> Measure(const char* what, int warmup, int calls,
                            const std::function<std::string(int)>& call) {
  std::vector<double> us;
  for (int i = 0; i < warmup + calls; ++i) {
    const auto t0 = Clock::now();
    const std::string error = call(i);
    const auto t1 = Clock::now();
    if (!error.empty())
      Die(std::string(what) + " failed at call " + std::to_string(i) + ": " + error);
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  return us;
}

void Report(const char* what, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    return us[std::min(us.size() - 1,
                       static_cast<size_t>(p * static_cast<double>(us.size() - 1) + 0.5))];
  };
  double sum = 0;
  for (double v : us) sum += v;
  std::printf(
      "%-26s %6zu calls  p50 %8.1f us  p90 %8.1f us  p99 %8.1f us  max %8.1f us  "
      "mean %8.1f us\n",
      what, us.size(), pct(0.5), pct(0.9), pct(0.99), us.back(),
      sum / static_cast<double>(us.size()));
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  std::string cmdline;
  for (int i = 0; i < argc; ++i) cmdline += (i ? " " : "") + std::string(argv[i]);
  std::printf("command: %s\n", cmdline.c_str());
  curl_global_init(CURL_GLOBAL_DEFAULT);

  const int port = test::FreeLoopbackPort();
  test::ClusterOptions options;
  options.daemon_args = {"--http-bind", "127.0.0.1:" + std::to_string(port)};
  auto started = test::Cluster::Start(options);
  if (!started.ok()) Die(started.status().message());
  auto cluster = std::move(started).value();
  test::ManagerInstance& m = cluster->manager();
  m.Stop();
  {
    store::Options so;
    so.instance_name = m.name();
    so.sync = false;  // a bulk load
    auto st = store::Store::Open(m.data_dir(), so);
    if (!st.ok()) Die(st.status().ToString());
    bench::PrefillInventory(**st, 0, o.nodes);
  }
  if (Status s = m.Start(); !s.ok()) Die(s.message());
  std::printf("clustermgrd %s with %d nodes, HTTP on 127.0.0.1:%d, synced writes, --insecure\n",
              m.rpc_url().c_str(), o.nodes, port);

  Http http("http://127.0.0.1:" + std::to_string(port));
  if (std::string e = http.Get("/info/nodes"); !e.empty()) Die("GET /info/nodes: " + e);
  std::printf("GET /info/nodes body: %zu bytes\n", http.body().size());
  Report("GET /info/nodes (HTTP)", Measure("GET /info/nodes", o.warmup, o.reads,
                                           [&](int) { return http.Get("/info/nodes"); }));
  net::RpcClient& rpc = m.rpc();
  Report("nodes get (RPC)", Measure("nodes get", o.warmup, o.reads, [&](int) -> std::string {
           auto r = rpc.NodesGet();
           return r.ok() ? "" : r.status().message();
         }));
  Report("global set (HTTP POST)", Measure("HTTP global set", o.warmup, o.calls, [&](int i) {
           const std::string vars = "{\\\"http_bench\\\": " + std::to_string(i) + "}";
           return http.Post("/globals", "{\"extra_vars\":\"" + vars + "\"}");
         }));
  Report("global set (RPC)",
         Measure("RPC global set", o.warmup, o.calls, [&](int i) -> std::string {
           auto r = rpc.GlobalSet("{\"http_bench\": " + std::to_string(i) + "}");
           return r.ok() ? "" : r.status().message();
         }));
  curl_global_cleanup();
  return 0;
}
