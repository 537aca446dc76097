#include "mgr/repl/delta_sequencer.h"

#include <utility>

#include "mgr/log/log.h"
#include "store/codec.h"

namespace clustermgr::mgr {

DeltaSequencer::Accepted DeltaSequencer::Accept(net::GossipDelta delta, uint64_t applied_seq) {
  if (delta.seq <= applied_seq) return Accepted::kDuplicate;
  auto& queue = buffer_[delta.origin];
  if (queue.count(delta.seq)) return Accepted::kDuplicate;
  // The next delta in order is always taken (it applies at once); later ones only while the
  // buffer has room (anti-entropy fetches what is dropped).
  if (delta.seq != applied_seq + 1 && buffered_ >= max_buffered_) return Accepted::kOverflow;
  const uint64_t seq = delta.seq;
  queue.emplace(seq, std::move(delta));
  ++buffered_;
  return Accepted::kBuffered;
}

DeltaSequencer::Ready DeltaSequencer::TakeReady(const crdt::VersionVector& applied) {
  Ready ready;
  for (auto& [origin, queue] : buffer_) {
    uint64_t next = applied.Get(origin) + 1;
    while (!queue.empty() && queue.begin()->first < next) {
      queue.erase(queue.begin());
      --buffered_;
      ++ready.duplicates;
    }
    while (!queue.empty() && queue.begin()->first == next) {
      net::GossipDelta& g = queue.begin()->second;
      auto d = store::DecodeDelta(g.payload);
      const bool good = d.ok() && d->origin == origin && d->seq == next;
      if (!good) {
        ++ready.bad;
        CM_LOG(kWarn) << "replication: dropping delta " << origin << ":" << next << ": "
                      << (d.ok() ? "its payload names another origin or seq"
                                 : d.status().message());
      } else {
        ready.batch.push_back(std::move(d).value());
        ready.origins.insert(origin);
        ++next;
      }
      queue.erase(queue.begin());
      --buffered_;
      if (!good) break;  // anti-entropy will bring a good copy
    }
  }
  return ready;
}

std::vector<std::string> DeltaSequencer::GapOrigins() {
  std::vector<std::string> out;
  for (auto it = buffer_.begin(); it != buffer_.end();) {
    if (it->second.empty()) {
      it = buffer_.erase(it);
      continue;
    }
    out.push_back(it->first);
    ++it;
  }
  return out;
}

}  // namespace clustermgr::mgr
