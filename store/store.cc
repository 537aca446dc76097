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

#include "store/codec.h"
#include "store/contents.h"
#include "store/dir_copy.h"
#include "store/keys.h"

namespace clustermgr::store {

using crdt::ClusterState;
using crdt::HlcTimestamp;
using crdt::LwwMap;
using crdt::VersionVector;

struct Store::Writer {
  enum class Kind { kCommit, kSnapshot, kCollect };
  explicit Writer(Kind k) : kind(k) {}

  Kind kind;
  // kCommit
  const std::vector<crdt::Delta>* deltas = nullptr;
  std::vector<std::string> encoded;  // EncodeDelta of each delta, made by the caller's thread
  HlcTimestamp hlc;
  uint64_t local_seq = 0;
  // kSnapshot
  const ClusterState* chunk = nullptr;
  const VersionVector* covered = nullptr;
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
  HlcTimestamp hlc;
  uint64_t local_seq = 0;
  const VersionVector* stable = nullptr;  // set: collect tombstones instead

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

uint64_t NowMillis() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string NewIncarnation() {
  std::random_device rd;
  const uint64_t r = (uint64_t{rd()} << 32) ^ uint64_t { rd() };
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
  return buf;
}

std::string Errno(int err) { return std::strerror(err); }

// The dir exists (created 0700 if allowed), is a directory and is usable.
Status PrepareDir(const std::string& dir, bool create) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Status(Code::kIoError, "cannot access data dir " + dir + ": " + Errno(errno));
    }
    if (!create) return Status(Code::kNotFound, "data dir " + dir + " does not exist");
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status(Code::kIoError, "cannot create data dir " + dir + ": " + Errno(errno));
    }
    if (::stat(dir.c_str(), &st) != 0) {
      return Status(Code::kIoError, "cannot access data dir " + dir + ": " + Errno(errno));
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status(Code::kInvalidArgument, "data dir " + dir + " is not a directory");
  }
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return Status(Code::kIoError, "data dir " + dir + " is not usable: " + Errno(errno));
  }
  // A store is created only in an empty dir (or one holding a store): a mistyped --data-dir
  // pointing at someone's home must not be filled with LevelDB files.
  std::error_code ec;
  if (!std::filesystem::exists(dir + "/CURRENT", ec)) {
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name != "lost+found" && name != "LOCK" && name != "LOG" && name != "LOG.old") {
        return Status(Code::kFailedPrecondition, "data dir " + dir +
                                                     " holds files but no store (found " + name +
                                                     "); use an empty or new directory");
      }
    }
  }
  return Status::Ok();
}

Status FromOpen(const leveldb::Status& s, const std::string& dir) {
  const std::string msg = s.ToString();
  if (s.IsIOError() && msg.find("LOCK") != std::string::npos &&
      (msg.find("already held") != std::string::npos ||
       msg.find("temporarily unavailable") != std::string::npos)) {
    return Status(Code::kUnavailable,
                  "data dir " + dir + " is in use by another clustermgrd (LevelDB lock held)");
  }
  if (s.IsInvalidArgument() && msg.find("does not exist") != std::string::npos) {
    return Status(Code::kNotFound, "data dir " + dir + " holds no store");
  }
  if (s.IsCorruption()) {
    return Status(Code::kCorruption, "data dir " + dir + ": LevelDB found corruption: " + msg);
  }
  return Status(Code::kIoError, "cannot open the store in data dir " + dir + ": " + msg);
}

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

template <typename K, typename V>
void MaxOwnHlc(const LwwMap<K, V>& map, const std::string& origin, HlcTimestamp* max) {
  for (const auto& [k, entry] : map.entries()) {
    if (entry.tag.stamp.origin == origin) *max = std::max(*max, entry.tag.stamp.hlc);
  }
}

std::string StrKey(std::string (*fn)(std::string_view), const std::string& k) { return fn(k); }

