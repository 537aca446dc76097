#include "net/rpc_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <exception>
#include <type_traits>

#include "net/rpc.capnp.h"

namespace clustermgr::net {
namespace {

static_assert(rpcwire::PROTOCOL_VERSION == kRpcProtocolVersion,
              "kRpcProtocolVersion must follow net/rpc.capnp");

namespace w = rpcwire;

// ---- small converters -----------------------------------------------------------------------

std::string Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

capnp::Text::Reader Txt(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

std::vector<std::string> Strs(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto t : list) out.push_back(Str(t));
  return out;
}

void SetStrs(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& v) {
  for (unsigned i = 0; i < v.size(); ++i) list.set(i, Txt(v[i]));
}

// Unknown enumerants (a newer peer) read as the "unspecified" value.
NodeStatus FromWire(w::NodeStatus s) {
  switch (s) {
    case w::NodeStatus::UNSPECIFIED:
      return NodeStatus::kUnspecified;
    case w::NodeStatus::UNALLOCATED:
      return NodeStatus::kUnallocated;
    case w::NodeStatus::PROVISIONING:
      return NodeStatus::kProvisioning;
    case w::NodeStatus::ALLOCATED:
      return NodeStatus::kAllocated;
    case w::NodeStatus::CANCELLED:
      return NodeStatus::kCancelled;
    case w::NodeStatus::DECOMMISSIONED:
      return NodeStatus::kDecommissioned;
    case w::NodeStatus::MAINTENANCE:
      return NodeStatus::kMaintenance;
  }
  return NodeStatus::kUnspecified;
}
w::NodeStatus ToWire(NodeStatus s) {
  switch (s) {
    case NodeStatus::kUnspecified:
      return w::NodeStatus::UNSPECIFIED;
    case NodeStatus::kUnallocated:
      return w::NodeStatus::UNALLOCATED;
    case NodeStatus::kProvisioning:
      return w::NodeStatus::PROVISIONING;
    case NodeStatus::kAllocated:
      return w::NodeStatus::ALLOCATED;
    case NodeStatus::kCancelled:
      return w::NodeStatus::CANCELLED;
    case NodeStatus::kDecommissioned:
      return w::NodeStatus::DECOMMISSIONED;
    case NodeStatus::kMaintenance:
      return w::NodeStatus::MAINTENANCE;
  }
  return w::NodeStatus::UNSPECIFIED;
}

NodeState FromWire(w::NodeState s) {
  switch (s) {
    case w::NodeState::UNKNOWN:
      return NodeState::kUnknown;
    case w::NodeState::DISCOVERED:
      return NodeState::kDiscovered;
    case w::NodeState::DISAPPEARED:
      return NodeState::kDisappeared;
  }
  return NodeState::kUnknown;
}
w::NodeState ToWire(NodeState s) {
  switch (s) {
    case NodeState::kUnknown:
      return w::NodeState::UNKNOWN;
    case NodeState::kDiscovered:
      return w::NodeState::DISCOVERED;
    case NodeState::kDisappeared:
      return w::NodeState::DISAPPEARED;
  }
  return w::NodeState::UNKNOWN;
}

JobStatus FromWire(w::JobStatus s) {
  switch (s) {
    case w::JobStatus::UNSPECIFIED:
      return JobStatus::kUnspecified;
    case w::JobStatus::QUEUED:
      return JobStatus::kQueued;
    case w::JobStatus::RUNNING:
      return JobStatus::kRunning;
    case w::JobStatus::COMPLETE:
      return JobStatus::kComplete;
    case w::JobStatus::ERRORED:
      return JobStatus::kErrored;
    case w::JobStatus::CANCELLED:
      return JobStatus::kCancelled;
    case w::JobStatus::INTERRUPTED:
      return JobStatus::kInterrupted;
    case w::JobStatus::FENCED:
      return JobStatus::kFenced;
  }
  return JobStatus::kUnspecified;
}
w::JobStatus ToWire(JobStatus s) {
  switch (s) {
    case JobStatus::kUnspecified:
      return w::JobStatus::UNSPECIFIED;
    case JobStatus::kQueued:
      return w::JobStatus::QUEUED;
    case JobStatus::kRunning:
      return w::JobStatus::RUNNING;
    case JobStatus::kComplete:
      return w::JobStatus::COMPLETE;
    case JobStatus::kErrored:
      return w::JobStatus::ERRORED;
    case JobStatus::kCancelled:
      return w::JobStatus::CANCELLED;
    case JobStatus::kInterrupted:
      return w::JobStatus::INTERRUPTED;
    case JobStatus::kFenced:
      return w::JobStatus::FENCED;
  }
  return w::JobStatus::UNSPECIFIED;
}

// Returns false for an enumerant this build does not know.
bool FromWire(w::ErrorCode c, RpcCode* out) {
  switch (c) {
    case w::ErrorCode::OK:
      *out = RpcCode::kOk;
      return true;
    case w::ErrorCode::INVALID_ARGUMENT:
      *out = RpcCode::kInvalidArgument;
      return true;
    case w::ErrorCode::NOT_FOUND:
      *out = RpcCode::kNotFound;
      return true;
    case w::ErrorCode::FAILED_PRECONDITION:
      *out = RpcCode::kFailedPrecondition;
      return true;
    case w::ErrorCode::UNAVAILABLE:
      *out = RpcCode::kUnavailable;
      return true;
    case w::ErrorCode::INTERNAL:
      *out = RpcCode::kInternal;
      return true;
    case w::ErrorCode::UNIMPLEMENTED:
      *out = RpcCode::kUnimplemented;
      return true;
    case w::ErrorCode::OUTCOME_UNKNOWN:
      *out = RpcCode::kOutcomeUnknown;
      return true;
    case w::ErrorCode::PERMISSION_DENIED:
      *out = RpcCode::kPermissionDenied;
      return true;
  }
  *out = RpcCode::kInternal;
  return false;
}
w::ErrorCode ToWire(RpcCode c) {
  switch (c) {
    case RpcCode::kOk:
      return w::ErrorCode::OK;
    case RpcCode::kInvalidArgument:
      return w::ErrorCode::INVALID_ARGUMENT;
    case RpcCode::kNotFound:
      return w::ErrorCode::NOT_FOUND;
    case RpcCode::kFailedPrecondition:
      return w::ErrorCode::FAILED_PRECONDITION;
    case RpcCode::kUnavailable:
      return w::ErrorCode::UNAVAILABLE;
    case RpcCode::kInternal:
      return w::ErrorCode::INTERNAL;
    case RpcCode::kUnimplemented:
      return w::ErrorCode::UNIMPLEMENTED;
    case RpcCode::kOutcomeUnknown:
      return w::ErrorCode::OUTCOME_UNKNOWN;
    case RpcCode::kPermissionDenied:
      return w::ErrorCode::PERMISSION_DENIED;
  }
  return w::ErrorCode::INTERNAL;
}

// ---- payload structs ------------------------------------------------------------------------

void Fill(w::NodeInfo::Builder b, const NodeInfo& n) {
  b.setName(Txt(n.name));
  b.setAddr(Txt(n.addr));
  b.setStatus(ToWire(n.status));
  b.setState(ToWire(n.state));
  b.setPrevStatus(ToWire(n.prev_status));
  b.setPrevState(ToWire(n.prev_state));
  SetStrs(b.initHostGroups(n.host_groups.size()), n.host_groups);
  auto mon = b.initMonitoring(n.monitoring.size());
  for (unsigned i = 0; i < n.monitoring.size(); ++i) {
    mon[i].setKey(Txt(n.monitoring[i].first));
    mon[i].setValue(Txt(n.monitoring[i].second));
  }
  b.setExtraVars(Txt(n.extra_vars));
}
NodeInfo Read(w::NodeInfo::Reader r) {
  NodeInfo n;
  n.name = Str(r.getName());
  n.addr = Str(r.getAddr());
  n.status = FromWire(r.getStatus());
  n.state = FromWire(r.getState());
  n.prev_status = FromWire(r.getPrevStatus());
  n.prev_state = FromWire(r.getPrevState());
  n.host_groups = Strs(r.getHostGroups());
  auto mon = r.getMonitoring();
  n.monitoring.reserve(mon.size());
  for (auto kv : mon) n.monitoring.emplace_back(Str(kv.getKey()), Str(kv.getValue()));
  n.extra_vars = Str(r.getExtraVars());
  return n;
}

void Fill(w::JobInfo::Builder b, const JobInfo& j) {
  b.setId(Txt(j.id));
  b.setDesc(Txt(j.desc));
  SetStrs(b.initNodes(j.nodes.size()), j.nodes);
  b.setStatus(ToWire(j.status));
  b.setError(Txt(j.error));
  b.setEpoch(j.epoch);
  b.setOwner(Txt(j.owner));
  b.setCreatedMs(j.created_ms);
  b.setStartedMs(j.started_ms);
  b.setEndedMs(j.ended_ms);
  b.setLogLineCount(j.log_line_count);
  auto hosts = b.initHosts(static_cast<unsigned>(j.hosts.size()));
  for (unsigned i = 0; i < j.hosts.size(); ++i) {
    const HostSummary& h = j.hosts[i];
    auto hb = hosts[i];
    hb.setHost(Txt(h.host));
    hb.setOk(h.ok);
    hb.setChanged(h.changed);
    hb.setUnreachable(h.unreachable);
    hb.setFailed(h.failed);
    hb.setSkipped(h.skipped);
  }
}
JobInfo Read(w::JobInfo::Reader r) {
  JobInfo j;
  j.id = Str(r.getId());
  j.desc = Str(r.getDesc());
  j.nodes = Strs(r.getNodes());
  j.status = FromWire(r.getStatus());
  j.error = Str(r.getError());
  j.epoch = r.getEpoch();
  j.owner = Str(r.getOwner());
  j.created_ms = r.getCreatedMs();
  j.started_ms = r.getStartedMs();
  j.ended_ms = r.getEndedMs();
  j.log_line_count = r.getLogLineCount();
  for (auto h : r.getHosts()) {
    j.hosts.push_back({Str(h.getHost()), h.getOk(), h.getChanged(), h.getUnreachable(),
                       h.getFailed(), h.getSkipped()});
  }
  return j;
}

void Fill(capnp::List<w::OriginCount>::Builder list, const std::vector<OriginCount>& v) {
  for (unsigned i = 0; i < v.size(); ++i) {
    list[i].setOrigin(Txt(v[i].origin));
    list[i].setCount(v[i].count);
  }
}
std::vector<OriginCount> Read(capnp::List<w::OriginCount>::Reader list) {
  std::vector<OriginCount> out;
  out.reserve(list.size());
  for (auto e : list) out.push_back(OriginCount{Str(e.getOrigin()), e.getCount()});
  return out;
}

void Fill(w::MemberInfo::Builder b, const MemberInfo& m) {
  b.setName(Txt(m.name));
  b.setRpcEndpoint(Txt(m.rpc_endpoint));
  b.setGossipEndpoint(Txt(m.gossip_endpoint));
  b.setAlive(m.alive);
  b.setSelf(m.self);
  b.setTokenHolder(m.token_holder);
  b.setLagDeltas(m.lag_deltas);
  b.setLastSeenMs(m.last_seen_ms);
  Fill(b.initLagByOrigin(static_cast<unsigned>(m.lag_by_origin.size())), m.lag_by_origin);
}
MemberInfo Read(w::MemberInfo::Reader r) {
  MemberInfo m;
  m.name = Str(r.getName());
  m.rpc_endpoint = Str(r.getRpcEndpoint());
  m.gossip_endpoint = Str(r.getGossipEndpoint());
  m.alive = r.getAlive();
  m.self = r.getSelf();
  m.token_holder = r.getTokenHolder();
  m.lag_deltas = r.getLagDeltas();
  m.last_seen_ms = r.getLastSeenMs();
  m.lag_by_origin = Read(r.getLagByOrigin());
  return m;
}

void Fill(w::TokenInfo::Builder b, const TokenInfo& t) {
  b.setHolder(Txt(t.holder));
  b.setEpoch(t.epoch);
  b.setHighestEpoch(t.highest_epoch);
  b.setVisibleManagers(t.visible_managers);
  b.setExpectedManagers(t.expected_managers);
  b.setQuorum(t.quorum);
  b.setHasQuorum(t.has_quorum);
  b.setSelfHolds(t.self_holds);
  b.setReason(Txt(t.reason));
}
TokenInfo Read(w::TokenInfo::Reader r) {
  TokenInfo t;
  t.holder = Str(r.getHolder());
  t.epoch = r.getEpoch();
  t.highest_epoch = r.getHighestEpoch();
  t.visible_managers = r.getVisibleManagers();
  t.expected_managers = r.getExpectedManagers();
  t.quorum = r.getQuorum();
  t.has_quorum = r.getHasQuorum();
  t.self_holds = r.getSelfHolds();
  t.reason = Str(r.getReason());
  return t;
}

void Fill(w::StatusInfo::Builder b, const StatusInfo& s) {
  b.setName(Txt(s.name));
  b.setVersion(Txt(s.version));
  b.setProtocolVersion(s.protocol_version);
  b.setStartedMs(s.started_ms);
  b.setRpcEndpoint(Txt(s.rpc_endpoint));
  b.setGossipEndpoint(Txt(s.gossip_endpoint));
  b.setStateEntries(s.state_entries);
  b.setStateBytes(s.state_bytes);
  b.setTombstones(s.tombstones);
  auto peers = b.initPeers(s.peers.size());
  for (unsigned i = 0; i < s.peers.size(); ++i) {
    peers[i].setEndpoint(Txt(s.peers[i].endpoint));
    peers[i].setName(Txt(s.peers[i].name));
    peers[i].setConnected(s.peers[i].connected);
    peers[i].setLastContactMs(s.peers[i].last_contact_ms);
  }
  b.setDataDir(Txt(s.data_dir));
  b.setStoreOk(s.store_ok);
  b.setStoreError(Txt(s.store_error));
  b.setLastAntiEntropyMs(s.last_anti_entropy_ms);
  Fill(b.initApplied(static_cast<unsigned>(s.applied.size())), s.applied);
  b.setStateDigest(s.state_digest);
  auto counters = b.initCounters(static_cast<unsigned>(s.counters.size()));
  for (unsigned i = 0; i < s.counters.size(); ++i) {
    counters[i].setName(Txt(s.counters[i].name));
    counters[i].setValue(s.counters[i].value);
  }
}
StatusInfo Read(w::StatusInfo::Reader r) {
  StatusInfo s;
  s.name = Str(r.getName());
  s.version = Str(r.getVersion());
  s.protocol_version = r.getProtocolVersion();
  s.started_ms = r.getStartedMs();
  s.rpc_endpoint = Str(r.getRpcEndpoint());
  s.gossip_endpoint = Str(r.getGossipEndpoint());
  s.state_entries = r.getStateEntries();
  s.state_bytes = r.getStateBytes();
  s.tombstones = r.getTombstones();
  for (auto p : r.getPeers()) {
    s.peers.push_back(
        PeerStatus{Str(p.getEndpoint()), Str(p.getName()), p.getConnected(), p.getLastContactMs()});
  }
  s.data_dir = Str(r.getDataDir());
  s.store_ok = r.getStoreOk();
  s.store_error = Str(r.getStoreError());
  s.last_anti_entropy_ms = r.getLastAntiEntropyMs();
  s.applied = Read(r.getApplied());
  s.state_digest = r.getStateDigest();
  for (auto c : r.getCounters()) s.counters.push_back(Counter{Str(c.getName()), c.getValue()});
  return s;
}

// ---- framing --------------------------------------------------------------------------------

std::string ToBytes(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const char> chars = words.asChars();
  return std::string(chars.begin(), chars.size());
}

// Copies `bytes` into word-aligned memory owned by the caller's array. Fails (returns an empty
// array) when the length is not a whole number of words or is zero.
kj::Array<capnp::word> AlignedCopy(std::string_view bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) return nullptr;
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

capnp::ReaderOptions Options(const DecodeLimits& limits) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_limit_words;
  options.nestingLimit = limits.nesting_limit;
  return options;
}

std::string Describe(const kj::Exception& e) { return std::string(e.getDescription().cStr()); }

// Reads the union of a Request. Sets *unknown for a member this build does not know.
RpcRequest ReadOperation(w::Request::Reader r, bool* unknown) {
  *unknown = false;
  switch (r.which()) {
    case w::Request::NODE_GET:
      return NodeGetRequest{Str(r.getNodeGet().getName())};
    case w::Request::NODES_GET:
      return NodesGetRequest{};
    case w::Request::COMMISSION: {
      auto c = r.getCommission();
      return CommissionRequest{Strs(c.getNames()), Str(c.getGroup()), Str(c.getExtraVars())};
    }
    case w::Request::DECOMMISSION: {
      auto c = r.getDecommission();
      return DecommissionRequest{Strs(c.getNames()), Str(c.getExtraVars())};
    }
    case w::Request::UPDATE: {
      auto c = r.getUpdate();
      return UpdateRequest{Strs(c.getNames()), Str(c.getGroup()), Str(c.getExtraVars()),
                           c.getSerial()};
    }
    case w::Request::DISCOVER: {
      auto c = r.getDiscover();
      return DiscoverRequest{Strs(c.getAddrs()), Str(c.getExtraVars())};
    }
    case w::Request::GLOBAL_GET:
      return GlobalGetRequest{};
    case w::Request::GLOBAL_SET:
      return GlobalSetRequest{Str(r.getGlobalSet().getExtraVars())};
    case w::Request::JOB_GET:
      return JobGetRequest{Str(r.getJobGet().getLabel())};
    case w::Request::JOB_LOG_FOLLOW: {
      auto c = r.getJobLogFollow();
      return JobLogFollowRequest{Str(c.getJobId()), c.getFromLine(), c.getWaitMs()};
    }
    case w::Request::JOBS_LIST:
      return JobsListRequest{};
    case w::Request::JOB_CANCEL:
      return JobCancelRequest{Str(r.getJobCancel().getJobId())};
    case w::Request::CONFIG_GET:
      return ConfigGetRequest{};
    case w::Request::CONFIG_SET:
      return ConfigSetRequest{Str(r.getConfigSet().getConfig())};
    case w::Request::MEMBERS:
      return MembersRequest{};
    case w::Request::TOKEN:
      return TokenRequest{};
    case w::Request::STATUS:
      return StatusRequest{};
    case w::Request::STATE_DUMP: {
      auto c = r.getStateDump();
      return StateDumpRequest{c.getSnapshotId(), c.getOffset(), c.getMaxBytes()};
    }
    case w::Request::AUDIT_LIST:
      return AuditListRequest{r.getAuditList().getLimit()};
    case w::Request::UPGRADE: {
      auto c = r.getUpgrade();
      return UpgradeRequest{Strs(c.getNames()), Str(c.getExtraVars()), c.getSerial()};
    }
  }
  *unknown = true;
  return StatusRequest{};
}

void WriteOperation(w::Request::Builder b, const RpcRequest& request) {
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, NodeGetRequest>) {
          b.initNodeGet().setName(Txt(r.name));
        } else if constexpr (std::is_same_v<T, NodesGetRequest>) {
          b.initNodesGet();
        } else if constexpr (std::is_same_v<T, CommissionRequest>) {
          auto c = b.initCommission();
          SetStrs(c.initNames(r.names.size()), r.names);
          c.setGroup(Txt(r.group));
          c.setExtraVars(Txt(r.extra_vars));
        } else if constexpr (std::is_same_v<T, DecommissionRequest>) {
          auto c = b.initDecommission();
          SetStrs(c.initNames(r.names.size()), r.names);
          c.setExtraVars(Txt(r.extra_vars));
        } else if constexpr (std::is_same_v<T, UpdateRequest>) {
          auto c = b.initUpdate();
          SetStrs(c.initNames(r.names.size()), r.names);
          c.setGroup(Txt(r.group));
          c.setExtraVars(Txt(r.extra_vars));
          c.setSerial(r.serial);
        } else if constexpr (std::is_same_v<T, UpgradeRequest>) {
          auto c = b.initUpgrade();
          SetStrs(c.initNames(r.names.size()), r.names);
          c.setExtraVars(Txt(r.extra_vars));
          c.setSerial(r.serial);
        } else if constexpr (std::is_same_v<T, DiscoverRequest>) {
          auto c = b.initDiscover();
          SetStrs(c.initAddrs(r.addrs.size()), r.addrs);
          c.setExtraVars(Txt(r.extra_vars));
        } else if constexpr (std::is_same_v<T, GlobalGetRequest>) {
          b.initGlobalGet();
        } else if constexpr (std::is_same_v<T, GlobalSetRequest>) {
          b.initGlobalSet().setExtraVars(Txt(r.extra_vars));
        } else if constexpr (std::is_same_v<T, JobGetRequest>) {
          b.initJobGet().setLabel(Txt(r.label));
        } else if constexpr (std::is_same_v<T, JobLogFollowRequest>) {
          auto c = b.initJobLogFollow();
          c.setJobId(Txt(r.job_id));
          c.setFromLine(r.from_line);
          c.setWaitMs(r.wait_ms);
        } else if constexpr (std::is_same_v<T, JobsListRequest>) {
          b.initJobsList();
        } else if constexpr (std::is_same_v<T, JobCancelRequest>) {
          b.initJobCancel().setJobId(Txt(r.job_id));
        } else if constexpr (std::is_same_v<T, ConfigGetRequest>) {
          b.initConfigGet();
        } else if constexpr (std::is_same_v<T, ConfigSetRequest>) {
          b.initConfigSet().setConfig(Txt(r.config));
        } else if constexpr (std::is_same_v<T, MembersRequest>) {
          b.initMembers();
        } else if constexpr (std::is_same_v<T, TokenRequest>) {
          b.initToken();
        } else if constexpr (std::is_same_v<T, StatusRequest>) {
          b.initStatus();
        } else if constexpr (std::is_same_v<T, AuditListRequest>) {
          b.initAuditList().setLimit(r.limit);
        } else {
          static_assert(std::is_same_v<T, StateDumpRequest>);
          auto c = b.initStateDump();
          c.setSnapshotId(r.snapshot_id);
          c.setOffset(r.offset);
          c.setMaxBytes(r.max_bytes);
        }
      },
      request);
}

