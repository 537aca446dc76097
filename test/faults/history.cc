#include "test/faults/history.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace clustermgr::faults {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kAcknowledged:
      return "acknowledged";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string Describe(const Op& op) {
  std::string s = "op#" + std::to_string(op.id) + " " + op.kind + " via " + op.instance;
  if (!op.node.empty()) s += " node " + op.node;
  if (!op.key.empty()) s += " " + op.key + "=" + op.value;
  if (op.kind == "global") s += " " + op.value;
  s += " -> " + std::string(OutcomeName(op.outcome));
  if (!op.job_id.empty()) s += " job " + op.job_id;
  if (!op.error.empty()) s += " (" + op.error + ")";
  s += " [" + std::to_string(op.end_ms - op.start_ms) + " ms]";
  return s;
}

int History::NextOpId() {
  std::lock_guard lock(mu_);
  return next_id_++;
}

std::string History::Rel(int64_t ms) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "+%.3fs", static_cast<double>(ms - origin_ms_) / 1000.0);
  return buf;
}

void History::Line(int64_t ms, const std::string& text) { lines_.emplace_back(ms, text); }

void History::Add(const Op& op) {
  std::lock_guard lock(mu_);
  ops_.push_back(op);
  Line(op.end_ms, Describe(op) + " (sent " + Rel(op.start_ms) + ")");
}

void History::AddFault(const FaultEvent& f) {
  std::lock_guard lock(mu_);
  faults_.push_back(f);
  Line(f.start_ms, "FAULT " + f.kind + " " + f.target + " " + f.detail + " until " + Rel(f.end_ms));
}

void History::Note(const std::string& line) {
  std::lock_guard lock(mu_);
  Line(NowMs(), line);
}

std::vector<Op> History::Ops() const {
  std::lock_guard lock(mu_);
  return ops_;
}

std::vector<FaultEvent> History::Faults() const {
  std::lock_guard lock(mu_);
  return faults_;
}

std::string History::Excerpt(const std::vector<std::string>& needles, std::size_t max) const {
  std::lock_guard lock(mu_);
  auto sorted = lines_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> picked;
  for (const auto& [ms, text] : sorted) {
    bool hit = needles.empty() || text.rfind("FAULT ", 0) == 0;
    for (const auto& n : needles) hit = hit || text.find(n) != std::string::npos;
    if (hit) picked.push_back("  " + Rel(ms) + " " + text);
  }
  if (picked.size() > max) picked.erase(picked.begin(), picked.end() - static_cast<long>(max));
  std::string out;
  for (const auto& p : picked) out += p + "\n";
  return out;
}

}  // namespace clustermgr::faults
