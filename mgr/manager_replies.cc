#include "mgr/manager_replies.h"

#include <utility>

namespace clustermgr::mgr::reply {
namespace {

using crdt::JobRecord;
using crdt::JobStatus;
using R = net::RpcReply;

}  // namespace

R Error(const Status& status) { return R::Error(status.code(), status.message()); }
R Invalid(std::string text) { return R::Error(Code::kInvalidArgument, std::move(text)); }

net::JobStatus ToNet(JobStatus s) { return static_cast<net::JobStatus>(static_cast<int>(s) + 1); }

net::JobInfo ToJobInfo(const JobRecord& job) {
  net::JobInfo info;
  info.id = job.id;
  info.desc = job.desc;
  info.nodes = job.nodes;
  info.status = ToNet(job.status);
  info.error = job.error;
  info.epoch = job.epoch;
  info.owner = job.owner;
  info.created_ms = static_cast<int64_t>(job.created_ms);
  info.started_ms = static_cast<int64_t>(job.started_ms);
  info.ended_ms = static_cast<int64_t>(job.ended_ms);
  info.log_line_count = job.log_lines;
  for (const crdt::HostSummary& h : job.hosts) {
    info.hosts.push_back({h.host, h.ok, h.changed, h.unreachable, h.failed, h.skipped});
  }
  return info;
}

bool IsActive(const JobRecord& job) { return !crdt::IsFinal(job.status); }

const char* KindName(int kind) {
  static const char* const kNames[] = {"commission", "decommission", "update", "upgrade"};
  return kNames[kind];
}

}  // namespace clustermgr::mgr::reply
