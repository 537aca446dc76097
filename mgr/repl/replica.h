// Replica: this instance's copy of the replicated state, durable in the store.
//
// It owns the store, the hybrid clock, this instance's origin id ("<name>/<incarnation>": the
// incarnation is made with the data dir, so a wiped instance never reuses sequence numbers) and
// the next delta sequence number. Every local change goes through Write(): build a delta under a
// fresh tag, persist it (synced unless --sync=false), and only then join it into memory. Remote
// deltas and snapshot chunks go through ApplyRemote() and ApplySnapshotChunk(). Observers hear of
// every committed delta (replication publishes them; parked requests wake up).
//
// Thread-safety: none; owned by the event loop thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "crdt/cluster_state.h"
#include "crdt/hlc.h"
#include "store/store.h"

namespace leveldb {
class Env;
}

namespace clustermgr::mgr {

class Replica {
 public:
  struct Options {
    std::string name;
    std::string data_dir;
    bool sync = true;
    uint64_t max_clock_offset_ms = 500;
    // Recent deltas kept per origin for anti-entropy (store::Options::delta_log_limit).
    uint64_t delta_log_limit = 10'000;
    leveldb::Env* env = nullptr;  // store::Options::env (tests inject faults)
  };
  using Observer = std::function<void(const crdt::Delta&)>;
  // What a change joined into the state may have changed of the nodes' reads (their inventory
  // record, remembered extra-vars or host-groups; crdt::NodesTouched): `names`, or every node
  // when `all` (a snapshot chunk, a reopened store).
  struct NodesChange {
    bool all = false;
    std::set<std::string> names;
  };
  using NodesObserver = std::function<void(const NodesChange&)>;

  // Opens (or creates) the store and restores the clock above its high-water mark. Errors: the
  // store's (kIoError for a dir in use or unusable, kCorruption).
  static Result<std::unique_ptr<Replica>> Open(const Options& options,
                                               crdt::PhysicalClock* physical);

  // The state. Safe because this thread is the only writer of the store.
  const crdt::ClusterState& state() const { return store_->OwnerState(); }
  const std::string& name() const { return name_; }
  const std::string& origin() const { return origin_; }
  crdt::HybridClock& clock() { return clock_; }
  store::Store& store() { return *store_; }
  uint64_t last_seq() const { return seq_; }

  // Builds a delta with `build` under a fresh tag carrying `epoch` (default: the highest epoch in
  // the state), persists it and joins it (in a batch: stages it, see BeginBatch). Returns the
  // committed delta; an empty build commits nothing and returns a delta with seq 0. Errors: the
  // store's (the state is then unchanged).
  Result<crdt::Delta> Write(const std::function<void(crdt::DeltaBuilder&)>& build,
                            std::optional<uint64_t> epoch = std::nullopt);
  // Like Write, but when the open batch's newest staged delta has a seq above `after_seq`,
  // what `build` makes joins that delta (same seq, a fresh stamp) instead of taking a seq of its
  // own: a record that belongs with a change (its audit record) travels and is logged with it.
  // Otherwise (no batch, or nothing staged since `after_seq`) it is a Write. Returns the delta
  // as it now stands. Errors: the store's (the state is then unchanged).
  Result<crdt::Delta> Amend(uint64_t after_seq,
                            const std::function<void(crdt::DeltaBuilder&)>& build);

  void AddObserver(Observer observer) { observers_.push_back(std::move(observer)); }
  // Batch observers hear of the committed deltas of one durable write together (one delta for
  // a Write outside a batch; every delta of a batch, in seq order, at EndBatch), after the
  // per-delta observers.
  using BatchObserver = std::function<void(const std::vector<crdt::Delta>&)>;
  void AddBatchObserver(BatchObserver observer) { batch_observers_.push_back(std::move(observer)); }

  // Batches: many Writes made durable with one store write and one sync. Between BeginBatch
  // and EndBatch, Write stages its delta (store::Store::Stage): it is joined into the state at
  // once, so later Writes build on it, but it is not yet durable and observers do not hear of
  // it. EndBatch writes everything staged (one write, synced unless Options::sync is false)
  // and then tells the observers. The caller must not let anything out that it read from the
  // state since the first staged Write (replies, gossip) before EndBatch returns Ok. If the
  // write fails, EndBatch returns its error (kOutcomeUnknown), tells no observer, rewinds the
  // seq to where the batch began, and ahead_of_disk() holds until Recover reloads the state
  // from the disk (the store refuses writes until then, as after any failed write).
  void BeginBatch();
  Status EndBatch();
  bool batching() const { return batching_; }
  // Deltas staged in the open batch.
  size_t staged() const { return staged_.size(); }
  // The state may hold changes the disk lacks (a batch's write failed and the store could not
  // be reopened yet): nothing read from it may be let out.
  bool ahead_of_disk() const { return ahead_of_disk_; }

