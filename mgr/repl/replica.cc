#include "mgr/repl/replica.h"

#include <algorithm>

#include "mgr/log/log.h"

namespace clustermgr::mgr {

Replica::Replica(std::unique_ptr<store::Store> store, const Options& options,
                 crdt::PhysicalClock* physical)
    : store_(std::move(store)),
      name_(options.name),
      origin_(store_->origin()),
      physical_(physical),
      clock_(physical, options.max_clock_offset_ms) {
  const store::Metadata meta = store_->metadata();
  clock_.RestoreAtLeast(meta.hlc_high_water);
  // A store written by an older build persisted only its own stamps: the loaded entries count.
  clock_.RestoreAtLeast(state().NewestHlc());
  seq_ = meta.local_seq;
}

Result<std::unique_ptr<Replica>> Replica::Open(const Options& options,
                                               crdt::PhysicalClock* physical) {
  store::Options so;
  so.sync = options.sync;
  so.instance_name = options.name;
  so.delta_log_limit = options.delta_log_limit;
  so.env = options.env;
  auto store = store::Store::Open(options.data_dir, so);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Replica>(new Replica(std::move(store).value(), options, physical));
}

Result<crdt::Delta> Replica::Write(const std::function<void(crdt::DeltaBuilder&)>& build,
                                   std::optional<uint64_t> epoch) {
  const crdt::ClusterState& base = state();
  crdt::WriteTag tag;
  tag.stamp.epoch = epoch.value_or(base.token_epoch.value());
  tag.stamp.hlc = clock_.Now();
  tag.stamp.origin = origin_;
  tag.seq = seq_ + 1;
  crdt::DeltaBuilder builder(base, tag);
  build(builder);
  if (builder.empty()) return crdt::Delta{};
  crdt::Delta delta{origin_, tag.seq, std::move(builder).Take()};
  NodesChange touched;
  if (!nodes_observers_.empty()) touched.names = crdt::NodesTouched(base, delta.state);
  if (batching_) {
    if (Status s = store_->Stage({delta}, tag.stamp.hlc, tag.seq); !s.ok()) return s;
    seq_ = tag.seq;
    TellNodes(touched);
    staged_.push_back(delta);
    return delta;
  }
  if (Status s = store_->Commit({delta}, tag.stamp.hlc, tag.seq); !s.ok()) return s;
  seq_ = tag.seq;
  TellNodes(touched);
  Tell({delta});
  return delta;
}

Result<crdt::Delta> Replica::Amend(uint64_t after_seq,
                                   const std::function<void(crdt::DeltaBuilder&)>& build) {
  if (!batching_ || staged_.empty() || staged_.back().seq <= after_seq) return Write(build);
  crdt::Delta& last = staged_.back();
  const crdt::ClusterState& base = state();
  crdt::WriteTag tag;
  tag.stamp.epoch = base.token_epoch.value();
  tag.stamp.hlc = clock_.Now();
  tag.stamp.origin = origin_;
  tag.seq = last.seq;
  crdt::DeltaBuilder builder(base, tag);
  build(builder);
  if (builder.empty()) return last;
  crdt::ClusterState addition = std::move(builder).Take();
  NodesChange touched;
  if (!nodes_observers_.empty()) touched.names = crdt::NodesTouched(base, addition);
  crdt::Delta amended = last;
  amended.state.Join(addition);
  // Staged again whole: the delta log's record of this seq is replaced by the amended delta;
  // the entries already staged are not written twice (they do not win over themselves).
  if (Status s = store_->AmendStaged(amended, tag.stamp.hlc); !s.ok()) return s;
  last = std::move(amended);
  TellNodes(touched);
  return last;
}

void Replica::Tell(const std::vector<crdt::Delta>& deltas) {
  for (const crdt::Delta& delta : deltas) {
    for (const Observer& observer : observers_) observer(delta);
  }
  for (const BatchObserver& observer : batch_observers_) observer(deltas);
}

void Replica::BeginBatch() {
  batching_ = true;
  batch_base_seq_ = seq_;
  staged_.clear();
}

Status Replica::EndBatch() {
  batching_ = false;
  std::vector<crdt::Delta> staged = std::move(staged_);
  staged_.clear();
  if (staged.empty() && !store_->has_staged()) return Status::Ok();
  Status flushed = store_->Flush();
  if (flushed.ok()) {
    Tell(staged);
    return Status::Ok();
  }
  // The batch may or may not be on disk, and memory holds it: nothing read from memory may go
  // out until Recover reloads it from the disk (the store refuses writes until then). The
  // batch's seqs are issued again unless the reopened store shows them written.
  seq_ = batch_base_seq_;
  ahead_of_disk_ = true;
  return flushed;
}

void Replica::ObserveTimestamps(const crdt::ClusterState& state, crdt::HlcTimestamp also) {
  const crdt::HlcTimestamp newest = std::max(state.NewestHlc(), also);
  if (newest <= clock_.last()) return;
  if (auto observed = clock_.Observe(newest); observed.ok()) return;
  // Too far ahead of the wall clock: the clock follows it all the same (a later local write
  // must order above it), and the operator hears of the skew.
  clock_.RestoreAtLeast(newest);
  const uint64_t now = physical_->NowMillis();
  clock_skew_ms_ = newest.millis() > now ? newest.millis() - now : 0;
  ++clock_refusals_;
  constexpr uint64_t kLogEveryMs = 60'000;
  if (!skew_logged_ms_ || now >= *skew_logged_ms_ + kLogEveryMs || now < *skew_logged_ms_) {
    skew_logged_ms_ = now;
    CM_LOG(kWarn) << "clock skew: a peer's timestamp " << newest.ToString() << " is "
                  << clock_skew_ms_ << " ms ahead of this instance's wall clock (limit "
                  << clock_.max_offset_millis() << " ms; " << clock_refusals_
                  << " such so far): this instance's clock follows it so that later writes "
                     "order above; check NTP on every manager host";
  }
}

Status Replica::ApplyRemote(const std::vector<crdt::Delta>& deltas, bool sync) {
  if (deltas.empty()) return Status::Ok();
  uint64_t own = 0;
  for (const crdt::Delta& d : deltas) {
    ObserveTimestamps(d.state);
    if (d.origin == origin_) own = std::max(own, d.seq);
  }
  if (own > seq_) {
    // Peers hold deltas of this origin that this store lost: the data dir went back in time
    // (restored from an older copy). Take them back and issue new seqs above them; writes made
    // since the copy was restored may clash with them (see --restore-from-peers).
    CM_LOG(kError) << "peers hold this instance's deltas up to seq " << own
                   << " but its store had only " << seq_
                   << ": the data dir is older than this instance's history; start it with "
                      "--restore-from-peers to get a fresh origin";
  }
  NodesChange touched;
  if (!nodes_observers_.empty()) {
    for (const crdt::Delta& d : deltas) touched.names.merge(crdt::NodesTouched(state(), d.state));
  }
  Status stored = sync ? store_->Commit(deltas, clock_.last(), own)
                       : store_->CommitUnsynced(deltas, clock_.last(), own);
  if (!stored.ok()) return stored;
  seq_ = std::max(seq_, own);
  TellNodes(touched);
  return Status::Ok();
}

Status Replica::Recover() {
  if (Status s = store_->Reopen(); !s.ok()) return s;
  const store::Metadata meta = store_->metadata();
  clock_.RestoreAtLeast(meta.hlc_high_water);
  clock_.RestoreAtLeast(state().NewestHlc());
  seq_ = std::max(seq_, meta.local_seq);
  ahead_of_disk_ = false;
  TellNodes({.all = true, .names = {}});
  return Status::Ok();
}

Status Replica::ApplySnapshotChunk(const crdt::ClusterState& chunk,
                                   const crdt::VersionVector& covered,
                                   crdt::HlcTimestamp sender_hlc, const crdt::StateKeys* complete) {
  ObserveTimestamps(chunk, sender_hlc);
  const uint64_t own = covered.Get(origin_);
  if (own > seq_) {
    CM_LOG(kWarn) << "a peer's snapshot covers this instance's deltas up to seq " << own
                  << " but its store had issued only " << seq_
                  << " (the data dir is older than this instance's history): new writes "
                     "continue above it";
  }
  if (Status s = store_->ApplySnapshot(chunk, covered, clock_.last(), own, complete); !s.ok()) {
    return s;
  }
  seq_ = std::max(seq_, own);
  TellNodes({.all = true, .names = {}});  // a chunk may also drop what the snapshot no longer holds
  return Status::Ok();
}

uint64_t Replica::AddNodesObserver(NodesObserver observer) {
  nodes_observers_.emplace(++last_nodes_observer_, std::move(observer));
  return last_nodes_observer_;
}

void Replica::RemoveNodesObserver(uint64_t id) { nodes_observers_.erase(id); }

void Replica::TellNodes(const NodesChange& change) {
  if (!change.all && change.names.empty()) return;
  for (const auto& [id, observer] : nodes_observers_) observer(change);
}

}  // namespace clustermgr::mgr
