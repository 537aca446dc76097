// Fuzzes the allow-list parser (net/allow_list.h): the text of a --curve-clients or --curve-peers
// file, which an operator writes but which names who may do what.
//
// Input: the file's bytes, as is.
// Properties checked beyond "no crash":
//   * an error is one line naming the file ("f:LINE: ..." or "f: lists no key");
//   * a parsed list is non-empty, its keys are Z85 keys and unique, its names unique, its line
//     numbers increasing; a key's role is admin unless the line said role=...;
//   * the list written back as "KEY NAME ENDPOINT role=ROLE" lines parses to the same entries,
//     and FindByName finds every named entry.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "net/allow_list.h"
#include "net/curve_keys.h"

namespace {

using namespace clustermgr::net;  // NOLINT: a fuzz target's whole vocabulary

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseAllowList(text, "f");
  if (!parsed.ok()) {
    const std::string& message = parsed.status().message();
    FUZZ_CHECK(message.rfind("f:", 0) == 0);
    FUZZ_CHECK(message.find('\n') == std::string::npos);
    return 0;
  }
  FUZZ_CHECK(!parsed->empty());
  std::set<std::string> keys, names;
  int last_line = 0;
  std::string again;
  for (const AllowedKey& k : *parsed) {
    FUZZ_CHECK(IsZ85Key(k.key));
    FUZZ_CHECK(keys.insert(k.key).second);
    FUZZ_CHECK(k.name.empty() || names.insert(k.name).second);
    FUZZ_CHECK(k.line > last_line);
    last_line = k.line;
    FUZZ_CHECK(k.role_given || k.role == Role::kAdmin);
    FUZZ_CHECK(ParseRole(RoleName(k.role)) == k.role);
    FUZZ_CHECK(k.endpoint.empty() || !k.name.empty());
    if (!k.name.empty()) FUZZ_CHECK(FindByName(*parsed, k.name) == &k);
    again += k.key;
    for (const std::string* word : {&k.name, &k.endpoint}) {
      if (!word->empty()) again += " " + *word;
    }
    if (k.role_given) again += " role=" + std::string(RoleName(k.role));
    again += "\n";
  }
  auto reparsed = ParseAllowList(again, "f");
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(reparsed->size() == parsed->size());
  for (std::size_t i = 0; i < parsed->size(); ++i) {
    const AllowedKey& a = (*parsed)[i];
    const AllowedKey& b = (*reparsed)[i];
    FUZZ_CHECK(a.key == b.key && a.name == b.name && a.endpoint == b.endpoint && a.role == b.role &&
               a.role_given == b.role_given);
  }
  return 0;
}
