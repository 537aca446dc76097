#include "bench/bench_support.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "tools/command_line.h"

namespace clustermgr::bench {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void Die(const std::string& what) { throw Fatal(what); }

int RunMain(const std::function<int()>& body) {
  try {
    return body();
  } catch (const Fatal& e) {
    std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, e.what());
    return 1;
  }
}

std::string BinDir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) Die("cannot find my own path");
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

Spread Summarize(std::vector<double> runs) {
  if (runs.empty()) return {};
  std::sort(runs.begin(), runs.end());
  const size_t n = runs.size();
  const double median = n % 2 ? runs[n / 2] : (runs[n / 2 - 1] + runs[n / 2]) / 2;
  return Spread{median, runs.front(), runs.back()};
}

net::StatusInfo MustStatus(net::RpcClient& client) {
  auto s = client.Status();
  if (!s.ok()) Die("status of " + client.url() + ": " + s.status().message());
  return s.value();
}

std::uint64_t Counter(const net::StatusInfo& status, const std::string& name) {
  for (const auto& c : status.counters) {
    if (c.name == name) return c.value;
  }
  return 0;
}

bool Covers(const std::vector<net::OriginCount>& applied,
            const std::vector<net::OriginCount>& target) {
  for (const auto& t : target) {
    bool found = false;
    for (const auto& a : applied) found |= a.origin == t.origin && a.count >= t.count;
    if (!found) return false;
  }
  return true;
}

void WaitForMesh(const std::vector<std::string>& rpc_urls) {
  for (const auto& url : rpc_urls) {
    net::RpcClient c(url);
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    for (;;) {
      const auto s = MustStatus(c);
      size_t connected = 0;
      for (const auto& p : s.peers) connected += p.connected;
      if (connected + 1 >= rpc_urls.size()) break;
      if (Clock::now() > deadline) Die("the mesh does not form");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

crdt::WriteTag Tag(const std::string& origin, std::uint64_t seq) {
  return crdt::WriteTag{{0, crdt::HlcTimestamp::Make(1'700'000'000'000 + seq, 0), origin}, seq};
}

std::string ExtraVarValue(int i) {
  return "{\"value\":\"" + std::to_string(i * 7919) + "\",\"enabled\":true}";
}

std::string ExtraVarName(int i) { return "extra_var_" + std::to_string(i); }

namespace {

void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

}  // namespace

void PrefillGlobalDeltas(const std::string& dir, const std::string& instance_name, int entries) {
  store::Options o;
  o.instance_name = instance_name;
  o.sync = false;
  auto st = store::Store::Open(dir, o);
  Check(st.status(), "open");
  const std::string origin = "writer/00000000000000aa";
  std::vector<crdt::Delta> batch;
  crdt::ClusterState empty;
  for (int i = 1; i <= entries; ++i) {
    crdt::DeltaBuilder b(empty, Tag(origin, static_cast<uint64_t>(i)));
    b.SetGlobal(ExtraVarName(i), ExtraVarValue(i));
    batch.push_back(crdt::Delta{origin, static_cast<uint64_t>(i), std::move(b).Take()});
    if (batch.size() == 1000 || i == entries) {
      Check((*st)->Commit(batch, {}, 0), "commit");
      batch.clear();
    }
  }
}

void PrefillInventory(store::Store& st, int globals, int nodes) {
  const std::string peer = "peer/00000000000000aa";
  uint64_t seq = 0;
  constexpr int kChunk = 2'000;
  for (int base = 0; base < globals; base += kChunk) {
    crdt::ClusterState empty;
    crdt::DeltaBuilder b(empty, Tag(peer, ++seq));
    for (int i = base; i < std::min(globals, base + kChunk); ++i) {
      b.SetGlobal(ExtraVarName(i), ExtraVarValue(i));
    }
    Check(st.ApplySnapshot(std::move(b).Take(), {}), "snapshot chunk");
  }
  for (int base = 0; base < nodes; base += kChunk / 4) {
    crdt::ClusterState current = st.State();
    crdt::DeltaBuilder b(current, Tag(peer, ++seq));
    for (int i = base; i < std::min(nodes, base + kChunk / 4); ++i) {
      const std::string node = "node-" + std::to_string(i);
      crdt::InventoryRecord r;
      r.status = crdt::NodeStatus::kAllocated;
      r.state = crdt::NodeState::kDiscovered;
      r.addr = "10." + std::to_string(i / 65536) + "." + std::to_string((i / 256) % 256) + "." +
               std::to_string(i % 256);
      r.tags = {{"NodeLabel", "node"}, {"NodeSerial", std::to_string(i)}, {"NodeAddr", r.addr}};
      r.serf_status = "alive";
      r.updated_ms = 1'700'000'000'000;
      b.PutNode(node, r);
      b.AddHostGroup(node, i % 10 == 0 ? "service-master" : "service-worker");
      for (int v = 0; v < 3; ++v) {
        b.SetNodeVar(node, "var" + std::to_string(v), "\"" + std::to_string(i + v) + "\"");
      }
    }
    crdt::VersionVector covered;
    covered.Advance(peer, seq);
    Check(st.ApplySnapshot(std::move(b).Take(), covered), "snapshot chunk");
  }
}

std::uint64_t ResidentBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  Die("no VmRSS for process " + std::to_string(pid));
}

double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  // Fields after "(comm)", which may itself hold spaces: state is field 3, utime 14, stime 15.
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) Die("no /proc stat for process " + std::to_string(pid));
  std::istringstream fields(line.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void ParseFlags(int argc, const char* const* argv, const char* program,
                boost::program_options::options_description& desc) {
  namespace po = boost::program_options;
  desc.add_options()("help,h", "print this help and exit");
  try {
    po::variables_map vm;
    po::store(clustermgr::tools::ParseCommandLine(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::printf("usage: %s [options]\n\n", program);
      std::ostringstream text;
      text << desc;
      std::printf("%s", text.str().c_str());
      std::exit(0);
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", program, e.what());
    std::exit(2);
  }
}

}  // namespace clustermgr::bench
