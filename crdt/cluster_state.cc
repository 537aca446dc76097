#include "crdt/cluster_state.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace clustermgr::crdt {
namespace {

template <typename K>
std::map<std::string, std::string> LiveStrings(const LwwMap<K, std::string>& map) {
  std::map<std::string, std::string> out;
  for (const auto& [key, entry] : map.entries()) {
    if (!entry.tombstone()) out.emplace(key, *entry.value);
  }
  return out;
}

// The keys live in `base` joined with `delta` (by the rule of LwwMap::JoinEntry), without
// building the join: what a builder's later mutation must see of its earlier ones.
template <typename K, typename V>
std::set<K> LiveKeysInView(const LwwMap<K, V>& base, const LwwMap<K, V>& delta) {
  std::set<K> live;
  for (const auto& [key, entry] : base.entries()) {
    const auto* mine = delta.Find(key);
    if (mine == nullptr || !(entry.tag.stamp < mine->tag.stamp)) {
      if (!entry.tombstone()) live.insert(key);
    }
  }
  for (const auto& [key, entry] : delta.entries()) {
    const auto* theirs = base.Find(key);
    if (theirs == nullptr || theirs->tag.stamp < entry.tag.stamp) {
      if (!entry.tombstone()) live.insert(key);
    }
  }
  return live;
}

}  // namespace

void ClusterState::Join(const ClusterState& other) {
  globals.Join(other.globals);
  node_vars.Join(other.node_vars);
  host_groups.Join(other.host_groups);
  inventory.Join(other.inventory);
  jobs.Join(other.jobs);
  job_logs.Join(other.job_logs);
  config.Join(other.config);
  token_epoch.Join(other.token_epoch);
}

size_t ClusterState::CollectTombstones(const VersionVector& stable) {
  return globals.CollectTombstones(stable) + node_vars.CollectTombstones(stable) +
         inventory.CollectTombstones(stable) + jobs.CollectTombstones(stable) +
         job_logs.CollectTombstones(stable) + config.CollectTombstones(stable);
}

size_t ClusterState::DropCoveredAbsent(const VersionVector& covered, const StateKeys& keep) {
  return globals.DropCoveredAbsent(covered, keep.globals) +
         node_vars.DropCoveredAbsent(covered, keep.node_vars) +
         inventory.DropCoveredAbsent(covered, keep.inventory) +
         jobs.DropCoveredAbsent(covered, keep.jobs) +
         job_logs.DropCoveredAbsent(covered, keep.job_logs) +
         config.DropCoveredAbsent(covered, keep.config);
}

namespace {

template <typename K, typename V>
void MaxHlc(const LwwMap<K, V>& map, HlcTimestamp* max) {
  for (const auto& [key, entry] : map.entries()) *max = std::max(*max, entry.tag.stamp.hlc);
}

template <typename K, typename V>
void AddKeys(const LwwMap<K, V>& map, std::set<K>* keys) {
  for (const auto& [key, entry] : map.entries()) keys->insert(key);
}

}  // namespace

HlcTimestamp ClusterState::NewestHlc() const {
  HlcTimestamp newest;
  MaxHlc(globals, &newest);
  MaxHlc(node_vars, &newest);
  MaxHlc(inventory, &newest);
  MaxHlc(jobs, &newest);
  MaxHlc(job_logs, &newest);
  MaxHlc(config, &newest);
  return newest;
}

void StateKeys::Add(const ClusterState& state) {
  AddKeys(state.globals, &globals);
  AddKeys(state.node_vars, &node_vars);
  AddKeys(state.inventory, &inventory);
  AddKeys(state.jobs, &jobs);
  AddKeys(state.job_logs, &job_logs);
  AddKeys(state.config, &config);
}

bool ClusterState::empty() const {
  return globals.empty() && node_vars.empty() && host_groups.empty() && inventory.empty() &&
         jobs.empty() && job_logs.empty() && config.empty() && token_epoch.value() == 0;
}

std::map<std::string, std::string> ClusterState::Globals() const { return LiveStrings(globals); }
std::map<std::string, std::string> ClusterState::Config() const { return LiveStrings(config); }

std::map<std::string, std::string> ClusterState::NodeVars(const std::string& node) const {
  std::map<std::string, std::string> out;
  const auto& entries = node_vars.entries();
  for (auto it = entries.lower_bound({node, ""}); it != entries.end() && it->first.first == node;
       ++it) {
    if (!it->second.tombstone()) out.emplace(it->first.second, *it->second.value);
  }
  return out;
}

std::vector<std::string> ClusterState::HostGroups(const std::string& node) const {
  std::vector<std::string> out;
  const auto& entries = host_groups.entries();
  for (auto it = entries.lower_bound({node, ""}); it != entries.end() && it->first.first == node;
       ++it) {
    out.push_back(it->first.second);
  }
  return out;
}

