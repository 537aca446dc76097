// --restore-from-peers: the local store is discarded, never deleted silently, and the
// instance restores everything from its peers through anti-entropy (a snapshot, then deltas).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace clustermgr::mgr {

// Moves the data dir `dir` aside to "<dir>.discarded-<UTC yyyymmddThhmmssZ>" (with "-2", "-3",
// ... if that exists), so that a new, empty store can be created at `dir`. Works on a corrupt
// store: nothing in it is read. Returns the new path, or "" when there was nothing to discard
// (no dir, or an empty one). Errors:
//   kUnavailable  another process holds the store's LevelDB lock (a running clustermgrd)
//   kIoError      the dir cannot be inspected or renamed (permissions, another file system)
Result<std::string> DiscardDataDir(const std::string& dir, uint64_t now_unix_ms);

}  // namespace clustermgr::mgr
