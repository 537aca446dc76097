// The domain values held in the replicated state: node inventory and jobs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clustermgr::crdt {

// Lifecycle status of a node. The numeric values are part of the stored format.
enum class NodeStatus : uint8_t {
  kUnallocated = 0,
  kProvisioning = 1,
  kAllocated = 2,
  kCancelled = 3,
  kDecommissioned = 4,
  kMaintenance = 5,
};
// What Serf says of the node. The numeric values are part of the stored format.
enum class NodeState : uint8_t {
  kUnknown = 0,
  kDiscovered = 1,
  kDisappeared = 2,
};
// The numeric values are part of the stored format.
enum class JobStatus : uint8_t {
  kQueued = 0,
  kRunning = 1,
  kComplete = 2,
  kErrored = 3,
  kCancelled = 4,
  kInterrupted = 5,  // its owner died or lost the token mid-run
  kFenced = 6,       // hosts refused it: a newer token holder had touched them (no other failure)
};

// Names as the predecessor printed them ("Unallocated", "Discovered", "Running", ...).
std::string_view ToString(NodeStatus s);
std::string_view ToString(NodeState s);
std::string_view ToString(JobStatus s);
std::optional<NodeStatus> ParseNodeStatus(std::string_view name);
std::optional<NodeState> ParseNodeState(std::string_view name);
std::optional<JobStatus> ParseJobStatus(std::string_view name);
bool IsFinal(JobStatus s);

// One node's inventory entry: lifecycle status, Serf state, and what Serf last reported.
struct InventoryRecord {
  NodeStatus status = NodeStatus::kUnallocated;
  NodeState state = NodeState::kUnknown;
  NodeStatus prev_status = NodeStatus::kUnallocated;
  NodeState prev_state = NodeState::kUnknown;
  std::string addr;                         // management address (Serf tag NodeAddr)
  std::map<std::string, std::string> tags;  // the node's Serf tags
  std::string serf_status;                  // "alive", "failed", "left", ...
  uint64_t updated_ms = 0;                  // wall time of the last change

  friend bool operator==(const InventoryRecord&, const InventoryRecord&) = default;
};

// One host's results over a job's playbook runs, as Ansible's PLAY RECAP counts them (summed
// over the runs of the job: cleanup and configure, or the batches of a rolling job).
struct HostSummary {
  std::string host;
  uint32_t ok = 0;
  uint32_t changed = 0;
  uint32_t unreachable = 0;
  uint32_t failed = 0;
  uint32_t skipped = 0;

  friend bool operator==(const HostSummary&, const HostSummary&) = default;
};

struct JobRecord {
  std::string id;
  std::string desc;  // "commission", "decommission", "update", "discover"
  std::vector<std::string> nodes;
  std::string host_group;  // for commission / update
  JobStatus status = JobStatus::kQueued;
  std::string error;
  uint64_t epoch = 0;  // token epoch of the instance that runs it
  std::string owner;   // instance name that runs it
  uint64_t created_ms = 0;
  uint64_t started_ms = 0;
  uint64_t ended_ms = 0;
  uint64_t log_lines = 0;   // lines captured so far
  uint64_t log_chunks = 0;  // chunks written so far (chunks are numbered from 0)
  // Per-host results, sorted by host; kept whatever the log's cap dropped.
  std::vector<HostSummary> hosts;

  friend bool operator==(const JobRecord&, const JobRecord&) = default;
};

}  // namespace clustermgr::crdt
