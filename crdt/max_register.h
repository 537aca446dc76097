// A grow-only maximum: the highest value ever written. Used for the token's fencing epoch.
//
// Thread-safety: a plain value; no internal synchronization.
#pragma once

#include <cstdint>

namespace clustermgr::crdt {

// A grow-only maximum: the highest value ever written. Used for the token's fencing epoch.
class MaxRegister {
 public:
  uint64_t value() const { return value_; }
  static MaxRegister Of(uint64_t value) {
    MaxRegister r;
    r.value_ = value;
    return r;
  }
  void Join(const MaxRegister& other) { value_ = value_ > other.value_ ? value_ : other.value_; }
  friend bool operator==(const MaxRegister&, const MaxRegister&) = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace clustermgr::crdt
