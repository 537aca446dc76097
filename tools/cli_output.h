// How `clustermgr` shows RPC results: human-readable lines and tables, or JSON documents
// (snake_case keys, enums as their names, times as Unix milliseconds, JSON-valued fields such
// as extra-vars embedded as JSON). Pure functions of their arguments; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "net/rpc_types.h"

namespace clustermgr::cli {

using Json = nlohmann::ordered_json;

// JSON text from the daemon as a JSON value: "" -> {}, unparsable -> the text as a string.
Json JsonFromText(const std::string& text);

Json ToJson(const net::NodeInfo& node);
Json ToJson(const net::JobInfo& job);
Json ToJson(const net::JobDetail& detail);  // the job's fields plus first_line and log
Json ToJson(const net::MemberInfo& member);
Json ToJson(const net::TokenInfo& token);
Json ToJson(const net::StatusInfo& status);
template <typename T>
Json ToJsonArray(const std::vector<T>& items) {
  Json array = Json::array();
  for (const auto& item : items) array.push_back(ToJson(item));
  return array;
}

// "2023-11-14T22:13:20.000Z" (UTC); "-" for 0 (not yet).
std::string FormatTime(std::int64_t unix_ms);

// Rows of cells, left-aligned columns two spaces apart, no trailing blanks.
void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

void PrintNode(std::ostream& out, const net::NodeInfo& node);
void PrintNodes(std::ostream& out, const std::vector<net::NodeInfo>& nodes);
void PrintJob(std::ostream& out, const net::JobInfo& job);  // without the log
void PrintJobs(std::ostream& out, const std::vector<net::JobInfo>& jobs);
void PrintMembers(std::ostream& out, const std::vector<net::MemberInfo>& members);
void PrintToken(std::ostream& out, const net::TokenInfo& token);
void PrintStatus(std::ostream& out, const net::StatusInfo& status);
// Audit records (a JSON array, mgr/audit/audit_trail.h), one table row each: time, instance,
// caller (name or key) and role, operation, outcome, request.
void PrintAudit(std::ostream& out, const Json& records);
// A JSON document from the daemon, pretty-printed (verbatim when it does not parse).
void PrintJsonText(std::ostream& out, const std::string& text);

}  // namespace clustermgr::cli
