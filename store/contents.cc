#include "store/contents.h"

#include <leveldb/db.h>
#include <leveldb/iterator.h>

#include <memory>
#include <string_view>
#include <utility>

#include "store/codec.h"

namespace clustermgr::store {
namespace {

using crdt::Dot;

// Accumulates records into a StoreContents; each Add* returns the problem with a record.
class Loader {
 public:
  Loader(const LoadOptions& options, StoreContents* out) : options_(options), out_(out) {}

  Status Add(std::string_view key, std::string_view value) {
    const std::optional<DecodedKey> k = DecodeKey(key);
    if (!k) {
      if (!SectionOf(key)) return Bad("key in no known section");
      return Bad(std::string("malformed key in section ") +
                 std::string(SectionName(*SectionOf(key))));
    }
    SectionStats& stats = out_->sections[k->section];
    ++stats.records;
    stats.bytes += key.size() + value.size();
    switch (k->section) {
      case Section::kMeta: {
        auto meta = DecodeMeta(value);
        if (!meta.ok()) return meta.status();
        out_->meta = std::move(*meta);
        return Status::Ok();
      }
      case Section::kApplied: {
        auto seq = DecodeApplied(value);
        if (!seq.ok()) return seq.status();
        if (*seq == 0) return Bad("applied seq 0 (such records are never written)");
        out_->applied.Advance(k->a, *seq);
        return Status::Ok();
      }
      case Section::kDeltaLog: {
        if (k->n == 0) return Bad("delta log entry with seq 0");
        if (options_.decode_deltas || options_.keep_deltas) {
          auto delta = DecodeDelta(value);
          if (!delta.ok()) return delta.status();
          if (delta->origin != k->a || delta->seq != k->n) {
            return Bad("logged delta is " + delta->origin + ":" + std::to_string(delta->seq) +
                       ", not the key's " + k->a + ":" + std::to_string(k->n));
          }
          if (options_.keep_deltas) out_->deltas.push_back(std::move(*delta));
        }
        out_->delta_log[k->a].insert(k->n);
        return Status::Ok();
      }
      case Section::kGlobals:
        return AddEntry(DecodeTextEntry(value), k->a, &out_->state.globals, stats);
      case Section::kNodeVars:
        return AddEntry(DecodeTextEntry(value), crdt::NodeVarKey{k->a, k->b},
                        &out_->state.node_vars, stats);
      case Section::kInventory:
        return AddEntry(DecodeInventoryEntry(value), k->a, &out_->state.inventory, stats);
      case Section::kJobs:
        return AddEntry(DecodeJobEntry(value), k->a, &out_->state.jobs, stats);
      case Section::kJobLogs:
        return AddEntry(DecodeTextEntry(value), crdt::JobLogKey{k->a, k->n}, &out_->state.job_logs,
                        stats);
      case Section::kConfig:
        return AddEntry(DecodeTextEntry(value), k->a, &out_->state.config, stats);
      case Section::kHostGroups: {
        auto dots = DecodeElement(value);
        if (!dots.ok()) return dots.status();
        elements_.emplace_hint(elements_.end(), crdt::HostGroupKey{k->a, k->b}, std::move(*dots));
        return Status::Ok();
      }
      case Section::kHostGroupContext: {
        auto part = DecodeContextPart(value);
        if (!part.ok()) return part.status();
        compact_.Advance(k->a, part->compact);
        for (uint64_t c : part->cloud) cloud_.insert(Dot{k->a, c});
        return Status::Ok();
      }
      case Section::kTokenEpoch: {
        auto epoch = DecodeEpoch(value);
        if (!epoch.ok()) return epoch.status();
        out_->state.token_epoch = crdt::MaxRegister::Of(*epoch);
        return Status::Ok();
      }
    }
    return Bad("unhandled section");
  }

  void Finish() {
    out_->state.host_groups = crdt::OrSet<crdt::HostGroupKey>::FromParts(
        std::move(elements_),
        crdt::CausalContext::FromParts(std::move(compact_), std::move(cloud_)));
  }

 private:
  static Status Bad(std::string what) { return Status(Code::kCorruption, std::move(what)); }

  template <typename K, typename V>
  static Status AddEntry(Result<crdt::LwwEntry<V>> entry, K key, crdt::LwwMap<K, V>* map,
                         SectionStats& stats) {
    if (!entry.ok()) return entry.status();
    if (entry->tombstone()) ++stats.tombstones;
    map->JoinEntry(key, *entry);
    return Status::Ok();
  }

  const LoadOptions& options_;
  StoreContents* out_;
  crdt::OrSet<crdt::HostGroupKey>::Entries elements_;
  crdt::VersionVector compact_;
  std::set<Dot> cloud_;
};

Status FromLevelDb(const leveldb::Status& s) {
  if (s.ok()) return Status::Ok();
  return Status(s.IsCorruption() ? Code::kCorruption : Code::kIoError, s.ToString());
}

}  // namespace

std::string Problem::ToString() const {
  if (key.empty()) return message;
  return EscapeKey(key) + ": " + message;
}

Status LoadContents(leveldb::DB* db, const LoadOptions& options, StoreContents* out,
                    std::vector<Problem>* problems) {
  *out = StoreContents{};
  Loader loader(options, out);
  leveldb::ReadOptions read;
  read.verify_checksums = true;
  read.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(read));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    const std::string_view value(it->value().data(), it->value().size());
    Status s = loader.Add(key, value);
    if (s.ok()) continue;
    if (!problems) {
      return Status(Code::kCorruption, "record " + EscapeKey(key) + ": " + s.message());
    }
    problems->push_back(Problem{std::string(key), s.message()});
  }
  if (Status s = FromLevelDb(it->status()); !s.ok()) return s;
  loader.Finish();
  return Status::Ok();
}

