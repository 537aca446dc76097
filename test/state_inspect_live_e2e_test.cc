// state-inspect with a live source (--url): the stateDump RPC of a running clustermgrd, against
// the data dir the same daemon holds, and against another daemon.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/codec.h"
#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class StateInspectLiveTest : public ClusterTest<StateInspectLiveTest> {
 protected:
  static void SetUpTestSuite() {
    StartSharedCluster({}, [](Cluster& c) -> Status {
      auto m = c.AddMachine("si", "1");
      if (!m.ok()) return m.status();
      auto n = c.WaitForNode("si-1", NodeIs::Discovered());
      if (!n.ok()) return n.status();
      // Something in every section: globals, config, a job with its log, host-groups, vars.
      auto g = c.rpc().GlobalSet(R"({"ntp": "pool.ntp.org"})");
      if (!g.ok()) return Status(Code::kInternal, g.status().message());
      auto cfg = c.rpc().ConfigSet(R"({"ansible": {"user": "deploy"}})");
      if (!cfg.ok()) return Status(Code::kInternal, cfg.status().message());
      auto job = c.rpc().Commission({"si-1"}, "service-master", R"({"site": "x"})");
      if (!job.ok()) return Status(Code::kInternal, job.status().message());
      auto done = c.WaitForJobEnd(job.value().job_id);
      return done.ok() ? Status::Ok() : done.status();
    });
  }

  std::string url() { return cluster()->manager().rpc_url(); }
  std::string dir() { return cluster()->manager().data_dir(); }
};

TEST_F(StateInspectLiveTest, DumpOfTheUrlEqualsDumpOfTheDir) {
  CommandResult live = RunCommand("state-inspect", {"dump", "--url", url()});
  ASSERT_EQ(live.exit_code, 0) << live.ToString();
  CommandResult stored = RunCommand("state-inspect", {"dump", dir()});
  ASSERT_EQ(stored.exit_code, 0) << stored.ToString();
  EXPECT_EQ(live.out, stored.out);
  json doc = json::parse(live.out);
  EXPECT_EQ(doc["inventory"].size(), 1u);
  EXPECT_EQ(doc["jobs"].size(), 1u);
  EXPECT_FALSE(doc["job_logs"].empty());
  EXPECT_EQ(doc["globals"][0]["key"], "ntp");

  // One section.
  CommandResult inv =
      RunCommand("state-inspect", {"dump", "--url=" + url(), "--section=inventory"});
  ASSERT_EQ(inv.exit_code, 0) << inv.ToString();
  EXPECT_EQ(json::parse(inv.out)["inventory"], doc["inventory"]);
  CommandResult meta = RunCommand("state-inspect", {"dump", "--url", url(), "--section", "meta"});
  EXPECT_EQ(meta.exit_code, 2) << meta.ToString();
}

TEST_F(StateInspectLiveTest, DiffOfTheDirAndItsOwnDaemonIsEmpty) {
  CommandResult r = RunCommand("state-inspect", {"diff", dir(), "--url", url()});
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(r.out, "");
  r = RunCommand("state-inspect", {"diff", "--url", url(), "--url", url()});
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(r.out, "");
}

TEST_F(StateInspectLiveTest, DiffAgainstAnotherDaemonListsTheDifferences) {
  auto other = Cluster::Start();
  ASSERT_TRUE(IsOk(other));
  ASSERT_TRUE(IsOk(other.value()->rpc().GlobalSet(R"({"ntp": "time.example.org"})")));
  const std::string other_url = other.value()->manager().rpc_url();

  CommandResult r = RunCommand("state-inspect", {"diff", "--url", url(), "--url", other_url});
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  EXPECT_THAT(r.out, HasSubstr("globals \"ntp\": A {"));
  EXPECT_THAT(r.out, HasSubstr("\"value\":\"pool.ntp.org\""));
  EXPECT_THAT(r.out, HasSubstr("\"value\":\"time.example.org\""));
  EXPECT_THAT(r.out, HasSubstr("inventory \"si-1\": A {"));
  EXPECT_THAT(r.out, HasSubstr("| B absent"));
  // A dir against a URL, the other way round: A is the dir.
  r = RunCommand("state-inspect", {"diff", other.value()->manager().data_dir(), "--url", url()});
  EXPECT_EQ(r.exit_code, 1) << r.ToString();
  EXPECT_THAT(r.out, HasSubstr("inventory \"si-1\": A absent | B {"));
}

TEST_F(StateInspectLiveTest, Stats) {
  CommandResult r = RunCommand("state-inspect", {"stats", "--url", url(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  json stats = json::parse(r.out);
  EXPECT_EQ(stats["sections"]["inventory"]["entries"], 1);
  EXPECT_EQ(stats["sections"]["jobs"]["entries"], 1);
  EXPECT_EQ(stats["sections"]["globals"]["entries"], 1);
  EXPECT_GT(stats["total"]["bytes"].get<uint64_t>(), 0u);
  r = RunCommand("state-inspect", {"stats", "--url", url()});
  ASSERT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_THAT(r.out, StartsWith("live state of " + url() + "\n"));
  EXPECT_THAT(r.out, HasSubstr("inventory"));
}

// The RPC underneath: chunks of one snapshot fit together, whatever their size.
TEST_F(StateInspectLiveTest, StateDumpChunks) {
  net::RpcClient& rpc = cluster()->rpc();
  ASSERT_OK_AND_ASSIGN(std::string whole, rpc.StateDump());
  ASSERT_OK_AND_ASSIGN(std::string chunked, rpc.StateDump(/*chunk_bytes=*/97));
  EXPECT_EQ(whole, chunked);
  ASSERT_TRUE(IsOk(store::DecodeState(whole)));

  ASSERT_OK_AND_ASSIGN(net::StateChunk first, rpc.StateDumpChunk(0, 0, 100));
  EXPECT_NE(first.snapshot_id, 0u);
  EXPECT_EQ(first.total_bytes, whole.size());
  EXPECT_EQ(first.data, whole.substr(0, 100));
  ASSERT_OK_AND_ASSIGN(net::StateChunk second, rpc.StateDumpChunk(first.snapshot_id, 100, 100));
  EXPECT_EQ(second.data, whole.substr(100, 100));
  EXPECT_TRUE(IsRpcError(rpc.StateDumpChunk(first.snapshot_id, whole.size() + 1, 100),
                         clustermgr::Code::kInvalidArgument,
                         "offset " + std::to_string(whole.size() + 1) +
                             " is beyond the snapshot's " + std::to_string(whole.size()) +
                             " bytes"));
  // Serving the last chunk lets the snapshot go.
  ASSERT_OK_AND_ASSIGN(net::StateChunk last,
                       rpc.StateDumpChunk(first.snapshot_id, 200, whole.size()));
  EXPECT_EQ(last.data, whole.substr(200));
  EXPECT_TRUE(IsRpcError(
      rpc.StateDumpChunk(first.snapshot_id, 200, 100), clustermgr::Code::kFailedPrecondition,
      "state snapshot " + std::to_string(first.snapshot_id) +
          " is no longer kept (read to its end, or newer ones were taken); start the dump again"));
}

}  // namespace
}  // namespace clustermgr::test
