// ClusterState: every replicated section (docs/design.md), and the deltas that change it.
//
// Each section is flat, so that one entry is one stored record and one gossip unit. A delta is a
// ClusterState too (the same lattice): joining deltas in any order, with duplicates, gives the
// same state as joining the full states they came from.
//
// Thread-safety: plain values; no internal synchronization.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crdt/lww_map.h"
#include "crdt/max_register.h"
#include "crdt/or_set.h"
#include "crdt/records.h"
#include "crdt/version_vector.h"

namespace clustermgr::crdt {

using NodeVarKey = std::pair<std::string, std::string>;    // (node, extra-var name)
using HostGroupKey = std::pair<std::string, std::string>;  // (node, host-group)
using JobLogKey = std::pair<std::string, uint64_t>;        // (job id, chunk number)

struct StateKeys;

struct ClusterState {
  LwwMap<std::string, std::string> globals;   // extra-var name -> JSON text
  LwwMap<NodeVarKey, std::string> node_vars;  // remembered per-node extra-vars, JSON text
  OrSet<HostGroupKey> host_groups;
  LwwMap<std::string, InventoryRecord> inventory;  // node name -> record
  LwwMap<std::string, JobRecord> jobs;             // job id -> record
  LwwMap<JobLogKey, std::string> job_logs;         // log chunks: lines joined by '\n'
  LwwMap<std::string, std::string> config;         // ansible config key -> JSON text
  MaxRegister token_epoch;                         // highest fencing epoch ever issued

  // The lattice join: commutative, associative, idempotent.
  void Join(const ClusterState& other);
  // Drops LWW tombstones covered by a causally stable vector (see LwwMap::CollectTombstones).
  size_t CollectTombstones(const VersionVector& stable);
  // Drops LWW entries covered by `covered` whose keys `keep` lacks (LwwMap::DropCoveredAbsent).
  size_t DropCoveredAbsent(const VersionVector& covered, const StateKeys& keep);
  // The newest HLC timestamp of any LWW entry, tombstones included (zero when none).
  HlcTimestamp NewestHlc() const;
  bool empty() const;
  friend bool operator==(const ClusterState&, const ClusterState&) = default;

  // Typed reads (live entries only; ordered).
  std::map<std::string, std::string> Globals() const;
  std::map<std::string, std::string> NodeVars(const std::string& node) const;
  std::vector<std::string> HostGroups(const std::string& node) const;
  const InventoryRecord* Node(const std::string& name) const { return inventory.Get(name); }
  const JobRecord* Job(const std::string& id) const { return jobs.Get(id); }
  // The job's log lines, chunk by chunk, as far as chunks are contiguous from 0.
  std::vector<std::string> JobLog(const std::string& id) const;
  std::map<std::string, std::string> Config() const;
};

// The keys of a state's LWW sections, without their values: what a whole snapshot held, for
// DropCoveredAbsent once its last chunk has arrived.
struct StateKeys {
  std::set<std::string> globals;
  std::set<NodeVarKey> node_vars;
  std::set<std::string> inventory;
  std::set<std::string> jobs;
  std::set<JobLogKey> job_logs;
  std::set<std::string> config;

  // Adds every key of `state` (tombstones included).
  void Add(const ClusterState& state);
};

// A delta as replication ships it: the `seq`-th delta issued by `origin` (seq from 1, without
// gaps), so receivers can tell a gap and ask anti-entropy to fill it.
struct Delta {
  std::string origin;
  uint64_t seq = 0;
  ClusterState state;

  friend bool operator==(const Delta&, const Delta&) = default;
};

// Builds one delta out of several mutations of a base state, all under one WriteTag. The base is
// only read: the owner persists the delta and then joins it, so a failed write leaves memory
// unchanged. Reads of the base do not see the mutations being built. A later mutation of the
// same key in one builder supersedes an earlier one. `base` must outlive the builder.
//
// A delta that writes an LWW entry also raises token_epoch to the tag's epoch, so every replica
// that applies an entry knows its epoch. A writer must stamp with its state's
// token_epoch.value() (or higher): then a write issued after applying another entry always
// orders above it, which CollectTombstones relies on (a write stamped below a tombstone it had
// seen would lose at first and come back once the tombstone is collected).
class DeltaBuilder {
 public:
  DeltaBuilder(const ClusterState& base, WriteTag tag) : base_(base), tag_(std::move(tag)) {}

  void SetGlobal(const std::string& name, std::string json);
  void EraseGlobal(const std::string& name);
  // Replaces the whole global map: sets every given key, tombstones every other key live in base
  // or set earlier in this builder.
  void ReplaceGlobals(const std::map<std::string, std::string>& globals);

  void SetNodeVar(const std::string& node, const std::string& name, std::string json);
  void EraseNodeVar(const std::string& node, const std::string& name);

  void AddHostGroup(const std::string& node, const std::string& group);
  void RemoveHostGroup(const std::string& node, const std::string& group);
  // Makes `groups` the node's whole host-group set, as base changed by this builder's earlier
  // mutations holds it.
  void SetHostGroups(const std::string& node, const std::vector<std::string>& groups);

  void PutNode(const std::string& name, InventoryRecord record);
  void PutJob(JobRecord job);
  void PutJobLogChunk(const std::string& job_id, uint64_t chunk, std::string text);
  void EraseJobLogChunk(const std::string& job_id, uint64_t chunk);

  void SetConfig(const std::string& key, std::string json);
  // Like ReplaceGlobals, for the config section.
  void ReplaceConfig(const std::map<std::string, std::string>& config);

  void RaiseEpoch(uint64_t epoch);

  const WriteTag& tag() const { return tag_; }
  const ClusterState& delta() const { return delta_; }
  bool empty() const { return delta_.empty(); }
  ClusterState Take() && { return std::move(delta_); }

 private:
  // Raises the delta's token_epoch to the tag's epoch; every LWW write calls it.
  void NoteEpoch();
  // The element's dots as base joined with the delta so far would hold them.
  std::set<Dot> ViewDots(const HostGroupKey& element) const;

  const ClusterState& base_;
  WriteTag tag_;
  ClusterState delta_;
};

}  // namespace clustermgr::crdt
