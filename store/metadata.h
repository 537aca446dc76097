// What a data dir records about itself, beside the replicated state (record 0x01, keys.h).
#pragma once

#include <cstdint>
#include <string>

#include "crdt/hlc.h"

namespace clustermgr::store {

// The store format this build writes and reads. Bumped only by a change older builds must not
// open (records.capnp explains evolution); Open refuses any other version.
inline constexpr uint32_t kSchemaVersion = 1;

struct Metadata {
  uint32_t schema_version = kSchemaVersion;
  std::string instance;               // the instance name the dir was created for
  std::string incarnation;            // 16 random hex digits, made once with the dir
  uint64_t local_seq = 0;             // last delta seq issued by origin()
  crdt::HlcTimestamp hlc_high_water;  // the clock must restart at or above this
  uint64_t created_ms = 0;

  // The replication origin id of this incarnation: "<instance>/<incarnation>". A wiped dir
  // gets a new incarnation, so it never reissues the sequence numbers of its previous life.
  std::string origin() const { return instance + "/" + incarnation; }

  friend bool operator==(const Metadata&, const Metadata&) = default;
};

}  // namespace clustermgr::store
