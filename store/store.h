// Store: the durable replica of one clustermgrd instance, in LevelDB.
//
// A data dir holds one record per CRDT entry (key layout: store/keys.h; values:
// store/records.capnp), the replication version vector `applied`, a bounded per-origin log of
// recent deltas (so anti-entropy can catch peers up without a snapshot), and metadata
// (store/metadata.h). Open loads all of it into memory; every later change is written first and
// joined into memory only once durable (except a staged change: see Stage).
//
// Writes. Commit, ApplySnapshot and CollectTombstones each become one atomic LevelDB WriteBatch
// (synced unless Options::sync is false) holding exactly the records the change alters: LWW
// entries that win against the current state, host-group elements whose dots change, the
// host-group context parts of the origins whose context changes, the epoch register, the
// applied records that move, delta log puts and trims, and the metadata. If the write fails,
// memory is left as it was, the call returns kOutcomeUnknown ("outcome unknown: writing to data
// dir ... failed (...)"), and the store refuses every later write with kIoError "not stored: the
// store is read-only after a failed write (...) until it is reopened": after a failed write or
// sync LevelDB itself cannot tell whether the batch will be found on reopen, so the only safe
// continuation is to reopen and reload (Reopen). A failed batch is all-or-nothing on reopen.
//
// Group commit and the concurrency contract. Every method is thread-safe. Writers queue; the
// writer at the head of the queue (the leader) takes every queued Commit behind it (up to a
// bound), builds one batch for all of them, writes and syncs it while new writers queue up,
// joins the batch into memory, and wakes the writers it carried. So N concurrent Commits share
// one sync, and one batch is in flight at a time, in arrival order. That single flight is
// deliberate: each batch carries values computed from everything written before it (the
// applied vector, the HLC high-water mark, the last issued seq, the delta log window, which LWW
// entries win), and LevelDB applies concurrently submitted batches in an order of its choosing,
// so two batches in flight could land with the older values last. The leader reads memory
// without a lock (it is the only thread that mutates it) and takes the state lock exclusively
// only to join; readers (Read, accessors) take it shared, so they see each batch's effect
// entirely or not at all. After a failed batch every writer it carried gets the failure and
// every writer queued behind it gets the read-only error.
//
// Thread-safety: all methods, concurrently. `fn` passed to Read must not call a writing method
// of the same store (it holds the shared lock the writer needs).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "crdt/cluster_state.h"
#include "crdt/hlc.h"
#include "crdt/version_vector.h"
#include "store/metadata.h"

namespace leveldb {
class DB;
class Env;
class WriteBatch;
}  // namespace leveldb

namespace clustermgr::store {

class DirCopy;

struct Options {
  // Sync every write batch before acknowledging it. Turn off only in tests and
  // benchmarks that measure something else.
  bool sync = true;
  // Create the data dir (mode 0700, parent must exist) and a new store when there is none.
  bool create_if_missing = true;
  // Recorded when the store is created and required to match afterwards; may be empty to open
  // an existing store whatever its instance (state-inspect).
  std::string instance_name;
  // How many recent deltas of each origin the log keeps (>= 1).
  uint64_t delta_log_limit = 10'000;
  // A group commit carries at most this many Commit calls.
  size_t max_group_commits = 256;
  // LevelDB's Env: tests pass a fault-injecting one. Not owned; must outlive the Store. (The
  // data dir itself is checked and created through the real file system.)
  leveldb::Env* env = nullptr;
};

// What the delta log holds for one origin.
struct DeltaLogRange {
  uint64_t count = 0;
  uint64_t first = 0;  // lowest logged seq
  uint64_t last = 0;   // highest logged seq
  friend bool operator==(const DeltaLogRange&, const DeltaLogRange&) = default;
};

class Store {
 public:
  // Opens (or creates) the store in `dir` and loads it. Errors:
  //  kInvalidArgument  `dir` is not a directory; bad options; no instance name to create with
  //  kNotFound         `dir` (or a store in it) does not exist and create_if_missing is false
  //  kUnavailable      "data dir <dir> is in use by another clustermgrd (LevelDB lock held)"
  //  kFailedPrecondition  the store has another schema version, or belongs to another
  //                    instance, or `dir` holds other files but no store
  //  kCorruption       a record does not decode or lies in no known section (named, key
  //                    escaped), a record without metadata, or LevelDB found corruption
  //  kIoError          cannot create or access the dir (permissions), or another I/O failure
  // On error nothing stays open.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, const Options& options);

  // Opens a private copy of `dir` (see store/dir_copy.h) for reading while a daemon may hold
  // `dir`: never writes to `dir`, and every writing method fails with kFailedPrecondition. The
  // copy is removed when the Store is destroyed. Errors: those of DirCopy::Make and of Open.
  static Result<std::unique_ptr<Store>> OpenReadOnly(const std::string& dir);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& dir() const { return dir_; }
  // The replication origin id of this incarnation ("<instance>/<incarnation>"); fixed.
  const std::string& origin() const { return origin_; }

