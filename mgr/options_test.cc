#include "mgr/options.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/testing/temp_dir.h"

namespace clustermgr::mgr {
namespace {

class DaemonCurveOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pair_ = *net::GenerateCurveKeyPair();
    ASSERT_TRUE(net::WriteKeyPairFiles(dir_ + "/a.key", pair_, "a").ok());
  }

  ParsedOptions Parse(std::vector<std::string> args) {
    args.insert(args.begin(), {"clustermgrd", "--name=t", "--data-dir=" + dir_ + "/data"});
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    return ParseDaemonOptions(static_cast<int>(argv.size()), argv.data());
  }

  TempDir tmp_{"curve_options"};
  const std::string dir_ = tmp_.path();
  net::CurveKeyPair pair_;
};

TEST_F(DaemonCurveOptionsTest, CurveKeyOrInsecureIsRequiredAndTheyExcludeEachOther) {
  ParsedOptions p = Parse({});
  EXPECT_TRUE(p.exit_now);
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_EQ(p.text,
            "clustermgrd: no --curve-key: pass --curve-key FILE (see 'clustermgr keygen') or "
            "--insecure for plain TCP\n");

  p = Parse({"--insecure"});
  EXPECT_FALSE(p.exit_now) << p.text;
  EXPECT_FALSE(p.options.curve.has_value());

  p = Parse({"--insecure", "--curve-key=" + dir_ + "/a.key"});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_EQ(p.text,
            "clustermgrd: --insecure excludes --curve-key, --curve-clients and --curve-peers\n");
}

TEST_F(DaemonCurveOptionsTest, KeyFilesAreLoadedAndCheckedAtParseTime) {
  std::ofstream(dir_ + "/clients.list") << pair_.public_key << " self\n";
  ParsedOptions p =
      Parse({"--curve-key=" + dir_ + "/a.key", "--curve-clients=" + dir_ + "/clients.list"});
  ASSERT_FALSE(p.exit_now) << p.text;
  ASSERT_TRUE(p.options.curve.has_value());
  EXPECT_EQ(p.options.curve->self.public_key, pair_.public_key);
  ASSERT_EQ(p.options.curve->clients.size(), 1u);
  EXPECT_TRUE(p.options.curve->peers.empty());

  std::ofstream(dir_ + "/peers.list") << "not-a-key\n";
  p = Parse({"--curve-key=" + dir_ + "/a.key", "--curve-peers=" + dir_ + "/peers.list"});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_EQ(p.text,
            "clustermgrd: --curve-peers: " + dir_ +
                "/peers.list:1: expected a 40-character Z85 public key, got \"not-a-key\"\n");

  chmod((dir_ + "/a.key").c_str(), 0604);
  p = Parse({"--curve-key=" + dir_ + "/a.key"});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_EQ(p.text,
            "clustermgrd: --curve-key: " + dir_ + "/a.key is readable by others; chmod 600 it\n");
}

TEST_F(DaemonCurveOptionsTest, PeersNeedAnExplicitExpect) {
  ParsedOptions p = Parse({"--insecure", "--peer=tcp://127.0.0.1:9108"});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_EQ(p.text.rfind("clustermgrd: --peer given without --expect: pass --expect N", 0), 0u)
      << p.text;
  p = Parse({"--insecure", "--peer=tcp://127.0.0.1:9108", "--expect=3"});
  EXPECT_FALSE(p.exit_now) << p.text;
  EXPECT_EQ(p.options.expect, 3);
  // From the config file, too.
  std::ofstream(dir_ + "/d.conf") << "expect = 1\npeer = tcp://127.0.0.1:9108\n";
  p = Parse({"--insecure", "--config=" + dir_ + "/d.conf"});
  EXPECT_FALSE(p.exit_now) << p.text;
  EXPECT_TRUE(p.options.expect_given);
  // Alone, the default (1) still serves.
  p = Parse({"--insecure"});
  EXPECT_FALSE(p.exit_now) << p.text;
  EXPECT_FALSE(p.options.expect_given);
}

