#include "crdt/hlc.h"

#include <algorithm>
#include <ctime>

namespace clustermgr::crdt {

std::string HlcTimestamp::ToString() const {
  return std::to_string(millis()) + "." + std::to_string(counter());
}

uint64_t SystemClock::NowMillis() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

HybridClock::HybridClock(PhysicalClock* physical, uint64_t max_offset_millis)
    : physical_(physical), max_offset_millis_(max_offset_millis) {}

HlcTimestamp HybridClock::Advance(uint64_t pt, HlcTimestamp floor) {
  pt = std::min(pt, HlcTimestamp::kMaxMillis);
  const HlcTimestamp prev = std::max(last_, floor);
  HlcTimestamp next;
  if (pt > prev.millis()) {
    next = HlcTimestamp::Make(pt, 0);  // physical time moved on: counter resets
  } else if (prev.counter() < HlcTimestamp::kMaxCounter) {
    next = HlcTimestamp::Make(prev.millis(), prev.counter() + 1);
  } else {
    // 65,536 events in one millisecond: borrow the next millisecond rather than wrap.
    next = HlcTimestamp::Make(prev.millis() + 1, 0);
  }
  last_ = next;
  return next;
}

HlcTimestamp HybridClock::Now() { return Advance(physical_->NowMillis(), last_); }

Result<HlcTimestamp> HybridClock::Observe(HlcTimestamp remote) {
  const uint64_t pt = physical_->NowMillis();
  if (remote.millis() > pt + max_offset_millis_) {
    return Status(Code::kInvalidArgument, "remote timestamp " + remote.ToString() + " is " +
                                              std::to_string(remote.millis() - pt) +
                                              " ms ahead of the local clock (limit " +
                                              std::to_string(max_offset_millis_) + " ms)");
  }
  return Advance(pt, remote);
}

void HybridClock::RestoreAtLeast(HlcTimestamp floor) { last_ = std::max(last_, floor); }

}  // namespace clustermgr::crdt
