#include "store/change_records.h"

#include <algorithm>

#include "store/codec.h"
#include "store/keys.h"

namespace clustermgr::store {
namespace {

std::map<std::string, ContextPart> ContextParts(const crdt::CausalContext& ctx) {
  std::map<std::string, ContextPart> parts;
  for (const auto& [origin, counter] : ctx.compact().entries()) parts[origin].compact = counter;
  for (const crdt::Dot& d : ctx.cloud()) parts[d.origin].cloud.push_back(d.counter);
  return parts;
}

}  // namespace

std::optional<crdt::OrSet<crdt::HostGroupKey>> PutHostGroups(
    const crdt::OrSet<crdt::HostGroupKey>& current, const crdt::OrSet<crdt::HostGroupKey>& incoming,
    leveldb::WriteBatch* batch) {
  crdt::OrSet<crdt::HostGroupKey> next = current;
  next.Join(incoming);
  const auto& before = current.entries();
  const auto& after = next.entries();
  auto a = before.begin();
  auto b = after.begin();
  while (a != before.end() || b != after.end()) {
    if (b == after.end() || (a != before.end() && a->first < b->first)) {
      batch->Delete(HostGroupKey(a->first.first, a->first.second));
      ++a;
    } else if (a == before.end() || b->first < a->first) {
      batch->Put(HostGroupKey(b->first.first, b->first.second), EncodeElement(b->second));
      ++b;
    } else {
      if (a->second != b->second) {
        batch->Put(HostGroupKey(b->first.first, b->first.second), EncodeElement(b->second));
      }
      ++a;
      ++b;
    }
  }
  const auto old_parts = ContextParts(current.context());
  for (const auto& [origin, part] : ContextParts(next.context())) {
    auto it = old_parts.find(origin);
    if (it == old_parts.end() || it->second != part) {
      batch->Put(HostGroupContextKey(origin), EncodeContextPart(part));
    }
  }
  if (next == current) return std::nullopt;
  return next;
}

LogUpdate PutDeltaLog(const std::vector<std::pair<const crdt::Delta*, const std::string*>>& deltas,
                      const crdt::VersionVector* covered,
                      const std::map<std::string, std::set<uint64_t>>& log_index,
                      const crdt::VersionVector& applied, uint64_t limit,
                      leveldb::WriteBatch* batch) {
  LogUpdate update;
  std::map<std::string, std::set<uint64_t>> seqs;  // origin -> seqs in this change
  std::map<std::string, std::map<uint64_t, const std::string*>> adds;
  for (const auto& [d, encoded] : deltas) {
    seqs[d->origin].insert(d->seq);
    auto have = log_index.find(d->origin);
    if (d->seq > applied.Get(d->origin) &&
        (have == log_index.end() || !have->second.count(d->seq))) {
      adds[d->origin].emplace(d->seq, encoded);
    }
  }
  static const std::set<uint64_t> kNone;
  for (auto& [origin, added] : adds) {
    auto it = log_index.find(origin);
    const std::set<uint64_t>& have = it == log_index.end() ? kNone : it->second;
    // Keep the limit highest seqs of have + added: drop the lowest.
    uint64_t excess = have.size() + added.size() > limit ? have.size() + added.size() - limit : 0;
    auto h = have.begin();
    while (excess > 0) {
      if (h != have.end() && (added.empty() || *h < added.begin()->first)) {
        batch->Delete(DeltaLogKey(origin, *h));
        update.dropped[origin].push_back(*h);
        ++h;
      } else {
        added.erase(added.begin());
      }
      --excess;
    }
    for (const auto& [seq, encoded] : added) {
      batch->Put(DeltaLogKey(origin, seq), *encoded);
      update.added[origin].push_back(seq);
    }
  }
  std::set<std::string> origins;
  for (const auto& [origin, s] : seqs) origins.insert(origin);
  if (covered) {
    for (const auto& [origin, n] : covered->entries()) origins.insert(origin);
  }
  for (const std::string& origin : origins) {
    const uint64_t old = applied.Get(origin);
    uint64_t a = old;
    if (covered) a = std::max(a, covered->Get(origin));
    auto logged = log_index.find(origin);
    auto mine = seqs.find(origin);
    for (;;) {
      const bool next = (mine != seqs.end() && mine->second.count(a + 1)) ||
                        (logged != log_index.end() && logged->second.count(a + 1));
      if (!next) break;
      ++a;
    }
    if (a > old) {
      batch->Put(AppliedKey(origin), EncodeApplied(a));
      update.applied[origin] = a;
    }
  }
  return update;
}

}  // namespace clustermgr::store
