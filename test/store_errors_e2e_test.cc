// A full disk under one real clustermgrd of three (its data dir on a small tmpfs of its own):
// the write that fails is answered "outcome unknown", the instance stands down from the token
// and another takes over, and once space is freed it resumes by itself, losing nothing
// acknowledged. Needs root (mount); skipped otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "test/support/cluster.h"

namespace clustermgr::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A tmpfs mounted over a directory, keeping what the directory held; unmounted on destruction.
class SmallDisk {
 public:
  // Moves `dir`'s files aside, mounts a tmpfs of `mib` MiB on it and moves them back.
  SmallDisk(std::string dir, int mib) : dir_(std::move(dir)) {
    const std::string aside = dir_ + ".aside";
    fs::rename(dir_, aside);
    fs::create_directory(dir_);
    const std::string opts = "size=" + std::to_string(mib) + "m,mode=0700";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      error_ = std::string("mount: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
    fs::copy(aside, dir_, fs::copy_options::recursive);
    fs::remove_all(aside);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  const std::string& error() const { return error_; }

  // Writes a filler file until the file system is full.
  void Fill() {
    const int fd = ::open((dir_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    const std::string chunk(64 * 1024, 'f');
    while (::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    const std::string page(512, 'f');
    while (::write(fd, page.data(), page.size()) > 0) {
    }
    ::close(fd);
  }
  void Free() { fs::remove(dir_ + "/filler"); }

 private:
  std::string dir_;
  std::string error_;
  bool mounted_ = false;
};

TEST(StoreErrorsTest, AFullDiskMakesTheHolderStandDownAndItResumesOnceSpaceIsFreed) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  ClusterOptions options;
  options.managers = 3;
  options.daemon_args = {"--token-settle-ms", "1000"};
  auto started = Cluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  std::unique_ptr<Cluster> cluster = std::move(started).value();

  // Every data dir onto a small disk of its own (each daemon stopped meanwhile).
  std::vector<std::unique_ptr<SmallDisk>> disks;
  for (std::size_t i = 0; i < 3; ++i) {
    cluster->manager(i).Stop();
    disks.push_back(std::make_unique<SmallDisk>(cluster->manager(i).data_dir(), 16));
    ASSERT_EQ(disks.back()->error(), "");
  }
  for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(cluster->manager(i).Start().ok());

  auto first = cluster->WaitForOneHolder({0, 1, 2});
  ASSERT_TRUE(first.ok()) << first.status().message();
  const std::size_t full = first->index;
  const uint64_t full_epoch = first->epoch;
  ASSERT_TRUE(cluster->rpc(full).GlobalSet(R"({"a": 1})").ok());

  // The disk fills up; writes go on until one fails (a few may still fit in a partly used page).
  disks[full]->Fill();
  clustermgr::Code failed = clustermgr::Code::kOk;
  std::string failure;
  for (int n = 2; n < 200; ++n) {
    auto r = cluster->rpc(full).GlobalSet(R"({"a": )" + std::to_string(n) + "}");
    if (r.ok()) continue;
    failed = r.status().code();
    failure = r.status().message();
    break;
  }
  EXPECT_EQ(failed, clustermgr::Code::kOutcomeUnknown) << failure;
  EXPECT_EQ(failure.rfind("outcome unknown: ", 0), 0u) << failure;

  // It stands down and says why; another instance takes the token over.
  auto status = cluster->rpc(full).Status();
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status.value().store_ok);
  auto next = cluster->WaitForOneHolder({0, 1, 2}, full_epoch);
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_NE(next->index, full);
  auto refused = cluster->rpc(full).GlobalSet(R"({"a": 1000})");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().find("not stored: "), 0u) << refused.status().message();

  // Space is back: it resumes by itself, visible in status and the log.
  disks[full]->Free();
  ASSERT_TRUE(Cluster::WaitUntil(
                  "the store is writable again",
                  [&](std::string* last) {
                    auto s = cluster->rpc(full).Status();
                    if (!s.ok()) return false;
                    *last = s.value().store_error;
                    return s.value().store_ok;
                  },
                  30s, 100ms)
                  .ok());
  EXPECT_NE(cluster->manager(full).Log().find("store: writable again after "), std::string::npos);
  ASSERT_TRUE(cluster->rpc(full).GlobalSet(R"({"b": 1})").ok());
  // Nothing acknowledged is lost: every instance ends with the last acknowledged write.
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        Cluster::WaitUntil(
            "instance " + std::to_string(i) + " has the last write",
            [&](std::string* last) {
              auto g = cluster->rpc(i).GlobalGet();
              if (!g.ok()) return false;
              *last = g.value();
              return nlohmann::json::parse(g.value(), nullptr, false) == nlohmann::json{{"b", 1}};
            },
            30s, 100ms)
            .ok());
  }
}

}  // namespace
}  // namespace clustermgr::test
