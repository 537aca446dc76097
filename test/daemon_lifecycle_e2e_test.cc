// clustermgrd end to end: the node lifecycle (commission, decommission, update) with real Serf
// agents for machines and real ansible-playbook runs of test/playbooks (local connection; each
// run leaves a marker line per node, read back to count runs). Each suite is one story on its
// own cluster, because the master/worker rules look at the whole cluster.
//
// Predecessor scenarios covered: commission unknown / disappeared / already-allocated nodes
// refused (the other node untouched); commission master, then worker; two masters; missing
// host-group refused; worker without (alive) master refused; decommission single, serial,
// several; decommission last master with workers refused; decommission of disappeared or
// already-decommissioned refused; update keeps or changes host-group; update leaving no master
// refused; update of Unallocated refused; update with failing playbook -> Unallocated.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using net::JobStatus;
using net::NodeState;
using net::NodeStatus;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const char kNoMasterForWorker[] =
    "Cannot commission a worker node without existence of a master node in the cluster, make "
    "sure atleast one master node is commissioned.";
const char kLastMaster[] =
    "decommissioning the specified node(s) will leave only worker nodes in the cluster, make sure "
    "all worker nodes are decommissioned before last master node.";
const char kUpdateNoMaster[] =
    "Updating these nodes as worker will result in no master node in the cluster, make sure "
    "atleast one node is commissioned as master.";

std::string NotDiscovered(const std::string& list) {
  return "one or more nodes are not in discovered state, please check their network "
         "reachability. Non-discovered nodes: [" +
         list + "]";
}

std::string BadTransition(const std::string& node, const std::string& from, const std::string& to) {
  return "failed to update " + node + "'s state in inventory, Error: transition from \"" + from +
         "\" to \"" + to + "\" is not allowed";
}

// Starts `count` machines <label>-1..<label>-count and waits until the daemon has them all.
std::function<Status(Cluster&)> Machines(std::string label, int count) {
  return [label, count](Cluster& c) -> Status {
    for (int i = 1; i <= count; ++i) {
      auto m = c.AddMachine(label, std::to_string(i));
      if (!m.ok()) return m.status();
    }
    for (int i = 1; i <= count; ++i) {
      auto n = c.WaitForNode(label + "-" + std::to_string(i), NodeIs::Discovered());
      if (!n.ok()) return n.status();
    }
    return Status::Ok();
  };
}

template <typename Suite>
class LifecycleStory : public ClusterTest<Suite> {
 protected:
  using ClusterTest<Suite>::cluster;
  net::RpcClient& rpc() { return cluster()->rpc(); }

  NodeStatus StatusOf(const std::string& node) {
    auto n = rpc().NodeGet(node);
    return n.ok() ? n.value().status : NodeStatus::kUnspecified;
  }
  std::vector<std::string> GroupsOf(const std::string& node) {
    auto n = rpc().NodeGet(node);
    return n.ok() ? n.value().host_groups
                  : std::vector<std::string>{"<" + n.status().message() + ">"};
  }
  // Waits for the end of an accepted job.
  net::JobDetail Finish(const clustermgr::Result<net::JobAccepted>& accepted) {
    if (!accepted.ok()) {
      ADD_FAILURE() << "request refused: " << accepted.status().message();
      return {};
    }
    auto done = cluster()->WaitForJobEnd(accepted.value().job_id);
    if (!done.ok()) {
      ADD_FAILURE() << done.status().message();
      return {};
    }
    return std::move(done).value();
  }
  // Makes a machine leave Serf gracefully and waits until the daemon sees it Disappeared.
  void Leave(const std::string& node) {
    Machine* m = cluster()->machine(node);
    ASSERT_NE(m, nullptr) << node;
    ASSERT_TRUE(m->serf().Leave().ok()) << node;
    ASSERT_TRUE(IsOk(cluster()->WaitForNode(node, NodeIs::Disappeared())));
  }
  // Starts a machine's agent again (it rejoins) and waits until the daemon sees it Discovered.
  void Rejoin(const std::string& node) {
    Machine* m = cluster()->machine(node);
    ASSERT_NE(m, nullptr) << node;
    std::string error;
    ASSERT_TRUE(m->serf().Restart(&error)) << error;
    ASSERT_TRUE(IsOk(cluster()->WaitForNode(node, NodeIs::Discovered())));
  }
};

