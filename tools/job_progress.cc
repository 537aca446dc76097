#include "tools/job_progress.h"

#include <algorithm>
#include <array>
#include <ostream>
#include <string_view>

namespace clustermgr::cli {
namespace {

// The text between the first "[" after `prefix` and its "]".
std::optional<std::string> Bracketed(std::string_view line, std::string_view prefix) {
  if (line.substr(0, prefix.size()) != prefix) return std::nullopt;
  const auto open = line.find('[', prefix.size());
  const auto close = line.find(']', open == std::string_view::npos ? 0 : open);
  if (open != prefix.size() || close == std::string_view::npos) return std::nullopt;
  return std::string(line.substr(open + 1, close - open - 1));
}

}  // namespace

std::optional<std::string> JobProgress::Feed(const std::string& line) {
  for (std::string_view prefix : {"TASK ", "RUNNING HANDLER "}) {
    if (auto task = Bracketed(line, prefix)) {
      task_ = *task;
      return std::nullopt;
    }
  }
  static constexpr std::array<std::string_view, 6> kResults = {"ok",     "changed", "skipping",
                                                               "failed", "fatal",   "unreachable"};
  for (std::string_view result : kResults) {
    auto host = Bracketed(line, std::string(result) + ": ");
    if (!host) continue;
    if (auto arrow = host->find(" -> "); arrow != std::string::npos) host->resize(arrow);
    auto it =
        std::find_if(hosts_.begin(), hosts_.end(), [&](const Host& h) { return h.name == *host; });
    if (it == hosts_.end()) it = hosts_.insert(hosts_.end(), Host{*host, "", "", 0, 0, 0});
    std::string shown(result);
    if (result == "fatal" && line.find("UNREACHABLE") != std::string::npos) shown = "unreachable";
    it->task = task_;
    it->result = shown;
    if (result == "ok") ++it->ok;
    if (result == "changed") ++it->changed;
    if (result == "failed" || result == "fatal" || result == "unreachable") ++it->failed;
    return it->name + ": " + (task_.empty() ? "-" : task_) + ": " + shown;
  }
  return std::nullopt;
}

std::vector<std::string> JobProgress::Lines() const {
  std::size_t name_width = 0, task_width = 0, result_width = 0;
  for (const auto& h : hosts_) {
    name_width = std::max(name_width, h.name.size());
    task_width = std::max(task_width, h.task.size());
    result_width = std::max(result_width, h.result.size());
  }
  std::vector<std::string> lines;
  for (const auto& h : hosts_) {
    std::string line = h.name + std::string(name_width - h.name.size() + 2, ' ') + h.task +
                       std::string(task_width - h.task.size() + 2, ' ') + h.result +
                       std::string(result_width - h.result.size() + 2, ' ') + "(ok " +
                       std::to_string(h.ok) + ", changed " + std::to_string(h.changed) +
                       ", failed " + std::to_string(h.failed) + ")";
    lines.push_back(std::move(line));
  }
  return lines;
}

void LiveBlock::Draw(std::ostream& out, const std::vector<std::string>& lines) {
  if (drawn_ > 0) out << "\x1b[" << drawn_ << "A";
  for (const auto& line : lines) out << "\r\x1b[2K" << line << "\n";
  drawn_ = lines.size();
  out.flush();
}

}  // namespace clustermgr::cli
