#include "mgr/fencing/run_report.h"

#include <cctype>
#include <cstdlib>

namespace clustermgr::mgr::fencing {
namespace {

constexpr std::string_view kFencePrefix = "fenced: host has seen epoch ";
constexpr std::string_view kFenceMiddle = ", this run carries ";
// How many lines after a fatal line its message may still come (the yaml callback prints it
// over several lines).
constexpr int kMessageWindow = 8;

// Digits at the start of `s` (at most 20); 0 when none.
std::size_t Digits(std::string_view s) {
  std::size_t n = 0;
  while (n < s.size() && n < 20 && std::isdigit(static_cast<unsigned char>(s[n]))) ++n;
  return n;
}

// "name : ok=1 changed=0 unreachable=0 failed=1 ..." -> host and counters.
bool ParseRecapLine(std::string_view line, std::string* host, HostRecap* recap) {
  const std::size_t colon = line.find(" : ");
  if (colon == std::string_view::npos) return false;
  std::string_view name = line.substr(0, colon);
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
  if (name.empty() || name.find(' ') != std::string_view::npos) return false;
  std::string_view rest = line.substr(colon + 3);
  bool any = false;
  auto field = [&](std::string_view key, int* out) {
    const std::string probe = std::string(key) + "=";
    std::size_t at = rest.find(probe);
    while (at != std::string_view::npos && at > 0 && rest[at - 1] != ' ') {
      at = rest.find(probe, at + 1);
    }
    if (at == std::string_view::npos) return;
    std::string_view value = rest.substr(at + probe.size());
    const std::size_t n = Digits(value);
    if (n == 0) return;
    *out = std::atoi(std::string(value.substr(0, n)).c_str());
    any = true;
  };
  field("ok", &recap->ok);
  field("changed", &recap->changed);
  field("unreachable", &recap->unreachable);
  field("failed", &recap->failed);
  field("skipped", &recap->skipped);
  if (!any) return false;
  *host = std::string(name);
  return true;
}

}  // namespace

std::string FindFenceMessage(std::string_view text) {
  std::size_t at = text.find(kFencePrefix);
  while (at != std::string_view::npos) {
    std::string_view rest = text.substr(at + kFencePrefix.size());
    const std::size_t seen = Digits(rest);
    if (seen > 0 && rest.substr(seen).starts_with(kFenceMiddle)) {
      std::string_view tail = rest.substr(seen + kFenceMiddle.size());
      const std::size_t carried = Digits(tail);
      if (carried > 0) {
        return std::string(kFencePrefix) + std::string(rest.substr(0, seen)) +
               std::string(kFenceMiddle) + std::string(tail.substr(0, carried));
      }
    }
    at = text.find(kFencePrefix, at + 1);
  }
  return "";
}

void RunReport::Feed(std::string_view line) {
  if (line.starts_with("PLAY RECAP")) {
    in_recap_ = true;
    return;
  }
  if (line.starts_with("PLAY [") || line.starts_with("TASK [")) in_recap_ = false;
  if (in_recap_) {
    std::string host;
    HostRecap recap;
    if (ParseRecapLine(line, &host, &recap)) recap_[host] = recap;
    return;
  }
  // "fatal: [node-a]: FAILED! => {... "msg": "fenced: ..."}" (default callback), or the message
  // on a later line (yaml callback).
  if (line.starts_with("fatal: [")) {
    const std::size_t close = line.find("]: FAILED!");
    if (close != std::string_view::npos) {
      last_fatal_host_ = std::string(line.substr(8, close - 8));
      lines_since_fatal_ = 0;
    }
  } else if (!last_fatal_host_.empty() && ++lines_since_fatal_ > kMessageWindow) {
    last_fatal_host_.clear();
  }
  if (last_fatal_host_.empty()) return;
  std::string message = FindFenceMessage(line);
  if (message.empty()) return;
  fenced_[last_fatal_host_] = std::move(message);
  last_fatal_host_.clear();
}

std::set<std::string> RunReport::FailedHosts() const {
  std::set<std::string> out;
  for (const auto& [host, r] : recap_) {
    if ((r.failed > 0 || r.unreachable > 0) && !fenced_.count(host)) out.insert(host);
  }
  return out;
}

bool RunReport::OnlyFenced() const {
  if (fenced_.empty() || recap_.empty()) return false;
  return FailedHosts().empty();
}

}  // namespace clustermgr::mgr::fencing
