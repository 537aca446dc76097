// state-inspect: reads clustermgr data dirs offline (SPEC 2.3). The program's main() is
// tools/state_inspect_main.cc; everything it does is here, so tests run it without a process.
//
//   state-inspect dump DIR [--section NAME]   JSON of every CRDT section (or of one section,
//                                              including meta, applied, delta_log), keys in order
//   state-inspect stats DIR [--json]          records, bytes, tombstones per section; applied
//                                              vector; delta log per origin
//   state-inspect verify DIR                  decodes every record and checks the invariants
//                                              (store/contents.h: Verify); one line per problem
//   state-inspect diff A B                    the CRDT entries that differ between two dirs,
//                                              one line each (value or stamp differs)
//
// Every command reads a private copy of the dir (store/dir_copy.h): it never writes to the dir
// and works while a daemon holds it. Exit status: 0 success (verify: no problem; diff: equal),
// 1 verify found problems or diff found differences, 2 usage error, 3 a dir cannot be read.
// Errors are one line on stderr. (A live `--url` source comes with the RPC.)
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "crdt/cluster_state.h"
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

}  // namespace clustermgr::tools
