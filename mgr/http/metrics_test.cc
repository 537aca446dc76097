#include "mgr/http/metrics.h"

#include <gtest/gtest.h>

namespace clustermgr::mgr::http {
namespace {

TEST(Histogram, CountsIntoTheFirstBucketThatHoldsTheValue) {
  Histogram h({1, 10});
  h.Observe(0.5);
  h.Observe(1);
  h.Observe(5);
  h.Observe(50);
  EXPECT_EQ(h.counts(), (std::vector<std::uint64_t>{2, 1}));
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 56.5);
}

TEST(RenderPrometheusText, WritesHelpTypeSamplesAndCumulativeBuckets) {
  Histogram h({0.5, 1});
  h.Observe(0.25);
  h.Observe(0.75);
  h.Observe(3);
  std::vector<MetricFamily> families;
  families.push_back({"x_total",
                      "Things \\ counted\nhere",
                      MetricFamily::Type::kCounter,
                      {{{{"peer", "a\"b\\c\nd"}}, 3}, {{}, 1.5}},
                      {}});
  families.push_back(
      {"lat_seconds", "Latency", MetricFamily::Type::kHistogram, {}, {{{{"method", "get"}}, h}}});
  EXPECT_EQ(RenderPrometheusText(families),
            "# HELP x_total Things \\\\ counted\\nhere\n"
            "# TYPE x_total counter\n"
            "x_total{peer=\"a\\\"b\\\\c\\nd\"} 3\n"
            "x_total 1.5\n"
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{method=\"get\",le=\"0.5\"} 1\n"
            "lat_seconds_bucket{method=\"get\",le=\"1\"} 2\n"
            "lat_seconds_bucket{method=\"get\",le=\"+Inf\"} 3\n"
            "lat_seconds_sum{method=\"get\"} 4\n"
            "lat_seconds_count{method=\"get\"} 3\n");
}

}  // namespace
}  // namespace clustermgr::mgr::http
