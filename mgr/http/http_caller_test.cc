#include "mgr/http/http_caller.h"

#include <gtest/gtest.h>

namespace clustermgr::mgr::http {
namespace {

using Kind = HttpCaller::Kind;

TEST(CommonNameTest, FirstCnOfAnRfc2253Subject) {
  EXPECT_EQ(CommonName("CN=alice,O=ops"), "alice");
  EXPECT_EQ(CommonName("O=ops,CN=alice"), "alice");
  EXPECT_EQ(CommonName("CN=a\\,b,O=x"), "a,b");  // an escaped comma stays in the value
  EXPECT_EQ(CommonName("O=ops+CN=bob"), "bob");
  EXPECT_EQ(CommonName("O=ops"), "");
  EXPECT_EQ(CommonName(""), "");
}

TEST(DescribeTest, NamesEachKindOfCaller) {
  EXPECT_EQ(Describe({Kind::kCertificate, "CN=alice", "127.0.0.1"}), "certificate CN=alice");
  EXPECT_EQ(Describe({Kind::kLoopback, "", "127.0.0.1"}), "loopback");
  EXPECT_EQ(Describe({Kind::kRemote, "", "10.0.0.7"}), "unauthenticated 10.0.0.7");
}

TEST(ResolveCallerTest, CertificatesByNameColumnPlainByOption) {
  HttpAccess access;
  access.instance = "m1";
  access.plain_role = net::Role::kReader;
  // No client allow-list: the CA alone decides, certificates are admins.
  auto r = ResolveCaller({Kind::kCertificate, "CN=zed", ""}, access);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->role, net::Role::kAdmin);
  EXPECT_EQ(r->name, "certificate CN=zed");
  EXPECT_EQ(r->key, "");

  net::AllowedKey alice;
  alice.name = "alice";
  alice.role = net::Role::kOperator;
  net::AllowedKey bob;
  bob.name = "CN=bob,O=ops";
  bob.role = net::Role::kReader;
  access.clients = std::vector<net::AllowedKey>{alice, bob};
  r = ResolveCaller({Kind::kCertificate, "CN=alice,O=ops", ""}, access);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->role, net::Role::kOperator);  // by CN
  r = ResolveCaller({Kind::kCertificate, "CN=bob,O=ops", ""}, access);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->role, net::Role::kReader);  // by the whole subject
  r = ResolveCaller({Kind::kCertificate, "CN=carol", ""}, access);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "certificate CN=carol is not named in the client allow-list of m1 (name a line by the "
            "subject or its CN)");
  // Plain callers: the option's role, whatever the list says.
  for (Kind kind : {Kind::kLoopback, Kind::kRemote}) {
    r = ResolveCaller({kind, "", "127.0.0.1"}, access);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->role, net::Role::kReader);
  }
}

}  // namespace
}  // namespace clustermgr::mgr::http
