// gtest helpers for suites built on test/support/cluster.h. Header-only, so that the harness
// library itself does not depend on gtest.
//
//   EXPECT_TRUE(IsOk(cluster->rpc().GlobalSet("{}")));
//   EXPECT_TRUE(IsRpcError(r, clustermgr::Code::kNotFound, "node with name ... doesn't exists"));
//   ASSERT_OK_AND_ASSIGN(net::NodeInfo n, cluster->WaitForNode("n-1", NodeIs::Discovered()));
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "base/status.h"
#include "net/rpc_types.h"
#include "test/support/cluster.h"

namespace clustermgr::test {

inline ::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}

template <typename T>
::testing::AssertionResult IsOk(const Result<T>& r) {
  return IsOk(r.status());
}

// The call failed with exactly this code and message.
template <typename T>
::testing::AssertionResult IsRpcError(const clustermgr::Result<T>& r, clustermgr::Code code,
                                      const std::string& message) {
  if (r.ok()) return ::testing::AssertionFailure() << "succeeded; expected: " << message;
  if (r.status().code() != code || r.status().message() != message) {
    return ::testing::AssertionFailure()
           << "got " << clustermgr::CodeName(r.status().code()) << " \"" << r.status().message()
           << "\"\n expected " << clustermgr::CodeName(code) << " \"" << message << "\"";
  }
  return ::testing::AssertionSuccess();
}

// A job's status, error and log, for failure messages.
inline std::string Describe(const net::JobDetail& d) {
  std::string text = "job " + d.job.id + " " + std::string(net::ToString(d.job.status)) +
                     (d.job.error.empty() ? "" : ": " + d.job.error) + "\n";
  for (const std::string& line : d.log_lines) text += "  | " + line + "\n";
  return text;
}

#define CLUSTERMGR_CONCAT_INNER(a, b) a##b
#define CLUSTERMGR_CONCAT(a, b) CLUSTERMGR_CONCAT_INNER(a, b)
#define CLUSTERMGR_ASSERT_OK_AND_ASSIGN(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  ASSERT_TRUE(::clustermgr::test::IsOk(tmp));           \
  lhs = std::move(tmp).value()
// Asserts that a Result is ok and moves its value into `lhs` (a declaration or an
// lvalue). Usable only in functions returning void (like ASSERT_*).
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  CLUSTERMGR_ASSERT_OK_AND_ASSIGN(CLUSTERMGR_CONCAT(cm_result_, __LINE__), lhs, expr)

// A fixture base owning one Cluster per test suite, started by the derived fixture's
// SetUpTestSuite through StartSharedCluster, that prints the daemons' log tails after a failed
// test. Derive as `class FooTest : public ClusterTest<FooTest>` (each suite its own cluster).
// Under ctest each test runs in its own process, so the cluster is per test there; run the
// binary directly to share it across a suite.
template <typename Suite>
class ClusterTest : public ::testing::Test {
 protected:
  static Cluster* cluster() { return shared_.get(); }
  // Starts the suite's cluster, then runs `prepare` on it (e.g. adding machines). A failure is
  // reported by every test of the suite.
  static void StartSharedCluster(ClusterOptions options = {},
                                 const std::function<Status(Cluster&)>& prepare = nullptr) {
    auto c = Cluster::Start(std::move(options));
    if (!c.ok()) {
      start_error_ = c.status().message();
      return;
    }
    shared_ = std::move(c).value();
    if (prepare) {
      if (Status s = prepare(*shared_); !s.ok()) {
        start_error_ = s.message() + "\n" + shared_->Diagnostics();
        shared_.reset();
      }
    }
  }
  static void TearDownTestSuite() { shared_.reset(); }

  void SetUp() override {
    ASSERT_NE(shared_, nullptr) << "cluster did not start: " << start_error_;
  }
  void TearDown() override {
    if (HasFailure() && shared_) std::cout << shared_->Diagnostics() << std::flush;
  }

 private:
  static inline std::unique_ptr<Cluster> shared_;
  static inline std::string start_error_;
};

}  // namespace clustermgr::test
