// clustermgrd's options: command line, and the same keys in a `--config FILE`
// (Boost.Program_options INI syntax: `key = value`, repeatable keys repeated). The command line
// wins over the file. SIGHUP re-reads the file for the keys that may change at run time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "mgr/ansible/ansible_config.h"
#include "mgr/fencing/mode.h"
#include "mgr/http/gateway.h"
#include "net/curve_keys.h"

namespace clustermgr::mgr {

// The CURVE material of an instance, read from the files --curve-key, --curve-clients and
// --curve-peers name (see net/curve_keys.h for their formats).
struct DaemonCurve {
  net::CurveKeyPair self;                // --curve-key
  std::vector<net::AllowedKey> clients;  // --curve-clients: may call RPC
  std::vector<net::AllowedKey> peers;    // --curve-peers: may gossip, and call RPC (forwarding)
};

// Where the package installs the shipped roles (<prefix>/share/clustermgr/roles).
#ifndef CLUSTERMGR_ROLES_DIR
#define CLUSTERMGR_ROLES_DIR "/usr/local/share/clustermgr/roles"
#endif
inline constexpr const char* kDefaultRolesDir = CLUSTERMGR_ROLES_DIR;

struct DaemonOptions {
  std::string name;  // instance id; default: the host name
  std::string data_dir;
  std::string rpc_bind = "tcp://127.0.0.1:9007";
  std::string gossip_bind = "tcp://127.0.0.1:9008";
  std::string gossip_advertise;  // told to peers; empty: --gossip-bind (a wildcard host resolved)
  std::vector<std::string> peers;
  std::string serf_rpc = "127.0.0.1:7373";
  std::string serf_auth_key;
  bool insecure = false;  // plain TCP, no CURVE: only when asked for explicitly
  std::string curve_key_file;
  std::string curve_clients_file;
  std::string curve_peers_file;
  std::optional<DaemonCurve> curve;  // loaded by ParseDaemonOptions unless --insecure
  // The HTTP gateway (mgr/http/gateway.h): off unless http_bind is set.
  std::string http_bind;
  std::string http_tls_cert;
  std::string http_tls_key;
  std::string http_client_ca;
  bool http_insecure = false;  // plain HTTP on a non-loopback --http-bind
  // The role of plain-HTTP callers (loopback, or any address with --http-insecure):
  // reader|operator|admin (mgr/http/http_caller.h).
  std::string http_loopback_role = "admin";
  int expect = 1;
  bool expect_given = false;  // --expect was set (command line or file), not defaulted
  std::string playbook_dir;
  std::string configure_playbook = "site.yml";
  std::string cleanup_playbook = "cleanup.yml";
  std::string upgrade_playbook = "rolling-upgrade.yml";
  std::string ansible_user;
  std::string ansible_private_key;
  // ansible-playbook --forks: hosts a run works on at once (0: Ansible's own default, 5).
  int ansible_forks = 0;
  std::string extra_vars = "{}";  // JSON object: the base layer of every run's extra-vars
  // Reserved extra-var names (mgr/ansible/extra_vars.h) that clients may set all the same.
  std::vector<std::string> allow_extra_vars;
  // Roles shipped with clustermgr (clustermgr_fence), put first in ANSIBLE_ROLES_PATH of every
  // run, so that playbooks name them without copying them.
  std::string ansible_roles_dir = kDefaultRolesDir;
  // Whether playbooks must apply the fencing role (mgr/fencing/playbook_check.h).
  fencing::Mode node_fencing = fencing::Mode::kWarn;
  std::vector<std::string> host_groups = {"service-master", "service-worker"};
  std::string log_level = "info";
  std::string log_format = "auto";  // auto | text | json (see mgr/log/log.h)
  std::string config_file;
  std::vector<std::string> argv;    // the command line these options came from (for SIGHUP)
  bool sync = true;                 // sync every acknowledged write to disk
  bool restore_from_peers = false;  // discard the local store and resync from peers
  int ack_replicas = 0;             // wait for N peers to persist a write before replying
  uint64_t ack_timeout_ms = 5000;   // ... at most this long, then "outcome unknown"
  // Hidden tuning and test options (not in --help):
  uint64_t anti_entropy_ms = 1000;    // anti-entropy round period
  uint64_t delta_log_limit = 10'000;  // deltas kept per origin to catch peers up
  double test_drop_gossip = 0;        // TEST ONLY: share of received gossip messages dropped
  uint64_t max_clock_offset_ms = 500;
  uint64_t token_settle_ms = 4000;  // a token claim holds after this long without a rival
  // The holder's lease: its playbooks are stopped when its event loop has not renewed the lease
  // for this long; then SIGTERM, and SIGKILL after the kill grace. 0: not given,
  // i.e. 3/8 (lease) and 1/2 (kill grace) of token_settle_ms. Rule: settle > lease + grace.
  uint64_t token_lease_ms = 0;
  uint64_t kill_grace_ms = 0;
  uint64_t lease_ms() const { return token_lease_ms ? token_lease_ms : token_settle_ms * 3 / 8; }
  uint64_t grace_ms() const { return kill_grace_ms ? kill_grace_ms : token_settle_ms / 2; }
  // The token counts another manager alive only if replication heard from it within this long
  // (besides Serf calling it alive): a dead or hung daemon beside a live Serf agent loses it.
  uint64_t token_contact_ms = 5000;
};

// The outcome of parsing: run with `options`, or exit at once with `exit_code` after printing
// `text` (help or version on stdout when exit_code is 0; the error on stderr otherwise).
struct ParsedOptions {
  DaemonOptions options;
  bool exit_now = false;
  int exit_code = 0;
  std::string text;
};

// Parses argv (and the --config file it names) and loads the CURVE key files. Errors: exit_code 2
// with one line of text (also: neither --curve-key nor --insecure, both, a key file readable by
// others, a malformed key file).
ParsedOptions ParseDaemonOptions(int argc, const char* const* argv);

// Checks values that parse but cannot work (bad endpoints, expect < 1, --peer without
// --expect, a group list without a
// master or with a group outside the inventory's safe set, extra-vars that are not a JSON
// object). One line per problem.
Status ValidateDaemonOptions(const DaemonOptions& options);

// The gateway's options from the daemon's --http-* (and the sections GET /config shows).
http::GatewayOptions GatewayOptionsOf(const DaemonOptions& options);

// The Ansible configuration the options give, before the replicated `config` section overrides
// it (EffectiveConfig in mgr/ansible/ansible_config.h). An --extra-vars that is not a JSON
// object counts as {} (ValidateDaemonOptions refuses it at start).
AnsibleConfig AnsibleDefaultsOf(const DaemonOptions& options);

// Reads the --curve-* files named in `options`. Errors: those of net/curve_keys.h, prefixed by
// the option ("--curve-key: FILE is readable by others; chmod 600 it").
Result<DaemonCurve> LoadDaemonCurve(const DaemonOptions& options);

}  // namespace clustermgr::mgr
