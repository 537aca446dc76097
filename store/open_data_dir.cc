#include "store/open_data_dir.h"

#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <utility>

#include "base/errno_text.h"
#include "store/codec.h"
#include "store/keys.h"

namespace clustermgr::store {
namespace {

uint64_t NowMillis() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string NewIncarnation() {
  std::random_device rd;
  const uint64_t r = (uint64_t{rd()} << 32) ^ uint64_t { rd() };
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
  return buf;
}

// The dir exists (created 0700 if allowed), is a directory and is usable.
Status PrepareDir(const std::string& dir, bool create) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Status(Code::kIoError, "cannot access data dir " + dir + ": " + ErrnoText(errno));
    }
    if (!create) return Status(Code::kNotFound, "data dir " + dir + " does not exist");
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status(Code::kIoError, "cannot create data dir " + dir + ": " + ErrnoText(errno));
    }
    if (::stat(dir.c_str(), &st) != 0) {
      return Status(Code::kIoError, "cannot access data dir " + dir + ": " + ErrnoText(errno));
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status(Code::kInvalidArgument, "data dir " + dir + " is not a directory");
  }
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return Status(Code::kIoError, "data dir " + dir + " is not usable: " + ErrnoText(errno));
  }
  // A store is created only in an empty dir (or one holding a store): a mistyped --data-dir
  // pointing at someone's home must not be filled with LevelDB files.
  std::error_code ec;
  if (!std::filesystem::exists(dir + "/CURRENT", ec)) {
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name != "lost+found" && name != "LOCK" && name != "LOG" && name != "LOG.old") {
        return Status(Code::kFailedPrecondition, "data dir " + dir +
                                                     " holds files but no store (found " + name +
                                                     "); use an empty or new directory");
      }
    }
  }
  return Status::Ok();
}

Status FromOpen(const leveldb::Status& s, const std::string& dir) {
  const std::string msg = s.ToString();
  if (s.IsIOError() && msg.find("LOCK") != std::string::npos &&
      (msg.find("already held") != std::string::npos ||
       msg.find("temporarily unavailable") != std::string::npos)) {
    return Status(Code::kUnavailable,
                  "data dir " + dir + " is in use by another clustermgrd (LevelDB lock held)");
  }
  if (s.IsInvalidArgument() && msg.find("does not exist") != std::string::npos) {
    return Status(Code::kNotFound, "data dir " + dir + " holds no store");
  }
  if (s.IsCorruption()) {
    return Status(Code::kCorruption, "data dir " + dir + ": LevelDB found corruption: " + msg);
  }
  return Status(Code::kIoError, "cannot open the store in data dir " + dir + ": " + msg);
}

}  // namespace

Result<Opened> OpenAt(const std::string& path, const std::string& shown, const Options& options) {
  if (options.delta_log_limit == 0) {
    return Status(Code::kInvalidArgument, "delta_log_limit must be at least 1");
  }
  if (Status s = PrepareDir(path, options.create_if_missing); !s.ok()) return s;
  leveldb::Options lo;
  lo.create_if_missing = options.create_if_missing;
  lo.paranoid_checks = true;
  if (options.env) lo.env = options.env;
  leveldb::DB* raw = nullptr;
  if (leveldb::Status s = leveldb::DB::Open(lo, path, &raw); !s.ok()) return FromOpen(s, shown);
  Opened out;
  out.db.reset(raw);

  std::string value;
  leveldb::Status got = out.db->Get(leveldb::ReadOptions(), MetaKey(), &value);
  if (got.IsNotFound()) {
    std::unique_ptr<leveldb::Iterator> it(out.db->NewIterator(leveldb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) {
      return Status(Code::kCorruption, "data dir " + shown +
                                           " holds records but no metadata record (key " +
                                           EscapeKey(MetaKey()) + ")");
    }
    if (!it->status().ok()) return FromOpen(it->status(), shown);
    if (!options.create_if_missing) {
      return Status(Code::kNotFound, "data dir " + shown + " holds no store");
    }
    if (options.instance_name.empty()) {
      return Status(Code::kInvalidArgument,
                    "creating the store in data dir " + shown + " needs an instance name");
    }
    out.meta.schema_version = kSchemaVersion;
    out.meta.instance = options.instance_name;
    out.meta.incarnation = NewIncarnation();
    out.meta.created_ms = NowMillis();
    leveldb::WriteOptions wo;
    wo.sync = true;
    if (leveldb::Status s = out.db->Put(wo, MetaKey(), EncodeMeta(out.meta)); !s.ok()) {
      return Status(Code::kIoError,
                    "cannot initialize the store in data dir " + shown + ": " + s.ToString());
    }
  } else if (!got.ok()) {
    return FromOpen(got, shown);
  } else {
    auto meta = DecodeMeta(value);
    if (!meta.ok()) {
      return Status(Code::kCorruption, "data dir " + shown + ": record " + EscapeKey(MetaKey()) +
                                           ": " + meta.status().message());
    }
    if (meta->schema_version != kSchemaVersion) {
      return Status(Code::kFailedPrecondition, "data dir " + shown + " has store schema version " +
                                                   std::to_string(meta->schema_version) +
                                                   "; this build reads version " +
                                                   std::to_string(kSchemaVersion));
    }
    if (!options.instance_name.empty() && meta->instance != options.instance_name) {
      return Status(Code::kFailedPrecondition, "data dir " + shown + " belongs to instance \"" +
                                                   meta->instance + "\", not \"" +
                                                   options.instance_name + "\"");
    }
    out.meta = std::move(*meta);
  }

  LoadOptions load;
  load.decode_deltas = true;
  if (Status s = LoadContents(out.db.get(), load, &out.contents, nullptr); !s.ok()) {
    return Status(s.code(), "data dir " + shown + ": " + s.message());
  }
  return out;
}

}  // namespace clustermgr::store
