// Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014).
//
// A timestamp packs 48 bits of wall-clock milliseconds (l) and a 16-bit logical counter (c) into
// one uint64, so timestamps compare as integers. The clock never goes backwards, stays within a
// bounded distance of physical time, and captures causality: a timestamp observed from a peer is
// always below every timestamp issued afterwards.
//
// Thread-safety: none. A HybridClock is owned by one thread (the manager's event loop).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace clustermgr::crdt {

class HlcTimestamp {
 public:
  static constexpr int kCounterBits = 16;
  static constexpr uint64_t kMaxCounter = (uint64_t{1} << kCounterBits) - 1;
  static constexpr uint64_t kMaxMillis = (uint64_t{1} << 48) - 1;

  constexpr HlcTimestamp() = default;
  static constexpr HlcTimestamp FromPacked(uint64_t packed) { return HlcTimestamp(packed); }
  static constexpr HlcTimestamp Make(uint64_t millis, uint64_t counter) {
    return HlcTimestamp((millis << kCounterBits) | (counter & kMaxCounter));
  }

  constexpr uint64_t packed() const { return packed_; }
  constexpr uint64_t millis() const { return packed_ >> kCounterBits; }
  constexpr uint64_t counter() const { return packed_ & kMaxCounter; }
  std::string ToString() const;  // "<millis>.<counter>"

  friend constexpr auto operator<=>(HlcTimestamp, HlcTimestamp) = default;

 private:
  constexpr explicit HlcTimestamp(uint64_t packed) : packed_(packed) {}
  uint64_t packed_ = 0;
};

// The source of physical time, injected so tests control it.
class PhysicalClock {
 public:
  virtual ~PhysicalClock() = default;
  // Milliseconds since the Unix epoch.
  virtual uint64_t NowMillis() = 0;
};

// CLOCK_REALTIME in milliseconds.
class SystemClock final : public PhysicalClock {
 public:
  uint64_t NowMillis() override;
};

// A clock that moves only when told to: the test double for SystemClock.
class ManualClock final : public PhysicalClock {
 public:
  explicit ManualClock(uint64_t start_millis = 1'000'000) : now_(start_millis) {}
  uint64_t NowMillis() override { return now_; }
  void Set(uint64_t millis) { now_ = millis; }
  void Advance(uint64_t millis) { now_ += millis; }

 private:
  uint64_t now_;
};

class HybridClock {
 public:
  // `physical` must outlive the clock. A remote timestamp more than `max_offset_millis` ahead of
  // physical time is refused (CockroachDB's rule), so one peer with a runaway clock cannot drag
  // every instance's clock into the future.
  explicit HybridClock(PhysicalClock* physical, uint64_t max_offset_millis = 500);

  // A timestamp for a local or send event: strictly greater than every timestamp this clock has
  // issued or observed.
  HlcTimestamp Now();

  // Merges a timestamp received from a peer (receive rule). Returns the new local timestamp,
  // strictly greater than both. Fails with kInvalidArgument, leaving the clock unchanged, when
  // `remote` is more than max_offset_millis ahead of physical time.
  Result<HlcTimestamp> Observe(HlcTimestamp remote);

  // Raises the clock to at least `floor` without the offset check: used on restart with the
  // high-water mark persisted by the store, so the clock never goes backwards across restarts.
  void RestoreAtLeast(HlcTimestamp floor);

  HlcTimestamp last() const { return last_; }
  uint64_t max_offset_millis() const { return max_offset_millis_; }

 private:
  // Issues (l, c) after (l', c') = last_ with physical time pt, per the paper's send rule, with
  // the counter carried into the millis on overflow.
  HlcTimestamp Advance(uint64_t pt, HlcTimestamp floor);

  PhysicalClock* physical_;
  uint64_t max_offset_millis_;
  HlcTimestamp last_;
};

}  // namespace clustermgr::crdt
