// A gtest fixture owning a ReplicatedCluster of this build's clustermgrd; after a failed test it
// prints each instance's log tail.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <iostream>
#include <string>

#include "test/support/replicated_cluster.h"

namespace clustermgr::test {

class ReplicatedClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!HasFailure()) return;
    for (std::size_t i = 0; i < cluster_.size(); ++i) {
      std::cerr << "---- " << cluster_.at(i).name() << " log tail:\n"
                << cluster_.at(i).LogTail(4000) << "\n";
    }
  }

  ReplicatedCluster cluster_{CLUSTERMGR_BIN_DIR};
  std::string error_;
};

}  // namespace clustermgr::test
