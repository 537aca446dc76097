# clustermgr RPC: the public wire contract between `clustermgr` (and any other client) and
# `clustermgrd`, and between daemons forwarding side-effecting requests to the token holder.
#
# Transport: ZeroMQ. The client is a DEALER (a REQ socket works too), the daemon a ROUTER.
# A request is two frames: an empty delimiter, then one Request message in Cap'n Proto's
# standard (unpacked) framing. The reply has the same shape and carries the request's id.
#
# EVOLUTION IS APPEND-ONLY. This file is a published contract:
#   * never renumber, remove, rename-with-new-meaning or retype a field, enumerant or union
#     member; only add new ones with the next ordinal;
#   * a new operation = a new member at the END of Request's union, with its own parameter
#     struct (so it can grow later) and, if needed, a new member at the end of Reply's result
#     union;
#   * a daemon that does not know a request's union member answers `unimplemented`; a client
#     that does not know a reply's result member reports an error, never crashes;
#   * unknown enumerants read as their number: readers map them to an "unspecified" value;
#   * protocolVersion is bumped when operations or fields are added, so logs say who is newer.
# Limits every reader applies (see net/rpc_codec.h): message size caps, a traversal limit and a
# nesting limit; a message beyond them is refused with `invalidArgument`.

@0x90970b0314de920b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("clustermgr::net::rpcwire");

const protocolVersion :UInt32 = 4;
# 4: upgrade; update serial; jobInfo hosts (the per-host summary of a job's runs).
# 3: callerKey, callerName, callerRole (the identity of a forwarded request's caller);
#    auditList; the permissionDenied error code.
# 2: stateDump (a read-only snapshot of the whole replicated state, in chunks); members
#    lagByOrigin; status applied, stateDigest and counters.
# The version of this schema the sender was built with. Informative (see above); zero means
# "not a clustermgr peer" and is refused.

# ---------------------------------------------------------------------------------------------
# Requests

struct Request {
  protocolVersion @0 :UInt32;
  requestId @1 :UInt64;
  # Chosen by the client; echoed in the Reply so a late reply to an abandoned request is
  # recognised and dropped. Never zero for a real request (zero = "could not read your id").

  forwardedBy @2 :Text;
  # Empty from clients. A daemon forwarding a request to the token holder sets its own instance
  # name; a daemon never forwards a request that already carries one (no forwarding loops).

  union {
    nodeGet @3 :NodeGetRequest;
    nodesGet @4 :NodesGetRequest;
    commission @5 :CommissionRequest;
    decommission @6 :DecommissionRequest;
    update @7 :UpdateRequest;
    discover @8 :DiscoverRequest;
    globalGet @9 :GlobalGetRequest;
    globalSet @10 :GlobalSetRequest;
    jobGet @11 :JobGetRequest;
    jobLogFollow @12 :JobLogFollowRequest;
    jobsList @13 :JobsListRequest;
    jobCancel @14 :JobCancelRequest;
    configGet @15 :ConfigGetRequest;
    configSet @16 :ConfigSetRequest;
    members @17 :MembersRequest;
    token @18 :TokenRequest;
    status @19 :StatusRequest;
    stateDump @20 :StateDumpRequest;
    auditList @24 :AuditListRequest;
    upgrade @25 :UpgradeRequest;
    # Append new operations here, ordinals 25 and up.
  }

  callerKey @21 :Text;
  callerName @22 :Text;
  callerRole @23 :Text;
  # Set only with forwardedBy: who sent the request to the forwarding instance (its CURVE key,
  # the allow-list's name for it, and its role: "reader", "operator" or "admin"; see
  # net/access.h). The receiving instance believes them only from a peer instance's key.
}

struct NodeGetRequest {
  name @0 :Text;
}

struct NodesGetRequest {}

struct CommissionRequest {
  names @0 :List(Text);
  group @1 :Text;         # host-group, e.g. "service-master"
  extraVars @2 :Text;     # JSON object text; empty = {}
}

struct DecommissionRequest {
  names @0 :List(Text);
  extraVars @1 :Text;
}

struct UpdateRequest {
  names @0 :List(Text);
  group @1 :Text;         # empty = keep each node's host-group
  extraVars @2 :Text;
  serial @3 :UInt32;      # rolling: this many nodes at a time, in order; 0 = all at once
}

struct UpgradeRequest {
  names @0 :List(Text);
  extraVars @1 :Text;
  serial @2 :UInt32;      # rolling: this many nodes at a time, in order; 0 = all at once
}

struct DiscoverRequest {
  addrs @0 :List(Text);   # management addresses
  extraVars @1 :Text;
}

struct GlobalGetRequest {}

