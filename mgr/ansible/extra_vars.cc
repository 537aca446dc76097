#include "mgr/ansible/extra_vars.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace clustermgr::mgr {
namespace {

using nlohmann::json;

constexpr std::string_view kInvalidJsonPrefix = "\"extra_vars\" should be a valid json. Error: ";

// The parser's message names the exception ("[json.exception.parse_error.101] ..."), which
// means nothing to a user, and may quote raw input bytes. Keep the message, drop the id, and
// replace anything that is not printable ASCII so the error stays one valid UTF-8 line.
std::string ParserDetail(std::string_view what) {
  if (what.starts_with("[json.exception.")) {
    if (auto end = what.find("] "); end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  std::string out;
  out.reserve(what.size());
  for (char c : what) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

// A key as shown in an error: JSON-quoted (so control characters and quotes are escaped and the
// line stays single) and shortened, since the key itself may be huge.
std::string QuoteKey(std::string_view key) {
  constexpr std::size_t kShown = 64;
  bool shortened = key.size() > kShown;
  if (shortened) key = key.substr(0, kShown);
  std::string quoted =
      json(std::string(key)).dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  if (shortened) quoted += "...";
  return quoted;
}

std::string TooLarge(std::size_t size, const ExtraVarsLimits& limits) {
  return "\"extra_vars\" is too large: " + std::to_string(size) + " bytes, the limit is " +
         std::to_string(limits.max_bytes) + " bytes";
}

std::string TooDeep(const ExtraVarsLimits& limits) {
  return "\"extra_vars\" is nested too deeply, the limit is " + std::to_string(limits.max_depth) +
         " levels";
}

std::string NotObject() { return std::string(kInvalidJsonPrefix) + "not a JSON object"; }

// Checks the top-level keys of an object; "" when all are valid.
std::string CheckKeys(const json& object, const ExtraVarsLimits& limits) {
  for (const auto& [key, value] : object.items()) {
    if (!IsValidExtraVarKey(key, limits.max_key_bytes)) {
      return "\"extra_vars\" has an invalid key " + QuoteKey(key) + ": keys are 1 to " +
             std::to_string(limits.max_key_bytes) + " letters, digits, '_', '-', '.'";
    }
  }
  return "";
}

// Nesting depth of a JSON value without recursion (a hostile value could be deep).
int Depth(const json& root) {
  int deepest = 0;
  std::vector<std::pair<const json*, int>> stack{{&root, 1}};
  while (!stack.empty()) {
    auto [value, depth] = stack.back();
    stack.pop_back();
    if (!value->is_structured()) continue;
    if (depth > deepest) deepest = depth;
    for (const auto& child : *value) stack.emplace_back(&child, depth + 1);
  }
  return deepest;
}

bool StartsWithAnsible(std::string_view name) {
  constexpr std::string_view kPrefix = "ansible_";
  if (name.size() < kPrefix.size()) return false;
  for (std::size_t i = 0; i < kPrefix.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kPrefix[i]) return false;
  }
  return true;
}

bool IsManagerVar(std::string_view name) {
  for (const char* v : kManagerVars) {
    if (name == v) return true;
  }
  return false;
}

// A YAML double-quoted scalar holding `text` (valid UTF-8, as nlohmann's strings are), ASCII
// only: printable ASCII as is, everything else escaped by code point.
void AppendYamlString(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back('"');
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::uint32_t cp = c;
    std::size_t len = 1;
    if (c >= 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else if (c >= 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    }
    if (len > 1) {
      if (i + len > text.size()) {
        cp = 0xFFFD;  // a cut sequence (cannot happen with nlohmann's strings)
        len = text.size() - i;
      } else {
        for (std::size_t k = 1; k < len; ++k) {
          cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3Fu);
        }
      }
    } else if (c >= 0x80) {
      cp = 0xFFFD;  // a stray continuation byte
    }
    i += len;
    if (cp == '"' || cp == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(cp));
    } else if (cp >= 0x20 && cp < 0x7F) {
      out->push_back(static_cast<char>(cp));
    } else if (cp <= 0xFFFF) {
      out->append("\\u");
      for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHex[(cp >> shift) & 0xF]);
    } else {
      out->append("\\U");
      for (int shift = 28; shift >= 0; shift -= 4) out->push_back(kHex[(cp >> shift) & 0xF]);
    }
  }
  out->push_back('"');
}

