// Allow-list files (--curve-clients, --curve-peers): who may connect, under which name and role.
//
// One key per line:
//
//     <Z85 public key> [NAME [ENDPOINT]] [role=reader|operator|admin]
//
// Blank lines and '#' comments (a line starting with '#', or a word starting with '#' after the
// key) are ignored. NAME labels the key in logs, refusals and the audit trail, and is the name a
// non-CURVE gateway maps its own callers to (FindByName). ENDPOINT, on a peers list, is the
// peer's gossip endpoint: it tells a `--peer ENDPOINT` connection which server key to expect.
// `role=` may stand anywhere after the key; a line without it grants admin (net/access.h). A Z85
// key never starts with '#': its first character encodes at most 82 of Z85's 85 symbols.
//
// Errors name the file and line, "FILE:LINE: ...": not a Z85 key, too many words, an unknown
// role, a role given twice, a key listed twice, a name listed twice; and a list with no key.
//
// Thread-safety: pure functions (LoadAllowList reads the file).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/access.h"

namespace clustermgr::net {

struct AllowedKey {
  std::string key;       // Z85 public key
  std::string name;      // optional label
  std::string endpoint;  // optional gossip endpoint of a peer instance
  Role role = Role::kAdmin;
  bool role_given = false;  // the line said role=...
  int line = 0;             // where it was read
};

// Parses the text of an allow-list; `path` only names it in errors. An empty list is an error.
Result<std::vector<AllowedKey>> ParseAllowList(std::string_view text, const std::string& path);

// Reads and parses an allow-list file (at most 1 MiB). Errors: kNotFound / kIoError, and those
// of ParseAllowList (kInvalidArgument).
Result<std::vector<AllowedKey>> LoadAllowList(const std::string& path);

// The entry named `name` (names are unique within a list), or nullptr.
const AllowedKey* FindByName(const std::vector<AllowedKey>& list, std::string_view name);

}  // namespace clustermgr::net