struct GlobalSetRequest {
  extraVars @0 :Text;     # JSON object text; replaces the whole global map
}

struct JobGetRequest {
  label @0 :Text;         # "active", "last" or a job id
}

struct JobLogFollowRequest {
  jobId @0 :Text;
  fromLine @1 :UInt64;    # index of the first log line wanted (0 = from the start)
  waitMs @2 :UInt32;
  # Long-poll: when no line at or after fromLine exists yet and the job has not ended, the daemon
  # may hold the reply until one does or waitMs has passed (then it answers with no lines).
}

struct JobsListRequest {}

struct JobCancelRequest {
  jobId @0 :Text;         # empty = the active job
}

struct ConfigGetRequest {}

struct ConfigSetRequest {
  config @0 :Text;        # JSON object text of the runtime configuration
}

struct MembersRequest {}

struct TokenRequest {}

struct StatusRequest {}

struct AuditListRequest {
  limit @0 :UInt32;       # the newest N records; 0 = the daemon's default
}

struct StateDumpRequest {
  # Read-only: a snapshot of the instance's whole replicated state (every CRDT section, with
  # stamps and tombstones), as the store's encoding (store/records.capnp State, written by
  # store::EncodeState), served in chunks so that no reply nears the reply size cap.
  snapshotId @0 :UInt64;
  # 0 = take a new snapshot (and answer with its first chunk); otherwise the snapshotId of an
  # earlier reply, to continue reading that snapshot. The daemon keeps only the latest few
  # snapshots: a continuation of one it dropped is refused with failedPrecondition (start again).
  offset @1 :UInt64;      # first byte wanted
  maxBytes @2 :UInt32;    # chunk size wanted; 0 = the daemon's default; the daemon caps it
}

# ---------------------------------------------------------------------------------------------
# Replies

enum ErrorCode {
  ok @0;
  invalidArgument @1;     # malformed request or argument (bad JSON, bad name, undecodable)
  notFound @2;            # no such node / job
  failedPrecondition @3;  # refused by lifecycle rules, or another job is active
  unavailable @4;         # cannot act now: no token holder, no quorum, shutting down
  internal @5;            # a bug or a store failure on the daemon
  unimplemented @6;       # operation unknown to this daemon (a newer client)
  outcomeUnknown @7;      # a forwarded side effect may or may not have happened
  permissionDenied @8;    # the caller's key is no longer listed, or its role may not do this
}

struct Reply {
  protocolVersion @0 :UInt32;
  requestId @1 :UInt64;   # the Request's id; 0 when the request could not be read
  error @2 :ErrorCode;
  message @3 :Text;       # human-readable error text (the daemon's words); empty when ok
  instance @4 :Text;      # name of the daemon instance that produced the reply