namespace {

template <typename K, typename V>
void CheckCovered(const crdt::LwwMap<K, V>& logged, const crdt::LwwMap<K, V>& state,
                  const std::string& key, const char* section, const crdt::Delta& d,
                  std::vector<Problem>* problems) {
  for (const auto& [k, entry] : logged.entries()) {
    const auto* have = state.Find(k);
    // Absent is legal: a later tombstone may have won and been collected since.
    if (have && have->tag.stamp < entry.tag.stamp) {
      problems->push_back(Problem{key, "logged delta " + d.origin + ":" + std::to_string(d.seq) +
                                           " holds a " + section +
                                           " entry newer than the state's"});
      return;
    }
  }
}

template <typename K, typename V>
void CheckStamps(const crdt::LwwMap<K, V>& map, const Metadata& meta, const char* section,
                 std::vector<Problem>* problems) {
  const std::string origin = meta.origin();
  for (const auto& [k, entry] : map.entries()) {
    if (entry.tag.stamp.origin == origin && entry.tag.stamp.hlc > meta.hlc_high_water) {
      problems->push_back(
          Problem{"", std::string(section) + " entry stamped by this instance at HLC " +
                          entry.tag.stamp.hlc.ToString() + " is above the HLC high-water mark " +
                          meta.hlc_high_water.ToString()});
      return;
    }
  }
}

}  // namespace

std::vector<Problem> Verify(const StoreContents& c) {
  std::vector<Problem> problems;
  const crdt::ClusterState& state = c.state;

  if (!c.meta) {
    problems.push_back(Problem{MetaKey(), "no metadata record"});
  } else {
    const Metadata& meta = *c.meta;
    if (meta.schema_version != kSchemaVersion) {
      problems.push_back(
          Problem{MetaKey(), "schema version " + std::to_string(meta.schema_version) +
                                 "; this build reads version " + std::to_string(kSchemaVersion)});
    }
    if (meta.instance.empty() || meta.incarnation.empty()) {
      problems.push_back(Problem{MetaKey(), "metadata without instance name or incarnation"});
    }
    const uint64_t own_applied = c.applied.Get(meta.origin());
    if (own_applied > meta.local_seq) {
      problems.push_back(Problem{AppliedKey(meta.origin()),
                                 "applied seq " + std::to_string(own_applied) +
                                     " of the local origin is above its last issued seq " +
                                     std::to_string(meta.local_seq)});
    }
    CheckStamps(state.globals, meta, "globals", &problems);
    CheckStamps(state.node_vars, meta, "node_vars", &problems);
    CheckStamps(state.inventory, meta, "inventory", &problems);
    CheckStamps(state.jobs, meta, "jobs", &problems);
    CheckStamps(state.job_logs, meta, "job_logs", &problems);
    CheckStamps(state.config, meta, "config", &problems);
  }

  const crdt::CausalContext& ctx = state.host_groups.context();
  for (const auto& [element, dots] : state.host_groups.entries()) {
    for (const Dot& d : dots) {
      if (!ctx.Contains(d)) {
        problems.push_back(Problem{HostGroupKey(element.first, element.second),
                                   "dot " + d.ToString() + " is not covered by the context"});
      }
    }
  }

  for (const auto& [id, entry] : state.jobs.entries()) {
    if (!entry.tombstone() && entry.value->id != id) {
      problems.push_back(Problem{JobKey(id), "job record holds id \"" + entry.value->id + "\""});
    }
  }

  for (const auto& [origin, seqs] : c.delta_log) {
    const uint64_t applied = c.applied.Get(origin);
    if (seqs.count(applied + 1)) {
      problems.push_back(Problem{AppliedKey(origin), "applied seq is " + std::to_string(applied) +
                                                         " but the delta log holds seq " +
                                                         std::to_string(applied + 1)});
    }
  }

  for (const crdt::Delta& d : c.deltas) {
    const std::string key = DeltaLogKey(d.origin, d.seq);
    const size_t before = problems.size();
    CheckCovered(d.state.globals, state.globals, key, "globals", d, &problems);
    CheckCovered(d.state.node_vars, state.node_vars, key, "node_vars", d, &problems);
    CheckCovered(d.state.inventory, state.inventory, key, "inventory", d, &problems);
    CheckCovered(d.state.jobs, state.jobs, key, "jobs", d, &problems);
    CheckCovered(d.state.job_logs, state.job_logs, key, "job_logs", d, &problems);
    CheckCovered(d.state.config, state.config, key, "config", d, &problems);
    if (problems.size() != before) continue;
    const crdt::CausalContext& dctx = d.state.host_groups.context();
    bool covered = true;
    for (const auto& [origin, counter] : dctx.compact().entries()) {
      covered = covered && ctx.compact().Get(origin) >= counter;
    }
    for (const Dot& dot : dctx.cloud()) covered = covered && ctx.Contains(dot);
    for (const auto& [element, dots] : d.state.host_groups.entries()) {
      for (const Dot& dot : dots) covered = covered && ctx.Contains(dot);
    }
    if (!covered) {
      problems.push_back(Problem{key, "logged delta's host-group dots are not in the context"});
    }
    if (d.state.token_epoch.value() > state.token_epoch.value()) {
      problems.push_back(Problem{key, "logged delta raises the token epoch to " +
                                          std::to_string(d.state.token_epoch.value()) +
                                          " above the state's " +
                                          std::to_string(state.token_epoch.value())});
    }
  }
  return problems;
}

}  // namespace clustermgr::store