TEST_F(DaemonCurveOptionsTest, GossipAdvertiseMustBeAReachableGossipEndpoint) {
  ParsedOptions p = Parse(
      {"--insecure", "--gossip-bind=tcp://0.0.0.0:9108", "--gossip-advertise=tcp://10.1.2.3:9108"});
  EXPECT_FALSE(p.exit_now) << p.text;
  EXPECT_EQ(p.options.gossip_advertise, "tcp://10.1.2.3:9108");
  for (const char* bad : {"tcp://0.0.0.0:9108", "tcp://*:9108", "tcp://10.1.2.3", "nonsense",
                          "tcp://10.1.2.3:65535"}) {
    p = Parse({"--insecure", std::string("--gossip-advertise=") + bad});
    EXPECT_EQ(p.exit_code, 2) << bad;
    EXPECT_EQ(p.text.rfind("clustermgrd: --gossip-advertise: ", 0), 0u) << p.text;
  }
}

TEST_F(DaemonCurveOptionsTest, HelpGroupsOptionsAndNamesTheirValues) {
  ParsedOptions p = Parse({"--help"});
  EXPECT_TRUE(p.exit_now);
  EXPECT_EQ(p.exit_code, 0);
  for (const char* text : {"Network:", "Security:", "Ansible:", "Tuning:", "--curve-key FILE",
                           "--serf-rpc ADDR", "--expect N", "--ack-timeout-ms MS",
                           "--rpc-bind ENDPOINT", "--log-format FORMAT", "exit status:"}) {
    EXPECT_NE(p.text.find(text), std::string::npos) << text << "\n" << p.text;
  }
  EXPECT_EQ(p.text.find(" arg "), std::string::npos) << p.text;  // no bare placeholders
  EXPECT_EQ(p.text.find("test-drop-gossip"), std::string::npos);
  p = Parse({"--insecure", "--log-format=xml"});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_EQ(p.text, "clustermgrd: --log-format must be auto, text or json\n");
}

TEST_F(DaemonCurveOptionsTest, NodeFencingDefaultsToWarnAndTakesOnlyItsThreeValues) {
  ParsedOptions p = Parse({"--insecure"});
  ASSERT_FALSE(p.exit_now) << p.text;
  EXPECT_EQ(p.options.node_fencing, fencing::Mode::kWarn);
  EXPECT_EQ(p.options.ansible_roles_dir, kDefaultRolesDir);
  for (const auto& [text, mode] :
       {std::pair{"require", fencing::Mode::kRequire}, std::pair{"warn", fencing::Mode::kWarn},
        std::pair{"off", fencing::Mode::kOff}}) {
    p = Parse({"--insecure", std::string("--node-fencing=") + text});
    ASSERT_FALSE(p.exit_now) << p.text;
    EXPECT_EQ(p.options.node_fencing, mode);
  }
  p = Parse({"--insecure", "--node-fencing=strict"});
  EXPECT_TRUE(p.exit_now);
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_EQ(p.text, "clustermgrd: --node-fencing must be require, warn or off, not \"strict\"\n");
}

TEST_F(DaemonCurveOptionsTest, AnsibleForksIsANumberOfHostsUpToAThousand) {
  ParsedOptions p = Parse({"--insecure"});
  ASSERT_FALSE(p.exit_now) << p.text;
  EXPECT_EQ(p.options.ansible_forks, 0);  // Ansible's own default
  p = Parse({"--insecure", "--ansible-forks=50"});
  ASSERT_FALSE(p.exit_now) << p.text;
  EXPECT_EQ(p.options.ansible_forks, 50);
  for (const char* bad : {"-1", "1001"}) {
    p = Parse({"--insecure", std::string("--ansible-forks=") + bad});
    EXPECT_TRUE(p.exit_now) << bad;
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_EQ(p.text, std::string("clustermgrd: --ansible-forks must be between 0 and 1000, not ") +
                          bad + "\n");
  }
  p = Parse({"--insecure", "--ansible-forks=many"});
  EXPECT_TRUE(p.exit_now);
  EXPECT_EQ(p.exit_code, 2);
}

}  // namespace
}  // namespace clustermgr::mgr
