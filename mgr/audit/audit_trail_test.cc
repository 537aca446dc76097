#include "mgr/audit/audit_trail.h"

#include <gtest/gtest.h>

#include <string>

namespace clustermgr::mgr {
namespace {

using nlohmann::json;

// Writes audit records of `instance` into `state` the way the daemon does: one delta each.
void Append(crdt::ClusterState* state, const std::string& instance, uint64_t ms, uint64_t* seq) {
  AuditRecord r;
  r.ms = ms;
  r.instance = instance;
  r.caller = net::Caller{"KEY", "ops", net::Role::kOperator};
  r.operation = "globalSet";
  r.request = SummarizeRequest(net::GlobalSetRequest{R"({"a":1})"});
  r.outcome = "ok";
  ++*seq;
  crdt::DeltaBuilder b(*state,
                       crdt::WriteTag{{1, crdt::HlcTimestamp::Make(ms, 0), instance}, *seq});
  AddAuditRecord(*state, r, &b);
  state->Join(std::move(b).Take());
}

TEST(AuditTrail, RecordsAreListedNewestLastAcrossInstances) {
  crdt::ClusterState state;
  uint64_t seq_a = 0, seq_b = 0;
  Append(&state, "m1", 100, &seq_a);
  Append(&state, "m2", 150, &seq_b);
  Append(&state, "m1", 200, &seq_a);
  json all = ListAudit(state, 10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["instance"], "m1");
  EXPECT_EQ(all[1]["instance"], "m2");
  EXPECT_EQ(all[2]["ms"], 200);
  EXPECT_EQ(all[2]["name"], "ops");
  EXPECT_EQ(all[2]["role"], "operator");
  EXPECT_EQ(all[2]["request"], R"(extra_vars={"a":1})");
  EXPECT_EQ(ListAudit(state, 1).size(), 1u);
  EXPECT_EQ(ListAudit(state, 1)[0]["ms"], 200);
  // Audit entries are no job's log.
  EXPECT_TRUE(state.jobs.entries().empty());
  EXPECT_TRUE(state.JobLog("m1-1").empty());
}

TEST(AuditTrail, EachInstanceKeepsItsNewestRecords) {
  crdt::ClusterState state;
  uint64_t seq = 0;
  for (uint64_t i = 0; i < kAuditKeptPerInstance + 5; ++i) Append(&state, "m1", 1000 + i, &seq);
  json all = ListAudit(state, kAuditKeptPerInstance * 2);
  ASSERT_EQ(all.size(), kAuditKeptPerInstance);
  EXPECT_EQ(all[0]["ms"], 1005);  // the five oldest were tombstoned
  EXPECT_EQ(state.job_logs.tombstones(), 5u);
}

TEST(AuditTrail, SummariesAreBounded) {
  const std::string big(4000, 'x');
  const std::string s = SummarizeRequest(net::ConfigSetRequest{big});
  EXPECT_LE(s.size(), kAuditMaxRequestText + 32);
  EXPECT_EQ(SummarizeRequest(net::CommissionRequest{{"a", "b"}, "g", ""}), "names=[a,b] group=g");
  EXPECT_EQ(Outcome(net::RpcReply::Error(Code::kPermissionDenied, "no")), "permission denied: no");
}

}  // namespace
}  // namespace clustermgr::mgr
