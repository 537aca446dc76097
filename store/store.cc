#include "store/store.h"

#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <utility>

#include "store/change_records.h"
#include "store/codec.h"
#include "store/contents.h"
#include "store/dir_copy.h"
#include "store/keys.h"
#include "store/open_data_dir.h"

namespace clustermgr::store {

using crdt::ClusterState;
using crdt::HlcTimestamp;
using crdt::LwwMap;
using crdt::VersionVector;

struct Store::Writer {
  enum class Kind { kCommit, kStage, kFlush, kSnapshot, kCollect };
  bool sync = true;  // kCommit: false for CommitUnsynced; kFlush: true for Sync (forced)
  explicit Writer(Kind k) : kind(k) {}

  Kind kind;
  // kCommit, kStage
  const std::vector<crdt::Delta>* deltas = nullptr;
  std::vector<std::string> encoded;  // EncodeDelta of each delta, made by the caller's thread
  HlcTimestamp hlc;
  uint64_t local_seq = 0;
  // kSnapshot (and hlc, local_seq)
  const ClusterState* chunk = nullptr;
  const VersionVector* covered = nullptr;
  const crdt::StateKeys* complete = nullptr;
  // kCollect
  const VersionVector* stable = nullptr;
  size_t collected = 0;

  Status status;
  bool done = false;
  std::condition_variable cv;
};

// One batch's worth of work: its inputs, then what Build computed for Install.
struct Store::Change {
  // Inputs.
  const ClusterState* joined = nullptr;  // what to join: one delta, a chunk, or `scratch`
  ClusterState scratch;                  // the join of a group's deltas
  std::vector<std::pair<const crdt::Delta*, const std::string*>> deltas;  // with encodings
  const VersionVector* covered = nullptr;
  const crdt::StateKeys* complete = nullptr;  // with covered: drop covered entries it lacks
  HlcTimestamp hlc;
  uint64_t local_seq = 0;
  const VersionVector* stable = nullptr;  // set: collect tombstones instead
  bool stage = false;                     // append to the pending batch instead of writing
  bool flush = false;                     // nothing to build: write the pending batch
  bool carried = false;                   // output: the write carried staged changes
  bool sync = true;                       // sync the write (with Options::sync)
  bool force = false;                     // a Sync: write (an empty batch) even when nothing waits

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

namespace {

template <typename K, typename V, typename KeyFn, typename EncodeFn>
void PutWinners(const LwwMap<K, V>& incoming, const LwwMap<K, V>& current, KeyFn key,
                EncodeFn encode, leveldb::WriteBatch* batch, bool* empty) {
  for (const auto& [k, entry] : incoming.entries()) {
    const auto* have = current.Find(k);
    if (!have || have->tag.stamp < entry.tag.stamp) {
      batch->Put(key(k), encode(entry));
      *empty = false;
    }
  }
}

template <typename K, typename V, typename KeyFn>
size_t DeleteCollected(const LwwMap<K, V>& map, const VersionVector& stable, KeyFn key,
                       leveldb::WriteBatch* batch) {
  size_t n = 0;
  for (const auto& [k, entry] : map.entries()) {
    if (entry.tombstone() && stable.Covers(entry.tag.dot())) {
      batch->Delete(key(k));
      ++n;
    }
  }
  return n;
}

// Deletes the entries of `map` that `covered` covers and `keep` lacks (LwwMap::DropCoveredAbsent).
template <typename K, typename V, typename KeyFn>
size_t DeleteCoveredAbsent(const LwwMap<K, V>& map, const VersionVector& covered,
                           const std::set<K>& keep, KeyFn key, leveldb::WriteBatch* batch) {
  size_t n = 0;
  for (const auto& [k, entry] : map.entries()) {
    if (covered.Covers(entry.tag.dot()) && !keep.count(k)) {
      batch->Delete(key(k));
      ++n;
    }
  }
  return n;
}

std::string StrKey(std::string (*fn)(std::string_view), const std::string& k) { return fn(k); }

void JoinLwwSections(const ClusterState& from, ClusterState* into) {
  into->globals.Join(from.globals);
  into->node_vars.Join(from.node_vars);
  into->inventory.Join(from.inventory);
  into->jobs.Join(from.jobs);
  into->job_logs.Join(from.job_logs);
  into->config.Join(from.config);
  into->token_epoch.Join(from.token_epoch);
}

}  // namespace

Store::Store(std::string dir, const Options& options, std::unique_ptr<leveldb::DB> db)
    : dir_(std::move(dir)),
      options_(options),
      db_(std::move(db)),
      pending_(std::make_unique<leveldb::WriteBatch>()) {}

Store::~Store() = default;

namespace {

// Tombstones every replica has seen (`stable`) are deleted from every LWW section of `state`;
// returns how many.
size_t DeleteAllCollected(const ClusterState& state, const VersionVector& stable,
                          leveldb::WriteBatch* batch) {
  return DeleteCollected(state.globals, stable, &GlobalKey, batch) +
         DeleteCollected(
             state.node_vars, stable,
             [](const crdt::NodeVarKey& k) { return NodeVarKey(k.first, k.second); }, batch) +
         DeleteCollected(state.inventory, stable, &InventoryKey, batch) +
         DeleteCollected(state.jobs, stable, &JobKey, batch) +
         DeleteCollected(
             state.job_logs, stable,
             [](const crdt::JobLogKey& k) { return JobLogKey(k.first, k.second); }, batch) +
         DeleteCollected(state.config, stable, &ConfigKey, batch);
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const Options& options) {
  auto opened = OpenAt(dir, dir, options);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<Store> store(new Store(dir, options, std::move(opened->db)));
  store->meta_ = std::move(opened->meta);
  store->origin_ = store->meta_.origin();
  store->state_ = std::move(opened->contents.state);
  store->applied_ = std::move(opened->contents.applied);
  store->durable_ = store->applied_;
  store->log_index_ = std::move(opened->contents.delta_log);
  return store;
}

Result<std::unique_ptr<Store>> Store::OpenReadOnly(const std::string& dir) {
  auto copy = DirCopy::Make(dir);
  if (!copy.ok()) return copy.status();
  Options options;
  options.create_if_missing = false;
  auto opened = OpenAt((*copy)->path(), dir, options);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<Store> store(new Store(dir, options, nullptr));
  store->copy_ = std::move(*copy);
  store->db_ = std::move(opened->db);
  store->meta_ = std::move(opened->meta);
  store->origin_ = store->meta_.origin();
  store->state_ = std::move(opened->contents.state);
  store->applied_ = std::move(opened->contents.applied);
  store->durable_ = store->applied_;
  store->log_index_ = std::move(opened->contents.delta_log);
  return store;
}

ClusterState Store::State() const {
  std::shared_lock lock(state_mu_);
  return state_;
}

VersionVector Store::Applied() const {
  std::shared_lock lock(state_mu_);
  return applied_;
}

Metadata Store::metadata() const {
  std::shared_lock lock(state_mu_);
  return meta_;
}

std::map<std::string, DeltaLogRange> Store::DeltaLog() const {
  std::shared_lock lock(state_mu_);
  std::map<std::string, DeltaLogRange> out;
  for (const auto& [origin, seqs] : log_index_) {
    if (seqs.empty()) continue;
    out[origin] = DeltaLogRange{seqs.size(), *seqs.begin(), *seqs.rbegin()};
  }
  return out;
}

Status Store::write_error() const {
  std::lock_guard lock(queue_mu_);
  return write_error_;
}

Store::WriteStats Store::write_stats() const {
  std::lock_guard lock(queue_mu_);
  return stats_;
}

Status Store::ReadOnlyError() const {
  return Status(Code::kIoError, "not stored: the store is read-only after a failed write (" +
                                    write_error_.message() + ") until it is reopened");
}

Status Store::Reopen() {
  if (copy_) {
    return Status(Code::kFailedPrecondition,
                  "store opened read-only (a copy of data dir " + dir_ + ")");
  }
  std::lock_guard qlock(queue_mu_);
  if (write_error_.ok()) return Status::Ok();
  if (!queue_.empty()) return Status(Code::kUnavailable, "writes are in flight");
  std::unique_lock slock(state_mu_);
  db_.reset();  // releases LevelDB's lock on the dir
  Options options = options_;
  options.create_if_missing = false;
  auto opened = OpenAt(dir_, dir_, options);
  if (!opened.ok()) {
    return Status(opened.status().code(),
                  "reopening data dir " + dir_ + " failed: " + opened.status().message());
  }
  if (opened->meta.origin() != origin_) {
    return Status(Code::kFailedPrecondition, "data dir " + dir_ + " now holds origin " +
                                                 opened->meta.origin() + ", not " + origin_);
  }
  // Memory is joined only after durability (staged changes aside), so what is on disk holds at
  // least what memory held of durable changes (and the failed batch, should it have landed).
  db_ = std::move(opened->db);
  meta_ = std::move(opened->meta);
  state_ = std::move(opened->contents.state);
  applied_ = std::move(opened->contents.applied);
  durable_ = applied_;
  log_index_ = std::move(opened->contents.delta_log);
  pending_->Clear();  // staged changes went with the failed write, or are now lost with memory
  staged_ = false;
  write_error_ = Status::Ok();
  return Status::Ok();
}

Status Store::Commit(const std::vector<crdt::Delta>& deltas, HlcTimestamp hlc_high_water,
                     uint64_t local_seq) {
  Writer w(Writer::Kind::kCommit);
  w.deltas = &deltas;
  w.hlc = hlc_high_water;
  w.local_seq = local_seq;
  w.encoded.reserve(deltas.size());
  for (const crdt::Delta& d : deltas) w.encoded.push_back(EncodeDelta(d));
  return Submit(&w);
}

Status Store::CommitUnsynced(const std::vector<crdt::Delta>& deltas, HlcTimestamp hlc_high_water,
                             uint64_t local_seq) {
  Writer w(Writer::Kind::kCommit);
  w.sync = false;
  w.deltas = &deltas;
  w.hlc = hlc_high_water;
  w.local_seq = local_seq;
  w.encoded.reserve(deltas.size());
  for (const crdt::Delta& d : deltas) w.encoded.push_back(EncodeDelta(d));
  return Submit(&w);
}

Status Store::Sync() {
  {
    std::lock_guard lock(queue_mu_);
    if (!unsynced_ && write_error_.ok()) return Status::Ok();
  }
  Writer w(Writer::Kind::kFlush);
  w.sync = true;
  return Submit(&w);
}

VersionVector Store::Durable() const {
  std::shared_lock lock(state_mu_);
  return durable_;
}

bool Store::has_unsynced() const {
  std::lock_guard lock(queue_mu_);
  return unsynced_;
}

Status Store::Stage(const std::vector<crdt::Delta>& deltas, HlcTimestamp hlc_high_water,
                    uint64_t local_seq) {
  Writer w(Writer::Kind::kStage);
  w.deltas = &deltas;
  w.hlc = hlc_high_water;
  w.local_seq = local_seq;
  w.encoded.reserve(deltas.size());
  for (const crdt::Delta& d : deltas) w.encoded.push_back(EncodeDelta(d));
  return Submit(&w);
}

Status Store::Flush() {
  {
    std::lock_guard lock(queue_mu_);
    if (!staged_ && write_error_.ok()) return Status::Ok();
  }
  Writer w(Writer::Kind::kFlush);
  w.sync = false;  // not forced: writes only what is staged (synced all the same)
  return Submit(&w);
}

bool Store::has_staged() const {
  std::lock_guard lock(queue_mu_);
  return staged_;
}

Status Store::ApplySnapshot(const ClusterState& chunk, const VersionVector& covered,
                            HlcTimestamp hlc_high_water, uint64_t local_seq,
                            const crdt::StateKeys* complete) {
  Writer w(Writer::Kind::kSnapshot);
  w.chunk = &chunk;
  w.covered = &covered;
  w.hlc = hlc_high_water;
  w.local_seq = local_seq;
  w.complete = complete;
  return Submit(&w);
}

Result<size_t> Store::CollectTombstones(const VersionVector& stable) {
  Writer w(Writer::Kind::kCollect);
  w.stable = &stable;
  if (Status s = Submit(&w); !s.ok()) return s;
  return w.collected;
}

Status Store::Submit(Writer* w) {
  if (copy_) {
    return Status(Code::kFailedPrecondition,
                  "store opened read-only (a copy of data dir " + dir_ + ")");
  }
  std::unique_lock lock(queue_mu_);
  if (!write_error_.ok()) return ReadOnlyError();
  queue_.push_back(w);
  while (!w->done && w != queue_.front()) w->cv.wait(lock);
  if (w->done) return w->status;

  // This writer leads: it carries the Commits queued right behind it.
  std::vector<Writer*> group{w};
  if (w->kind == Writer::Kind::kCommit) {
    for (auto it = queue_.begin() + 1; it != queue_.end(); ++it) {
      if ((*it)->kind != Writer::Kind::kCommit || group.size() >= options_.max_group_commits) {
        break;
      }
      group.push_back(*it);
    }
  }

  Status status;
  if (!write_error_.ok()) {
    status = ReadOnlyError();
  } else {
    lock.unlock();
    Change change;
    switch (w->kind) {
      case Writer::Kind::kStage:
      case Writer::Kind::kCommit: {
        size_t n = 0;
        change.sync = false;  // synced when any Commit of the group asks for it
        for (Writer* g : group) {
          for (size_t i = 0; i < g->deltas->size(); ++i) {
            change.deltas.emplace_back(&(*g->deltas)[i], &g->encoded[i]);
            ++n;
          }
          change.hlc = std::max(change.hlc, g->hlc);
          change.local_seq = std::max(change.local_seq, g->local_seq);
          if (g->sync) change.sync = true;
        }
        if (n == 1) {
          change.joined = &change.deltas.front().first->state;
        } else {
          for (const auto& [d, enc] : change.deltas) change.scratch.Join(d->state);
          change.joined = &change.scratch;
        }
        change.stage = w->kind == Writer::Kind::kStage;
        break;
      }
      case Writer::Kind::kFlush:
        change.flush = true;
        change.force = w->sync;
        break;
      case Writer::Kind::kSnapshot:
        change.joined = w->chunk;
        change.covered = w->covered;
        change.complete = w->complete;
        change.hlc = w->hlc;
        change.local_seq = w->local_seq;
        break;
      case Writer::Kind::kCollect:
        change.stable = w->stable;
        break;
    }
    status = WriteChange(change);
    w->collected = change.collected;
    lock.lock();
    if (!status.ok()) {
      write_error_ = status;
    } else if (change.stage) {
      stats_.calls += group.size();
      stats_.staged += change.empty ? 0 : 1;
      staged_ = staged_ || !change.empty;
    } else {
      const bool wrote = !change.empty || change.carried || change.force;
      stats_.calls += change.flush ? 0 : group.size();
      stats_.batches += wrote ? 1 : 0;
      staged_ = false;
      if (wrote) unsynced_ = !change.sync && options_.sync;
    }
  }

  for (Writer* g : group) {
    // The group is the head of the queue, in order: nobody else pops.
    queue_.pop_front();
    g->status = status;
    g->done = true;
    if (g != w) g->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return status;
}

Status Store::WriteChange(Change& c) {
  if (!c.flush) BuildChange(c);
  if (c.stage) {
    // Staged: the records wait in the pending batch; memory takes the change now.
    if (c.empty) return Status::Ok();
    pending_->Append(c.batch);
    InstallChange(c);
    return Status::Ok();
  }
  leveldb::WriteBatch* out = &c.batch;
  static const size_t kEmptyBatch = leveldb::WriteBatch().ApproximateSize();
  c.carried = pending_->ApproximateSize() > kEmptyBatch;
  if (c.carried) {
    // The staged changes go first, in the same atomic write.
    pending_->Append(c.batch);
    out = pending_.get();
  }
  if (c.empty && !c.carried && !c.force) return Status::Ok();  // nothing changes
  leveldb::WriteOptions wo;
  wo.sync = options_.sync && c.sync;
  if (leveldb::Status s = db_->Write(wo, out); !s.ok()) {
    // LevelDB cannot say whether a batch whose write or sync failed will be found on reopen.
    return Status(Code::kOutcomeUnknown, "outcome unknown: writing to data dir " + dir_ +
                                             " failed (" + s.ToString() +
                                             "); the change may or may not have been stored");
  }
  pending_->Clear();
  if (!c.flush && !c.empty) InstallChange(c);
  if (c.sync || !options_.sync) {
    std::unique_lock lock(state_mu_);
    durable_ = applied_;  // a sync covers every earlier write of the log
  }
  return Status::Ok();
}

void Store::BuildChange(Change& c) {
  leveldb::WriteBatch& batch = c.batch;
  if (c.stable) {
    c.collected = DeleteAllCollected(state_, *c.stable, &batch);
    c.empty = c.collected == 0;
  } else {
    const ClusterState& in = *c.joined;
    auto str = [](std::string (*fn)(std::string_view)) {
      return [fn](const std::string& k) { return StrKey(fn, k); };
    };
    if (c.complete && c.covered) {
      const VersionVector& cov = *c.covered;
      const crdt::StateKeys& keep = *c.complete;
      const size_t dropped =
          DeleteCoveredAbsent(state_.globals, cov, keep.globals, str(&GlobalKey), &batch) +
          DeleteCoveredAbsent(
              state_.node_vars, cov, keep.node_vars,
              [](const crdt::NodeVarKey& k) { return NodeVarKey(k.first, k.second); }, &batch) +
          DeleteCoveredAbsent(state_.inventory, cov, keep.inventory, str(&InventoryKey), &batch) +
          DeleteCoveredAbsent(state_.jobs, cov, keep.jobs, str(&JobKey), &batch) +
          DeleteCoveredAbsent(
              state_.job_logs, cov, keep.job_logs,
              [](const crdt::JobLogKey& k) { return JobLogKey(k.first, k.second); }, &batch) +
          DeleteCoveredAbsent(state_.config, cov, keep.config, str(&ConfigKey), &batch);
      if (dropped > 0) c.empty = false;
    }
    PutWinners(in.globals, state_.globals, str(&GlobalKey), &EncodeTextEntry, &batch, &c.empty);
    PutWinners(
        in.node_vars, state_.node_vars,
        [](const crdt::NodeVarKey& k) { return NodeVarKey(k.first, k.second); }, &EncodeTextEntry,
        &batch, &c.empty);
    PutWinners(in.inventory, state_.inventory, str(&InventoryKey), &EncodeInventoryEntry, &batch,
               &c.empty);
    PutWinners(in.jobs, state_.jobs, str(&JobKey), &EncodeJobEntry, &batch, &c.empty);
    PutWinners(
        in.job_logs, state_.job_logs,
        [](const crdt::JobLogKey& k) { return JobLogKey(k.first, k.second); }, &EncodeTextEntry,
        &batch, &c.empty);
    PutWinners(in.config, state_.config, str(&ConfigKey), &EncodeTextEntry, &batch, &c.empty);

    if (!in.host_groups.empty()) {
      if (auto next = PutHostGroups(state_.host_groups, in.host_groups, &batch)) {
        c.empty = false;
        c.host_groups = std::move(next);
      }
    }
    if (in.token_epoch.value() > state_.token_epoch.value()) {
      batch.Put(TokenEpochKey(), EncodeEpoch(in.token_epoch.value()));
      c.empty = false;
    }

    // The delta log and the applied vector.
    LogUpdate log =
        PutDeltaLog(c.deltas, c.covered, log_index_, applied_, options_.delta_log_limit, &batch);
    if (!log.added.empty() || !log.applied.empty()) c.empty = false;
    c.applied = std::move(log.applied);
    c.log_added = std::move(log.added);
    c.log_dropped = std::move(log.dropped);

    // The metadata: counters only ever rise.
    c.meta = meta_;
    c.meta.local_seq = std::max(meta_.local_seq, c.local_seq);
    // Every stamp applied, a peer's too: a restarted clock must order above all of them.
    c.meta.hlc_high_water = std::max({meta_.hlc_high_water, c.hlc, in.NewestHlc()});
    if (c.meta != meta_) {
      batch.Put(MetaKey(), EncodeMeta(c.meta));
      c.empty = false;
    }
  }
}

void Store::InstallChange(Change& c) {
  // Durable (or staged): join into memory.
  std::unique_lock lock(state_mu_);
  if (c.stable) {
    state_.CollectTombstones(*c.stable);
    return;
  }
  if (c.complete && c.covered) state_.DropCoveredAbsent(*c.covered, *c.complete);
  JoinLwwSections(*c.joined, &state_);
  if (c.host_groups) state_.host_groups = std::move(*c.host_groups);
  for (const auto& [origin, seq] : c.applied) applied_.Advance(origin, seq);
  for (const auto& [origin, dropped] : c.log_dropped) {
    for (uint64_t seq : dropped) log_index_[origin].erase(seq);
  }
  for (const auto& [origin, added] : c.log_added) {
    log_index_[origin].insert(added.begin(), added.end());
  }
  meta_ = c.meta;
}

Result<std::vector<std::string>> Store::EncodedDeltasSince(const std::string& origin,
                                                           uint64_t after_seq,
                                                           size_t max_count) const {
  std::vector<std::string> out;
  if (max_count == 0) return out;
  std::shared_lock lock(state_mu_);  // Reopen swaps db_ under the exclusive lock
  if (!db_) return Status(Code::kIoError, "data dir " + dir_ + " is not open");
  const std::string prefix = DeltaLogPrefix(origin);
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  uint64_t expect = after_seq + 1;
  bool newer_logged = false;
  for (it->Seek(DeltaLogKey(origin, expect)); it->Valid() && out.size() < max_count; it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (key.substr(0, prefix.size()) != prefix) break;
    newer_logged = true;
    if (key != DeltaLogKey(origin, expect)) break;
    out.emplace_back(it->value().data(), it->value().size());
    ++expect;
  }
  if (!it->status().ok()) {
    return Status(it->status().IsCorruption() ? Code::kCorruption : Code::kIoError,
                  "reading the delta log of " + origin + ": " + it->status().ToString());
  }
  if (!out.empty()) return out;
  if (!newer_logged && applied_.Get(origin) <= after_seq) return out;  // nothing newer exists
  std::string starts = "is empty";
  if (auto l = log_index_.find(origin); l != log_index_.end() && !l->second.empty()) {
    starts = "starts at seq " + std::to_string(*l->second.begin());
  }
  return Status(Code::kNotFound, "the delta log of " + origin + " no longer holds seq " +
                                     std::to_string(after_seq + 1) + " (it " + starts +
                                     "): a snapshot is needed");
}

Result<std::vector<crdt::Delta>> Store::DeltasSince(const std::string& origin, uint64_t after_seq,
                                                    size_t max_count) const {
  auto encoded = EncodedDeltasSince(origin, after_seq, max_count);
  if (!encoded.ok()) return encoded.status();
  std::vector<crdt::Delta> out;
  out.reserve(encoded->size());
  for (const std::string& bytes : *encoded) {
    auto d = DecodeDelta(bytes);
    if (!d.ok()) {
      return Status(Code::kCorruption,
                    "a logged delta of " + origin + " does not decode: " + d.status().message());
    }
    out.push_back(std::move(*d));
  }
  return out;
}

}  // namespace clustermgr::store
