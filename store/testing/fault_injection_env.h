// FaultInjectionEnv: a LevelDB Env over the real one that fails writes or syncs on request and
// can forget everything not synced, as a power cut would (after LevelDB's own
// db/fault_injection_test.cc). The test double for the durability of Store.
//
// Model: each file written through this Env remembers how many bytes it had at its last
// successful Sync. DropUnsyncedData() truncates every such file to that length and deletes the
// files never synced (a file's first sync is taken to make its directory entry durable, as the
// LevelDB test does). Call it only while no DB is open on the files (after closing the Store),
// like a crash followed by a restart.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <leveldb/env.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "base/status.h"

namespace clustermgr::store {

class FaultInjectionEnv : public leveldb::EnvWrapper {
 public:
  // Wraps leveldb::Env::Default().
  FaultInjectionEnv();

  // While set, every Append (resp. Sync) of a file opened through this Env fails with an I/O
  // error and writes (resp. syncs) nothing.
  void SetWriteError(bool on) { write_error_ = on; }
  void SetSyncError(bool on) { sync_error_ = on; }
  // Fails only the next N syncs (then syncs work again).
  void FailNextSyncs(int n) { fail_syncs_ = n; }
  // While set, opening a file for writing (NewWritableFile, NewAppendableFile) fails with "Too
  // many open files", as when the process has no descriptor left (EMFILE).
  void SetOpenError(bool on) { open_error_ = on; }
  int injected_errors() const { return injected_; }
  // Successful syncs of LevelDB's write-ahead logs (*.log): one per synced write batch.
  int log_syncs() const { return log_syncs_; }

  // Forgets unsynced data, see above. Errors: kIoError when a file cannot be truncated/removed.
  Status DropUnsyncedData();

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& fname,
                                    leveldb::WritableFile** result) override;
  leveldb::Status RemoveFile(const std::string& fname) override;
  leveldb::Status RenameFile(const std::string& src, const std::string& target) override;

 private:
  class File;
  friend class File;

  struct FileState {
    uint64_t size = 0;
    uint64_t synced = 0;
    bool ever_synced = false;
  };

  bool FailAppend();
  bool FailSync();
  void Appended(const std::string& fname, uint64_t n);
  void Synced(const std::string& fname);

  std::atomic<bool> write_error_{false};
  std::atomic<bool> sync_error_{false};
  std::atomic<bool> open_error_{false};
  std::atomic<int> fail_syncs_{0};
  std::atomic<int> injected_{0};
  std::atomic<int> log_syncs_{0};
  std::mutex mu_;
  std::map<std::string, FileState> files_;  // guarded by mu_
};

}  // namespace clustermgr::store
