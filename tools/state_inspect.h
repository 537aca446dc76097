// state-inspect: reads clustermgr data dirs offline. The program's main() is
// tools/state_inspect_main.cc; everything it does is here, so tests run it without a process.
//
//   state-inspect dump SRC [--section NAME]   JSON of every CRDT section (or of one section,
//                                              including meta, applied, delta_log), keys in order
//   state-inspect stats SRC [--json]          records, bytes, tombstones per section; applied
//                                              vector; delta log per origin
//   state-inspect verify DIR                  decodes every record and checks the invariants
//                                              (store/contents.h: Verify); one line per problem
//   state-inspect diff SRC_A SRC_B            the CRDT entries that differ between two sources,
//                                              one line each (value or stamp differs)
//
// A source (SRC) is a data dir, or `--url URL`: a live clustermgrd's RPC endpoint, read with the
// read-only stateDump RPC (the whole replicated state, as one snapshot, in chunks). So
// `diff DIR --url URL` and `diff --url A --url B` compare a dir with a live instance, or two
// live instances; A and B are the sources in the order given. A live source has the CRDT
// sections only (no meta, applied vector or delta log: those are a store's own records), and its
// stats count entries and the encoded bytes of each section. A CURVE daemon needs
// `--server-key KEY|FILE --key FILE` (or $CLUSTERMGR_SERVER_KEY / $CLUSTERMGR_KEY), as for
// `clustermgr`; they apply to every --url of the command.
//
// Every command reads a private copy of a dir (store/dir_copy.h): it never writes to the dir
// and works while a daemon holds it. Exit status: 0 success (verify: no problem; diff: equal),
// 1 verify found problems or diff found differences, 2 usage error, 3 a dir or URL cannot be
// read. Errors are one line on stderr.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"
#include "crdt/cluster_state.h"
#include "net/curve_keys.h"
#include "store/contents.h"
#include "store/keys.h"

namespace clustermgr::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFound = 1;  // verify: problems; diff: differences
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreadable = 3;

// Runs state-inspect with `args` (argv without the program name).
int RunStateInspect(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The JSON of a whole ClusterState: one member per CRDT section.
nlohmann::json StateJson(const crdt::ClusterState& state);
// The JSON of one section of a store (host_groups includes its context; delta_log holds every
// logged delta; meta is null in a store without metadata).
nlohmann::json SectionJson(const store::StoreContents& contents, store::Section section);
nlohmann::json StatsJson(const store::StoreContents& contents);

// One line per CRDT entry that differs between a and b:
//   "<section> <key as JSON>: A <entry as JSON, or absent> | B <entry as JSON, or absent>"
// in section and key order; empty when the states are equal.
std::vector<std::string> DiffStates(const crdt::ClusterState& a, const crdt::ClusterState& b);

// The whole replicated state of the clustermgrd at `url` (stateDump RPC, decoded). Errors
// (message prefixed with the URL): kUnavailable when the daemon cannot be reached or refuses
// (its RPC error text), kCorruption when the bytes do not decode.
// `curve`: talk CURVE with these keys (unset: plain TCP).
Result<crdt::ClusterState> FetchLiveState(
    const std::string& url, std::chrono::milliseconds timeout = std::chrono::seconds(10),
    const std::optional<net::CurveClientConfig>& curve = std::nullopt);
// Stats of a state without a store: per section entries, tombstones and encoded bytes (what the
// section adds to an empty state's encoding); total bytes = the whole state's encoding.
nlohmann::json LiveStatsJson(const crdt::ClusterState& state);

}  // namespace clustermgr::tools
