// Everything a store's LevelDB holds, decoded: the reader shared by Store::Open (which stops at
// the first bad record) and state-inspect (which lists every problem), plus the invariant
// checks behind `state-inspect verify`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "crdt/cluster_state.h"
#include "crdt/version_vector.h"
#include "store/keys.h"
#include "store/metadata.h"

namespace leveldb {
class DB;
}

namespace clustermgr::store {

// One thing wrong with a store, tied to the record concerned when there is one.
struct Problem {
  std::string key;  // the raw key, empty when the problem concerns no single record
  std::string message;

  // "<escaped key>: <message>", or the message alone.
  std::string ToString() const;
  friend bool operator==(const Problem&, const Problem&) = default;
};

struct SectionStats {
  uint64_t records = 0;
  uint64_t bytes = 0;       // keys and values, uncompressed
  uint64_t tombstones = 0;  // LWW sections only
};

struct StoreContents {
  std::optional<Metadata> meta;  // absent in a store without a metadata record
  crdt::ClusterState state;
  crdt::VersionVector applied;
  // Per origin, the seqs the delta log holds.
  std::map<std::string, std::set<uint64_t>> delta_log;
  std::map<Section, SectionStats> sections;  // only sections with records
  // The decoded delta log, in key order; filled only when asked for (it can be large).
  std::vector<crdt::Delta> deltas;
};

struct LoadOptions {
  // Keep every decoded logged delta in StoreContents::deltas (verify needs them).
  bool keep_deltas = false;
  // Decode the delta log's values (else only their keys are read). Store::Open decodes them,
  // so that a corrupt log entry is found at start rather than when a peer asks for it.
  bool decode_deltas = true;
};

// Reads every record of `db` into *out. With `problems` null, stops at the first record that
// does not decode (or lies in no known section) and returns kCorruption naming its key; with
// `problems` given, appends one Problem per bad record, skips it and goes on, and returns ok.
// A LevelDB read error is returned as kIoError (or kCorruption for a LevelDB checksum error)
// either way. Does not check the schema version or cross-record invariants (see Verify).
Status LoadContents(leveldb::DB* db, const LoadOptions& options, StoreContents* out,
                    std::vector<Problem>* problems);

// Cross-record invariants of a loaded store (load it with keep_deltas): metadata present with
// this build's schema version; every host-group dot covered by the context; every logged delta
// stored under its own (origin, seq), included in the state (no entry of the state is older
// than the delta's, its context and epoch are covered); applied[o] + 1 not in the log (else
// applied would have advanced); the local origin's applied seq at most the issued local seq;
// no local-origin stamp above the HLC high-water mark; job records under their own id.
std::vector<Problem> Verify(const StoreContents& contents);

}  // namespace clustermgr::store