  result :union {
    none @5 :Void;        # errors, and acknowledgements (globalSet, configSet)
    node @6 :NodeInfo;              # nodeGet
    nodeList @7 :NodeList;          # nodesGet
    jobAccepted @8 :JobAccepted;    # commission, decommission, update, discover
    json @9 :JsonText;              # globalGet, configGet
    jobDetail @10 :JobDetail;       # jobGet
    jobLog @11 :JobLogChunk;        # jobLogFollow
    jobList @12 :JobList;           # jobsList
    jobCancelled @13 :JobCancelled; # jobCancel
    memberList @14 :MemberList;     # members
    token @15 :TokenInfo;           # token
    status @16 :StatusInfo;         # status
    stateChunk @17 :StateChunk;     # stateDump
    # Append new result shapes here, ordinals 18 and up.
  }
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

enum NodeStatus {
  unspecified @0;         # no value (e.g. no previous status)
  unallocated @1;
  provisioning @2;
  allocated @3;
  cancelled @4;
  decommissioned @5;
  maintenance @6;
}

enum NodeState {
  unknown @0;
  discovered @1;
  disappeared @2;
}

struct NodeInfo {
  name @0 :Text;
  addr @1 :Text;
  status @2 :NodeStatus;
  state @3 :NodeState;
  prevStatus @4 :NodeStatus;
  prevState @5 :NodeState;
  hostGroups @6 :List(Text);
  monitoring @7 :List(KeyValue);  # Serf tags and monitoring facts, sorted by key
  extraVars @8 :Text;             # remembered per-node extra-vars, JSON object text
}

struct NodeList {
  nodes @0 :List(NodeInfo);
}

struct JobAccepted {
  jobId @0 :Text;
}

struct JsonText {
  text @0 :Text;          # one JSON document
}

enum JobStatus {
  unspecified @0;
  queued @1;
  running @2;
  complete @3;
  errored @4;
  cancelled @5;
  interrupted @6;         # its owner died; a later token holder made its nodes safe
  fenced @7;              # hosts refused it: a newer token holder had touched them
}

struct JobInfo {
  id @0 :Text;
  desc @1 :Text;
  nodes @2 :List(Text);
  status @3 :JobStatus;
  error @4 :Text;
  epoch @5 :UInt64;       # fencing epoch of the token holder that ran it
  owner @6 :Text;         # instance that ran it
  createdMs @7 :Int64;    # Unix time in ms; 0 = not yet
  startedMs @8 :Int64;
  endedMs @9 :Int64;
  logLineCount @10 :UInt64;
  hosts @11 :List(HostSummary);  # per-host results (PLAY RECAP), sorted by host; never capped
}

struct HostSummary {
  host @0 :Text;
  ok @1 :UInt32;
  changed @2 :UInt32;
  unreachable @3 :UInt32;
  failed @4 :UInt32;
  skipped @5 :UInt32;
}

struct JobDetail {
  job @0 :JobInfo;
  firstLine @1 :UInt64;   # index of logLines[0] (> 0 when the daemon capped the log)
  logLines @2 :List(Text);
}

struct JobLogChunk {
  firstLine @0 :UInt64;   # index of lines[0]; > fromLine when lines were dropped by the cap
  lines @1 :List(Text);
  ended @2 :Bool;         # the job has ended and lines reach the end of its log
  status @3 :JobStatus;
  error @4 :Text;
}

struct JobList {
  jobs @0 :List(JobInfo); # oldest first
}

struct JobCancelled {
  jobId @0 :Text;
}

struct MemberInfo {
  name @0 :Text;
  rpcEndpoint @1 :Text;
  gossipEndpoint @2 :Text;
  alive @3 :Bool;
  self @4 :Bool;          # the instance that answered
  tokenHolder @5 :Bool;
  lagDeltas @6 :Int64;    # deltas of this member known but not yet applied here; -1 = unknown
  lastSeenMs @7 :Int64;   # Unix ms of the last message from it; 0 = never
  lagByOrigin @8 :List(OriginCount);
  # Replication lag of this member, per origin: deltas some instance is known (to the answering
  # instance) to have applied that this member had not applied at its last report. Empty when
  # it is up to date, or unknown (no report yet: lagDeltas = -1).
}

struct OriginCount {
  origin @0 :Text;        # a replication origin "<instance>/<incarnation>"
  count @1 :UInt64;
}

struct Counter {
  name @0 :Text;
  value @1 :UInt64;
}

struct MemberList {
  members @0 :List(MemberInfo);
}

struct TokenInfo {
  holder @0 :Text;        # empty = nobody holds the token
  epoch @1 :UInt64;       # the holder's fencing epoch
  highestEpoch @2 :UInt64;
  visibleManagers @3 :UInt32;
  expectedManagers @4 :UInt32;
  quorum @5 :UInt32;
  hasQuorum @6 :Bool;     # as seen by the answering instance
  selfHolds @7 :Bool;
  reason @8 :Text;        # why there is no holder, e.g. "sees 1 of 2 required managers"
}

struct PeerStatus {
  endpoint @0 :Text;
  name @1 :Text;
  connected @2 :Bool;
  lastContactMs @3 :Int64;
}

struct StatusInfo {
  name @0 :Text;
  version @1 :Text;
  protocolVersion @2 :UInt32;
  startedMs @3 :Int64;
  rpcEndpoint @4 :Text;
  gossipEndpoint @5 :Text;
  stateEntries @6 :UInt64;
  stateBytes @7 :UInt64;
  tombstones @8 :UInt64;
  peers @9 :List(PeerStatus);
  dataDir @10 :Text;
  storeOk @11 :Bool;
  storeError @12 :Text;
  lastAntiEntropyMs @13 :Int64;   # Unix ms; 0 = never
  applied @14 :List(OriginCount);
  # The instance's applied version vector: per origin, the seq up to which it has applied every
  # delta. Two instances with equal vectors hold the same state (up to tombstone collection).
  stateDigest @15 :UInt64;
  # FNV-1a 64 of the live state (every live LWW entry with its stamp, every host-group element
  # with its dots, the token epoch; not tombstones): equal digests = equal visible state.
  counters @16 :List(Counter);
  # Replication counters since start (published, applied, duplicates, gaps, snapshots, ...).
}

struct StateChunk {
  snapshotId @0 :UInt64;  # the snapshot these bytes belong to (never 0)
  totalBytes @1 :UInt64;  # size of the whole snapshot encoding
  offset @2 :UInt64;      # position of data in it
  data @3 :Data;          # the bytes [offset, offset + size); the last chunk ends at totalBytes
}
