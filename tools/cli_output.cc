#include "tools/cli_output.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace clustermgr::cli {
namespace {

using net::JobStatus;
using net::NodeStatus;

Json StatusJson(NodeStatus s) {
  if (s == NodeStatus::kUnspecified) return nullptr;
  return std::string(net::ToString(s));
}

Json StatusJson(JobStatus s) {
  if (s == JobStatus::kUnspecified) return nullptr;
  return std::string(net::ToString(s));
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

std::string OrDash(std::string s) { return s.empty() ? "-" : s; }

std::string WithPrevious(std::string_view now, std::string_view before) {
  std::string out(now.empty() ? "-" : now);
  if (!before.empty() && before != now) out += " (was " + std::string(before) + ")";
  return out;
}

// One "Label:  value" line, labels padded to a common width.
void Field(std::ostream& out, std::string_view label, const std::string& value) {
  constexpr std::size_t kWidth = 20;
  std::string l = label.empty() ? "" : std::string(label) + ":";  // empty = continuation line
  out << l << std::string(l.size() < kWidth ? kWidth - l.size() : 1, ' ') << value << "\n";
}

std::string Compact(const std::string& json_text) {
  Json j = JsonFromText(json_text);
  return j.is_string() ? j.get<std::string>() : j.dump();
}

}  // namespace

Json JsonFromText(const std::string& text) {
  if (text.empty()) return Json::object();
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return text;
  return parsed;
}

Json ToJson(const net::NodeInfo& n) {
  Json monitoring = Json::object();
  for (const auto& [key, value] : n.monitoring) monitoring[key] = value;
  return Json{{"name", n.name},
              {"addr", n.addr},
              {"status", StatusJson(n.status)},
              {"state", std::string(net::ToString(n.state))},
              {"prev_status", StatusJson(n.prev_status)},
              {"prev_state", std::string(net::ToString(n.prev_state))},
              {"host_groups", n.host_groups},
              {"monitoring", monitoring},
              {"extra_vars", JsonFromText(n.extra_vars)}};
}

Json HostsJson(const std::vector<net::HostSummary>& hosts) {
  Json out = Json::array();
  for (const net::HostSummary& h : hosts) {
    out.push_back(Json{{"host", h.host},
                       {"ok", h.ok},
                       {"changed", h.changed},
                       {"unreachable", h.unreachable},
                       {"failed", h.failed},
                       {"skipped", h.skipped}});
  }
  return out;
}

Json ToJson(const net::JobInfo& j) {
  return Json{{"id", j.id},
              {"desc", j.desc},
              {"nodes", j.nodes},
              {"status", StatusJson(j.status)},
              {"error", j.error},
              {"epoch", j.epoch},
              {"owner", j.owner},
              {"created_ms", j.created_ms},
              {"started_ms", j.started_ms},
              {"ended_ms", j.ended_ms},
              {"log_line_count", j.log_line_count},
              {"hosts", HostsJson(j.hosts)}};
}

Json ToJson(const net::JobDetail& d) {
  Json j = ToJson(d.job);
  j["first_line"] = d.first_line;
  j["log"] = d.log_lines;
  return j;
}

Json OriginCounts(const std::vector<net::OriginCount>& v) {
  Json out = Json::object();
  for (const auto& e : v) out[e.origin] = e.count;
  return out;
}

std::string Behind(const std::vector<net::OriginCount>& v) {
  std::uint64_t n = 0;
  for (const auto& e : v) n += e.count;
  return std::to_string(n);
}

Json ToJson(const net::MemberInfo& m) {
  return Json{{"name", m.name},
              {"rpc_endpoint", m.rpc_endpoint},
              {"gossip_endpoint", m.gossip_endpoint},
              {"alive", m.alive},
              {"self", m.self},
              {"token_holder", m.token_holder},
              {"lag_deltas", m.lag_deltas},
              {"last_seen_ms", m.last_seen_ms},
              {"lag_by_origin", OriginCounts(m.lag_by_origin)}};
}

Json ToJson(const net::TokenInfo& t) {
  return Json{{"holder", t.holder},
              {"epoch", t.epoch},
              {"highest_epoch", t.highest_epoch},
              {"visible_managers", t.visible_managers},
              {"expected_managers", t.expected_managers},
              {"quorum", t.quorum},
              {"has_quorum", t.has_quorum},
              {"self_holds", t.self_holds},
              {"reason", t.reason}};
}

Json ToJson(const net::StatusInfo& s) {
  Json peers = Json::array();
  for (const auto& p : s.peers) {
    peers.push_back(Json{{"endpoint", p.endpoint},
                         {"name", p.name},
                         {"connected", p.connected},
                         {"last_contact_ms", p.last_contact_ms}});
  }
  Json counters = Json::object();
  for (const auto& c : s.counters) counters[c.name] = c.value;
  return Json{{"name", s.name},
              {"version", s.version},
              {"protocol_version", s.protocol_version},
              {"started_ms", s.started_ms},
              {"rpc_endpoint", s.rpc_endpoint},
              {"gossip_endpoint", s.gossip_endpoint},
              {"state_entries", s.state_entries},
              {"state_bytes", s.state_bytes},
              {"tombstones", s.tombstones},
              {"peers", peers},
              {"data_dir", s.data_dir},
              {"store_ok", s.store_ok},
              {"store_error", s.store_error},
              {"last_anti_entropy_ms", s.last_anti_entropy_ms},
              {"applied", OriginCounts(s.applied)},
              {"state_digest", s.state_digest},
              {"counters", counters}};
}

std::string FormatTime(std::int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return std::string(buf, n) + ms;
}

void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

void PrintNode(std::ostream& out, const net::NodeInfo& n) {
  Field(out, "Name", n.name);
  Field(out, "Address", OrDash(n.addr));
  Field(out, "Status", WithPrevious(net::ToString(n.status), net::ToString(n.prev_status)));
  Field(out, "State", WithPrevious(net::ToString(n.state), net::ToString(n.prev_state)));
  Field(out, "Host-groups", OrDash(Join(n.host_groups, ", ")));
  Field(out, "Extra-vars", Compact(n.extra_vars));
  if (n.monitoring.empty()) {
    Field(out, "Monitoring", "-");
  } else {
    bool first = true;
    for (const auto& [key, value] : n.monitoring) {
      Field(out, first ? "Monitoring" : "", key + "=" + value);
      first = false;
    }
  }
}

void PrintNodes(std::ostream& out, const std::vector<net::NodeInfo>& nodes) {
  if (nodes.empty()) {
    out << "no nodes\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ADDRESS", "STATUS", "STATE", "HOST-GROUPS"}};
  for (const auto& n : nodes) {
    rows.push_back({n.name, OrDash(n.addr), OrDash(std::string(net::ToString(n.status))),
                    std::string(net::ToString(n.state)), OrDash(Join(n.host_groups, ","))});
  }
  PrintTable(out, rows);
}

