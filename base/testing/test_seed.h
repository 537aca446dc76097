// The seed of a randomized test: CLUSTERMGR_SEED when set (to replay a run), else a fresh random
// one. Printed either way, so a failing run names the seed that replays it. Tests only.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>

namespace clustermgr {

inline uint64_t TestSeed() {
  uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("CLUSTERMGR_SEED")) seed = std::strtoull(env, nullptr, 10);
  std::cout << "seed " << seed << " (replay with CLUSTERMGR_SEED=" << seed << ")\n";
  return seed;
}

}  // namespace clustermgr
