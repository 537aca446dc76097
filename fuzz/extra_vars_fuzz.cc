// Fuzzes what a playbook run is built from (mgr/ansible/extra_vars.h,
// mgr/ansible/ansible_inventory.h): user extra-vars text through ParseExtraVars, the four-layer
// MergeExtraVars, and an inventory of names, addresses and groups through RenderInventory.
//
// Input: consumed with FuzzedDataProvider: four extra-vars texts (config, globals, node,
// request), small or default limits, then up to 8 hosts (name, address, up to 3 groups).
// Properties checked beyond "no crash":
//   * a parsed value is an object within the limits and re-parses from its own dump;
//   * the merge follows its contract key by key (a non-null higher value wins, null never
//     overrides);
//   * an inventory that renders has exactly the lines its hosts imply: nothing user-supplied can
//     add a section, a host or a variable.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "mgr/ansible/ansible_inventory.h"
#include "mgr/ansible/extra_vars.h"

namespace {

using namespace clustermgr::mgr;  // NOLINT: a fuzz target's whole vocabulary
using nlohmann::json;

json Parse(FuzzedDataProvider& in, const ExtraVarsLimits& limits) {
  const std::string text = in.ConsumeRandomLengthString(limits.max_bytes + 16);
  ExtraVarsParse parsed = ParseExtraVars(text, limits);
  FUZZ_CHECK(parsed.vars.is_object());
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.vars.empty());
    FUZZ_CHECK(parsed.error.find('\n') == std::string::npos);
    return json::object();
  }
  // The same rules hold for the value (its compact size may differ from the text's).
  ExtraVarsLimits unbounded = limits;
  unbounded.max_bytes = std::numeric_limits<std::size_t>::max();
  FUZZ_CHECK(CheckExtraVars(parsed.vars, unbounded).empty());
  ExtraVarsParse again = ParseExtraVars(parsed.vars.dump(), unbounded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again.vars == parsed.vars);
  return parsed.vars;
}

void CheckLayer(const json& lower, const json& higher, const json& merged) {
  FUZZ_CHECK(merged.is_object());
  for (const auto& [key, value] : higher.items()) {
    FUZZ_CHECK(merged.contains(key));
    if (!value.is_null()) {
      FUZZ_CHECK(merged.at(key) == value);
    } else if (lower.contains(key)) {
      FUZZ_CHECK(merged.at(key) == lower.at(key));
    } else {
      FUZZ_CHECK(merged.at(key).is_null());
    }
  }
  for (const auto& [key, value] : lower.items()) {
    if (!higher.contains(key)) FUZZ_CHECK(merged.at(key) == value);
  }
  FUZZ_CHECK(merged.size() <= lower.size() + higher.size());
}

void CheckInventory(const std::vector<InventoryHost>& hosts, const InventoryText& out) {
  if (!out.ok()) {
    FUZZ_CHECK(out.text.empty());
    FUZZ_CHECK(!out.error.empty() && out.error.find('\n') == std::string::npos);
    return;
  }
  FUZZ_CHECK(!out.text.empty() && out.text.back() == '\n');
  // Every line is a section header, a blank separator or one host with its four variables.
  size_t host_lines = 0;
  size_t sections = 0;
  std::istringstream lines(out.text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    if (line.front() == '[') {
      FUZZ_CHECK(line.back() == ']');
      FUZZ_CHECK(IsValidHostGroup(line.substr(1, line.size() - 2)));
      ++sections;
      continue;
    }
    std::istringstream words(line);
    std::string name;
    words >> name;
    FUZZ_CHECK(IsValidNodeName(name));
    int vars = 0;
    for (std::string word; words >> word; ++vars) FUZZ_CHECK(word.find('=') != std::string::npos);
    FUZZ_CHECK(vars == 4);
    ++host_lines;
  }
  std::set<std::string> groups;
  size_t memberships = 0;
  for (const InventoryHost& h : hosts) {
    std::set<std::string> own(h.groups.begin(), h.groups.end());
    memberships += own.size();
    groups.insert(own.begin(), own.end());
  }
  FUZZ_CHECK(host_lines == memberships);
  FUZZ_CHECK(sections == groups.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  ExtraVarsLimits limits;
  if (in.ConsumeBool()) {
    limits.max_bytes = in.ConsumeIntegralInRange<size_t>(0, 512);
    limits.max_depth = in.ConsumeIntegralInRange<int>(1, 8);
    limits.max_key_bytes = in.ConsumeIntegralInRange<size_t>(1, 16);
  }
  const json config = Parse(in, limits);
  const json globals = Parse(in, limits);
  const json node = Parse(in, limits);
  const json request = Parse(in, limits);

  json merged = json::object();
  json step = config;
  for (const json* layer : {&globals, &node, &request}) {
    json next = step;
    MergeExtraVarsLayer(next, *layer);
    CheckLayer(step, *layer, next);
    step = std::move(next);
  }
  merged = MergeExtraVars(config, globals, node, request);
  FUZZ_CHECK(merged == step);
  (void)merged.dump();

  std::vector<InventoryHost> hosts(in.ConsumeIntegralInRange<size_t>(0, 8));
  for (InventoryHost& h : hosts) {
    h.name = in.ConsumeRandomLengthString(64);
    h.addr = in.ConsumeRandomLengthString(64);
    h.groups.resize(in.ConsumeIntegralInRange<size_t>(0, 3));
    for (std::string& g : h.groups) g = in.ConsumeRandomLengthString(32);
  }
  CheckInventory(hosts, RenderInventory(hosts));
  return 0;
}
