// The store's write path: writers queue, one of them commits the group (Submit); a change's
// records are built (BuildChange), written (WriteChange) and then installed in memory
// (InstallChange). The contracts are in store/store.h.
#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <utility>

#include "store/change_records.h"
#include "store/codec.h"
#include "store/keys.h"
#include "store/store.h"
#include "store/store_internal.h"

namespace clustermgr::store {

using crdt::ClusterState;
using crdt::HlcTimestamp;
using crdt::LwwMap;
using crdt::VersionVector;

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
      case Writer::Kind::kAmend:
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
        change.stage = w->kind == Writer::Kind::kStage || w->kind == Writer::Kind::kAmend;
        change.amend = w->kind == Writer::Kind::kAmend;
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
    if (c.amend) {
      // The seqs are applied already (staged): their log records are replaced, not added.
      for (const auto& [d, encoded] : c.deltas) {
        auto it = log_index_.find(d->origin);
        if (it == log_index_.end() || !it->second.count(d->seq)) continue;
        batch.Put(DeltaLogKey(d->origin, d->seq), *encoded);
        c.empty = false;
      }
    }
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
