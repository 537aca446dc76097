#include "mgr/lifecycle.h"

#include <gtest/gtest.h>

namespace clustermgr::mgr {
namespace {

using crdt::ClusterState;
using crdt::DeltaBuilder;
using crdt::InventoryRecord;
using crdt::NodeState;
using crdt::NodeStatus;

class LifecycleTest : public ::testing::Test {
 protected:
  // Adds (or replaces) a node with the given status, state and host-group.
  void Node(const std::string& name, NodeStatus status, NodeState state = NodeState::kDiscovered,
            const std::string& group = "") {
    DeltaBuilder b(state_, crdt::WriteTag{{0, crdt::HlcTimestamp::Make(++t_, 0), "o"}, t_});
    InventoryRecord rec;
    rec.status = status;
    rec.state = state;
    rec.addr = "10.0.0." + std::to_string(t_);
    b.PutNode(name, rec);
    b.SetHostGroups(name,
                    group.empty() ? std::vector<std::string>{} : std::vector<std::string>{group});
    state_.Join(std::move(b).Take());
  }
  LifecycleRequest Req(std::vector<std::string> nodes, std::string group = "") {
    return LifecycleRequest{std::move(nodes), std::move(group), std::nullopt};
  }

  ClusterState state_;
  HostGroups groups_ = HostGroups::Default();
  uint64_t t_ = 0;
};

TEST(TransitionTest, ExactlyTheAllowedMoves) {
  using S = NodeStatus;
  const std::vector<std::pair<S, S>> allowed = {
      {S::kUnallocated, S::kProvisioning},    {S::kProvisioning, S::kUnallocated},
      {S::kProvisioning, S::kAllocated},      {S::kAllocated, S::kCancelled},
      {S::kAllocated, S::kMaintenance},       {S::kCancelled, S::kDecommissioned},
      {S::kDecommissioned, S::kProvisioning}, {S::kMaintenance, S::kUnallocated},
      {S::kMaintenance, S::kAllocated}};
  const S all[] = {S::kUnallocated, S::kProvisioning,   S::kAllocated,
                   S::kCancelled,   S::kDecommissioned, S::kMaintenance};
  for (S from : all) {
    for (S to : all) {
      bool expect = from == to ||
                    std::find(allowed.begin(), allowed.end(), std::pair{from, to}) != allowed.end();
      EXPECT_EQ(TransitionAllowed(from, to), expect)
          << crdt::ToString(from) << " -> " << crdt::ToString(to);
      EXPECT_EQ(CheckTransition(from, to).ok(), expect);
    }
  }
  EXPECT_EQ(CheckTransition(S::kAllocated, S::kProvisioning).message(),
            "transition from \"Allocated\" to \"Provisioning\" is not allowed");
}

TEST(TransitionTest, SafeStatuses) {
  EXPECT_EQ(SafeStatus(NodeStatus::kProvisioning), NodeStatus::kUnallocated);
  EXPECT_EQ(SafeStatus(NodeStatus::kMaintenance), NodeStatus::kUnallocated);
  EXPECT_EQ(SafeStatus(NodeStatus::kCancelled), NodeStatus::kDecommissioned);
  EXPECT_EQ(SafeStatus(NodeStatus::kAllocated), NodeStatus::kAllocated);
}

TEST_F(LifecycleTest, ActiveJobIsCheckedFirst) {
  LifecycleRequest r{{}, "", "there is already an active job, please try in sometime. Job: x"};
  auto plan = PlanCommission(state_, r, groups_);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "there is already an active job, please try in sometime. Job: x");
}

TEST_F(LifecycleTest, EmptyAndUnknownNodes) {
  EXPECT_EQ(PlanCommission(state_, Req({}, "service-master"), groups_).status().message(),
            "atleast one node should be specified");
  EXPECT_EQ(PlanDecommission(state_, Req({"nope"}), groups_).status().message(),
            "node with name or address \"nope\" doesn't exists");
}

TEST_F(LifecycleTest, NodesAreFoundByAddressToo) {
  Node("n1", NodeStatus::kUnallocated);
  auto plan = PlanCommission(state_, Req({state_.Node("n1")->addr}, "service-master"), groups_);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->at(0).node, "n1");
}

TEST_F(LifecycleTest, NonDiscoveredNodesAreListed) {
  Node("a", NodeStatus::kUnallocated, NodeState::kDisappeared);
  Node("b", NodeStatus::kUnallocated);
  Node("c", NodeStatus::kUnallocated, NodeState::kUnknown);
  EXPECT_EQ(
      PlanCommission(state_, Req({"a", "b", "c"}, "service-master"), groups_).status().message(),
      "one or more nodes are not in discovered state, please check their network "
      "reachability. Non-discovered nodes: [a c]");
}

