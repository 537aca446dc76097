#include "mgr/fencing/run_report.h"

#include <gtest/gtest.h>

#include <sstream>

namespace clustermgr::mgr::fencing {
namespace {

void FeedText(RunReport* report, const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) report->Feed(line);
}

TEST(RunReportTest, DefaultCallbackFencedAndFailedHosts) {
  RunReport r;
  FeedText(&r,
           "PLAY [site] ****\n"
           "TASK [clustermgr_fence : stop here if the host has seen a newer epoch] ****\n"
           "fatal: [node-b]: FAILED! => {\"changed\": false, \"msg\": \"fenced: host has seen "
           "epoch 4, this run carries 3\"}\n"
           "TASK [record run] ****\n"
           "fatal: [node-c]: FAILED! => {\"changed\": false, \"msg\": \"disk full\"}\n"
           "PLAY RECAP ****\n"
           "node-a                     : ok=3    changed=1    unreachable=0    failed=0    "
           "skipped=3    rescued=0    ignored=0\n"
           "node-b                     : ok=1    changed=0    unreachable=0    failed=1    "
           "skipped=1    rescued=0    ignored=0\n"
           "node-c                     : ok=4    changed=1    unreachable=0    failed=1    "
           "skipped=1    rescued=0    ignored=0\n");
  ASSERT_EQ(r.fenced().size(), 1u);
  EXPECT_EQ(r.fenced().at("node-b"), "fenced: host has seen epoch 4, this run carries 3");
  EXPECT_EQ(r.FailedHosts(), std::set<std::string>{"node-c"});
  EXPECT_FALSE(r.OnlyFenced());
  EXPECT_EQ(r.recap().at("node-a").changed, 1);
  EXPECT_EQ(r.recap().at("node-a"), (HostRecap{3, 1, 0, 0, 3}));
  EXPECT_EQ(r.recap().at("node-c"), (HostRecap{4, 1, 0, 1, 1}));
  HostRecap twice = r.recap().at("node-a");
  twice += r.recap().at("node-c");  // a job sums its runs
  EXPECT_EQ(twice, (HostRecap{7, 2, 0, 1, 4}));
}

TEST(RunReportTest, OnlyFencedNeedsTheRecap) {
  RunReport r;
  FeedText(&r,
           "fatal: [n1]: FAILED! => {\"msg\": \"fenced: host has seen epoch 9, this run carries "
           "2\"}\n");
  EXPECT_FALSE(r.OnlyFenced());  // no recap read: the run may have failed elsewhere
  FeedText(&r,
           "PLAY RECAP *****\n"
           "n1 : ok=1 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0\n"
           "n2 : ok=5 changed=2 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0\n");
  EXPECT_TRUE(r.OnlyFenced());
  RunReport unreachable;
  FeedText(&unreachable,
           "fatal: [n1]: FAILED! => {\"msg\": \"fenced: host has seen epoch 9, this run carries "
           "2\"}\nPLAY RECAP *\n"
           "n1 : ok=1 changed=0 unreachable=0 failed=1\n"
           "n2 : ok=0 changed=0 unreachable=1 failed=0\n");
  EXPECT_FALSE(unreachable.OnlyFenced());
  EXPECT_EQ(unreachable.FailedHosts(), std::set<std::string>{"n2"});
}

TEST(RunReportTest, YamlCallbackMessageOnALaterLine) {
  RunReport r;
  FeedText(&r,
           "fatal: [node-a]: FAILED! => changed=false \n"
           "  msg: 'fenced: host has seen epoch 12, this run carries 11'\n");
  EXPECT_EQ(r.fenced().at("node-a"), "fenced: host has seen epoch 12, this run carries 11");
}

TEST(RunReportTest, MessageWithoutAFatalLineIsNotAFence) {
  RunReport r;
  // A task that merely prints the words (e.g. debug output) fences nothing.
  FeedText(&r,
           "ok: [node-a] => {\"msg\": \"fenced: host has seen epoch 4, this run carries 3\"}\n");
  EXPECT_TRUE(r.fenced().empty());
  EXPECT_EQ(FindFenceMessage("x fenced: host has seen epoch 4, this run carries 3\" y"),
            "fenced: host has seen epoch 4, this run carries 3");
  EXPECT_EQ(FindFenceMessage("fenced: host has seen epoch x, this run carries 3"), "");
}

}  // namespace
}  // namespace clustermgr::mgr::fencing