void WritePayload(w::Reply::Result::Builder b, const RpcPayload& payload) {
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          b.setNone();
        } else if constexpr (std::is_same_v<T, NodeInfo>) {
          Fill(b.initNode(), p);
        } else if constexpr (std::is_same_v<T, NodeList>) {
          auto list = b.initNodeList().initNodes(p.nodes.size());
          for (unsigned i = 0; i < p.nodes.size(); ++i) Fill(list[i], p.nodes[i]);
        } else if constexpr (std::is_same_v<T, JobAccepted>) {
          b.initJobAccepted().setJobId(Txt(p.job_id));
        } else if constexpr (std::is_same_v<T, JsonText>) {
          b.initJson().setText(Txt(p.text));
        } else if constexpr (std::is_same_v<T, JobDetail>) {
          auto d = b.initJobDetail();
          Fill(d.initJob(), p.job);
          d.setFirstLine(p.first_line);
          SetStrs(d.initLogLines(p.log_lines.size()), p.log_lines);
        } else if constexpr (std::is_same_v<T, JobLogChunk>) {
          auto c = b.initJobLog();
          c.setFirstLine(p.first_line);
          SetStrs(c.initLines(p.lines.size()), p.lines);
          c.setEnded(p.ended);
          c.setStatus(ToWire(p.status));
          c.setError(Txt(p.error));
        } else if constexpr (std::is_same_v<T, JobList>) {
          auto list = b.initJobList().initJobs(p.jobs.size());
          for (unsigned i = 0; i < p.jobs.size(); ++i) Fill(list[i], p.jobs[i]);
        } else if constexpr (std::is_same_v<T, JobCancelled>) {
          b.initJobCancelled().setJobId(Txt(p.job_id));
        } else if constexpr (std::is_same_v<T, MemberList>) {
          auto list = b.initMemberList().initMembers(p.members.size());
          for (unsigned i = 0; i < p.members.size(); ++i) Fill(list[i], p.members[i]);
        } else if constexpr (std::is_same_v<T, TokenInfo>) {
          Fill(b.initToken(), p);
        } else if constexpr (std::is_same_v<T, StatusInfo>) {
          Fill(b.initStatus(), p);
        } else {
          static_assert(std::is_same_v<T, StateChunk>);
          auto c = b.initStateChunk();
          c.setSnapshotId(p.snapshot_id);
          c.setTotalBytes(p.total_bytes);
          c.setOffset(p.offset);
          c.setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(p.data.data()),
                                        p.data.size()));
        }
      },
      payload);
}

