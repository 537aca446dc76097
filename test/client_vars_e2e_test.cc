// What a client may make the manager run, end to end with real daemons, Serf agents and
// ansible-playbook: reserved variable names are refused where client extra-vars enter (global
// set, node requests, config set), and a Jinja expression in a client's value reaches the
// playbook as text, never evaluated, while the operator's --extra-vars are templated as usual.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test/support/cluster.h"
#include "test/support/cluster_test_util.h"

namespace clustermgr::test {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;

class ClientVarsTest : public ClusterTest<ClientVarsTest> {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions options;
    // The operator's value is a template: ansible evaluates it.
    options.extra_vars = {{"epoch", "{{ 40 + 2 }}"}};
    options.daemon_args = {"--allow-extra-var", "ansible_port"};
    StartSharedCluster(options, [](Cluster& c) {
      return c.AddDiscoveredMachines("cv", {"1", "2", "3"});
    });
  }

  net::RpcClient& rpc() { return cluster()->rpc(); }

  // A client value that would create `file` if ansible evaluated it.
  std::string Trap(const std::string& name) {
    return "{{ lookup('pipe', 'touch " + Path(name) + "') }}";
  }
  std::string Path(const std::string& name) { return cluster()->dir() + "/" + name; }

  void CommissionAndExpectLiteral(const std::string& node, const std::string& extra_vars,
                                  const std::string& trap) {
    ASSERT_OK_AND_ASSIGN(net::JobAccepted job,
                         rpc().Commission({node}, "service-master", extra_vars));
    ASSERT_OK_AND_ASSIGN(net::JobDetail done, cluster()->WaitForJobEnd(job.job_id));
    EXPECT_EQ(done.job.status, net::JobStatus::kComplete) << done.job.error;
    // job_id came from the client, as text; epoch from the operator, evaluated.
    EXPECT_THAT(cluster()->MarkerLines(node),
                ElementsAre("site.yml " + node + " " + Trap(trap) + " 42"));
    EXPECT_FALSE(std::filesystem::exists(Path(trap))) << "a client's template was evaluated";
  }
};

TEST_F(ClientVarsTest, ReservedNamesAreRefusedWhereClientVarsEnter) {
  ASSERT_TRUE(IsOk(rpc().GlobalSet(R"({"keep": "me"})")));
  const std::string ssh =
      "\"extra_vars\" sets the reserved variable \"ansible_ssh_common_args\": clients cannot "
      "choose how ansible connects or runs (an operator may allow it with --allow-extra-var)";
  EXPECT_TRUE(IsRpcError(rpc().GlobalSet(R"({"ansible_ssh_common_args": "-o ProxyCommand=x"})"),
                         Code::kInvalidArgument, ssh));
  EXPECT_TRUE(IsRpcError(rpc().GlobalSet(R"({"clustermgr_epoch": 99})"), Code::kInvalidArgument,
                         "\"extra_vars\" sets the reserved variable \"clustermgr_epoch\": it is "
                         "set by clustermgr for every run"));
  EXPECT_TRUE(IsRpcError(
      rpc().Commission({"cv-1"}, "service-master", R"({"ansible_python_interpreter": "/x"})"),
      Code::kInvalidArgument,
      "\"extra_vars\" sets the reserved variable \"ansible_python_interpreter\": clients cannot "
      "choose how ansible connects or runs (an operator may allow it with --allow-extra-var)"));
  EXPECT_TRUE(IsRpcError(rpc().Discover({"127.0.0.200"}, R"({"clustermgr_job_id": "x"})"),
                         Code::kInvalidArgument,
                         "\"extra_vars\" sets the reserved variable \"clustermgr_job_id\": it is "
                         "set by clustermgr for every run"));
  EXPECT_TRUE(IsRpcError(
      rpc().ConfigSet(R"({"ansible": {"extra_variables": {"ansible_become": true}}})"),
      Code::kInvalidArgument,
      "ansible.extra_variables: \"extra_vars\" sets the reserved variable \"ansible_become\": "
      "clients cannot choose how ansible connects or runs (an operator may allow it with "
      "--allow-extra-var)"));
  // Nothing changed; no job ran.
  ASSERT_OK_AND_ASSIGN(std::string globals, rpc().GlobalGet());
  EXPECT_EQ(json::parse(globals), json({{"keep", "me"}}));
  ASSERT_OK_AND_ASSIGN(net::NodeInfo node, rpc().NodeGet("cv-1"));
  EXPECT_EQ(node.status, net::NodeStatus::kUnallocated);
  // A name the operator allowed passes.
  EXPECT_TRUE(IsOk(rpc().GlobalSet(R"({"ansible_port": 22})")));
  EXPECT_TRUE(IsOk(rpc().GlobalSet("")));
}

TEST_F(ClientVarsTest, ClientTemplatesAreNotEvaluatedInGlobalsRequestsOrConfig) {
  // In the globals.
  ASSERT_TRUE(IsOk(rpc().GlobalSet(json({{"job_id", Trap("from-globals")}}).dump())));
  CommissionAndExpectLiteral("cv-1", "", "from-globals");
  ASSERT_TRUE(IsOk(rpc().GlobalSet("")));
  // In a commission's own extra-vars.
  CommissionAndExpectLiteral("cv-2", json({{"job_id", Trap("from-request")}}).dump(),
                             "from-request");
  // In the replicated config's extra_variables.
  ASSERT_TRUE(IsOk(rpc().ConfigSet(
      json({{"ansible", {{"extra_variables", {{"job_id", Trap("from-config")}}}}}}).dump())));
  CommissionAndExpectLiteral("cv-3", "", "from-config");
  ASSERT_TRUE(IsOk(rpc().ConfigSet(R"({"ansible": {}})")));
}

}  // namespace
}  // namespace clustermgr::test