void PrintJob(std::ostream& out, const net::JobInfo& j) {
  Field(out, "Job", j.id);
  Field(out, "Description", OrDash(j.desc));
  Field(out, "Status", OrDash(std::string(net::ToString(j.status))));
  if (!j.error.empty()) Field(out, "Error", j.error);
  Field(out, "Nodes", OrDash(Join(j.nodes, ", ")));
  Field(out, "Owner", OrDash(j.owner) + " (epoch " + std::to_string(j.epoch) + ")");
  Field(out, "Created", FormatTime(j.created_ms));
  Field(out, "Started", FormatTime(j.started_ms));
  Field(out, "Ended", FormatTime(j.ended_ms));
  Field(out, "Log lines", std::to_string(j.log_line_count));
  if (j.hosts.empty()) return;
  std::size_t clean = 0;
  std::size_t failed = 0;
  std::size_t unreachable = 0;
  std::size_t changed = 0;
  for (const net::HostSummary& h : j.hosts) {
    clean += h.failed == 0 && h.unreachable == 0;
    failed += h.failed > 0;
    unreachable += h.unreachable > 0;
    changed += h.changed > 0;
  }
  Field(out, "Hosts",
        std::to_string(j.hosts.size()) + " (" + std::to_string(clean) + " ok, " +
            std::to_string(failed) + " failed, " + std::to_string(unreachable) + " unreachable, " +
            std::to_string(changed) + " changed)");
  std::vector<std::vector<std::string>> rows = {
      {"HOST", "OK", "CHANGED", "UNREACHABLE", "FAILED", "SKIPPED"}};
  for (const net::HostSummary& h : j.hosts) {
    rows.push_back({h.host, std::to_string(h.ok), std::to_string(h.changed),
                    std::to_string(h.unreachable), std::to_string(h.failed),
                    std::to_string(h.skipped)});
  }
  PrintTable(out, rows);
}

void PrintJobs(std::ostream& out, const std::vector<net::JobInfo>& jobs) {
  if (jobs.empty()) {
    out << "no jobs\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATUS", "CREATED", "ENDED", "NODES", "DESCRIPTION"}};
  for (const auto& j : jobs) {
    rows.push_back({j.id, OrDash(std::string(net::ToString(j.status))), FormatTime(j.created_ms),
                    FormatTime(j.ended_ms), OrDash(Join(j.nodes, ",")), OrDash(j.desc)});
  }
  PrintTable(out, rows);
}