void AppendUnsafeYaml(const json& value, std::string* out) {
  switch (value.type()) {
    case json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, child] : value.items()) {
        if (!first) out->append(", ");
        first = false;
        out->append("!unsafe ");
        AppendYamlString(key, out);
        out->append(": ");
        AppendUnsafeYaml(child, out);
      }
      out->push_back('}');
      return;
    }
    case json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const json& child : value) {
        if (!first) out->append(", ");
        first = false;
        AppendUnsafeYaml(child, out);
      }
      out->push_back(']');
      return;
    }
    case json::value_t::string:
      out->append("!unsafe ");
      AppendYamlString(value.get_ref<const std::string&>(), out);
      return;
    case json::value_t::number_float: {
      // YAML 1.1 (PyYAML) reads "1e+100" as a string: a float needs a '.' before its exponent.
      std::string text = value.dump();
      if (text.find_first_of(".") == std::string::npos) {
        const std::size_t e = text.find_first_of("eE");
        text.insert(e == std::string::npos ? text.size() : e, ".0");
      }
      out->append(text);
      return;
    }
    case json::value_t::null:
      out->append("null");
      return;
    default:  // booleans and integers read back as themselves
      out->append(value.dump());
      return;
  }
}

}  // namespace

bool IsReservedExtraVar(std::string_view name, const std::set<std::string>& allowed) {
  if (IsManagerVar(name)) return true;
  bool reserved = StartsWithAnsible(name);
  for (const char* magic : kAnsibleMagicVars) reserved |= name == magic;
  return reserved && allowed.count(std::string(name)) == 0;
}

std::string CheckReservedExtraVars(const json& vars, const std::set<std::string>& allowed) {
  if (!vars.is_object()) return "";
  for (const auto& [key, value] : vars.items()) {
    if (!IsReservedExtraVar(key, allowed)) continue;
    return "\"extra_vars\" sets the reserved variable " + QuoteKey(key) +
           (IsManagerVar(key) ? ": it is set by clustermgr for every run"
                              : ": clients cannot choose how ansible connects or runs (an "
                                "operator may allow it with --allow-extra-var)");
  }
  return "";
}

std::vector<std::string> DropReservedExtraVars(json* vars, const std::set<std::string>& allowed) {
  std::vector<std::string> dropped;
  if (!vars->is_object()) return dropped;
  for (const auto& [key, value] : vars->items()) {
    if (IsReservedExtraVar(key, allowed)) dropped.push_back(key);
  }
  for (const std::string& key : dropped) vars->erase(key);
  return dropped;
}

std::string ToUnsafeYaml(const json& vars) {
  std::string out;
  AppendUnsafeYaml(vars.is_object() ? vars : json::object(), &out);
  out.push_back('\n');
  return out;
}

json SeparateOperatorVars(const json& operator_vars, json* client) {
  json kept = json::object();
  if (!client->is_object()) *client = json::object();
  if (!operator_vars.is_object()) return kept;
  for (const auto& [key, value] : operator_vars.items()) {
    auto it = client->find(key);
    if (it != client->end() && !it->is_null()) continue;  // a client value wins
    if (it != client->end()) client->erase(it);           // a client null keeps ours
    kept[key] = value;
  }
  return kept;
}

