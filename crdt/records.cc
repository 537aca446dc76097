#include "crdt/records.h"

#include <array>
#include <utility>

namespace clustermgr::crdt {
namespace {

constexpr std::array<std::pair<NodeStatus, std::string_view>, 6> kStatusNames{{
    {NodeStatus::kUnallocated, "Unallocated"},
    {NodeStatus::kProvisioning, "Provisioning"},
    {NodeStatus::kAllocated, "Allocated"},
    {NodeStatus::kCancelled, "Cancelled"},
    {NodeStatus::kDecommissioned, "Decommissioned"},
    {NodeStatus::kMaintenance, "Maintenance"},
}};
constexpr std::array<std::pair<NodeState, std::string_view>, 3> kStateNames{{
    {NodeState::kUnknown, "Unknown"},
    {NodeState::kDiscovered, "Discovered"},
    {NodeState::kDisappeared, "Disappeared"},
}};
constexpr std::array<std::pair<JobStatus, std::string_view>, 7> kJobNames{{
    {JobStatus::kQueued, "Queued"},
    {JobStatus::kRunning, "Running"},
    {JobStatus::kComplete, "Complete"},
    {JobStatus::kErrored, "Errored"},
    {JobStatus::kCancelled, "Cancelled"},
    {JobStatus::kInterrupted, "Interrupted"},
    {JobStatus::kFenced, "Fenced"},
}};

template <typename T, size_t N>
std::string_view NameOf(const std::array<std::pair<T, std::string_view>, N>& table, T value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "Invalid";
}

template <typename T, size_t N>
std::optional<T> ValueOf(const std::array<std::pair<T, std::string_view>, N>& table,
                         std::string_view name) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view ToString(NodeStatus s) { return NameOf(kStatusNames, s); }
std::string_view ToString(NodeState s) { return NameOf(kStateNames, s); }
std::string_view ToString(JobStatus s) { return NameOf(kJobNames, s); }
std::optional<NodeStatus> ParseNodeStatus(std::string_view n) { return ValueOf(kStatusNames, n); }
std::optional<NodeState> ParseNodeState(std::string_view n) { return ValueOf(kStateNames, n); }
std::optional<JobStatus> ParseJobStatus(std::string_view n) { return ValueOf(kJobNames, n); }

bool IsFinal(JobStatus s) { return s != JobStatus::kQueued && s != JobStatus::kRunning; }

}  // namespace clustermgr::crdt
