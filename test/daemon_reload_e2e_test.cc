// SIGHUP makes clustermgrd re-read its --config file: playbook settings change for
// the next run without a restart.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>

#include "test/support/cluster.h"

namespace clustermgr::test {
namespace {

using namespace std::chrono_literals;

TEST(DaemonReloadTest, SighupRereadsTheConfigFile) {
  const std::string dir = MakeTempDir("clustermgr-reload");
  const std::string conf = dir + "/clustermgrd.conf";
  { std::ofstream(conf) << "configure-playbook = site.yml\nlog-level = info\n"; }
  ClusterOptions options;
  options.daemon_args = {"--config", conf};
  auto cluster = Cluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  auto shows = [&](const std::string& playbook) {
    return Cluster::WaitUntil(
        "config get shows configure_playbook " + playbook,
        [&](std::string* last) {
          auto config = (*cluster)->rpc().ConfigGet();
          if (!config.ok()) return false;
          *last = config.value();
          return config.value().find("\"configure_playbook\":\"" + playbook + "\"") !=
                 std::string::npos;
        },
        10s);
  };
  ASSERT_TRUE(shows("site.yml").ok());

  { std::ofstream(conf) << "configure-playbook = rolling-upgrade.yml\nlog-level = info\n"; }
  ASSERT_EQ(kill((*cluster)->manager().pid(), SIGHUP), 0);
  Status reloaded = shows("rolling-upgrade.yml");
  EXPECT_TRUE(reloaded.ok()) << reloaded.message() << (*cluster)->Diagnostics();
  EXPECT_TRUE((*cluster)->manager().Running());
  RemoveTree(dir);
}

}  // namespace
}  // namespace clustermgr::test
