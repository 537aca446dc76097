#include "net/access.h"

#include <gtest/gtest.h>

#include <vector>

namespace clustermgr::net {
namespace {

TEST(AccessTest, RoleNamesRoundTrip) {
  for (Role r : {Role::kReader, Role::kOperator, Role::kAdmin}) {
    EXPECT_EQ(ParseRole(RoleName(r)), r);
  }
  EXPECT_EQ(ParseRole("Admin"), std::nullopt);
  EXPECT_EQ(ParseRole(""), std::nullopt);
}

// The role matrix: each operation's least role, and that every role includes the one below.
TEST(AccessTest, RoleMatrix) {
  const std::vector<std::pair<RpcRequest, Role>> matrix = {
      {NodeGetRequest{"n"}, Role::kReader},   {NodesGetRequest{}, Role::kReader},
      {GlobalGetRequest{}, Role::kReader},    {JobGetRequest{"last"}, Role::kReader},
      {JobLogFollowRequest{}, Role::kReader}, {JobsListRequest{}, Role::kReader},
      {ConfigGetRequest{}, Role::kReader},    {MembersRequest{}, Role::kReader},
      {TokenRequest{}, Role::kReader},        {StatusRequest{}, Role::kReader},
      {CommissionRequest{}, Role::kOperator}, {DecommissionRequest{}, Role::kOperator},
      {UpdateRequest{}, Role::kOperator},     {DiscoverRequest{}, Role::kOperator},
      {GlobalSetRequest{}, Role::kOperator},  {JobCancelRequest{}, Role::kOperator},
      {AuditListRequest{}, Role::kOperator},  {ConfigSetRequest{}, Role::kAdmin},
      {StateDumpRequest{}, Role::kAdmin},     {UpgradeRequest{}, Role::kOperator},
  };
  ASSERT_EQ(matrix.size(), std::variant_size_v<RpcRequest>);
  for (const auto& [request, role] : matrix) {
    SCOPED_TRACE(std::string(OperationName(request)));
    EXPECT_EQ(RequiredRole(request), role);
    for (Role r : {Role::kReader, Role::kOperator, Role::kAdmin}) {
      EXPECT_EQ(RoleAllows(r, role), static_cast<int>(r) >= static_cast<int>(role));
      EXPECT_EQ(Refusal(Caller{"", "x", r}, request).has_value(), !RoleAllows(r, role));
    }
  }
}

TEST(AccessTest, RefusalNamesKeyRoleAndWhatIsNeeded) {
  EXPECT_EQ(*Refusal(Caller{"K", "ops", Role::kReader}, ConfigSetRequest{}),
            "key ops (reader) may not configSet: it needs the admin role");
  EXPECT_EQ(*Refusal(Caller{"Zkey", "", Role::kReader}, GlobalSetRequest{}),
            "key Zkey (reader) may not globalSet: it needs the operator role");
  EXPECT_EQ(Describe(Caller{}), "plain caller (admin)");
  EXPECT_EQ(Describe(Caller{"", "certificate CN=ann", Role::kReader}),
            "certificate CN=ann (reader)");
}

}  // namespace
}  // namespace clustermgr::net
