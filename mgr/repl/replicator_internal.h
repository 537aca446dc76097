// The replicator's private records, shared by its source files (replicator.cc: messages and
// anti-entropy; replicator_peers.cc: the peer table and its views; replicator_snapshot.cc: the
// snapshot being pulled). Not for use outside mgr/repl/replicator*.cc.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crdt/cluster_state.h"
#include "crdt/hlc.h"
#include "crdt/version_vector.h"
#include "mgr/repl/replicator.h"
#include "mgr/repl/snapshot_chunks.h"

namespace clustermgr::mgr {

struct Replicator::Peer {
  std::string endpoint;     // its gossip (PUB) endpoint: the key
  bool configured = false;  // --peer: never dropped
  std::string serf_member;  // found through Serf (empty otherwise)
  std::string name;         // learned from its messages (or Serf)
  std::string origin;       // its current incarnation's origin
  std::string rpc_endpoint;
  crdt::VersionVector applied;  // its latest report (of `origin`)
  crdt::VersionVector durable;  // what of it is synced to its disk (the same report)
  bool reported = false;
  uint64_t last_contact_ms = 0;
  uint64_t last_sync_ms = 0;  // last syncReply received
  uint64_t next_sync_ms = 0;  // 0: as soon as possible
  uint64_t sync_sent_ms = 0;
  bool sync_outstanding = false;
  bool connected = false;   // the last send went out, or it spoke to us
  uint64_t learned_ms = 0;  // when it was learned (from a reply or its own request)
};

struct Replicator::Fetch {
  std::string peer;
  uint64_t id = 0;
  uint32_t chunks = 0;
  crdt::VersionVector covered;
  crdt::HlcTimestamp hlc;  // the sender's clock when it took the snapshot
  crdt::StateKeys keys;    // of every chunk received: what the snapshot holds
  std::vector<bool> have;
  uint32_t have_count = 0;
  uint32_t cursor = 0;                 // next index never asked for
  std::map<uint32_t, uint64_t> asked;  // outstanding: index -> when asked
  std::optional<crdt::ClusterState> last;
  SnapshotAssembly assembly;
  uint64_t progress_ms = 0;
  uint64_t started_ms = 0;
};

}  // namespace clustermgr::mgr
