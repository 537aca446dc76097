#include "mgr/repl/delta_sequencer.h"

#include <utility>

#include "mgr/log/log.h"
#include "store/codec.h"

namespace clustermgr::mgr {

DeltaSequencer::Accepted DeltaSequencer::Accept(net::GossipDelta delta, uint64_t applied_seq) {
  return Admit(delta.origin, delta.seq, applied_seq, Item{std::move(delta.payload), std::nullopt});
}

DeltaSequencer::Accepted DeltaSequencer::Accept(crdt::Delta delta, uint64_t applied_seq) {
  const std::string origin = delta.origin;
  const uint64_t seq = delta.seq;
  return Admit(origin, seq, applied_seq, Item{"", std::move(delta)});
}

DeltaSequencer::Accepted DeltaSequencer::Admit(const std::string& origin, uint64_t seq,
                                               uint64_t applied_seq, Item item) {
  if (seq <= applied_seq) return Accepted::kDuplicate;
  auto& queue = buffer_[origin];
  if (queue.count(seq)) return Accepted::kDuplicate;
  // The next delta in order is always taken (it applies at once); later ones only while the
  // buffer has room (anti-entropy fetches what is dropped).
  if (seq != applied_seq + 1 && buffered_ >= max_buffered_) return Accepted::kOverflow;
  queue.emplace(seq, std::move(item));
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
      Item& item = queue.begin()->second;
      auto d = item.decoded ? Result<crdt::Delta>(std::move(*item.decoded))
                            : store::DecodeDelta(item.payload);
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
