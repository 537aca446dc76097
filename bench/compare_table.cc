#include "bench/compare_table.h"

#include <cstdio>

namespace clustermgr::bench {

namespace {

const std::vector<double>& RunsOf(const Runs& runs, const std::string& key) {
  static const std::vector<double> kNone;
  const auto it = runs.find(key);
  return it == runs.end() ? kNone : it->second;
}

std::string Cell(const Spread& s) {
  return Num(s.median) + " [" + Num(s.min) + " - " + Num(s.max) + "]";
}

}  // namespace

std::string Num(double v) {
  char buf[64];
  if (v >= 100 || v == 0) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (v >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else if (v >= 0.1) {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f", v);
  }
  return buf;
}

std::vector<Line> Compare(const std::vector<Row>& rows, const Runs& a, const Runs& b) {
  std::vector<Line> lines;
  for (const auto& r : rows) {
    Line l{&r, Summarize(RunsOf(a, r.key)), Summarize(RunsOf(b, r.key)), 0, 0, ""};
    l.ratio = l.b.median > 0 ? l.a.median / l.b.median : 0;
    l.advantage = r.higher_is_better ? l.ratio : (l.ratio > 0 ? 1 / l.ratio : 0);
    switch (r.goal) {
      case Row::Goal::kNone:
        break;
      case Row::Goal::kBelow:
        l.met = l.a.median < r.bound ? "met" : "missed";
        break;
      case Row::Goal::kRatioAtMost:
        l.met = l.ratio <= r.bound ? "met" : "missed";
        break;
      case Row::Goal::kRatioAtLeast:
        l.met = l.ratio >= r.bound ? "met" : "missed";
        break;
    }
    lines.push_back(std::move(l));
  }
  return lines;
}

std::string MarkdownTable(const std::vector<Line>& lines, const std::string& a,
                          const std::string& b) {
  std::string md = "| figure | unit | " + a + " | " + b + " | " + a + "/" + b + " | target (" + a +
                   ") | |\n|---|---|---|---|---|---|---|\n";
  for (const auto& l : lines) {
    md += "| " + l.row->label + " | " + l.row->unit + " | " + Cell(l.a) + " | " + Cell(l.b) +
          " | " + Num(l.ratio) + " | " + l.row->target + " | " + l.met + " |\n";
  }
  return md;
}

std::string Csv(const std::vector<Line>& lines, const std::string& a, const std::string& b) {
  std::string csv = "key,figure,unit," + a + "_median," + a + "_min," + a + "_max," + b +
                    "_median," + b + "_min," + b + "_max,ratio,advantage,target,met\n";
  for (const auto& l : lines) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%s,%s,%s,%g,%g,%g,%g,%g,%g,%g,%g,%s,%s\n", l.row->key.c_str(),
                  l.row->label.c_str(), l.row->unit.c_str(), l.a.median, l.a.min, l.a.max,
                  l.b.median, l.b.min, l.b.max, l.ratio, l.advantage, l.row->target.c_str(),
                  l.met.c_str());
    csv += buf;
  }
  return csv;
}

}  // namespace clustermgr::bench