void PrintMembers(std::ostream& out, const std::vector<net::MemberInfo>& members) {
  if (members.empty()) {
    out << "no members\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "RPC", "GOSSIP", "ALIVE", "TOKEN", "LAG", "BEHIND", "LAST-SEEN"}};
  for (const auto& m : members) {
    rows.push_back({m.name + (m.self ? " (self)" : ""), OrDash(m.rpc_endpoint),
                    OrDash(m.gossip_endpoint), m.alive ? "yes" : "no",
                    m.token_holder ? "holder" : "-",
                    m.lag_deltas < 0 ? "?" : std::to_string(m.lag_deltas),
                    m.lag_deltas < 0 && m.lag_by_origin.empty() ? "?" : Behind(m.lag_by_origin),
                    FormatTime(m.last_seen_ms)});
  }
  PrintTable(out, rows);
}

void PrintToken(std::ostream& out, const net::TokenInfo& t) {
  if (t.holder.empty()) {
    Field(out, "Holder", "none");
  } else {
    Field(out, "Holder", t.holder + (t.self_holds ? " (this instance)" : ""));
  }
  Field(out, "Epoch",
        std::to_string(t.epoch) + " (highest issued " + std::to_string(t.highest_epoch) + ")");
  Field(out, "Managers",
        std::to_string(t.visible_managers) + " visible of " + std::to_string(t.expected_managers) +
            " expected");
  Field(out, "Quorum", std::to_string(t.quorum) + (t.has_quorum ? " (reached)" : " (NOT reached)"));
  if (!t.reason.empty()) Field(out, "Reason", t.reason);
}

void PrintStatus(std::ostream& out, const net::StatusInfo& s) {
  Field(out, "Name", s.name);
  Field(out, "Version",
        OrDash(s.version) + " (protocol " + std::to_string(s.protocol_version) + ")");
  Field(out, "Started", FormatTime(s.started_ms));
  Field(out, "RPC endpoint", OrDash(s.rpc_endpoint));
  Field(out, "Gossip endpoint", OrDash(s.gossip_endpoint));
  Field(out, "State",
        std::to_string(s.state_entries) + " entries, " + std::to_string(s.state_bytes) +
            " bytes, " + std::to_string(s.tombstones) + " tombstones");
  Field(out, "Data dir", OrDash(s.data_dir));
  Field(out, "Store", s.store_ok ? "ok" : "FAILED: " + OrDash(s.store_error));
  Field(out, "Last anti-entropy", FormatTime(s.last_anti_entropy_ms));
  if (!s.applied.empty()) {
    std::string applied;
    for (const auto& e : s.applied) {
      applied += (applied.empty() ? "" : ", ") + e.origin + ":" + std::to_string(e.count);
    }
    Field(out, "Applied", applied);
    char digest[32];
    std::snprintf(digest, sizeof digest, "%016llx",
                  static_cast<unsigned long long>(s.state_digest));
    Field(out, "State digest", digest);
  }
  if (s.peers.empty()) {
    Field(out, "Peers", "none");
  } else {
    bool first = true;
    for (const auto& p : s.peers) {
      std::string line = p.endpoint + (p.name.empty() ? "" : " (" + p.name + ")") +
                         (p.connected ? " connected" : " disconnected") + ", last contact " +
                         FormatTime(p.last_contact_ms);
      Field(out, first ? "Peers" : "", line);
      first = false;
    }
  }
}

void PrintJsonText(std::ostream& out, const std::string& text) {
  Json j = JsonFromText(text);
  if (j.is_string() && !text.empty()) {
    out << text << "\n";
  } else {
    out << j.dump(2) << "\n";
  }
}

void PrintAudit(std::ostream& out, const Json& records) {
  if (!records.is_array() || records.empty()) {
    out << "no audit records\n";
    return;
  }
  auto text = [](const Json& r, const char* key) {
    auto it = r.find(key);
    return it != r.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::vector<std::vector<std::string>> rows = {
      {"TIME", "INSTANCE", "CALLER", "ROLE", "OPERATION", "OUTCOME", "REQUEST"}};
  for (const Json& r : records) {
    if (!r.is_object()) continue;
    const auto ms = r.value("ms", std::int64_t{0});
    std::string caller = text(r, "name");
    if (caller.empty()) caller = text(r, "key");
    if (caller.empty()) caller = "-";
    std::string instance = text(r, "instance");
    if (!text(r, "via").empty()) instance += " (via " + text(r, "via") + ")";
    rows.push_back({FormatTime(ms), instance, caller, text(r, "role"), text(r, "operation"),
                    text(r, "outcome"), text(r, "request")});
  }
  PrintTable(out, rows);
}

}  // namespace clustermgr::cli