  // Node observers hear of every change the state takes, local or remote (Write, ApplyRemote,
  // ApplySnapshotChunk, Recover), once it is joined; a change that fails is not told (the state
  // is then unchanged). Nothing is computed for them while there are none. Returns an id for
  // RemoveNodesObserver; an observer must be removed before what it calls into goes away.
  uint64_t AddNodesObserver(NodesObserver observer);
  void RemoveNodesObserver(uint64_t id);

  // Persists and joins deltas received from peers (any origins, in one store batch). Their LWW
  // timestamps are first merged into the clock, so that every later local write orders above
  // every entry this instance has applied, whatever the wall clock says (a write stamped below
  // an entry it had seen would be lost, and tombstone collection relies on it). A timestamp
  // more than max_clock_offset_ms ahead of the wall clock is merged too, and reported: counted
  // in clock_refusals(), its offset in clock_skew_ms(), logged at most once a minute. The
  // clock's high-water mark is persisted with the batch. The caller (the replicator) drops
  // deltas already applied. Observers are not called: they hear of local writes only. Errors:
  // the store's (the state is then unchanged).
  // With `sync` false the batch is written without a sync (store::Store::CommitUnsynced): the
  // deltas are durable at their origins, and Sync() later makes them durable here.
  Status ApplyRemote(const std::vector<crdt::Delta>& deltas, bool sync = true);
  // Syncs what unsynced writes left (store::Store::Sync). Errors: the store's.
  Status Sync() { return store_->Sync(); }
  bool has_unsynced() const { return store_->has_unsynced(); }
  // Persists and joins one snapshot chunk from a peer (store::Store::ApplySnapshot: give
  // `covered`, and `complete`, the keys of every chunk, with the last chunk only).
  // Timestamps are merged as for ApplyRemote, and so is `sender_hlc`, the sender's clock when
  // it took the snapshot (it may have applied stamps no entry shows any more). When `covered`
  // holds more of this instance's own history than it has issued (a data dir restored from an
  // old copy), the next local seq continues above it. Errors: the store's.
  Status ApplySnapshotChunk(const crdt::ClusterState& chunk, const crdt::VersionVector& covered,
                            crdt::HlcTimestamp sender_hlc = {},
                            const crdt::StateKeys* complete = nullptr);
  // The applied version vector (store::Store::Applied()).
  crdt::VersionVector Applied() const { return store_->Applied(); }
  // The applied vector as of the last sync (store::Store::Durable()).
  crdt::VersionVector Durable() const { return store_->Durable(); }
  // After a failed store write: reopens the store (store::Store::Reopen) and takes up what it
  // holds - the clock above its high-water mark, the own seq at least its last stored one (a
  // write whose outcome was unknown may have landed). Errors: the store's; then it stays
  // read-only and Recover may be called again.
  Status Recover();
  // Peer timestamps seen further ahead of the wall clock than max_clock_offset_ms, so far.
  uint64_t clock_refusals() const { return clock_refusals_; }
  // How far ahead of the wall clock (ms) the latest of those was; 0 when none was seen.
  uint64_t clock_skew_ms() const { return clock_skew_ms_; }

 private:
  Replica(std::unique_ptr<store::Store> store, const Options& options,
          crdt::PhysicalClock* physical);

  std::unique_ptr<store::Store> store_;
  std::string name_;
  std::string origin_;
  crdt::PhysicalClock* physical_;
  crdt::HybridClock clock_;
  // Merges the newest LWW timestamp of `state` (and `also`) into the clock.
  void ObserveTimestamps(const crdt::ClusterState& state, crdt::HlcTimestamp also = {});

  uint64_t seq_ = 0;
  uint64_t clock_refusals_ = 0;
  uint64_t clock_skew_ms_ = 0;
  std::optional<uint64_t> skew_logged_ms_;  // wall clock of the last skew warning
  std::vector<Observer> observers_;
  std::vector<BatchObserver> batch_observers_;
  bool batching_ = false;
  bool ahead_of_disk_ = false;
  uint64_t batch_base_seq_ = 0;      // seq_ when the batch began
  std::vector<crdt::Delta> staged_;  // the open batch's deltas, in seq order
  // Tells the observers of durable `deltas`.
  void Tell(const std::vector<crdt::Delta>& deltas);
  std::map<uint64_t, NodesObserver> nodes_observers_;
  uint64_t last_nodes_observer_ = 0;
  // Tells the node observers of `change` (after a successful join).
  void TellNodes(const NodesChange& change);
};

}  // namespace clustermgr::mgr
