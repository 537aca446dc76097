#include "mgr/audit/audit_trail.h"

#include <algorithm>
#include <tuple>
#include <type_traits>
#include <variant>

namespace clustermgr::mgr {
namespace {

using nlohmann::json;
constexpr std::string_view kPrefix = "audit:";

std::string Cut(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "...(" + std::to_string(text.size()) + " bytes)";
}

constexpr std::string_view kOk = "ok";

// Fills in what a stored record leaves out: the instance (from the log's id), the time (from the
// entry's stamp), empty identity fields, an "ok" outcome.
void Complete(const std::string& instance, const crdt::WriteTag& tag, json* doc) {
  if (!doc->contains("instance")) (*doc)["instance"] = instance;
  if (!doc->contains("ms")) (*doc)["ms"] = tag.stamp.hlc.millis();
  for (const char* field : {"key", "name", "request", "via"}) {
    if (!doc->contains(field)) (*doc)[field] = "";
  }
  if (!doc->contains("outcome")) (*doc)["outcome"] = kOk;
}

std::string List(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return Cut(out + "]", 256);
}

}  // namespace

std::string AuditLogId(const std::string& instance) { return std::string(kPrefix) + instance; }

std::string SummarizeRequest(const net::RpcRequest& request) {
  const std::string text = std::visit(
      [](const auto& r) -> std::string {
        using T = std::decay_t<decltype(r)>;
        auto vars = [](const std::string& v) {
          return v.empty() ? std::string() : " extra_vars=" + v;
        };
        if constexpr (std::is_same_v<T, net::CommissionRequest>) {
          return "names=" + List(r.names) + (r.group.empty() ? "" : " group=" + r.group) +
                 vars(r.extra_vars);
        } else if constexpr (std::is_same_v<T, net::UpdateRequest>) {
          return "names=" + List(r.names) + (r.group.empty() ? "" : " group=" + r.group) +
                 (r.serial == 0 ? "" : " serial=" + std::to_string(r.serial)) + vars(r.extra_vars);
        } else if constexpr (std::is_same_v<T, net::UpgradeRequest>) {
          return "names=" + List(r.names) +
                 (r.serial == 0 ? "" : " serial=" + std::to_string(r.serial)) + vars(r.extra_vars);
        } else if constexpr (std::is_same_v<T, net::DecommissionRequest>) {
          return "names=" + List(r.names) + vars(r.extra_vars);
        } else if constexpr (std::is_same_v<T, net::DiscoverRequest>) {
          return "addrs=" + List(r.addrs) + vars(r.extra_vars);
        } else if constexpr (std::is_same_v<T, net::GlobalSetRequest>) {
          return "extra_vars=" + r.extra_vars;
        } else if constexpr (std::is_same_v<T, net::JobCancelRequest>) {
          return "job=" + (r.job_id.empty() ? std::string("active") : r.job_id);
        } else if constexpr (std::is_same_v<T, net::ConfigSetRequest>) {
          return "config=" + r.config;
        } else if constexpr (std::is_same_v<T, net::NodeGetRequest>) {
          return "name=" + r.name;
        } else if constexpr (std::is_same_v<T, net::JobGetRequest>) {
          return "label=" + r.label;
        } else {
          return "";
        }
      },
      request);
  return Cut(text, kAuditMaxRequestText);
}

std::string Outcome(const net::RpcReply& reply) {
  if (reply.code == Code::kOk) return std::string(kOk);
  return std::string(CodeName(reply.code)) + ": " + Cut(reply.message, 256);
}

void AddAuditRecord(const crdt::ClusterState& base, const AuditRecord& record,
                    crdt::DeltaBuilder* b) {
  const std::string id = AuditLogId(record.instance);
  // The next number: one above the highest this instance wrote (tombstones included, so a
  // number is never reused while its tombstone lives).
  uint64_t next = 0;
  const auto& entries = base.job_logs.entries();
  auto it = entries.lower_bound({id + '\0', 0});
  if (it != entries.begin()) {
    --it;
    if (it->first.first == id) next = it->first.second + 1;
  }
  // Stored without what the entry already says (see the header): it travels with every write.
  json doc = {{"role", std::string(net::RoleName(record.caller.role))},
              {"operation", record.operation}};
  if (record.ms != b->tag().stamp.hlc.millis()) doc["ms"] = record.ms;
  for (const auto& [field, value] : {std::pair<const char*, const std::string&>{"key", record.caller.key},
                                     {"name", record.caller.name},
                                     {"request", record.request},
                                     {"via", record.via}}) {
    if (!value.empty()) doc[field] = value;
  }
  if (record.outcome != kOk) doc["outcome"] = record.outcome;
  b->PutJobLogChunk(id, next, doc.dump(-1, ' ', false, json::error_handler_t::replace));
  if (next >= kAuditKeptPerInstance) {
    const uint64_t old = next - kAuditKeptPerInstance;
    if (base.job_logs.Get({id, old}) != nullptr) b->EraseJobLogChunk(id, old);
  }
}

json ListAudit(const crdt::ClusterState& state, size_t limit) {
  std::vector<std::tuple<uint64_t, std::string, uint64_t, json>> records;
  const auto& entries = state.job_logs.entries();
  for (auto it = entries.lower_bound({std::string(kPrefix), 0});
       it != entries.end() && it->first.first.rfind(kPrefix, 0) == 0; ++it) {
    if (it->second.tombstone()) continue;
    json doc = json::parse(*it->second.value, nullptr, false);
    if (!doc.is_object()) continue;
    Complete(it->first.first.substr(kPrefix.size()), it->second.tag, &doc);
    const uint64_t ms = doc.value("ms", uint64_t{0});
    records.emplace_back(ms, it->first.first, it->first.second, std::move(doc));
  }
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b));
  });
  json out = json::array();
  const size_t from = records.size() > limit ? records.size() - limit : 0;
  for (size_t i = from; i < records.size(); ++i) out.push_back(std::move(std::get<3>(records[i])));
  return out;
}

}  // namespace clustermgr::mgr
