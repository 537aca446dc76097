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

// The stored record leaves out what its entry says; the listing gives every field all the same,
// and a record in the older, complete form reads the same.
TEST(AuditTrail, TheStoredRecordIsShortAndTheListingComplete) {
  crdt::ClusterState state;
  AuditRecord r;
  r.ms = 5000;
  r.instance = "m1";
  r.caller = net::Caller{"", "", net::Role::kAdmin};
  r.operation = "globalSet";
  r.request = R"(extra_vars={"k":"v"})";
  r.outcome = "ok";
  crdt::DeltaBuilder b(state, crdt::WriteTag{{1, crdt::HlcTimestamp::Make(5000, 3), "m1/x"}, 1});
  AddAuditRecord(state, r, &b);
  state.Join(std::move(b).Take());
  const std::string stored = *state.job_logs.Get({AuditLogId("m1"), 0});
  EXPECT_EQ(json::parse(stored),
            json({{"role", "admin"}, {"operation", "globalSet"}, {"request", r.request}}))
      << stored;

  crdt::DeltaBuilder old(state, crdt::WriteTag{{1, crdt::HlcTimestamp::Make(6000, 0), "m1/x"}, 2});
  const json complete = {{"ms", 4000},     {"instance", "m1"},           {"key", "K"},
                         {"name", "ops"},  {"role", "operator"},         {"operation", "update"},
                         {"request", "n"}, {"outcome", "internal: boom"}, {"via", "m2"}};
  old.PutJobLogChunk(AuditLogId("m1"), 1, complete.dump());
  state.Join(std::move(old).Take());

  json all = ListAudit(state, 10);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], complete);  // ms 4000 sorts first
  EXPECT_EQ(all[1], json({{"ms", 5000},
                          {"instance", "m1"},
                          {"key", ""},
                          {"name", ""},
                          {"role", "admin"},
                          {"operation", "globalSet"},
                          {"request", r.request},
                          {"outcome", "ok"},
                          {"via", ""}}));
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
