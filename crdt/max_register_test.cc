#include "crdt/max_register.h"

#include <gtest/gtest.h>

namespace clustermgr::crdt {
namespace {

TEST(MaxRegisterTest, JoinKeepsTheHighestValue) {
  MaxRegister r;
  EXPECT_EQ(r.value(), 0u);
  r.Join(MaxRegister::Of(5));
  EXPECT_EQ(r.value(), 5u);
  r.Join(MaxRegister::Of(3));
  EXPECT_EQ(r.value(), 5u);
  r.Join(r);
  EXPECT_EQ(r, MaxRegister::Of(5));
  MaxRegister s = MaxRegister::Of(3);
  s.Join(MaxRegister::Of(5));
  EXPECT_EQ(r, s);
}

}  // namespace
}  // namespace clustermgr::crdt