// ---- commission ---------------------------------------------------------------------------------

class CommissionTest : public LifecycleStory<CommissionTest> {
 protected:
  static void SetUpTestSuite() { StartSharedCluster({}, Machines("c", 5)); }
};

TEST_F(CommissionTest, MasterThenWorkerTwoMastersAndTheRefusals) {
  // No master yet: a worker is refused, and so is a missing or unknown host-group.
  EXPECT_TRUE(IsRpcError(rpc().Commission({"c-2"}, "service-worker", ""), Code::kFailedPrecondition,
                         kNoMasterForWorker));
  EXPECT_TRUE(IsRpcError(rpc().Commission({"c-1"}, "", ""), Code::kInvalidArgument,
                         "invalid or empty host-group specified: \"\""));
  EXPECT_TRUE(IsRpcError(rpc().Commission({"c-1"}, "db-master", ""), Code::kInvalidArgument,
                         "invalid or empty host-group specified: \"db-master\""));
  EXPECT_EQ(StatusOf("c-1"), NodeStatus::kUnallocated);
  EXPECT_EQ(StatusOf("c-2"), NodeStatus::kUnallocated);

  // Master: Provisioning while the configure playbook runs, then Allocated; the request's
  // extra-vars are remembered.
  auto accepted = rpc().Commission({"c-1"}, "service-master", R"({"note": "first"})");
  ASSERT_TRUE(IsOk(accepted));
  EXPECT_EQ(StatusOf("c-1"), NodeStatus::kProvisioning);
  net::JobDetail job = Finish(accepted);
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(job.job.desc, "commission");
  EXPECT_THAT(job.job.nodes, ElementsAre("c-1"));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo c1, rpc().NodeGet("c-1"));
  EXPECT_EQ(c1.status, NodeStatus::kAllocated);
  EXPECT_EQ(c1.prev_status, NodeStatus::kProvisioning);
  EXPECT_EQ(c1.state, NodeState::kDiscovered);
  EXPECT_THAT(c1.host_groups, ElementsAre("service-master"));
  EXPECT_EQ(json::parse(c1.extra_vars), json({{"note", "first"}}));
  EXPECT_THAT(cluster()->MarkerLines("c-1"), ElementsAre("site.yml c-1"));

  // Then a worker.
  job = Finish(rpc().Commission({"c-2"}, "service-worker", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(StatusOf("c-2"), NodeStatus::kAllocated);
  EXPECT_THAT(GroupsOf("c-2"), ElementsAre("service-worker"));
  EXPECT_THAT(cluster()->MarkerLines("c-2"), ElementsAre("site.yml c-2"));

  // An already allocated node in the request refuses the whole request.
  EXPECT_TRUE(IsRpcError(rpc().Commission({"c-3", "c-1"}, "service-master", ""),
                         Code::kFailedPrecondition,
                         BadTransition("c-1", "Allocated", "Provisioning")));
  // So does a disappeared one.
  Leave("c-4");
  EXPECT_TRUE(IsRpcError(rpc().Commission({"c-3", "c-4"}, "service-master", ""),
                         Code::kFailedPrecondition, NotDiscovered("c-4")));
  EXPECT_EQ(StatusOf("c-3"), NodeStatus::kUnallocated);
  EXPECT_THAT(GroupsOf("c-3"), IsEmpty());
  EXPECT_THAT(cluster()->MarkerLines("c-3"), IsEmpty());
  EXPECT_EQ(StatusOf("c-4"), NodeStatus::kUnallocated);

  // A second master.
  job = Finish(rpc().Commission({"c-3"}, "service-master", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(StatusOf("c-3"), NodeStatus::kAllocated);
  EXPECT_THAT(GroupsOf("c-3"), ElementsAre("service-master"));

  // With both masters gone from Serf, a worker is refused: the master must be alive.
  Leave("c-1");
  Leave("c-3");
  EXPECT_TRUE(IsRpcError(rpc().Commission({"c-5"}, "service-worker", ""), Code::kFailedPrecondition,
                         kNoMasterForWorker));
  EXPECT_EQ(StatusOf("c-5"), NodeStatus::kUnallocated);
  // A master that comes back (still Allocated) makes it possible again.
  Rejoin("c-3");
  EXPECT_EQ(StatusOf("c-3"), NodeStatus::kAllocated);
  job = Finish(rpc().Commission({"c-5"}, "service-worker", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(StatusOf("c-5"), NodeStatus::kAllocated);

  // Every run was a configure run, one per commissioned node.
  EXPECT_EQ(cluster()->CountRuns("c-1", "site.yml"), 1);
  EXPECT_EQ(cluster()->CountRuns("c-3", "site.yml"), 1);
  EXPECT_EQ(cluster()->CountRuns("c-5", "site.yml"), 1);
  EXPECT_EQ(cluster()->CountRuns("c-1", "cleanup.yml"), 0);
}

// ---- decommission -------------------------------------------------------------------------------

class DecommissionTest : public LifecycleStory<DecommissionTest> {
 protected:
  static void SetUpTestSuite() { StartSharedCluster({}, Machines("d", 5)); }
};

TEST_F(DecommissionTest, SingleSerialSeveralAndTheRefusals) {
  net::JobDetail job = Finish(rpc().Commission({"d-1"}, "service-master", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  // Several nodes in one request.
  job = Finish(rpc().Commission({"d-2", "d-3", "d-4", "d-5"}, "service-worker", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  for (const char* n : {"d-2", "d-3", "d-4", "d-5"}) {
    EXPECT_EQ(StatusOf(n), NodeStatus::kAllocated) << n;
    EXPECT_EQ(cluster()->CountRuns(n, "site.yml"), 1) << n;
  }

  // The last master cannot go while workers remain.
  EXPECT_TRUE(IsRpcError(rpc().Decommission({"d-1"}, ""), Code::kFailedPrecondition, kLastMaster));
  EXPECT_EQ(StatusOf("d-1"), NodeStatus::kAllocated);

  // Single: Cancelled while the cleanup playbook runs, then Decommissioned.
  auto accepted = rpc().Decommission({"d-2"}, "");
  ASSERT_TRUE(IsOk(accepted));
  EXPECT_EQ(StatusOf("d-2"), NodeStatus::kCancelled);
  job = Finish(accepted);
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(job.job.desc, "decommission");
  EXPECT_EQ(StatusOf("d-2"), NodeStatus::kDecommissioned);
  EXPECT_THAT(cluster()->MarkerLines("d-2"), ElementsAre("site.yml d-2", "cleanup.yml d-2"));

  // Serial: one after the other; a failing cleanup still ends Decommissioned.
  job = Finish(rpc().Decommission({"d-3"}, ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  job = Finish(rpc().Decommission({"d-4"}, R"({"fail_cleanup": true})"));
  EXPECT_EQ(job.job.status, JobStatus::kErrored) << Describe(job);
  EXPECT_EQ(job.job.error,
            "cleanup.yml: ansible-playbook exited with status 2 (one or more hosts failed)");
  EXPECT_EQ(StatusOf("d-3"), NodeStatus::kDecommissioned);
  EXPECT_EQ(StatusOf("d-4"), NodeStatus::kDecommissioned);
  EXPECT_EQ(cluster()->CountRuns("d-3", "cleanup.yml"), 1);
  EXPECT_EQ(cluster()->CountRuns("d-4", "cleanup.yml"), 1);
  // Decommission does not remember its extra-vars.
  ASSERT_OK_AND_ASSIGN(net::NodeInfo d4, rpc().NodeGet("d-4"));
  EXPECT_EQ(d4.extra_vars, "{}");

  // Already decommissioned: refused.
  EXPECT_TRUE(IsRpcError(rpc().Decommission({"d-2"}, ""), Code::kFailedPrecondition,
                         BadTransition("d-2", "Decommissioned", "Cancelled")));
  // Disappeared: refused, and the other node of the request stays.
  Leave("d-5");
  EXPECT_TRUE(IsRpcError(rpc().Decommission({"d-1", "d-5"}, ""), Code::kFailedPrecondition,
                         NotDiscovered("d-5")));
  EXPECT_EQ(StatusOf("d-1"), NodeStatus::kAllocated);
  // A disappeared worker is still a worker of the cluster.
  EXPECT_TRUE(IsRpcError(rpc().Decommission({"d-1"}, ""), Code::kFailedPrecondition, kLastMaster));

  // Several at once: the last master together with the last worker is fine.
  Rejoin("d-5");
  accepted = rpc().Decommission({"d-5", "d-1"}, "");
  ASSERT_TRUE(IsOk(accepted));
  EXPECT_EQ(StatusOf("d-1"), NodeStatus::kCancelled);
  EXPECT_EQ(StatusOf("d-5"), NodeStatus::kCancelled);
  job = Finish(accepted);
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_THAT(job.job.nodes, ElementsAre("d-5", "d-1"));
  EXPECT_EQ(StatusOf("d-1"), NodeStatus::kDecommissioned);
  EXPECT_EQ(StatusOf("d-5"), NodeStatus::kDecommissioned);
  EXPECT_THAT(cluster()->MarkerLines("d-1"), ElementsAre("site.yml d-1", "cleanup.yml d-1"));

  // A decommissioned node can be commissioned again.
  job = Finish(rpc().Commission({"d-2"}, "service-master", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(StatusOf("d-2"), NodeStatus::kAllocated);
}

// ---- remembered extra-vars
// ------------------------------------------------------------------------

class RememberedVarsTest : public LifecycleStory<RememberedVarsTest> {
 protected:
  static void SetUpTestSuite() { StartSharedCluster({}, Machines("v", 2)); }
  std::string VarLines(const std::string& node) {
    std::ifstream in(cluster()->marker_dir() + "/" + node + ".vars");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

// Each node keeps the extra-vars it was commissioned with; a later run over several nodes gives
// each node its own (through the inventory's host_vars), not the last node's for all.
TEST_F(RememberedVarsTest, ARunOverSeveralNodesGivesEachNodeItsOwnRememberedVars) {
  ASSERT_TRUE(IsOk(rpc().GlobalSet(R"({"record_var": "flavor", "flavor": "global"})")));
  net::JobDetail job =
      Finish(rpc().Commission({"v-1"}, "service-master", R"({"flavor": "red", "size": 1})"));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  job = Finish(rpc().Commission({"v-2"}, "service-worker", R"({"flavor": "blue", "size": 1})"));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(VarLines("v-1"), "site.yml flavor=red\n");
  EXPECT_EQ(VarLines("v-2"), "site.yml flavor=blue\n");

  // One update over both: each sees its own remembered value; a request value wins for all.
  job = Finish(rpc().Update({"v-1", "v-2"}, "", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(VarLines("v-1"), "site.yml flavor=red\ncleanup.yml flavor=red\nsite.yml flavor=red\n");
  EXPECT_EQ(VarLines("v-2"),
            "site.yml flavor=blue\ncleanup.yml flavor=blue\nsite.yml flavor=blue\n");
  job = Finish(rpc().Decommission({"v-1", "v-2"}, R"({"flavor": "gone"})"));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_THAT(VarLines("v-1"), ::testing::EndsWith("cleanup.yml flavor=gone\n"));
  EXPECT_THAT(VarLines("v-2"), ::testing::EndsWith("cleanup.yml flavor=gone\n"));
}

// ---- update -------------------------------------------------------------------------------------

class UpdateTest : public LifecycleStory<UpdateTest> {
 protected:
  static void SetUpTestSuite() { StartSharedCluster({}, Machines("u", 3)); }
};

TEST_F(UpdateTest, KeepOrChangeTheGroupAndTheRefusals) {
  net::JobDetail job = Finish(rpc().Commission({"u-1"}, "service-master", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  // The marker shows the host's groups as ansible saw them in each run (the test playbook
  // renders them; client values themselves are never templated).
  const std::string show_groups = R"({"show_groups": true})";
  job = Finish(rpc().Commission({"u-2"}, "service-worker", show_groups));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);

  EXPECT_TRUE(IsRpcError(rpc().Update({"u-3"}, "", ""), Code::kFailedPrecondition,
                         BadTransition("u-3", "Unallocated", "Maintenance")));
  EXPECT_TRUE(IsRpcError(rpc().Update({"u-1"}, "service-worker", ""), Code::kFailedPrecondition,
                         kUpdateNoMaster));
  EXPECT_TRUE(IsRpcError(rpc().Update({"u-1"}, "db", ""), Code::kInvalidArgument,
                         "invalid host-group specified: \"db\""));
  EXPECT_EQ(StatusOf("u-1"), NodeStatus::kAllocated);
  EXPECT_THAT(GroupsOf("u-1"), ElementsAre("service-master"));

  // Keep the group: Maintenance, cleanup then configure (with the remembered vars), Allocated.
  auto accepted = rpc().Update({"u-2"}, "", "");
  ASSERT_TRUE(IsOk(accepted));
  EXPECT_EQ(StatusOf("u-2"), NodeStatus::kMaintenance);
  job = Finish(accepted);
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(job.job.desc, "update");
  EXPECT_EQ(StatusOf("u-2"), NodeStatus::kAllocated);
  EXPECT_THAT(GroupsOf("u-2"), ElementsAre("service-worker"));
  EXPECT_THAT(cluster()->MarkerLines("u-2"),
              ElementsAre("site.yml u-2 service-worker", "cleanup.yml u-2 service-worker",
                          "site.yml u-2 service-worker"));

  // Change the group: the cleanup runs with the old group, the configure with the new one.
  job = Finish(rpc().Update({"u-2"}, "service-master", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_EQ(StatusOf("u-2"), NodeStatus::kAllocated);
  EXPECT_THAT(GroupsOf("u-2"), ElementsAre("service-master"));
  std::vector<std::string> lines = cluster()->MarkerLines("u-2");
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[3], "cleanup.yml u-2 service-worker");
  EXPECT_EQ(lines[4], "site.yml u-2 service-master");

  // With another master (u-2), u-1 may become a worker.
  job = Finish(rpc().Update({"u-1"}, "service-worker", ""));
  ASSERT_EQ(job.job.status, JobStatus::kComplete) << Describe(job);
  EXPECT_THAT(GroupsOf("u-1"), ElementsAre("service-worker"));

  // A failing configure: cleanup, configure (fails), cleanup again, then Unallocated.
  job = Finish(rpc().Update({"u-2"}, "", R"({"fail_configure": true})"));
  EXPECT_EQ(job.job.status, JobStatus::kErrored) << Describe(job);
  EXPECT_EQ(job.job.error,
            "site.yml: ansible-playbook exited with status 2 (one or more hosts failed)");
  ASSERT_OK_AND_ASSIGN(net::NodeInfo u2, rpc().NodeGet("u-2"));
  EXPECT_EQ(u2.status, NodeStatus::kUnallocated);
  EXPECT_EQ(u2.prev_status, NodeStatus::kMaintenance);
  lines = cluster()->MarkerLines("u-2");
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(lines[5], "cleanup.yml u-2 service-master");
  EXPECT_EQ(lines[6], "site.yml u-2 service-master");
  EXPECT_EQ(lines[7], "cleanup.yml u-2 service-master");
}

}  // namespace
}  // namespace clustermgr::test