TEST_F(LifecycleTest, CommissionHostGroupAndWorkerRule) {
  Node("m", NodeStatus::kUnallocated);
  Node("w", NodeStatus::kUnallocated);
  EXPECT_EQ(PlanCommission(state_, Req({"m"}), groups_).status().message(),
            "invalid or empty host-group specified: \"\"");
  EXPECT_EQ(PlanCommission(state_, Req({"m"}, "bogus"), groups_).status().message(),
            "invalid or empty host-group specified: \"bogus\"");
  EXPECT_EQ(PlanCommission(state_, Req({"w"}, "service-worker"), groups_).status().message(),
            "Cannot commission a worker node without existence of a master node in the cluster, "
            "make sure atleast one master node is commissioned.");
  // A master in the same request does not count: it must already be Allocated.
  EXPECT_FALSE(PlanCommission(state_, Req({"m", "w"}, "service-worker"), groups_).ok());
  Node("m", NodeStatus::kAllocated, NodeState::kDiscovered, "service-master");
  auto plan = PlanCommission(state_, Req({"w"}, "service-worker"), groups_);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->at(0).after.status, NodeStatus::kProvisioning);
  EXPECT_EQ(plan->at(0).after.prev_status, NodeStatus::kUnallocated);
  // A disappeared master does not count.
  Node("m", NodeStatus::kAllocated, NodeState::kDisappeared, "service-master");
  EXPECT_FALSE(PlanCommission(state_, Req({"w"}, "service-worker"), groups_).ok());
}

TEST_F(LifecycleTest, CommissionIsAllOrNothing) {
  Node("a", NodeStatus::kUnallocated);
  Node("b", NodeStatus::kAllocated, NodeState::kDiscovered, "service-master");
  auto plan = PlanCommission(state_, Req({"a", "b"}, "service-master"), groups_);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "failed to update b's state in inventory, Error: transition from \"Allocated\" to "
            "\"Provisioning\" is not allowed");
}

TEST_F(LifecycleTest, DecommissionRules) {
  Node("m", NodeStatus::kAllocated, NodeState::kDiscovered, "service-master");
  Node("w", NodeStatus::kAllocated, NodeState::kDiscovered, "service-worker");
  EXPECT_EQ(PlanDecommission(state_, Req({"m"}), groups_).status().message(),
            "decommissioning the specified node(s) will leave only worker nodes in the cluster, "
            "make sure all worker nodes are decommissioned before last master node.");
  auto both = PlanDecommission(state_, Req({"m", "w"}), groups_);
  ASSERT_TRUE(both.ok()) << both.status().message();
  EXPECT_EQ(both->size(), 2u);
  EXPECT_EQ(both->at(0).after.status, NodeStatus::kCancelled);
  Node("m2", NodeStatus::kAllocated, NodeState::kDiscovered, "service-master");
  EXPECT_TRUE(PlanDecommission(state_, Req({"m"}), groups_).ok());
  Node("d", NodeStatus::kDecommissioned);
  EXPECT_EQ(PlanDecommission(state_, Req({"d"}), groups_).status().message(),
            "failed to update d's state in inventory, Error: transition from \"Decommissioned\" "
            "to \"Cancelled\" is not allowed");
}

TEST_F(LifecycleTest, UpdateRules) {
  Node("m", NodeStatus::kAllocated, NodeState::kDiscovered, "service-master");
  Node("u", NodeStatus::kUnallocated);
  EXPECT_EQ(PlanUpdate(state_, Req({"m"}, "bogus"), groups_).status().message(),
            "invalid host-group specified: \"bogus\"");
  EXPECT_EQ(PlanUpdate(state_, Req({"m"}, "service-worker"), groups_).status().message(),
            "Updating these nodes as worker will result in no master node in the cluster, make "
            "sure atleast one node is commissioned as master.");
  auto keep = PlanUpdate(state_, Req({"m"}), groups_);
  ASSERT_TRUE(keep.ok()) << keep.status().message();
  EXPECT_EQ(keep->at(0).after.status, NodeStatus::kMaintenance);
  EXPECT_EQ(PlanUpdate(state_, Req({"u"}), groups_).status().message(),
            "failed to update u's state in inventory, Error: transition from \"Unallocated\" to "
            "\"Maintenance\" is not allowed");
}

}  // namespace
}  // namespace clustermgr::mgr
