#include "mgr/repl/snapshot_chunks.h"

#include <map>
#include <utility>

namespace clustermgr::mgr {
namespace {

using crdt::ClusterState;

// Cap'n Proto text: a pointer plus the bytes and NUL, padded to whole words.
size_t Text(size_t n) { return 8 + ((n + 1 + 7) / 8) * 8; }

// KeyedEntry + LwwEntry + WriteTag structs, their pointers and the list slot, generously.
constexpr size_t kEntryOverhead = 128;

size_t ValueBytes(const std::string& v) { return Text(v.size()); }

size_t ValueBytes(const crdt::InventoryRecord& r) {
  size_t n = 64 + Text(r.addr.size()) + Text(r.serf_status.size());
  for (const auto& [k, v] : r.tags) n += 16 + Text(k.size()) + Text(v.size());
  return n;
}

size_t ValueBytes(const crdt::JobRecord& j) {
  size_t n = 160 + Text(j.id.size()) + Text(j.desc.size()) + Text(j.host_group.size()) +
             Text(j.error.size()) + Text(j.owner.size());
  for (const auto& node : j.nodes) n += Text(node.size());
  return n;
}

size_t KeyBytes(const std::string& k) { return Text(k.size()); }
size_t KeyBytes(const std::pair<std::string, std::string>& k) {
  return Text(k.first.size()) + Text(k.second.size());
}
size_t KeyBytes(const std::pair<std::string, uint64_t>& k) { return Text(k.first.size()); }

template <typename V>
size_t EntryBytes(size_t key_bytes, const crdt::LwwEntry<V>& e) {
  return kEntryOverhead + key_bytes + Text(e.tag.stamp.origin.size()) +
         (e.value ? ValueBytes(*e.value) : 0);
}

class Splitter {
 public:
  explicit Splitter(const ChunkLimits& limits) : limits_(limits) { out_.emplace_back(); }

  // Makes room for an entry of `bytes` in the current chunk, starting a new one if needed.
  ClusterState& Room(size_t bytes) {
    if (entries_ > 0 && (entries_ >= limits_.max_entries || bytes_ + bytes > limits_.max_bytes)) {
      out_.emplace_back();
      entries_ = 0;
      bytes_ = 0;
    }
    ++entries_;
    bytes_ += bytes;
    return out_.back();
  }

  template <typename K, typename V>
  void Lww(const crdt::LwwMap<K, V>& map, crdt::LwwMap<K, V> ClusterState::*section) {
    for (const auto& [key, entry] : map.entries()) {
      (Room(EntryBytes(KeyBytes(key), entry)).*section).Overwrite(key, entry);
    }
  }

  std::vector<ClusterState> Finish(const ClusterState& state) {
    // Elements without context, chunk by chunk (index of the chunk -> its elements).
    std::map<size_t, crdt::OrSet<crdt::HostGroupKey>::Entries> elements;
    for (const auto& [element, dots] : state.host_groups.entries()) {
      size_t bytes = 24 + KeyBytes(element);
      for (const auto& d : dots) bytes += 24 + Text(d.origin.size());
      Room(bytes);
      elements[out_.size() - 1].emplace(element, dots);
    }
    for (auto& [index, entries] : elements) {
      out_[index].host_groups = crdt::OrSet<crdt::HostGroupKey>::FromParts(std::move(entries), {});
    }
    ClusterState& last = out_.back();
    last.host_groups = crdt::OrSet<crdt::HostGroupKey>::FromParts(last.host_groups.entries(),
                                                                  state.host_groups.context());
    last.token_epoch.Join(state.token_epoch);
    return std::move(out_);
  }

 private:
  const ChunkLimits& limits_;
  std::vector<ClusterState> out_;
  size_t entries_ = 0;
  size_t bytes_ = 0;
};

}  // namespace

void SnapshotAssembly::TakeElements(ClusterState* chunk) {
  for (const auto& [element, dots] : chunk->host_groups.entries()) {
    elements_[element].insert(dots.begin(), dots.end());
  }
  chunk->host_groups = {};
}

ClusterState SnapshotAssembly::Finish(ClusterState last) {
  for (const auto& [element, dots] : last.host_groups.entries()) {
    elements_[element].insert(dots.begin(), dots.end());
  }
  last.host_groups =
      crdt::OrSet<crdt::HostGroupKey>::FromParts(std::move(elements_), last.host_groups.context());
  elements_.clear();
  return last;
}

std::vector<ClusterState> SplitSnapshot(const ClusterState& state, const ChunkLimits& limits) {
  Splitter s(limits);
  s.Lww(state.globals, &ClusterState::globals);
  s.Lww(state.node_vars, &ClusterState::node_vars);
  s.Lww(state.inventory, &ClusterState::inventory);
  s.Lww(state.jobs, &ClusterState::jobs);
  s.Lww(state.job_logs, &ClusterState::job_logs);
  s.Lww(state.config, &ClusterState::config);
  return s.Finish(state);
}

}  // namespace clustermgr::mgr
