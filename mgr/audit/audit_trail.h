// The audit trail: one record per mutation a caller asked for (and per refused request), with
// the caller's key name and role, the request and its outcome. It is part of the replicated
// state, so it survives restarts and reaches every instance, and it is bounded.
//
// Storage: the records of instance I are entries of the job-log section (crdt::ClusterState
// job_logs) under the reserved id "audit:I" (no job id has a ':'), chunk n holding record n as
// one JSON object. The instance that judged the request writes the record: the one that handled
// it, or the one where it was refused. Each instance keeps its newest kKeptPerInstance records;
// writing record n tombstones record n - kKeptPerInstance, and tombstones go the usual way
// (collected once every instance has seen them). No schema changes: old instances replicate
// these entries as job-log chunks of a job they do not know, and never show them.
//
// Record (JSON, as ListAudit gives it): {"ms": wall time, "instance": who wrote it, "key": Z85 or
// "", "name": the allow-list's name or "", "role": "reader"|"operator"|"admin", "operation":
// "globalSet", ..., "request": a summary (arguments, extra-vars text cut at kMaxRequestText
// bytes), "outcome": "ok" or "<code>: <message>", "via": the forwarding instance or ""}.
// Every write carries its record to every peer, so the stored form leaves out what the entry
// already says: "instance" (the log's id), "ms" when it is the entry stamp's time, empty fields,
// and an "ok" outcome. ListAudit fills them in. (Builds before this form listed every field;
// they show a record stored without them with its time as 0.)
//
// Thread-safety: pure functions over values; the caller owns the state (the event loop).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crdt/cluster_state.h"
#include "net/access.h"
#include "net/rpc_types.h"

namespace clustermgr::mgr {

inline constexpr uint64_t kAuditKeptPerInstance = 1000;
inline constexpr size_t kAuditMaxRequestText = 512;
inline constexpr uint32_t kAuditDefaultList = 50;
inline constexpr uint32_t kAuditMaxList = 1000;

struct AuditRecord {
  uint64_t ms = 0;
  std::string instance;
  net::Caller caller;
  std::string operation;
  std::string request;
  std::string outcome;
  std::string via;
};

// "audit:<instance>".
std::string AuditLogId(const std::string& instance);

// The request's arguments as one line: `names=[a,b] group=g extra_vars={...}`; long values cut.
std::string SummarizeRequest(const net::RpcRequest& request);

// "ok" or "<code name>: <message>".
std::string Outcome(const net::RpcReply& reply);

// Adds `record` to `b` as the next record of record.instance, and tombstones the one that falls
// out of the bound. `base` is the state the builder writes over.
void AddAuditRecord(const crdt::ClusterState& base, const AuditRecord& record,
                    crdt::DeltaBuilder* b);

// The newest `limit` records of every instance, oldest first (by ms, then instance and number).
// Records that do not parse are skipped.
nlohmann::json ListAudit(const crdt::ClusterState& state, size_t limit);

}  // namespace clustermgr::mgr
