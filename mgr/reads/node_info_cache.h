// NodeInfoCache: each node's read form (net::NodeInfo, what `node get` and `nodes get` answer,
// over RPC and HTTP alike), kept ready between reads so that a read costs a copy, not a rebuild.
//
// Building a node's form looks up its host-groups and remembered extra-vars, parses and re-dumps
// each var's JSON and sorts its monitoring tags: at 10,000 nodes, tens of milliseconds of the
// event loop per `nodes get`. The cache builds a node's form the first time a read needs it and
// drops it when the replica reports a change that may touch the node (Replica::NodesChange:
// local writes, peers' deltas, snapshot chunks, a reopened store), so an entry always equals
// BuildNodeInfo of the current state. Changes only mark nodes; the next read rebuilds the few
// it needs.
//
// Threading: none; owned by the event loop thread, like the Replica it observes.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "crdt/cluster_state.h"
#include "mgr/repl/replica.h"
#include "net/rpc_types.h"

namespace clustermgr::mgr {

// The read form of node `name` (whose record is `rec`) in `state`: status and state, host-groups
// (ordered), monitoring (the Serf tags and serf_status, sorted by key) and the remembered
// extra-vars as one JSON object text (bytes of a var name that are not UTF-8 become U+FFFD).
// Never throws.
net::NodeInfo BuildNodeInfo(const crdt::ClusterState& state, const std::string& name,
                            const crdt::InventoryRecord& rec);

class NodeInfoCache {
 public:
  // Observes `replica` (which must outlive the cache) from construction to destruction.
  explicit NodeInfoCache(Replica* replica);
  ~NodeInfoCache();
  NodeInfoCache(const NodeInfoCache&) = delete;
  NodeInfoCache& operator=(const NodeInfoCache&) = delete;

  // The read form of the live node `name`; nullptr when the inventory has no live node of that
  // name. Valid until the next change to the state or the next call of this cache.
  const net::NodeInfo* Find(const std::string& name);
  // Every live node's read form, in name order.
  net::NodeList List();

  // Forms built since construction (for tests: how much a read rebuilt).
  uint64_t builds() const { return builds_; }

 private:
  void OnChange(const Replica::NodesChange& change);

  Replica* replica_;
  uint64_t observer_id_ = 0;
  // Every entry equals BuildNodeInfo of the current state for a live node.
  std::map<std::string, net::NodeInfo> infos_;
  // Whether infos_ plus stale_ cover every live node (false at start and after a change to every
  // node, until a List() fills infos_).
  bool complete_ = false;
  std::set<std::string> stale_;  // names changed since infos_ was complete (maybe not live now)
  uint64_t builds_ = 0;
};

}  // namespace clustermgr::mgr