bool IsValidExtraVarKey(std::string_view key, std::size_t max_key_bytes) {
  if (key.empty() || key.size() > max_key_bytes) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

ExtraVarsParse ParseExtraVars(std::string_view text, const ExtraVarsLimits& limits) {
  ExtraVarsParse result;
  if (text.empty()) return result;
  if (text.size() > limits.max_bytes) {
    result.error = TooLarge(text.size(), limits);
    return result;
  }

  // nlohmann's parser is iterative, so depth cannot overflow the stack; the callback only notes
  // that the limit was passed and discards the too-deep value so it costs no memory.
  bool too_deep = false;
  const int max_depth = limits.max_depth;
  json::parser_callback_t on_event = [&too_deep, max_depth](int depth, json::parse_event_t event,
                                                            json&) {
    // The callback's depth of a container's start event is its nesting level minus one.
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth + 1 > max_depth) {
      too_deep = true;
      return false;
    }
    return true;
  };

  json parsed;
  try {
    parsed = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    result.error = std::string(kInvalidJsonPrefix) + ParserDetail(e.what());
    return result;
  }
  // A discarded top-level value comes back as "discarded", which is not an object either.
  if (!parsed.is_object() && !too_deep) {
    result.error = NotObject();
    return result;
  }
  if (too_deep) {
    result.error = TooDeep(limits);
    return result;
  }
  if (std::string keys = CheckKeys(parsed, limits); !keys.empty()) {
    result.error = std::move(keys);
    return result;
  }
  result.vars = std::move(parsed);
  return result;
}

std::string CheckExtraVars(const json& vars, const ExtraVarsLimits& limits) {
  if (!vars.is_object()) return NotObject();
  // Depth first: dump() recurses once per level, so a hostile depth must not reach it.
  if (Depth(vars) > limits.max_depth) return TooDeep(limits);
  std::size_t size = vars.dump(-1, ' ', false, json::error_handler_t::replace).size();
  if (size > limits.max_bytes) return TooLarge(size, limits);
  return CheckKeys(vars, limits);
}

void MergeExtraVarsLayer(json& merged, const json& higher) {
  if (!merged.is_object()) merged = json::object();
  if (!higher.is_object()) return;
  for (const auto& [key, value] : higher.items()) {
    if (value.is_null()) {
      // Null never overrides; it only defines a key nobody below defined.
      if (!merged.contains(key)) merged[key] = nullptr;
      continue;
    }
    merged[key] = value;
  }
}

json MergeExtraVars(const json& config, const json& globals, const json& node,
                    const json& request) {
  json merged = json::object();
  for (const json* layer : {&config, &globals, &node, &request})
    MergeExtraVarsLayer(merged, *layer);
  return merged;
}

RunVars SplitPerHost(const std::map<std::string, json>& merged_by_host) {
  RunVars out;
  if (merged_by_host.empty()) return out;
  const json& first = merged_by_host.begin()->second;
  // Candidates for `common`: the first host's keys that every other host has, equal.
  for (const auto& [key, value] : first.items()) {
    bool everywhere = true;
    for (const auto& [host, vars] : merged_by_host) {
      auto it = vars.find(key);
      if (it == vars.end() || *it != value) {
        everywhere = false;
        break;
      }
    }
    if (everywhere) out.common[key] = value;
  }
  for (const auto& [host, vars] : merged_by_host) {
    json own = json::object();
    for (const auto& [key, value] : vars.items()) {
      if (!out.common.contains(key)) own[key] = value;
    }
    if (!own.empty()) out.per_host[host] = std::move(own);
  }
  return out;
}

RunVars SplitRunVars(std::map<std::string, json> client_by_host, const json& operator_vars) {
  std::map<std::string, json> operator_by_host;
  for (auto& [host, client] : client_by_host) {
    operator_by_host[host] = SeparateOperatorVars(operator_vars, &client);
  }
  RunVars out = SplitPerHost(client_by_host);
  RunVars ours = SplitPerHost(operator_by_host);
  out.operator_common = std::move(ours.common);
  out.operator_per_host = std::move(ours.per_host);
  return out;
}

}  // namespace clustermgr::mgr
