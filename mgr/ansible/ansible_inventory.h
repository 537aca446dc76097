// The Ansible inventory a playbook run gets: an INI hosts file with one `[group]` section per
// host-group and one line per node (as the predecessor, clusterm, wrote it):
//
//   [service-master]
//   node1 ansible_host=10.0.0.1 ansible_ssh_host=10.0.0.1 node_name=node1 node_addr=10.0.0.1
//
//   [service-worker]
//   node2 ansible_host=10.0.0.2 ansible_ssh_host=10.0.0.2 node_name=node2 node_addr=10.0.0.2
//
// Sections are separated by one empty line, groups come in sorted order and hosts sorted by name
// within a group, so the same input always gives the same bytes. `ansible_ssh_host` is the
// pre-2.0 spelling, kept for older Ansible.
//
// Names, addresses and groups come from users and peers. Each is checked against a small safe
// character set (no whitespace, `=`, quotes, brackets, `:` in groups, `#`, `;`, control
// characters), so nothing can add hosts, variables or sections to the file.
//
// Thread-safety: pure functions, callable from any thread. Nothing here throws.

#ifndef CLUSTERMGR_MGR_ANSIBLE_INVENTORY_H_
#define CLUSTERMGR_MGR_ANSIBLE_INVENTORY_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace clustermgr::mgr {

struct InventoryHost {
  std::string name;                 // node name, e.g. "cluster-node1-0"
  std::string addr;                 // management address (IPv4, IPv6 or host name)
  std::vector<std::string> groups;  // host-groups; duplicates are ignored
};

struct [[nodiscard]] InventoryText {
  std::string text;   // the file contents, ending in "\n"; empty on error
  std::string error;  // empty on success; one line
  bool ok() const { return error.empty(); }
};

// 1..253 characters of [A-Za-z0-9_.-], the first one a letter, digit or '_'.
bool IsValidNodeName(std::string_view name);
// 1..253 characters of [A-Za-z0-9_.:%-] (host names, IPv4, IPv6 with an optional %zone), the
// first one a letter, digit or ':'.
bool IsValidNodeAddr(std::string_view addr);
// 1..128 characters of [A-Za-z0-9_.-], the first one a letter, digit or '_'.
bool IsValidHostGroup(std::string_view group);

// A user-supplied value as error texts show it: JSON-quoted (quotes, backslashes, control
// characters and invalid UTF-8 escaped, so the message stays one line) and cut after 64 bytes
// with "..." appended. A short plain value comes out as "value", as the predecessor quoted it.
std::string QuoteForMessage(std::string_view value);

// Renders the inventory. Errors (the offending value is shown JSON-quoted):
//   * `no nodes to run the playbook on`
//   * `invalid node name <n>: use 1 to 253 letters, digits, '_', '-', '.', starting with a
//      letter, digit or '_'`
//   * `invalid address <a> for node <n>: use a host name or an IP address`
//   * `invalid host-group <g> for node <n>: use 1 to 128 letters, digits, '_', '-', '.',
//      starting with a letter, digit or '_'`
//   * `node <n> has no host-group`
//   * `node <n> is listed more than once`
InventoryText RenderInventory(std::span<const InventoryHost> hosts);

}  // namespace clustermgr::mgr

#endif  // CLUSTERMGR_MGR_ANSIBLE_INVENTORY_H_
