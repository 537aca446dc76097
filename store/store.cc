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
#include "store/store_internal.h"

namespace clustermgr::store {

using crdt::ClusterState;
using crdt::HlcTimestamp;
using crdt::LwwMap;
using crdt::VersionVector;

Store::Store(std::string dir, const Options& options, std::unique_ptr<leveldb::DB> db)
    : dir_(std::move(dir)),
      options_(options),
      db_(std::move(db)),
      pending_(std::make_unique<leveldb::WriteBatch>()) {}

Store::~Store() = default;

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

Status Store::SubmitDeltas(int kind, bool sync, const std::vector<crdt::Delta>& deltas,
                           HlcTimestamp hlc_high_water, uint64_t local_seq) {
  Writer w(static_cast<Writer::Kind>(kind));
  w.sync = sync;
  w.deltas = &deltas;
  w.hlc = hlc_high_water;
  w.local_seq = local_seq;
  w.encoded.reserve(deltas.size());
  for (const crdt::Delta& d : deltas) w.encoded.push_back(EncodeDelta(d));  // caller's thread
  return Submit(&w);
}

Status Store::Commit(const std::vector<crdt::Delta>& deltas, HlcTimestamp hlc_high_water,
                     uint64_t local_seq) {
  return SubmitDeltas(static_cast<int>(Writer::Kind::kCommit), true, deltas, hlc_high_water,
                      local_seq);
}

Status Store::CommitUnsynced(const std::vector<crdt::Delta>& deltas, HlcTimestamp hlc_high_water,
                             uint64_t local_seq) {
  return SubmitDeltas(static_cast<int>(Writer::Kind::kCommit), false, deltas, hlc_high_water,
                      local_seq);
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
  return SubmitDeltas(static_cast<int>(Writer::Kind::kStage), true, deltas, hlc_high_water,
                      local_seq);
}

Status Store::AmendStaged(const crdt::Delta& delta, HlcTimestamp hlc_high_water) {
  {
    std::lock_guard lock(queue_mu_);
    if (!staged_) {
      return Status(Code::kFailedPrecondition, "no staged delta to amend in data dir " + dir_);
    }
  }
  return SubmitDeltas(static_cast<int>(Writer::Kind::kAmend), true, {delta}, hlc_high_water,
                      delta.seq);
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

}  // namespace clustermgr::store
