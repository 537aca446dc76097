#include "net/allow_list.h"

#include <gtest/gtest.h>

#include <string>

namespace clustermgr::net {
namespace {

const std::string kA = std::string(39, 'a') + "1";
const std::string kB = std::string(40, 'b');

std::string Error(const std::string& text) {
  auto r = ParseAllowList(text, "f");
  return r.ok() ? "ok" : r.status().message();
}

TEST(AllowListTest, NamesEndpointsAndRoles) {
  auto list = ParseAllowList(
      "# ops\n" + kA + " alice role=reader # a comment\n\n" + kB + " mgr-2 tcp://10.0.0.12:9008\n",
      "f");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].key, kA);
  EXPECT_EQ((*list)[0].name, "alice");
  EXPECT_EQ((*list)[0].role, Role::kReader);
  EXPECT_TRUE((*list)[0].role_given);
  EXPECT_EQ((*list)[0].line, 2);
  // No role: today's powers, admin.
  EXPECT_EQ((*list)[1].role, Role::kAdmin);
  EXPECT_FALSE((*list)[1].role_given);
  EXPECT_EQ((*list)[1].endpoint, "tcp://10.0.0.12:9008");
  EXPECT_EQ(FindByName(*list, "alice"), &(*list)[0]);
  EXPECT_EQ(FindByName(*list, "bob"), nullptr);
  EXPECT_EQ(FindByName(*list, ""), nullptr);
  // role= may stand before the name.
  auto early = ParseAllowList(kA + " role=operator carol\n", "f");
  ASSERT_TRUE(early.ok());
  EXPECT_EQ((*early)[0].name, "carol");
  EXPECT_EQ((*early)[0].role, Role::kOperator);
}

TEST(AllowListTest, ErrorsNameFileAndLine) {
  EXPECT_EQ(Error(kA + " x role=root\n"),
            "f:1: unknown role \"root\": use role=reader, role=operator or role=admin");
  EXPECT_EQ(Error(kA + " role=admin x role=reader\n"), "f:1: role given twice");
  EXPECT_EQ(Error(kA + " x\n" + kB + " x\n"), "f:2: name \"x\" listed twice");
  EXPECT_EQ(Error(kA + "\n" + kA + "\n"), "f:2: key listed twice");
  EXPECT_EQ(Error(kA + " a b c\n"), "f:1: expected \"KEY [NAME [ENDPOINT]] [role=ROLE]\"");
  EXPECT_EQ(Error("not-a-key\n"), "f:1: expected a 40-character Z85 public key, got \"not-a-key\"");
  EXPECT_EQ(Error("\n# nothing\n"), "f: lists no key");
  EXPECT_EQ(Error(std::string("\x01\xff") + "\n"),
            "f:1: expected a 40-character Z85 public key, got \"??\"");
}

}  // namespace
}  // namespace clustermgr::net