  // Calls fn(const crdt::ClusterState&) under the shared state lock and returns its result.
  template <typename Fn>
  decltype(auto) Read(Fn&& fn) const {
    std::shared_lock lock(state_mu_);
    return fn(static_cast<const crdt::ClusterState&>(state_));
  }
  // The state without taking the lock, for a single-writer owner: valid only on the one thread
  // that ever calls the writing methods (the daemon's event loop). That thread is then always
  // the leader, the only mutator of memory, so it reads a state nobody changes under it.
  const crdt::ClusterState& OwnerState() const { return state_; }
  // Copies, each consistent with the last completed write.
  crdt::ClusterState State() const;
  crdt::VersionVector Applied() const;
  Metadata metadata() const;
  std::map<std::string, DeltaLogRange> DeltaLog() const;

  // Persists `deltas` (own and received, any origins) and then joins them into memory: their
  // winning entries, their delta log records (only deltas above the origin's applied seq are
  // logged; each origin's log is then trimmed to its delta_log_limit newest seqs), the applied
  // vector (advanced over every seq now contiguous, from these deltas or the log: a delta past
  // a gap is joined and logged, and counts once the gap is filled), and the metadata:
  // local_seq = max(stored, `local_seq`), HLC high-water = max(stored, `hlc_high_water`, the
  // HLC of every entry, whatever its origin). Duplicates are harmless (joins are idempotent).
  // Returns once the batch holding them is durable and joined. Errors: kOutcomeUnknown (this
  // batch's write failed), kIoError (the store is read-only after an earlier failure: nothing
  // was written); kFailedPrecondition on a read-only copy.
  Status Commit(const std::vector<crdt::Delta>& deltas, crdt::HlcTimestamp hlc_high_water,
                uint64_t local_seq);

  // As Commit, but the write is not synced (with Options::sync): what a peer sends is durable
  // at its origin, and a receiver syncs on its own cadence (Sync). Joined into memory and the
  // applied vector at once; Durable() rises only with a later sync. A crash of the process
  // loses nothing written (the OS holds it); a crash of the machine may lose what no sync
  // covered yet.
  Status CommitUnsynced(const std::vector<crdt::Delta>& deltas, crdt::HlcTimestamp hlc_high_water,
                        uint64_t local_seq);
  // Syncs what unsynced writes left (one synced LevelDB write, empty when nothing else waits);
  // Durable() then equals Applied(). Ok at once when nothing is unsynced. Errors as Commit.
  Status Sync();
  // The applied vector as of the last synced write (Applied() with Options::sync false, and
  // what Open loaded). Tombstone stability and --ack-replicas count on this one.
  crdt::VersionVector Durable() const;
  // Whether unsynced writes wait for Sync.
  bool has_unsynced() const;

  // Staged commits, for a single-writer owner that makes many changes durable with one sync.
  // Stage does what Commit does except the write: the change's records are appended to a
  // pending LevelDB batch and the change is joined into memory at once (so later changes build
  // on it), before it is durable. Flush writes the pending batch (synced unless Options::sync
  // is false) as one atomic write. Every other writing call writes the pending batch ahead of
  // its own, in the same LevelDB write. Until Flush returns Ok, memory holds staged changes the
  // disk may lack: the owner must not let anything it reads from memory out (replies, gossip)
  // before then. If Flush (or a later write carrying the pending batch) fails, the store turns
  // read-only as for any failed write and memory may hold changes the disk lacks: Reopen
  // reloads memory from the disk. Errors as Commit.
  Status Stage(const std::vector<crdt::Delta>& deltas, crdt::HlcTimestamp hlc_high_water,
               uint64_t local_seq);
  // Replaces a delta staged since the last Flush by `delta`, of the same origin and seq, which
  // must hold everything the staged one holds (the owner joined more into it): its new entries
  // are staged and memory takes them, and the delta log's record of that seq is replaced.
  // kFailedPrecondition when nothing is staged. Errors otherwise as Stage.
  Status AmendStaged(const crdt::Delta& delta, crdt::HlcTimestamp hlc_high_water);
  Status Flush();
  // Whether staged changes wait for Flush.
  bool has_staged() const;