std::map<std::string, ContextPart> ContextParts(const crdt::CausalContext& ctx) {
  std::map<std::string, ContextPart> parts;
  for (const auto& [origin, counter] : ctx.compact().entries()) parts[origin].compact = counter;
  for (const crdt::Dot& d : ctx.cloud()) parts[d.origin].cloud.push_back(d.counter);
  return parts;
}

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
    : dir_(std::move(dir)), options_(options), db_(std::move(db)) {}

Store::~Store() = default;

namespace {

// Opens `path` (shown to operators as `shown`) and loads it.
struct Opened {
  std::unique_ptr<leveldb::DB> db;
  Metadata meta;
  StoreContents contents;
};

Result<Opened> OpenAt(const std::string& path, const std::string& shown, const Options& options) {
  if (options.delta_log_limit == 0) {
    return Status(Code::kInvalidArgument, "delta_log_limit must be at least 1");
  }
  if (Status s = PrepareDir(path, options.create_if_missing); !s.ok()) return s;
  leveldb::Options lo;
  lo.create_if_missing = options.create_if_missing;
  lo.paranoid_checks = true;
  if (options.env) lo.env = options.env;
  leveldb::DB* raw = nullptr;
  if (leveldb::Status s = leveldb::DB::Open(lo, path, &raw); !s.ok()) return FromOpen(s, shown);
  Opened out;
  out.db.reset(raw);

  std::string value;
  leveldb::Status got = out.db->Get(leveldb::ReadOptions(), MetaKey(), &value);
  if (got.IsNotFound()) {
    std::unique_ptr<leveldb::Iterator> it(out.db->NewIterator(leveldb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) {
      return Status(Code::kCorruption, "data dir " + shown +
                                           " holds records but no metadata record (key " +
                                           EscapeKey(MetaKey()) + ")");
    }
    if (!it->status().ok()) return FromOpen(it->status(), shown);
    if (!options.create_if_missing) {
      return Status(Code::kNotFound, "data dir " + shown + " holds no store");
    }
    if (options.instance_name.empty()) {
      return Status(Code::kInvalidArgument,
                    "creating the store in data dir " + shown + " needs an instance name");
    }
    out.meta.schema_version = kSchemaVersion;
    out.meta.instance = options.instance_name;
    out.meta.incarnation = NewIncarnation();
    out.meta.created_ms = NowMillis();
    leveldb::WriteOptions wo;
    wo.sync = true;
    if (leveldb::Status s = out.db->Put(wo, MetaKey(), EncodeMeta(out.meta)); !s.ok()) {
      return Status(Code::kIoError,
                    "cannot initialize the store in data dir " + shown + ": " + s.ToString());
    }
  } else if (!got.ok()) {
    return FromOpen(got, shown);
  } else {
    auto meta = DecodeMeta(value);
    if (!meta.ok()) {
      return Status(Code::kCorruption, "data dir " + shown + ": record " + EscapeKey(MetaKey()) +
                                           ": " + meta.status().message());
    }
    if (meta->schema_version != kSchemaVersion) {
      return Status(Code::kFailedPrecondition, "data dir " + shown + " has store schema version " +
                                                   std::to_string(meta->schema_version) +
                                                   "; this build reads version " +
                                                   std::to_string(kSchemaVersion));
    }
    if (!options.instance_name.empty() && meta->instance != options.instance_name) {
      return Status(Code::kFailedPrecondition, "data dir " + shown + " belongs to instance \"" +
                                                   meta->instance + "\", not \"" +
                                                   options.instance_name + "\"");
    }
    out.meta = std::move(*meta);
  }

  LoadOptions load;
  load.decode_deltas = true;
  if (Status s = LoadContents(out.db.get(), load, &out.contents, nullptr); !s.ok()) {
    return Status(s.code(), "data dir " + shown + ": " + s.message());
  }
  return out;
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
  // Memory is joined only after durability, so what is on disk holds at least what memory held
  // (and the failed batch, should it have landed after all).
  db_ = std::move(opened->db);
  meta_ = std::move(opened->meta);
  state_ = std::move(opened->contents.state);
  applied_ = std::move(opened->contents.applied);
  log_index_ = std::move(opened->contents.delta_log);
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

Status Store::ApplySnapshot(const ClusterState& chunk, const VersionVector& covered) {
  Writer w(Writer::Kind::kSnapshot);
  w.chunk = &chunk;
  w.covered = &covered;
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
      case Writer::Kind::kCommit: {
        size_t n = 0;
        for (Writer* g : group) {
          for (size_t i = 0; i < g->deltas->size(); ++i) {
            change.deltas.emplace_back(&(*g->deltas)[i], &g->encoded[i]);
            ++n;
          }
          change.hlc = std::max(change.hlc, g->hlc);
          change.local_seq = std::max(change.local_seq, g->local_seq);
        }
        if (n == 1) {
          change.joined = &change.deltas.front().first->state;
        } else {
          for (const auto& [d, enc] : change.deltas) change.scratch.Join(d->state);
          change.joined = &change.scratch;
        }
        break;
      }
      case Writer::Kind::kSnapshot:
        change.joined = w->chunk;
        change.covered = w->covered;
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
    } else {
      stats_.calls += group.size();
      stats_.batches += change.empty ? 0 : 1;
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
  leveldb::WriteBatch& batch = c.batch;
  if (c.stable) {
    const VersionVector& stable = *c.stable;
    c.collected =
        DeleteCollected(state_.globals, stable, &GlobalKey, &batch) +
        DeleteCollected(
            state_.node_vars, stable,
            [](const crdt::NodeVarKey& k) { return NodeVarKey(k.first, k.second); }, &batch) +
        DeleteCollected(state_.inventory, stable, &InventoryKey, &batch) +
        DeleteCollected(state_.jobs, stable, &JobKey, &batch) +
        DeleteCollected(
            state_.job_logs, stable,
            [](const crdt::JobLogKey& k) { return JobLogKey(k.first, k.second); }, &batch) +
        DeleteCollected(state_.config, stable, &ConfigKey, &batch);
    c.empty = c.collected == 0;
  } else {
    const ClusterState& in = *c.joined;
    auto str = [](std::string (*fn)(std::string_view)) {
      return [fn](const std::string& k) { return StrKey(fn, k); };
    };
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
      // Memory is joined only after durability, so the new set is built on a copy here,
      // outside the state lock, diffed against the old one, and swapped in once durable. (The
      // copy is O(set); host-group changes are rare: commissions and updates.)
      crdt::OrSet<crdt::HostGroupKey> next = state_.host_groups;
      next.Join(in.host_groups);
      const auto& before = state_.host_groups.entries();
      const auto& after = next.entries();
      auto a = before.begin();
      auto b = after.begin();
      while (a != before.end() || b != after.end()) {
        if (b == after.end() || (a != before.end() && a->first < b->first)) {
          batch.Delete(HostGroupKey(a->first.first, a->first.second));
          ++a;
        } else if (a == before.end() || b->first < a->first) {
          batch.Put(HostGroupKey(b->first.first, b->first.second), EncodeElement(b->second));
          ++b;
        } else {
          if (a->second != b->second) {
            batch.Put(HostGroupKey(b->first.first, b->first.second), EncodeElement(b->second));
          }
          ++a;
          ++b;
        }
      }
      const auto old_parts = ContextParts(state_.host_groups.context());
      for (const auto& [origin, part] : ContextParts(next.context())) {
        auto it = old_parts.find(origin);
        if (it == old_parts.end() || it->second != part) {
          batch.Put(HostGroupContextKey(origin), EncodeContextPart(part));
        }
      }
      if (next != state_.host_groups) {
        c.empty = false;
        c.host_groups = std::move(next);
      }
    }
    if (in.token_epoch.value() > state_.token_epoch.value()) {
      batch.Put(TokenEpochKey(), EncodeEpoch(in.token_epoch.value()));
      c.empty = false;
    }

    // The delta log and the applied vector.
    std::map<std::string, std::set<uint64_t>> seqs;  // origin -> seqs in this change
    std::map<std::string, std::map<uint64_t, const std::string*>> adds;
    for (const auto& [d, encoded] : c.deltas) {
      seqs[d->origin].insert(d->seq);
      auto have = log_index_.find(d->origin);
      if (d->seq > applied_.Get(d->origin) &&
          (have == log_index_.end() || !have->second.count(d->seq))) {
        adds[d->origin].emplace(d->seq, encoded);
      }
    }
    static const std::set<uint64_t> kNone;
    for (auto& [origin, added] : adds) {
      auto it = log_index_.find(origin);
      const std::set<uint64_t>& have = it == log_index_.end() ? kNone : it->second;
      // Keep the delta_log_limit highest seqs of have + added: drop the lowest.
      uint64_t excess = have.size() + added.size() > options_.delta_log_limit
                            ? have.size() + added.size() - options_.delta_log_limit
                            : 0;
      auto h = have.begin();
      while (excess > 0) {
        if (h != have.end() && (added.empty() || *h < added.begin()->first)) {
          batch.Delete(DeltaLogKey(origin, *h));
          c.log_dropped[origin].push_back(*h);
          ++h;
        } else {
          added.erase(added.begin());
        }
        --excess;
      }
      for (const auto& [seq, encoded] : added) {
        batch.Put(DeltaLogKey(origin, seq), *encoded);
        c.log_added[origin].push_back(seq);
        c.empty = false;
      }
    }
    std::set<std::string> origins;
    for (const auto& [origin, s] : seqs) origins.insert(origin);
    if (c.covered) {
      for (const auto& [origin, n] : c.covered->entries()) origins.insert(origin);
    }
    for (const std::string& origin : origins) {
      const uint64_t old = applied_.Get(origin);
      uint64_t a = old;
      if (c.covered) a = std::max(a, c.covered->Get(origin));
      auto logged = log_index_.find(origin);
      auto mine = seqs.find(origin);
      for (;;) {
        const bool next = (mine != seqs.end() && mine->second.count(a + 1)) ||
                          (logged != log_index_.end() && logged->second.count(a + 1));
        if (!next) break;
        ++a;
      }
      if (a > old) {
        batch.Put(AppliedKey(origin), EncodeApplied(a));
        c.applied[origin] = a;
        c.empty = false;
      }
    }

    // The metadata: counters only ever rise.
    c.meta = meta_;
    c.meta.local_seq = std::max(meta_.local_seq, c.local_seq);
    HlcTimestamp hlc = std::max(meta_.hlc_high_water, c.hlc);
    MaxOwnHlc(in.globals, origin_, &hlc);
    MaxOwnHlc(in.node_vars, origin_, &hlc);
    MaxOwnHlc(in.inventory, origin_, &hlc);
    MaxOwnHlc(in.jobs, origin_, &hlc);
    MaxOwnHlc(in.job_logs, origin_, &hlc);
    MaxOwnHlc(in.config, origin_, &hlc);
    c.meta.hlc_high_water = hlc;
    if (c.meta != meta_) {
      batch.Put(MetaKey(), EncodeMeta(c.meta));
      c.empty = false;
    }
  }

  if (c.empty) return Status::Ok();  // nothing changes: already durable
  leveldb::WriteOptions wo;
  wo.sync = options_.sync;
  if (leveldb::Status s = db_->Write(wo, &batch); !s.ok()) {
    // LevelDB cannot say whether a batch whose write or sync failed will be found on reopen.
    return Status(Code::kOutcomeUnknown, "outcome unknown: writing to data dir " + dir_ +
                                             " failed (" + s.ToString() +
                                             "); the change may or may not have been stored");
  }

  // Durable: join into memory.
  std::unique_lock lock(state_mu_);
  if (c.stable) {
    state_.CollectTombstones(*c.stable);
    return Status::Ok();
  }
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
  return Status::Ok();
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
