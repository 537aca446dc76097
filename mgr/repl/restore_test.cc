#include "mgr/repl/restore.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "store/store.h"
#include "base/testing/temp_dir.h"

namespace clustermgr::mgr {
namespace {

constexpr uint64_t kNow = 1'790'000'000'000;  // 2026-09-21T...

TEST(DiscardDataDirTest, NothingToDiscard) {
  TempDir tmp("restore-test");
  EXPECT_EQ(*DiscardDataDir(tmp.Sub("missing"), kNow), "");
  std::filesystem::create_directory(tmp.Sub("empty"));
  EXPECT_EQ(*DiscardDataDir(tmp.Sub("empty"), kNow), "");
}

TEST(DiscardDataDirTest, MovesAStoreAsideEvenACorruptOne) {
  TempDir tmp("restore-test");
  const std::string dir = tmp.Sub("data");
  {
    store::Options o;
    o.instance_name = "m1";
    auto s = store::Store::Open(dir, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  std::ofstream(dir + "/CURRENT") << "garbage";  // corrupt
  auto moved = DiscardDataDir(dir + "/", kNow);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->rfind(dir + ".discarded-2026", 0), 0u) << *moved;
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_TRUE(std::filesystem::exists(*moved + "/CURRENT"));
  // Again at the same second: a distinct name.
  std::filesystem::create_directory(dir);
  std::ofstream(dir + "/x") << "x";
  auto again = DiscardDataDir(dir, kNow);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *moved);
}

TEST(DiscardDataDirTest, RefusesAStoreInUse) {
  TempDir tmp("restore-test");
  const std::string dir = tmp.Sub("data");
  store::Options o;
  o.instance_name = "m1";
  auto open = store::Store::Open(dir, o);
  ASSERT_TRUE(open.ok());
  // The lock is per process for fcntl locks: check it from a child.
  const pid_t pid = fork();
  if (pid == 0) {
    auto r = DiscardDataDir(dir, kNow);
    _exit(!r.ok() && r.status().code() == Code::kUnavailable ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/CURRENT"));
}

}  // namespace
}  // namespace clustermgr::mgr
