#include "store/testing/fault_injection_env.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace clustermgr::store {

class FaultInjectionEnv::File : public leveldb::WritableFile {
 public:
  File(FaultInjectionEnv* env, std::string name, leveldb::WritableFile* target)
      : env_(env), name_(std::move(name)), target_(target) {}

  leveldb::Status Append(const leveldb::Slice& data) override {
    if (env_->FailAppend()) return leveldb::Status::IOError(name_, "injected write error");
    leveldb::Status s = target_->Append(data);
    if (s.ok()) env_->Appended(name_, data.size());
    return s;
  }
  leveldb::Status Close() override { return target_->Close(); }
  leveldb::Status Flush() override { return target_->Flush(); }
  leveldb::Status Sync() override {
    if (env_->FailSync()) return leveldb::Status::IOError(name_, "injected sync error");
    leveldb::Status s = target_->Sync();
    if (s.ok()) env_->Synced(name_);
    return s;
  }

 private:
  FaultInjectionEnv* env_;
  std::string name_;
  std::unique_ptr<leveldb::WritableFile> target_;
};

FaultInjectionEnv::FaultInjectionEnv() : EnvWrapper(leveldb::Env::Default()) {}

bool FaultInjectionEnv::FailAppend() {
  if (!write_error_) return false;
  ++injected_;
  return true;
}

bool FaultInjectionEnv::FailSync() {
  int n = fail_syncs_.load();
  while (n > 0) {
    if (fail_syncs_.compare_exchange_weak(n, n - 1)) {
      ++injected_;
      return true;
    }
  }
  if (!sync_error_) return false;
  ++injected_;
  return true;
}

void FaultInjectionEnv::Appended(const std::string& fname, uint64_t n) {
  std::lock_guard lock(mu_);
  files_[fname].size += n;
}

void FaultInjectionEnv::Synced(const std::string& fname) {
  if (fname.size() > 4 && fname.compare(fname.size() - 4, 4, ".log") == 0) ++log_syncs_;
  std::lock_guard lock(mu_);
  FileState& f = files_[fname];
  f.synced = f.size;
  f.ever_synced = true;
}

leveldb::Status FaultInjectionEnv::NewWritableFile(const std::string& fname,
                                                   leveldb::WritableFile** result) {
  if (open_error_) {
    ++injected_;
    return leveldb::Status::IOError(fname, "Too many open files (injected)");
  }
  leveldb::WritableFile* file = nullptr;
  leveldb::Status s = target()->NewWritableFile(fname, &file);
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    files_[fname] = FileState{};  // truncated on open
  }
  *result = new File(this, fname, file);
  return s;
}

leveldb::Status FaultInjectionEnv::NewAppendableFile(const std::string& fname,
                                                     leveldb::WritableFile** result) {
  if (open_error_) {
    ++injected_;
    return leveldb::Status::IOError(fname, "Too many open files (injected)");
  }
  leveldb::WritableFile* file = nullptr;
  leveldb::Status s = target()->NewAppendableFile(fname, &file);
  if (!s.ok()) return s;
  uint64_t size = 0;
  if (!target()->GetFileSize(fname, &size).ok()) size = 0;
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = files_.try_emplace(fname);
    if (inserted) it->second = FileState{size, size, true};  // existing bytes count as synced
  }
  *result = new File(this, fname, file);
  return s;
}

leveldb::Status FaultInjectionEnv::RemoveFile(const std::string& fname) {
  leveldb::Status s = target()->RemoveFile(fname);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    files_.erase(fname);
  }
  return s;
}

leveldb::Status FaultInjectionEnv::RenameFile(const std::string& src, const std::string& dst) {
  leveldb::Status s = target()->RenameFile(src, dst);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    auto it = files_.find(src);
    if (it != files_.end()) {
      files_[dst] = it->second;
      files_.erase(src);
    } else {
      files_.erase(dst);
    }
  }
  return s;
}

Status FaultInjectionEnv::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  for (auto it = files_.begin(); it != files_.end();) {
    const std::string& name = it->first;
    const FileState& f = it->second;
    if (!f.ever_synced) {
      if (::unlink(name.c_str()) != 0 && errno != ENOENT) {
        return Status(Code::kIoError, "cannot remove " + name + ": " + std::strerror(errno));
      }
      it = files_.erase(it);
      continue;
    }
    if (f.size > f.synced && ::truncate(name.c_str(), static_cast<off_t>(f.synced)) != 0 &&
        errno != ENOENT) {
      return Status(Code::kIoError, "cannot truncate " + name + ": " + std::strerror(errno));
    }
    it->second.size = f.synced;
    ++it;
  }
  return Status::Ok();
}

}  // namespace clustermgr::store
