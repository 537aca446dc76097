#include "store/dir_copy.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "base/testing/temp_dir.h"

namespace clustermgr::store {
namespace {

std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "k%012llu", static_cast<unsigned long long>(i));
  return buf;
}

// name -> (size, mtime) of every file in dir.
std::map<std::string, std::pair<uintmax_t, int64_t>> Listing(const std::string& dir) {
  std::map<std::string, std::pair<uintmax_t, int64_t>> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    struct stat st {};
    ::stat(e.path().c_str(), &st);
    out[e.path().filename()] = {
        static_cast<uintmax_t>(st.st_size),
        static_cast<int64_t>(st.st_mtim.tv_nsec + st.st_mtime * 1'000'000'000LL)};
  }
  return out;
}

// A writer appends keys 0, 1, 2, ... one Put at a time, with a tiny write buffer so that
// memtable flushes and compactions (which replace and delete files) happen all the time. Every
// copy must open and hold a gap-free prefix 0..n-1 of what was written.
TEST(DirCopyTest, CopiesOfABusyDbAreConsistentPrefixes) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  leveldb::Options o;
  o.create_if_missing = true;
  o.write_buffer_size = 32 * 1024;
  o.max_file_size = 64 * 1024;
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(o, dir, &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> written{0};
  std::thread writer([&] {
    const std::string value(300, 'v');
    for (uint64_t i = 0; !stop; ++i) {
      if (!db->Put(leveldb::WriteOptions(), Key(i), value).ok()) return;
      written = i + 1;
    }
  });
  while (written < 2000) std::this_thread::yield();

  uint64_t last = 0;
  int attempts = 0;
  for (int round = 0; round < 8; ++round) {
    const uint64_t before = written;
    auto copy = DirCopy::Make(dir);
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    attempts += (*copy)->attempts();
    leveldb::Options co;
    co.paranoid_checks = true;
    leveldb::DB* c = nullptr;
    leveldb::Status s = leveldb::DB::Open(co, (*copy)->path(), &c);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::unique_ptr<leveldb::DB> cdb(c);
    std::unique_ptr<leveldb::Iterator> it(cdb->NewIterator(leveldb::ReadOptions()));
    uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++n) {
      ASSERT_EQ(it->key().ToString(), Key(n)) << "a hole in copy " << round;
    }
    ASSERT_TRUE(it->status().ok());
    EXPECT_GE(n, before) << "the copy lost writes done before it started";
    EXPECT_GE(n, last);
    last = n;
  }
  stop = true;
  writer.join();
  std::cout << "8 copies took " << attempts << " attempts\n";
}

TEST(DirCopyTest, NeverTouchesTheSourceAndCleansUp) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  {
    leveldb::Options o;
    o.create_if_missing = true;
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(o, dir, &raw).ok());
    ASSERT_TRUE(raw->Put(leveldb::WriteOptions(), "a", "1").ok());
    delete raw;
  }
  const auto before = Listing(dir);
  std::string copy_path;
  {
    auto copy = DirCopy::Make(dir);
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    copy_path = (*copy)->path();
    // Opening the copy runs LevelDB's recovery there (new log, manifest), not in the source.
    leveldb::DB* c = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), copy_path, &c).ok());
    std::string v;
    ASSERT_TRUE(c->Get(leveldb::ReadOptions(), "a", &v).ok());
    EXPECT_EQ(v, "1");
    delete c;
  }
  EXPECT_EQ(Listing(dir), before);
  EXPECT_FALSE(std::filesystem::exists(copy_path));

  auto none = DirCopy::Make(tmp.Sub("nope"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  auto empty = DirCopy::Make(tmp.path());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace clustermgr::store