// Reads the result union. Sets *unknown for a member this build does not know.
RpcPayload ReadPayload(w::Reply::Result::Reader r, bool* unknown) {
  *unknown = false;
  switch (r.which()) {
    case w::Reply::Result::NONE:
      return std::monostate{};
    case w::Reply::Result::NODE:
      return Read(r.getNode());
    case w::Reply::Result::NODE_LIST: {
      NodeList out;
      auto nodes = r.getNodeList().getNodes();
      out.nodes.reserve(nodes.size());
      for (auto n : nodes) out.nodes.push_back(Read(n));
      return out;
    }
    case w::Reply::Result::JOB_ACCEPTED:
      return JobAccepted{Str(r.getJobAccepted().getJobId())};
    case w::Reply::Result::JSON:
      return JsonText{Str(r.getJson().getText())};
    case w::Reply::Result::JOB_DETAIL: {
      auto d = r.getJobDetail();
      return JobDetail{Read(d.getJob()), d.getFirstLine(), Strs(d.getLogLines())};
    }
    case w::Reply::Result::JOB_LOG: {
      auto c = r.getJobLog();
      return JobLogChunk{c.getFirstLine(), Strs(c.getLines()), c.getEnded(),
                         FromWire(c.getStatus()), Str(c.getError())};
    }
    case w::Reply::Result::JOB_LIST: {
      JobList out;
      auto jobs = r.getJobList().getJobs();
      out.jobs.reserve(jobs.size());
      for (auto j : jobs) out.jobs.push_back(Read(j));
      return out;
    }
    case w::Reply::Result::JOB_CANCELLED:
      return JobCancelled{Str(r.getJobCancelled().getJobId())};
    case w::Reply::Result::MEMBER_LIST: {
      MemberList out;
      auto members = r.getMemberList().getMembers();
      out.members.reserve(members.size());
      for (auto m : members) out.members.push_back(Read(m));
      return out;
    }
    case w::Reply::Result::TOKEN:
      return Read(r.getToken());
    case w::Reply::Result::STATUS:
      return Read(r.getStatus());
    case w::Reply::Result::STATE_CHUNK: {
      auto c = r.getStateChunk();
      auto data = c.getData();
      return StateChunk{c.getSnapshotId(), c.getTotalBytes(), c.getOffset(),
                        std::string(reinterpret_cast<const char*>(data.begin()), data.size())};
    }
  }
  *unknown = true;
  return std::monostate{};
}

}  // namespace

