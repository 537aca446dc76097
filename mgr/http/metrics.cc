#include "mgr/http/metrics.h"

#include <cmath>
#include <cstdio>

namespace clustermgr::mgr::http {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

std::string Escape(const std::string& value, bool help) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && !help) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

void AppendLabels(std::string* out, const Labels& labels, const std::string* le = nullptr,
                  const std::string* le_value = nullptr) {
  if (labels.empty() && !le) return;
  *out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) *out += ',';
    first = false;
    *out += k + "=\"" + Escape(v, false) + "\"";
  }
  if (le) {
    if (!first) *out += ',';
    *out += *le + "=\"" + *le_value + "\"";
  }
  *out += '}';
}

const char* TypeName(MetricFamily::Type t) {
  switch (t) {
    case MetricFamily::Type::kCounter:
      return "counter";
    case MetricFamily::Type::kHistogram:
      return "histogram";
    case MetricFamily::Type::kGauge:
      break;
  }
  return "gauge";
}

}  // namespace

void Histogram::Observe(double value) {
  ++count_;
  sum_ += value;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++counts_[i];
      return;
    }
  }
}

std::vector<double> LatencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

std::vector<double> SizeBounds() { return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000}; }

std::string RenderPrometheusText(const std::vector<MetricFamily>& families) {
  std::string out;
  const std::string le = "le";
  for (const MetricFamily& f : families) {
    out += "# HELP " + f.name + " " + Escape(f.help, true) + "\n";
    out += "# TYPE " + f.name + " " + TypeName(f.type) + "\n";
    for (const Sample& s : f.samples) {
      out += f.name;
      AppendLabels(&out, s.labels);
      out += " " + Number(s.value) + "\n";
    }
    for (const HistogramSample& h : f.histograms) {
      uint64_t cumulative = 0;
      const Histogram& hist = h.histogram;
      for (size_t i = 0; i < hist.bounds().size(); ++i) {
        cumulative += hist.counts()[i];
        const std::string bound = Number(hist.bounds()[i]);
        out += f.name + "_bucket";
        AppendLabels(&out, h.labels, &le, &bound);
        out += " " + std::to_string(cumulative) + "\n";
      }
      const std::string inf = "+Inf";
      out += f.name + "_bucket";
      AppendLabels(&out, h.labels, &le, &inf);
      out += " " + std::to_string(hist.count()) + "\n";
      out += f.name + "_sum";
      AppendLabels(&out, h.labels);
      out += " " + Number(hist.sum()) + "\n";
      out += f.name + "_count";
      AppendLabels(&out, h.labels);
      out += " " + std::to_string(hist.count()) + "\n";
    }
  }
  return out;
}

}  // namespace clustermgr::mgr::http
