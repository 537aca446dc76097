#include "net/allow_list.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "net/curve_keys.h"

namespace clustermgr::net {
namespace {

constexpr std::size_t kMaxListBytes = 1 << 20;
constexpr std::string_view kRolePrefix = "role=";

Status Bad(const std::string& path, int line, const std::string& text) {
  return Status(Code::kInvalidArgument, path + ":" + std::to_string(line) + ": " + text);
}

// A word as shown in an error: printable ASCII only, shortened.
std::string Shown(std::string_view word) {
  std::string out;
  for (char c : word.substr(0, 48)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

}  // namespace

Result<std::vector<AllowedKey>> ParseAllowList(std::string_view text, const std::string& path) {
  std::vector<AllowedKey> keys;
  std::set<std::string> seen_keys;
  std::set<std::string> seen_names;
  int n = 0;
  while (!text.empty()) {
    ++n;
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    std::vector<std::string> words;
    std::istringstream in{std::string(line)};
    for (std::string w; in >> w;) {
      if (w[0] == '#') break;
      words.push_back(std::move(w));
    }
    if (words.empty()) continue;
    if (!IsZ85Key(words[0])) {
      return Bad(path, n,
                 "expected a 40-character Z85 public key, got \"" + Shown(words[0]) + "\"");
    }
    AllowedKey k;
    k.key = words[0];
    k.line = n;
    std::vector<std::string> positional;
    for (std::size_t i = 1; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (w.substr(0, kRolePrefix.size()) != kRolePrefix) {
        positional.push_back(words[i]);
        continue;
      }
      if (k.role_given) return Bad(path, n, "role given twice");
      auto role = ParseRole(w.substr(kRolePrefix.size()));
      if (!role) {
        return Bad(path, n,
                   "unknown role \"" + Shown(w.substr(kRolePrefix.size())) +
                       "\": use role=reader, role=operator or role=admin");
      }
      k.role = *role;
      k.role_given = true;
    }
    if (positional.size() > 2) {
      return Bad(path, n, "expected \"KEY [NAME [ENDPOINT]] [role=ROLE]\"");
    }
    if (!positional.empty()) k.name = positional[0];
    if (positional.size() > 1) k.endpoint = positional[1];
    if (!seen_keys.insert(k.key).second) return Bad(path, n, "key listed twice");
    if (!k.name.empty() && !seen_names.insert(k.name).second) {
      return Bad(path, n, "name \"" + Shown(k.name) + "\" listed twice");
    }
    keys.push_back(std::move(k));
  }
  if (keys.empty()) return Status(Code::kInvalidArgument, path + ": lists no key");
  return keys;
}

Result<std::vector<AllowedKey>> LoadAllowList(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return Status(err == ENOENT ? Code::kNotFound : Code::kIoError,
                  "cannot read " + path + ": " + std::strerror(err));
  }
  std::string text;
  char buffer[4096];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxListBytes) {
      return Status(Code::kInvalidArgument, path + ": too large for a key file");
    }
  }
  if (in.bad()) return Status(Code::kIoError, "cannot read " + path);
  return ParseAllowList(text, path);
}

const AllowedKey* FindByName(const std::vector<AllowedKey>& list, std::string_view name) {
  if (name.empty()) return nullptr;
  for (const AllowedKey& k : list) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

}  // namespace clustermgr::net
