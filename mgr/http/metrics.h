// Metrics in the Prometheus text exposition format (version 0.0.4), for GET /metrics.
//
// The daemon's event loop owns every counter; on a scrape it copies them into MetricFamily values
// (cheap: numbers and short label sets) and the gateway's thread renders the text, so the loop
// never builds strings for a scrape. Histogram is the one piece of metric state kept over time:
// a fixed set of bucket bounds and cumulative counts, owned by whoever observes into it.
//
// Thread-safety: none; plain values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clustermgr::mgr::http {

using Labels = std::map<std::string, std::string>;

// A latency or size distribution with fixed upper bounds (ascending; +Inf is implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
    counts_.assign(bounds_.size(), 0);
  }
  void Observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per bucket (not cumulative), same order as bounds().
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// Bounds for request latencies in seconds (100 us .. 10 s).
std::vector<double> LatencyBounds();
// Bounds for counts of things (1 .. 10000).
std::vector<double> SizeBounds();

struct Sample {
  Labels labels;
  double value = 0;
};

struct HistogramSample {
  Labels labels;
  Histogram histogram;
};

// One metric family: every sample shares its name, help and type.
struct MetricFamily {
  enum class Type { kCounter, kGauge, kHistogram };
  std::string name;  // [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total
  std::string help;
  Type type = Type::kGauge;
  std::vector<Sample> samples;              // counters and gauges
  std::vector<HistogramSample> histograms;  // histograms
};

// The text format: "# HELP", "# TYPE" and one line per sample (histograms as _bucket{le=...},
// _sum and _count), label values escaped (\\, \", \n), families in the given order.
std::string RenderPrometheusText(const std::vector<MetricFamily>& families);

}  // namespace clustermgr::mgr::http
