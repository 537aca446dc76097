// Shared pieces of the benchmark programs (bench/*_bench.cc): timing and percentiles, the
// daemons' status counters, prefilled data dirs, and a process's resident memory.
//
// Benchmarks are programs, not tests: every helper here that cannot do its job throws Fatal
// (Die) instead of returning an error; RunMain turns it into a message and exit code 1 after the
// stack has unwound, so the daemons a benchmark started are stopped by their owners.
// Thread-safety: every function is safe to call from any thread (the prefill functions on
// distinct dirs).
#pragma once

#include <sys/types.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "crdt/cluster_state.h"
#include "net/rpc_client.h"
#include "net/rpc_types.h"
#include "store/store.h"

namespace clustermgr::bench {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d);

struct Fatal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws Fatal(what).
[[noreturn]] void Die(const std::string& what);

// Runs a benchmark's main body; a Fatal escaping it is printed as "<program>: <what>" to stderr
// and returns 1.
int RunMain(const std::function<int()>& body);

// Parses a bench's flags with Boost.Program_options (`desc` binds them to variables). --help
// prints `usage` and the flags, then exits 0; a usage error prints one line and exits 2.
void ParseFlags(int argc, const char* const* argv, const char* program,
                boost::program_options::options_description& desc);

// The directory of the running program (build/bin: clustermgrd sits beside the benchmarks).
std::string BinDir();

// The p-th percentile (0 <= p <= 1) of v, nearest rank below; 0 for an empty v.
double Percentile(std::vector<double> v, double p);

// Median, min and max of several runs of one figure.
struct Spread {
  double median = 0, min = 0, max = 0;
};
Spread Summarize(std::vector<double> runs);

// The daemon's status; dies when the call fails.
net::StatusInfo MustStatus(net::RpcClient& client);

// A named counter of a daemon's status (0 when it has none by that name).
std::uint64_t Counter(const net::StatusInfo& status, const std::string& name);

// True when `applied` has, for every origin of `target`, at least target's count.
bool Covers(const std::vector<net::OriginCount>& applied,
            const std::vector<net::OriginCount>& target);

// Waits (up to 20 s, else dies) until each daemon at `rpc_urls` reports all the others as
// connected peers, then 300 ms more for the PUB/SUB subscriptions to settle (slow joiner).
void WaitForMesh(const std::vector<std::string>& rpc_urls);

// A write tag of `origin` with sequence number `seq` at a fixed base time + seq ms.
crdt::WriteTag Tag(const std::string& origin, std::uint64_t seq);

// The value of extra-var number i in every prefill ("{"value":"<i*7919>","enabled":true}"), so
// that the clustermgr and etcd benchmarks store the same bytes.
std::string ExtraVarValue(int i);
// "extra_var_<i>"
std::string ExtraVarName(int i);

// Creates a store for instance `instance_name` in `dir` (which must not hold one) with
// `entries` globals written as that many single-entry deltas of another origin, so that a 10,000
// delta log cannot bring a newcomer up to date: it needs a snapshot. Not synced (a bulk load).
void PrefillGlobalDeltas(const std::string& dir, const std::string& instance_name, int entries);

// Writes `globals` extra-vars and `nodes` inventory nodes (record, one host-group and three node
// vars each) into `st` as snapshot chunks of another origin, the way a new instance restores
// them from peers.
void PrefillInventory(store::Store& st, int globals, int nodes);

// VmRSS of process `pid` from /proc/<pid>/status, in bytes; dies when it cannot be read.
std::uint64_t ResidentBytes(pid_t pid);

// User + system CPU time process `pid` has used so far (/proc/<pid>/stat), in seconds; dies
// when it cannot be read.
double CpuSeconds(pid_t pid);

}  // namespace clustermgr::bench
