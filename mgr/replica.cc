#include "mgr/replica.h"

namespace clustermgr::mgr {

Replica::Replica(std::unique_ptr<store::Store> store, const Options& options,
                 crdt::PhysicalClock* physical)
    : store_(std::move(store)),
      name_(options.name),
      origin_(store_->origin()),
      clock_(physical, options.max_clock_offset_ms) {
  const store::Metadata meta = store_->metadata();
  clock_.RestoreAtLeast(meta.hlc_high_water);
  seq_ = meta.local_seq;
}

Result<std::unique_ptr<Replica>> Replica::Open(const Options& options,
                                               crdt::PhysicalClock* physical) {
  store::Options so;
  so.sync = options.sync;
  so.instance_name = options.name;
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
  if (Status s = store_->Commit({delta}, tag.stamp.hlc, tag.seq); !s.ok()) return s;
  seq_ = tag.seq;
  for (const Observer& observer : observers_) observer(delta);
  return delta;
}

}  // namespace clustermgr::mgr
