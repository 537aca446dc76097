#include "net/rpc_convert.h"

namespace clustermgr::net::rpc_convert {

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
bool FromWire(w::ErrorCode c, Code* out) {
  switch (c) {
    case w::ErrorCode::OK:
      *out = Code::kOk;
      return true;
    case w::ErrorCode::INVALID_ARGUMENT:
      *out = Code::kInvalidArgument;
      return true;
    case w::ErrorCode::NOT_FOUND:
      *out = Code::kNotFound;
      return true;
    case w::ErrorCode::FAILED_PRECONDITION:
      *out = Code::kFailedPrecondition;
      return true;
    case w::ErrorCode::UNAVAILABLE:
      *out = Code::kUnavailable;
      return true;
    case w::ErrorCode::INTERNAL:
      *out = Code::kInternal;
      return true;
    case w::ErrorCode::UNIMPLEMENTED:
      *out = Code::kUnimplemented;
      return true;
    case w::ErrorCode::OUTCOME_UNKNOWN:
      *out = Code::kOutcomeUnknown;
      return true;
    case w::ErrorCode::PERMISSION_DENIED:
      *out = Code::kPermissionDenied;
      return true;
  }
  *out = Code::kInternal;
  return false;
}
w::ErrorCode ToWire(Code c) {
  switch (c) {
    case Code::kOk:
      return w::ErrorCode::OK;
    case Code::kInvalidArgument:
      return w::ErrorCode::INVALID_ARGUMENT;
    case Code::kNotFound:
      return w::ErrorCode::NOT_FOUND;
    case Code::kFailedPrecondition:
      return w::ErrorCode::FAILED_PRECONDITION;
    case Code::kUnavailable:
      return w::ErrorCode::UNAVAILABLE;
    case Code::kInternal:
      return w::ErrorCode::INTERNAL;
    case Code::kUnimplemented:
      return w::ErrorCode::UNIMPLEMENTED;
    case Code::kOutcomeUnknown:
      return w::ErrorCode::OUTCOME_UNKNOWN;
    case Code::kPermissionDenied:
      return w::ErrorCode::PERMISSION_DENIED;
    case Code::kCorruption:  // the wire has no code for these: to a client they are internal
    case Code::kIoError:
    case Code::kCancelled:
      return w::ErrorCode::INTERNAL;
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

}  // namespace clustermgr::net::rpc_convert
