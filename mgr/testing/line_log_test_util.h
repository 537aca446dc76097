// Test helper shared by the PlaybookRun tests (mgr/ansible/playbook_runner_test.cc with fake
// programs, test/playbook_runner_test.cc with the real ansible-playbook): collects the output lines
// a run delivers on the runner's thread and lets the test thread wait for one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "mgr/ansible/playbook_runner.h"

namespace clustermgr::mgr {

class LineLog {
 public:
  LineCallback callback() {
    return [this](std::string_view line) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(line);
      cv_.notify_all();
    };
  }
  // True once a line containing `needle` has arrived; false after `timeout`.
  bool WaitFor(const std::string& needle, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      for (const auto& l : lines_) {
        if (l.find(needle) != std::string::npos) return true;
      }
      return false;
    });
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }
  // Every line so far, each ending in "\n".
  std::string text() {
    std::string all;
    for (const auto& l : lines()) all += l + "\n";
    return all;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

}  // namespace clustermgr::mgr
