#include "base/status.h"

#include <gtest/gtest.h>

#include <string>

namespace clustermgr {
namespace {

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "ok");
  const Status s(Code::kNotFound, "no such node n1");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "no such node n1");
  EXPECT_EQ(s.ToString(), "not found: no such node n1");
}

TEST(ResultTest, HoldsAValueOrAFailedStatus) {
  Result<std::string> v = std::string("x");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v.status().ok());
  EXPECT_EQ(*v, "x");
  EXPECT_EQ(v->size(), 1u);
  Result<std::string> e = Status(Code::kUnavailable, "no peer");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), Code::kUnavailable);
  EXPECT_EQ(std::move(v).value(), "x");
}

}  // namespace
}  // namespace clustermgr
