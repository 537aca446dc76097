// A side-by-side table of two systems' figures, each measured over several runs: the median
// with min and max per system, the ratio of the medians, and whether a target is met; rendered
// as Markdown or CSV (one line per row, in the rows' order).
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/bench_support.h"

namespace clustermgr::bench {

// One figure's runs, by row key ("write_p50", ...).
using Runs = std::map<std::string, std::vector<double>>;

// One figure of the table; `key` names its runs and its CSV line.
struct Row {
  std::string key, label, unit;
  bool higher_is_better = false;
  // A target for the first system: none, an absolute bound on its median, or a bound on
  // the ratio of the medians (first / second).
  enum class Goal { kNone, kBelow, kRatioAtMost, kRatioAtLeast } goal = Goal::kNone;
  double bound = 0;
  std::string target;  // as shown, e.g. "< 5 ms"
};

// A row compared: the summaries of both systems' runs.
struct Line {
  const Row* row;
  Spread a, b;           // the first system's runs, the second's
  double ratio = 0;      // a / b (medians)
  double advantage = 0;  // > 1: a is better than b by this factor
  std::string met;       // "met", "missed" or "" (no target)
};

// One line per row; a key without runs gives zeros.
std::vector<Line> Compare(const std::vector<Row>& rows, const Runs& a, const Runs& b);

// "| figure | unit | <a> | <b> | <a>/<b> | target (<a>) | |" and a line per row.
std::string MarkdownTable(const std::vector<Line>& lines, const std::string& a,
                          const std::string& b);

// key,figure,unit,<a>_median,<a>_min,<a>_max,<b>_median,...,ratio,advantage,target,met. Labels
// must hold no commas (nothing is quoted).
std::string Csv(const std::vector<Line>& lines, const std::string& a, const std::string& b);

// 3 significant digits or so: "1234", "56.7", "0.89", "0.012".
std::string Num(double v);

}  // namespace clustermgr::bench
