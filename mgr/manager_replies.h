// How the manager answers over RPC: a Status as an error reply, and the state's records as the
// wire's types. Shared by the manager's source files (manager.cc, manager_queries.cc,
// manager_jobs.cc); not for use elsewhere.
#pragma once

#include <string>

#include "base/status.h"
#include "crdt/cluster_state.h"
#include "net/rpc_types.h"

namespace clustermgr::mgr::reply {

// The reply for a failed call: the status's code and message.
net::RpcReply Error(const Status& status);
// kInvalidArgument with `text`.
net::RpcReply Invalid(std::string text);

net::JobStatus ToNet(crdt::JobStatus s);
net::JobInfo ToJobInfo(const crdt::JobRecord& job);

// A job that has not reached a final status.
bool IsActive(const crdt::JobRecord& job);
// "commission", "decommission", "update", "upgrade" for JobKind 0, 1, 2, 3.
const char* KindName(int kind);

}  // namespace clustermgr::mgr::reply
