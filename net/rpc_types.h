// Plain C++ mirror of the RPC wire contract (net/rpc.capnp), so that the daemon, the CLI and
// tests never hold Cap'n Proto readers: decoding happens whole at the net/ boundary (where its
// exceptions are caught), and everything past it is value types.
//
// Field meanings are documented once, in net/rpc.capnp; the names here follow them in
// snake_case. Everything here is a value type: copyable, no hidden sharing, not synchronised.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/status.h"

namespace clustermgr::net {

// The schema version this build speaks (rpcwire::PROTOCOL_VERSION; checked in rpc_codec.cc).
inline constexpr std::uint32_t kRpcProtocolVersion = 4;

// ---- errors ---------------------------------------------------------------------------------
//
// Calls report failure with the one Status/Result of base/status.h. The wire carries a subset of
// its codes (net/rpc.capnp ErrorCode); codes the wire lacks (corruption, I/O error, cancelled)
// travel as "internal" (net/rpc_convert.cc).

// The value of calls that return nothing but success.
struct Ack {
  bool operator==(const Ack&) const = default;
};

// ---- enums ----------------------------------------------------------------------------------

enum class NodeStatus {
  kUnspecified,
  kUnallocated,
  kProvisioning,
  kAllocated,
  kCancelled,
  kDecommissioned,
  kMaintenance,
};
enum class NodeState { kUnknown, kDiscovered, kDisappeared };
enum class JobStatus {
  kUnspecified,
  kQueued,
  kRunning,
  kComplete,
  kErrored,
  kCancelled,
  kInterrupted,
  kFenced,  // hosts refused the job: a newer token holder had touched them
};

// The predecessor's spelling: "Unallocated", "Discovered", "Complete", ... ("" for unspecified
// status, "Unknown" state).
std::string_view ToString(NodeStatus s);
std::string_view ToString(NodeState s);
std::string_view ToString(JobStatus s);
// Ended = Complete, Errored, Cancelled, Interrupted or Fenced.
bool JobEnded(JobStatus s);

// ---- result payloads ------------------------------------------------------------------------

struct NodeInfo {
  std::string name;
  std::string addr;
  NodeStatus status = NodeStatus::kUnspecified;
  NodeState state = NodeState::kUnknown;
  NodeStatus prev_status = NodeStatus::kUnspecified;
  NodeState prev_state = NodeState::kUnknown;
  std::vector<std::string> host_groups;
  std::vector<std::pair<std::string, std::string>> monitoring;  // sorted by key
  std::string extra_vars;                                       // JSON object text
  bool operator==(const NodeInfo&) const = default;
};

struct NodeList {
  std::vector<NodeInfo> nodes;
  bool operator==(const NodeList&) const = default;
};

struct JobAccepted {
  std::string job_id;
  bool operator==(const JobAccepted&) const = default;
};

struct JsonText {
  std::string text;
  bool operator==(const JsonText&) const = default;
};

// One host's results over a job's playbook runs (Ansible's PLAY RECAP counts, summed).
struct HostSummary {
  std::string host;
  std::uint32_t ok = 0;
  std::uint32_t changed = 0;
  std::uint32_t unreachable = 0;
  std::uint32_t failed = 0;
  std::uint32_t skipped = 0;
  bool operator==(const HostSummary&) const = default;
};

struct JobInfo {
  std::string id;
  std::string desc;
  std::vector<std::string> nodes;
  JobStatus status = JobStatus::kUnspecified;
  std::string error;
  std::uint64_t epoch = 0;
  std::string owner;
  std::int64_t created_ms = 0;
  std::int64_t started_ms = 0;
  std::int64_t ended_ms = 0;
  std::uint64_t log_line_count = 0;
  std::vector<HostSummary> hosts;  // sorted by host; kept whatever the log's cap dropped
  bool operator==(const JobInfo&) const = default;
};

struct JobDetail {
  JobInfo job;
  std::uint64_t first_line = 0;
  std::vector<std::string> log_lines;
  bool operator==(const JobDetail&) const = default;
};

struct JobLogChunk {
  std::uint64_t first_line = 0;
  std::vector<std::string> lines;
  bool ended = false;
  JobStatus status = JobStatus::kUnspecified;
  std::string error;
  bool operator==(const JobLogChunk&) const = default;
};

struct JobList {
  std::vector<JobInfo> jobs;
  bool operator==(const JobList&) const = default;
};

struct JobCancelled {
  std::string job_id;
  bool operator==(const JobCancelled&) const = default;
};

struct OriginCount {
  std::string origin;
  std::uint64_t count = 0;
  bool operator==(const OriginCount&) const = default;
};

struct Counter {
  std::string name;
  std::uint64_t value = 0;
  bool operator==(const Counter&) const = default;
};

struct MemberInfo {
  std::string name;
  std::string rpc_endpoint;
  std::string gossip_endpoint;
  bool alive = false;
  bool self = false;
  bool token_holder = false;
  std::int64_t lag_deltas = -1;
  std::int64_t last_seen_ms = 0;
  std::vector<OriginCount> lag_by_origin{};
  bool operator==(const MemberInfo&) const = default;
};

struct MemberList {
  std::vector<MemberInfo> members;
  bool operator==(const MemberList&) const = default;
};

struct TokenInfo {
  std::string holder;
  std::uint64_t epoch = 0;
  std::uint64_t highest_epoch = 0;
  std::uint32_t visible_managers = 0;
  std::uint32_t expected_managers = 0;
  std::uint32_t quorum = 0;
  bool has_quorum = false;
  bool self_holds = false;
  std::string reason;
  bool operator==(const TokenInfo&) const = default;
};

struct PeerStatus {
  std::string endpoint;
  std::string name;
  bool connected = false;
  std::int64_t last_contact_ms = 0;
  bool operator==(const PeerStatus&) const = default;
};

struct StatusInfo {
  std::string name;
  std::string version;
  std::uint32_t protocol_version = 0;
  std::int64_t started_ms = 0;
  std::string rpc_endpoint;
  std::string gossip_endpoint;
  std::uint64_t state_entries = 0;
  std::uint64_t state_bytes = 0;
  std::uint64_t tombstones = 0;
  std::vector<PeerStatus> peers;
  std::string data_dir;
  bool store_ok = false;
  std::string store_error;
  std::int64_t last_anti_entropy_ms = 0;
  std::vector<OriginCount> applied{};
  std::uint64_t state_digest = 0;
  std::vector<Counter> counters{};
  bool operator==(const StatusInfo&) const = default;
};

// One chunk of a state snapshot (stateDump). `data` holds store::EncodeState bytes; net does
// not decode them (it does not link the store).
struct StateChunk {
  std::uint64_t snapshot_id = 0;
  std::uint64_t total_bytes = 0;
  std::uint64_t offset = 0;
  std::string data;
  bool operator==(const StateChunk&) const = default;
};

// ---- requests -------------------------------------------------------------------------------

struct NodeGetRequest {
  std::string name;
  bool operator==(const NodeGetRequest&) const = default;
};
struct NodesGetRequest {
  bool operator==(const NodesGetRequest&) const = default;
};
struct CommissionRequest {
  std::vector<std::string> names;
  std::string group;
  std::string extra_vars;  // JSON object text; empty = {}
  bool operator==(const CommissionRequest&) const = default;
};
struct DecommissionRequest {
  std::vector<std::string> names;
  std::string extra_vars;
  bool operator==(const DecommissionRequest&) const = default;
};
struct UpdateRequest {
  std::vector<std::string> names;
  std::string group;  // empty = keep
  std::string extra_vars;
  std::uint32_t serial = 0;  // rolling: this many nodes at a time; 0 = all at once
  bool operator==(const UpdateRequest&) const = default;
};
struct UpgradeRequest {
  std::vector<std::string> names;
  std::string extra_vars;
  std::uint32_t serial = 0;  // rolling: this many nodes at a time; 0 = all at once
  bool operator==(const UpgradeRequest&) const = default;
};
struct DiscoverRequest {
  std::vector<std::string> addrs;
  std::string extra_vars;
  bool operator==(const DiscoverRequest&) const = default;
};
struct GlobalGetRequest {
  bool operator==(const GlobalGetRequest&) const = default;
};
struct GlobalSetRequest {
  std::string extra_vars;
  bool operator==(const GlobalSetRequest&) const = default;
};
struct JobGetRequest {
  std::string label;  // "active", "last" or a job id
  bool operator==(const JobGetRequest&) const = default;
};
struct JobLogFollowRequest {
  std::string job_id;
  std::uint64_t from_line = 0;
  std::uint32_t wait_ms = 0;
  bool operator==(const JobLogFollowRequest&) const = default;
};
struct JobsListRequest {
  bool operator==(const JobsListRequest&) const = default;
};
struct JobCancelRequest {
  std::string job_id;  // empty = the active job
  bool operator==(const JobCancelRequest&) const = default;
};
struct ConfigGetRequest {
  bool operator==(const ConfigGetRequest&) const = default;
};
struct ConfigSetRequest {
  std::string config;  // JSON object text
  bool operator==(const ConfigSetRequest&) const = default;
};
struct MembersRequest {
  bool operator==(const MembersRequest&) const = default;
};
struct TokenRequest {
  bool operator==(const TokenRequest&) const = default;
};
struct StatusRequest {
  bool operator==(const StatusRequest&) const = default;
};
struct AuditListRequest {
  std::uint32_t limit = 0;
  bool operator==(const AuditListRequest&) const = default;
};

struct StateDumpRequest {
  std::uint64_t snapshot_id = 0;  // 0 = a new snapshot
  std::uint64_t offset = 0;
  std::uint32_t max_bytes = 0;  // 0 = the daemon's default
  bool operator==(const StateDumpRequest&) const = default;
};

// One alternative per operation, in the schema's union order.
using RpcRequest =
    std::variant<NodeGetRequest, NodesGetRequest, CommissionRequest, DecommissionRequest,
                 UpdateRequest, DiscoverRequest, GlobalGetRequest, GlobalSetRequest, JobGetRequest,
                 JobLogFollowRequest, JobsListRequest, JobCancelRequest, ConfigGetRequest,
                 ConfigSetRequest, MembersRequest, TokenRequest, StatusRequest, StateDumpRequest,
                 AuditListRequest, UpgradeRequest>;

// The operation's schema name: "nodeGet", "commission", ...
std::string_view OperationName(const RpcRequest& request);

// True for operations with side effects (they run under the token holder): commission,
// decommission, update, upgrade, discover, globalSet, jobCancel, configSet.
bool IsMutation(const RpcRequest& request);

// ---- replies --------------------------------------------------------------------------------

// monostate = no payload (errors and acknowledgements).
using RpcPayload =
    std::variant<std::monostate, NodeInfo, NodeList, JobAccepted, JsonText, JobDetail, JobLogChunk,
                 JobList, JobCancelled, MemberList, TokenInfo, StatusInfo, StateChunk>;

struct RpcReply {
  Code code = Code::kOk;
  std::string message;   // error text, verbatim from the daemon
  std::string instance;  // the instance that answered (filled in by the server if empty)
  RpcPayload payload;
  bool operator==(const RpcReply&) const = default;

  static RpcReply Ok(RpcPayload payload = std::monostate{}) {
    RpcReply r;
    r.payload = std::move(payload);
    return r;
  }
  static RpcReply Error(Code code, std::string message) {
    RpcReply r;
    r.code = code;
    r.message = std::move(message);
    return r;
  }
};

}  // namespace clustermgr::net
