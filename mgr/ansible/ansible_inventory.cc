#include "mgr/ansible/ansible_inventory.h"

#include <map>
#include <set>

#include "base/quote.h"

namespace clustermgr::mgr {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// True when `s` has 1..max_len characters, the first one alnum or in `first_extra`, the others
// alnum or in `rest_extra`.
bool Matches(std::string_view s, std::size_t max_len, std::string_view first_extra,
             std::string_view rest_extra) {
  if (s.empty() || s.size() > max_len) return false;
  if (!IsAlnum(s[0]) && first_extra.find(s[0]) == std::string_view::npos) return false;
  for (char c : s.substr(1)) {
    if (!IsAlnum(c) && rest_extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// A user-supplied value as shown in an error: JSON-quoted (escapes control characters, quotes
// and invalid UTF-8) and shortened.
std::string Quote(std::string_view value) {
  return clustermgr::Quote(value, {.ascii_only = true, .max_bytes = 64});
}

}  // namespace

bool IsValidNodeName(std::string_view name) { return Matches(name, 253, "_", "_.-"); }

bool IsValidNodeAddr(std::string_view addr) { return Matches(addr, 253, ":", "_.:%-"); }

bool IsValidHostGroup(std::string_view group) { return Matches(group, 128, "_", "_.-"); }

std::string QuoteForMessage(std::string_view value) { return Quote(value); }

InventoryText RenderInventory(std::span<const InventoryHost> hosts) {
  InventoryText out;
  if (hosts.empty()) {
    out.error = "no nodes to run the playbook on";
    return out;
  }
  // group -> node name -> address; ordered maps give the deterministic order.
  std::map<std::string, std::map<std::string, std::string>> groups;
  std::set<std::string> seen;
  for (const InventoryHost& host : hosts) {
    if (!IsValidNodeName(host.name)) {
      out.error = "invalid node name " + Quote(host.name) +
                  ": use 1 to 253 letters, digits, '_', '-', '.', starting with a letter, digit "
                  "or '_'";
      return out;
    }
    if (!IsValidNodeAddr(host.addr)) {
      out.error = "invalid address " + Quote(host.addr) + " for node " + Quote(host.name) +
                  ": use a host name or an IP address";
      return out;
    }
    if (host.groups.empty()) {
      out.error = "node " + Quote(host.name) + " has no host-group";
      return out;
    }
    if (!seen.insert(host.name).second) {
      out.error = "node " + Quote(host.name) + " is listed more than once";
      return out;
    }
    for (const std::string& group : host.groups) {
      if (!IsValidHostGroup(group)) {
        out.error = "invalid host-group " + Quote(group) + " for node " + Quote(host.name) +
                    ": use 1 to 128 letters, digits, '_', '-', '.', starting with a letter, "
                    "digit or '_'";
        return out;
      }
      groups[group][host.name] = host.addr;
    }
  }

  std::string text;
  for (const auto& [group, members] : groups) {
    if (!text.empty()) text += '\n';
    text += '[' + group + "]\n";
    for (const auto& [name, addr] : members) {
      text += name + " ansible_host=" + addr + " ansible_ssh_host=" + addr + " node_name=" + name +
              " node_addr=" + addr + '\n';
    }
  }
  out.text = std::move(text);
  return out;
}

}  // namespace clustermgr::mgr
