#include "mgr/ansible/ansible_inventory.h"

#include <gtest/gtest.h>

namespace clustermgr::mgr {
namespace {

TEST(RenderInventory, ExactTextSortedGroupsAndHosts) {
  std::vector<InventoryHost> hosts = {
      {"node3", "10.0.0.3", {"service-worker"}},
      {"node1", "10.0.0.1", {"service-master"}},
      {"node2", "fe80::2%eth0", {"service-worker", "service-master"}},
  };
  InventoryText inv = RenderInventory(hosts);
  ASSERT_TRUE(inv.ok()) << inv.error;
  EXPECT_EQ(inv.text,
            "[service-master]\n"
            "node1 ansible_host=10.0.0.1 ansible_ssh_host=10.0.0.1 node_name=node1 "
            "node_addr=10.0.0.1\n"
            "node2 ansible_host=fe80::2%eth0 ansible_ssh_host=fe80::2%eth0 node_name=node2 "
            "node_addr=fe80::2%eth0\n"
            "\n"
            "[service-worker]\n"
            "node2 ansible_host=fe80::2%eth0 ansible_ssh_host=fe80::2%eth0 node_name=node2 "
            "node_addr=fe80::2%eth0\n"
            "node3 ansible_host=10.0.0.3 ansible_ssh_host=10.0.0.3 node_name=node3 "
            "node_addr=10.0.0.3\n");
}

TEST(RenderInventory, SameInputAnyOrderSameBytes) {
  std::vector<InventoryHost> a = {{"b", "h-b.example", {"g2", "g1"}}, {"a", "::1", {"g1"}}};
  std::vector<InventoryHost> b = {{"a", "::1", {"g1"}}, {"b", "h-b.example", {"g1", "g2", "g1"}}};
  InventoryText ia = RenderInventory(a);
  InventoryText ib = RenderInventory(b);
  ASSERT_TRUE(ia.ok() && ib.ok());
  EXPECT_EQ(ia.text, ib.text);
}

TEST(RenderInventory, DiscoverStyleSingleGroup) {
  std::vector<InventoryHost> hosts = {{"node1", "192.168.2.10", {"cluster-node"}}};
  InventoryText inv = RenderInventory(hosts);
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv.text,
            "[cluster-node]\n"
            "node1 ansible_host=192.168.2.10 ansible_ssh_host=192.168.2.10 node_name=node1 "
            "node_addr=192.168.2.10\n");
}

TEST(RenderInventory, Errors) {
  auto error = [](std::vector<InventoryHost> hosts) { return RenderInventory(hosts).error; };
  EXPECT_EQ(error({}), "no nodes to run the playbook on");
  const std::string name_rule =
      ": use 1 to 253 letters, digits, '_', '-', '.', starting with a letter, digit or '_'";
  EXPECT_EQ(error({{"a b", "1.2.3.4", {"g"}}}), "invalid node name \"a b\"" + name_rule);
  EXPECT_EQ(error({{"x\nnew ansible_host=evil", "1.2.3.4", {"g"}}}),
            "invalid node name \"x\\nnew ansible_host=evil\"" + name_rule);
  EXPECT_EQ(error({{"", "1.2.3.4", {"g"}}}), "invalid node name \"\"" + name_rule);
  EXPECT_EQ(error({{"-x", "1.2.3.4", {"g"}}}), "invalid node name \"-x\"" + name_rule);
  EXPECT_EQ(error({{"n", "1.2.3.4 x=y", {"g"}}}),
            "invalid address \"1.2.3.4 x=y\" for node \"n\": use a host name or an IP address");
  EXPECT_EQ(error({{"n", "", {"g"}}}),
            "invalid address \"\" for node \"n\": use a host name or an IP address");
  EXPECT_EQ(error({{"n", "1.2.3.4", {}}}), "node \"n\" has no host-group");
  const std::string group_rule =
      ": use 1 to 128 letters, digits, '_', '-', '.', starting with a letter, digit or '_'";
  EXPECT_EQ(error({{"n", "1.2.3.4", {"g:children"}}}),
            "invalid host-group \"g:children\" for node \"n\"" + group_rule);
  EXPECT_EQ(error({{"n", "1.2.3.4", {"g]\n[h"}}}),
            "invalid host-group \"g]\\n[h\" for node \"n\"" + group_rule);
  EXPECT_EQ(error({{"n", "1.2.3.4", {"g"}}, {"n", "1.2.3.5", {"h"}}}),
            "node \"n\" is listed more than once");
}

TEST(InventoryValidation, CharacterSets) {
  for (const char* ok : {"cluster-node1-0", "node_1", "n.example.com", "_x", "A9"}) {
    EXPECT_TRUE(IsValidNodeName(ok)) << ok;
    EXPECT_TRUE(IsValidHostGroup(ok)) << ok;
  }
  for (const char* bad : {"", "-n", ".n", "a b", "a=b", "a'b", "a\"b", "a\tb", "a#b", "a;b", "a[1]",
                          "a:b", "a/b", "a\\b", "a$b", "ä"}) {
    EXPECT_FALSE(IsValidNodeName(bad)) << bad;
    EXPECT_FALSE(IsValidHostGroup(bad)) << bad;
  }
  for (const char* ok : {"10.0.0.1", "::1", "fe80::1%eth0", "host-1.example.com", "2001:db8::1"}) {
    EXPECT_TRUE(IsValidNodeAddr(ok)) << ok;
  }
  for (const char* bad : {"", "-h", "[::1]", "1.2.3.4 ", "a=b", "a\nb", "a'b", "%x"}) {
    EXPECT_FALSE(IsValidNodeAddr(bad)) << bad;
  }
  EXPECT_TRUE(IsValidNodeName(std::string(253, 'n')));
  EXPECT_FALSE(IsValidNodeName(std::string(254, 'n')));
  EXPECT_TRUE(IsValidHostGroup(std::string(128, 'g')));
  EXPECT_FALSE(IsValidHostGroup(std::string(129, 'g')));
}

}  // namespace
}  // namespace clustermgr::mgr