std::vector<std::string> ClusterState::JobLog(const std::string& id) const {
  std::vector<std::string> lines;
  const auto& entries = job_logs.entries();
  uint64_t expect = 0;
  for (auto it = entries.lower_bound({id, 0}); it != entries.end() && it->first.first == id;
       ++it, ++expect) {
    if (it->first.second != expect || it->second.tombstone()) break;  // a chunk not here yet
    std::istringstream in(*it->second.value);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  return lines;
}

void DeltaBuilder::NoteEpoch() { delta_.token_epoch.Join(MaxRegister::Of(tag_.stamp.epoch)); }

void DeltaBuilder::SetGlobal(const std::string& name, std::string json) {
  NoteEpoch();
  delta_.globals.Overwrite(name, {tag_, std::move(json)});
}
void DeltaBuilder::EraseGlobal(const std::string& name) {
  NoteEpoch();
  delta_.globals.Overwrite(name, {tag_, std::nullopt});
}
void DeltaBuilder::ReplaceGlobals(const std::map<std::string, std::string>& globals) {
  for (const std::string& name : LiveKeysInView(base_.globals, delta_.globals)) {
    if (!globals.count(name)) EraseGlobal(name);
  }
  for (const auto& [name, json] : globals) SetGlobal(name, json);
}

void DeltaBuilder::SetNodeVar(const std::string& node, const std::string& name, std::string json) {
  NoteEpoch();
  delta_.node_vars.Overwrite({node, name}, {tag_, std::move(json)});
}
void DeltaBuilder::EraseNodeVar(const std::string& node, const std::string& name) {
  NoteEpoch();
  delta_.node_vars.Overwrite({node, name}, {tag_, std::nullopt});
}

std::set<Dot> DeltaBuilder::ViewDots(const HostGroupKey& element) const {
  std::set<Dot> dots = delta_.host_groups.DotsOf(element);
  for (const Dot& d : base_.host_groups.DotsOf(element)) {
    if (!delta_.host_groups.context().Contains(d)) dots.insert(d);
  }
  return dots;
}

void DeltaBuilder::AddHostGroup(const std::string& node, const std::string& group) {
  const HostGroupKey element{node, group};
  const std::string& origin = tag_.stamp.origin;
  const uint64_t after =
      std::max(base_.host_groups.LastCounter(origin), delta_.host_groups.LastCounter(origin));
  std::set<Dot> superseded = ViewDots(element);
  OrSet<HostGroupKey>::Entries entries{{element, {Dot{origin, after + 1}}}};
  CausalContext context;
  context.Add(Dot{origin, after + 1});
  for (const Dot& d : superseded) context.Add(d);
  delta_.host_groups.Join(OrSet<HostGroupKey>::FromParts(std::move(entries), std::move(context)));
}

void DeltaBuilder::RemoveHostGroup(const std::string& node, const std::string& group) {
  CausalContext context;
  for (const Dot& d : ViewDots({node, group})) context.Add(d);
  if (context.empty()) return;  // removing an element not present is a no-op
  delta_.host_groups.Join(OrSet<HostGroupKey>::FromParts({}, std::move(context)));
}

void DeltaBuilder::SetHostGroups(const std::string& node, const std::vector<std::string>& groups) {
  const std::set<std::string> wanted(groups.begin(), groups.end());
  // The node's groups as base joined with the delta so far holds them: an earlier mutation in
  // this builder counts.
  std::set<std::string> current;
  const ClusterState* const views[] = {&base_, &delta_};
  for (const ClusterState* s : views) {
    for (const std::string& g : s->HostGroups(node)) {
      if (!ViewDots({node, g}).empty()) current.insert(g);
    }
  }
  for (const std::string& g : current) {
    if (!wanted.count(g)) RemoveHostGroup(node, g);
  }
  for (const std::string& g : wanted) {
    if (!current.count(g)) AddHostGroup(node, g);
  }
}

void DeltaBuilder::PutNode(const std::string& name, InventoryRecord record) {
  NoteEpoch();
  delta_.inventory.Overwrite(name, {tag_, std::move(record)});
}
void DeltaBuilder::PutJob(JobRecord job) {
  const std::string id = job.id;
  NoteEpoch();
  delta_.jobs.Overwrite(id, {tag_, std::move(job)});
}
void DeltaBuilder::PutJobLogChunk(const std::string& job_id, uint64_t chunk, std::string text) {
  NoteEpoch();
  delta_.job_logs.Overwrite({job_id, chunk}, {tag_, std::move(text)});
}

void DeltaBuilder::EraseJobLogChunk(const std::string& job_id, uint64_t chunk) {
  NoteEpoch();
  delta_.job_logs.Overwrite({job_id, chunk}, {tag_, std::nullopt});
}

void DeltaBuilder::SetConfig(const std::string& key, std::string json) {
  NoteEpoch();
  delta_.config.Overwrite(key, {tag_, std::move(json)});
}
void DeltaBuilder::ReplaceConfig(const std::map<std::string, std::string>& config) {
  for (const std::string& key : LiveKeysInView(base_.config, delta_.config)) {
    if (!config.count(key)) {
      NoteEpoch();
      delta_.config.Overwrite(key, {tag_, std::nullopt});
    }
  }
  for (const auto& [key, json] : config) SetConfig(key, json);
}

void DeltaBuilder::RaiseEpoch(uint64_t epoch) { delta_.token_epoch.Join(MaxRegister::Of(epoch)); }

}  // namespace clustermgr::crdt