std::string EncodeRequest(std::uint64_t request_id, const RpcRequest& request,
                          std::string_view forwarded_by, const ForwardedCaller& caller) {
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<w::Request>();
  b.setProtocolVersion(kRpcProtocolVersion);
  b.setRequestId(request_id);
  b.setForwardedBy(capnp::Text::Reader(forwarded_by.data(), forwarded_by.size()));
  if (!forwarded_by.empty()) {
    b.setCallerKey(Txt(caller.key));
    b.setCallerName(Txt(caller.name));
    b.setCallerRole(Txt(caller.role));
  }
  WriteOperation(b, request);
  return ToBytes(message);
}

std::string EncodeReply(std::uint64_t request_id, const RpcReply& reply) {
  capnp::MallocMessageBuilder message;
  auto b = message.initRoot<w::Reply>();
  b.setProtocolVersion(kRpcProtocolVersion);
  b.setRequestId(request_id);
  b.setError(ToWire(reply.code));
  b.setMessage(Txt(reply.message));
  b.setInstance(Txt(reply.instance));
  WritePayload(b.initResult(), reply.payload);
  return ToBytes(message);
}

DecodedRequest DecodeRequest(std::string_view bytes, const DecodeLimits& limits) {
  DecodedRequest out;
  kj::Array<capnp::word> words = AlignedCopy(bytes);
  if (words == nullptr) {
    out.request =
        RpcError{RpcCode::kInvalidArgument, "malformed request: " + std::to_string(bytes.size()) +
                                                " bytes is not a whole number of 8-byte words"};
    return out;
  }
  try {
    capnp::FlatArrayMessageReader message(words, Options(limits));
    auto r = message.getRoot<w::Request>();
    out.request_id = r.getRequestId();
    out.protocol_version = r.getProtocolVersion();
    if (out.protocol_version == 0) {
      out.request = RpcError{RpcCode::kInvalidArgument, "malformed request: no protocol version"};
      return out;
    }
    out.forwarded_by = Str(r.getForwardedBy());
    out.caller.key = Str(r.getCallerKey());
    out.caller.name = Str(r.getCallerName());
    out.caller.role = Str(r.getCallerRole());
    bool unknown = false;
    RpcRequest op = ReadOperation(r, &unknown);
    if (unknown) {
      out.request = RpcError{RpcCode::kUnimplemented,
                             "operation #" + std::to_string(static_cast<unsigned>(r.which())) +
                                 " is not implemented by this server (client protocol version " +
                                 std::to_string(out.protocol_version) + ", server " +
                                 std::to_string(kRpcProtocolVersion) + ")"};
      return out;
    }
    out.request = std::move(op);
  } catch (const kj::Exception& e) {
    out.request = RpcError{RpcCode::kInvalidArgument, "malformed request: " + Describe(e)};
  } catch (const std::exception& e) {
    out.request =
        RpcError{RpcCode::kInvalidArgument, std::string("malformed request: ") + e.what()};
  }
  return out;
}