  // Persists and joins a snapshot chunk from a peer, and raises `applied` to at least `covered`
  // (then over any logged seqs now contiguous). Give `covered` (the peer's applied vector when
  // it took the snapshot) only with the last chunk, once the state covers it. The chunk must
  // be joinable on its own: an OR-set context must not cover dots of elements shipped in other
  // chunks (or they would be dropped when those arrive). With `complete` (the keys of every
  // chunk) and `covered`, the snapshot is authoritative for what it covers: LWW entries whose
  // write `covered` covers but whose key it lacks are deleted in the same batch (the peer had
  // applied them and collected the tombstone that beat them). The metadata rises as for
  // Commit (`hlc_high_water`: the sender's clock; `local_seq`: what the snapshot covers of
  // origin()). Errors as Commit.
  Status ApplySnapshot(const crdt::ClusterState& chunk, const crdt::VersionVector& covered,
                       crdt::HlcTimestamp hlc_high_water = {}, uint64_t local_seq = 0,
                       const crdt::StateKeys* complete = nullptr);

  // The logged deltas of `origin` with seqs after_seq+1, after_seq+2, ... as far as the log is
  // contiguous, at most max_count. Empty when nothing after after_seq was ever applied or
  // logged. kNotFound when after_seq+1 is needed but no longer (or never was) in the log: the
  // peer needs a snapshot. kCorruption if a logged delta does not decode; kIoError on a read
  // failure.
  Result<std::vector<crdt::Delta>> DeltasSince(const std::string& origin, uint64_t after_seq,
                                               size_t max_count) const;
  // The same, as EncodeDelta bytes straight from the log (no decode/encode round trip).
  Result<std::vector<std::string>> EncodedDeltasSince(const std::string& origin, uint64_t after_seq,
                                                      size_t max_count) const;

  // Deletes the tombstones covered by the causally stable vector `stable` (the caller's
  // guarantee, see crdt::LwwMap::CollectTombstones), on disk and then in memory. Returns how
  // many were dropped. Errors as Commit.
  Result<size_t> CollectTombstones(const crdt::VersionVector& stable);

  // Ok, or the failure that made the store read-only.
  Status write_error() const;

  // After a failed write: closes LevelDB, opens the dir again and reloads everything from it
  // (which holds at least what memory held, and the failed batch if it landed after all), and
  // accepts writes again. Ok at once when no write failed. Errors: those of Open (e.g. kIoError
  // while the disk is still full or no file descriptor is free: the store stays read-only, and
  // Reopen may be called again later); kUnavailable while writes are queued; kFailedPrecondition
  // on a read-only copy. Readers see the old state or the reloaded one, never a mix.
  Status Reopen();

  // Successful writing calls, and the LevelDB batches that carried them (group commit shows as
  // calls > batches; calls that changed nothing write no batch).
  struct WriteStats {
    uint64_t calls = 0;
    uint64_t batches = 0;
    uint64_t staged = 0;  // Stage calls that changed something (written by a later batch)
  };
  WriteStats write_stats() const;

 private:
  struct Writer;
  struct Change;

  Store(std::string dir, const Options& options, std::unique_ptr<leveldb::DB> db);

  // Queues `w` and returns its outcome; runs the leader's work when `w` reaches the head.
  Status Submit(Writer* w);
  // Submit of a writer of `kind` (a Writer::Kind) carrying `deltas`, encoded on this thread.
  Status SubmitDeltas(int kind, bool sync, const std::vector<crdt::Delta>& deltas,
                      crdt::HlcTimestamp hlc_high_water, uint64_t local_seq);
  // Leader only: builds, writes (or stages) and installs one change.
  Status WriteChange(Change& change);
  // Leader only: the records of `c` into c.batch (nothing when it changes nothing).
  void BuildChange(Change& c);
  // Leader only: joins the built change into memory.
  void InstallChange(Change& c);
  Status ReadOnlyError() const;  // needs queue_mu_ held

  const std::string dir_;
  const Options options_;
  std::string origin_;
  std::unique_ptr<DirCopy> copy_;  // set for OpenReadOnly; outlives db_ (declared before)
  std::unique_ptr<leveldb::DB> db_;

  mutable std::mutex queue_mu_;
  std::deque<Writer*> queue_;  // guarded by queue_mu_
  Status write_error_;         // guarded by queue_mu_; sticky
  bool staged_ = false;        // guarded by queue_mu_: pending_ holds staged changes
  bool unsynced_ = false;      // guarded by queue_mu_: a write since the last sync was unsynced
  WriteStats stats_;           // guarded by queue_mu_

  // The loaded state. Mutated only by the current leader, with state_mu_ held exclusively;
  // read by the leader without the lock and by everyone else with it held shared.
  mutable std::shared_mutex state_mu_;
  crdt::ClusterState state_;
  crdt::VersionVector applied_;
  crdt::VersionVector durable_;  // applied_ as of the last synced write
  Metadata meta_;
  std::map<std::string, std::set<uint64_t>> log_index_;  // origin -> logged seqs
  // Staged changes not yet written; used only by the current leader (and Reopen, which clears
  // it with the queue empty).
  std::unique_ptr<leveldb::WriteBatch> pending_;
};

}  // namespace clustermgr::store
