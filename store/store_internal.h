// Store internals shared by store.cc (opening, reads, the public write calls) and store_write.cc
// (the write path: group commit, building a batch's records, installing the change in memory).
// Not part of the store's interface.
#pragma once

#include <leveldb/write_batch.h>

#include <condition_variable>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace clustermgr::store {

struct Store::Writer {
  enum class Kind { kCommit, kStage, kAmend, kFlush, kSnapshot, kCollect };
  bool sync = true;  // kCommit: false for CommitUnsynced; kFlush: true for Sync (forced)
  explicit Writer(Kind k) : kind(k) {}

  Kind kind;
  // kCommit, kStage, kAmend
  const std::vector<crdt::Delta>* deltas = nullptr;
  std::vector<std::string> encoded;  // EncodeDelta of each delta, made by the caller's thread
  crdt::HlcTimestamp hlc;
  uint64_t local_seq = 0;
  // kSnapshot (and hlc, local_seq)
  const crdt::ClusterState* chunk = nullptr;
  const crdt::VersionVector* covered = nullptr;
  const crdt::StateKeys* complete = nullptr;
  // kCollect
  const crdt::VersionVector* stable = nullptr;
  size_t collected = 0;

  Status status;
  bool done = false;
  std::condition_variable cv;
};

// One batch's worth of work: its inputs, then what Build computed for Install.
struct Store::Change {
  // Inputs.
  const crdt::ClusterState* joined = nullptr;  // what to join: one delta, a chunk, or `scratch`
  crdt::ClusterState scratch;                  // the join of a group's deltas
  std::vector<std::pair<const crdt::Delta*, const std::string*>> deltas;  // with encodings
  const crdt::VersionVector* covered = nullptr;
  const crdt::StateKeys* complete = nullptr;  // with covered: drop covered entries it lacks
  crdt::HlcTimestamp hlc;
  uint64_t local_seq = 0;
  const crdt::VersionVector* stable = nullptr;  // set: collect tombstones instead
  bool stage = false;                           // append to the pending batch instead of writing
  bool amend = false;  // with stage: the deltas replace staged ones of the same seqs
  bool flush = false;                           // nothing to build: write the pending batch
  bool carried = false;                         // output: the write carried staged changes
  bool sync = true;                             // sync the write (with Options::sync)
  bool force = false;  // a Sync: write (an empty batch) even when nothing waits

  // Outputs.
  leveldb::WriteBatch batch;
  bool empty = true;  // nothing to write
  std::optional<crdt::OrSet<crdt::HostGroupKey>> host_groups;
  std::map<std::string, uint64_t> applied;                   // origin -> new applied seq
  std::map<std::string, std::vector<uint64_t>> log_added;    // origin -> seqs
  std::map<std::string, std::vector<uint64_t>> log_dropped;  // origin -> seqs
  Metadata meta;
  size_t collected = 0;
};

}  // namespace clustermgr::store