RpcResult<DecodedReply> DecodeReply(std::string_view bytes, const DecodeLimits& limits) {
  kj::Array<capnp::word> words = AlignedCopy(bytes);
  if (words == nullptr) {
    return RpcError{RpcCode::kInternal, "malformed reply: " + std::to_string(bytes.size()) +
                                            " bytes is not a whole number of 8-byte words"};
  }
  try {
    capnp::FlatArrayMessageReader message(words, Options(limits));
    auto r = message.getRoot<w::Reply>();
    DecodedReply out;
    out.request_id = r.getRequestId();
    out.protocol_version = r.getProtocolVersion();
    if (out.protocol_version == 0) {
      return RpcError{RpcCode::kInternal, "malformed reply: no protocol version"};
    }
    RpcReply& reply = out.reply;
    bool known_code = FromWire(r.getError(), &reply.code);
    reply.message = Str(r.getMessage());
    reply.instance = Str(r.getInstance());
    if (!known_code) {
      reply.message =
          "error #" + std::to_string(static_cast<unsigned>(r.getError())) + ": " + reply.message;
    }
    bool unknown = false;
    reply.payload = ReadPayload(r.getResult(), &unknown);
    if (unknown && reply.code == RpcCode::kOk) {
      reply = RpcReply::Error(RpcCode::kInternal,
                              "reply not understood: result #" +
                                  std::to_string(static_cast<unsigned>(r.getResult().which())) +
                                  " is unknown to this client (server protocol version " +
                                  std::to_string(out.protocol_version) + ", client " +
                                  std::to_string(kRpcProtocolVersion) + ")");
      reply.instance = Str(r.getInstance());
    }
    return out;
  } catch (const kj::Exception& e) {
    return RpcError{RpcCode::kInternal, "malformed reply: " + Describe(e)};
  } catch (const std::exception& e) {
    return RpcError{RpcCode::kInternal, std::string("malformed reply: ") + e.what()};
  }
}

}  // namespace clustermgr::net
