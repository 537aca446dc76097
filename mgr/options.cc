#include "mgr/options.h"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "clustermgr_version.h"
#include "mgr/ansible/ansible_inventory.h"
#include "mgr/ansible/extra_vars.h"
#include "mgr/http/gateway.h"
#include "net/access.h"
#include "net/gossip_endpoint.h"

namespace clustermgr::mgr {
namespace po = boost::program_options;
namespace {

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "clustermgr";
  return buf;
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool ValidEndpoint(const std::string& e) {
  return e.rfind("tcp://", 0) == 0 || e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0;
}

}  // namespace

AnsibleConfig AnsibleDefaultsOf(const DaemonOptions& options) {
  AnsibleConfig c;
  c.playbook_dir = options.playbook_dir;
  c.configure_playbook = options.configure_playbook;
  c.cleanup_playbook = options.cleanup_playbook;
  c.upgrade_playbook = options.upgrade_playbook;
  c.user = options.ansible_user;
  c.private_key = options.ansible_private_key;
  c.forks = options.ansible_forks;
  c.operator_extra_variables = nlohmann::json::parse(options.extra_vars, nullptr, false);
  if (!c.operator_extra_variables.is_object()) {
    c.operator_extra_variables = nlohmann::json::object();
  }
  return c;
}

http::GatewayOptions GatewayOptionsOf(const DaemonOptions& o) {
  http::GatewayOptions g;
  g.bind = o.http_bind;
  g.tls_cert = o.http_tls_cert;
  g.tls_key = o.http_tls_key;
  g.client_ca = o.http_client_ca;
  g.insecure = o.http_insecure;
  g.fixed.serf_addr = o.serf_rpc;
  g.fixed.serf_auth_key = !o.serf_auth_key.empty();
  g.fixed.manager_addr = o.http_bind;
  return g;
}

namespace {

// The options of clustermgrd, grouped for --help (value names say what each option takes), and
// the hidden ones: tuning and fault injection for tests and benchmarks, accepted but not shown.
// They write into `o`, and into the two strings that are converted after parsing.
struct OptionTables {
  po::options_description general{"General"};
  po::options_description network{"Network"};
  po::options_description security{"Security"};
  po::options_description ansible{"Ansible"};
  po::options_description http{"HTTP gateway"};
  po::options_description tuning{"Tuning"};
  po::options_description hidden{"hidden options"};
};

// clang-format off
void DescribeGeneralAndNetwork(DaemonOptions& o, OptionTables& t) {
  t.general.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config", po::value(&o.config_file)->value_name("FILE"),
       "read options from FILE (key = value lines; the command line wins)")
    ("name", po::value(&o.name)->value_name("NAME"), "instance id (default: host name)")
    ("data-dir", po::value(&o.data_dir)->value_name("DIR"),
       "directory of the LevelDB store (created 0700)")
    ("expect", po::value(&o.expect)->default_value(o.expect)->value_name("N"),
       "number of manager instances the cluster is meant to have (quorum = N/2+1); required "
       "with --peer")
    ("log-level", po::value(&o.log_level)->default_value(o.log_level)->value_name("LEVEL"),
       "debug|info|warn|error")
    ("log-format", po::value(&o.log_format)->default_value(o.log_format)->value_name("FORMAT"),
       "auto|text|json: auto is text, or under journald syslog priorities without timestamps")
    ("restore-from-peers", po::bool_switch(&o.restore_from_peers),
       "discard the local store and restore the state from peers");
  t.network.add_options()
    ("rpc-bind", po::value(&o.rpc_bind)->default_value(o.rpc_bind)->value_name("ENDPOINT"),
       "RPC endpoint")
    ("gossip-bind", po::value(&o.gossip_bind)->default_value(o.gossip_bind)
       ->value_name("ENDPOINT"),
       "replication endpoint; further replication sockets use the next ports")
    ("gossip-advertise", po::value(&o.gossip_advertise)->value_name("ENDPOINT"),
       "replication endpoint peers are told to connect to (default: --gossip-bind, a wildcard "
       "host replaced by this host's interface address); its port + 1 must reach the next one")
    ("peer", po::value(&o.peers)->composing()->value_name("ENDPOINT"),
       "another instance's gossip endpoint (repeatable)")
    ("serf-rpc", po::value(&o.serf_rpc)->default_value(o.serf_rpc)->value_name("ADDR"),
       "Serf agent RPC address")
    ("serf-auth-key", po::value(&o.serf_auth_key)->value_name("KEY"), "Serf RPC auth key");
}

void DescribeSecurityAndAnsible(DaemonOptions& o, std::string* host_groups,
                                std::string* node_fencing, OptionTables& t) {
  t.security.add_options()
    ("insecure", po::bool_switch(&o.insecure),
       "plain TCP on RPC and gossip, no CURVE authentication or encryption (anyone who reaches "
       "the ports controls the cluster)")
    ("curve-key", po::value(&o.curve_key_file)->value_name("FILE"),
       "this instance's CURVE secret key file (see 'clustermgr keygen'); required unless "
       "--insecure")
    ("curve-clients", po::value(&o.curve_clients_file)->value_name("FILE"),
       "allow-list of client public keys that may call RPC (one key per line)")
    ("curve-peers", po::value(&o.curve_peers_file)->value_name("FILE"),
       "allow-list of manager instances' public keys: gossip, and RPC for forwarding "
       "(\"KEY [NAME [GOSSIP-ENDPOINT]]\" lines; this instance's own key is implied)");
  t.ansible.add_options()
    ("playbook-dir", po::value(&o.playbook_dir)->value_name("DIR"),
       "directory holding the playbooks")
    ("configure-playbook", po::value(&o.configure_playbook)->default_value(o.configure_playbook)
       ->value_name("FILE"), "playbook that provisions nodes")
    ("cleanup-playbook", po::value(&o.cleanup_playbook)->default_value(o.cleanup_playbook)
       ->value_name("FILE"), "playbook that cleans nodes up")
    ("upgrade-playbook", po::value(&o.upgrade_playbook)->default_value(o.upgrade_playbook)
       ->value_name("FILE"), "playbook that upgrades nodes")
    ("ansible-user", po::value(&o.ansible_user)->value_name("USER"), "ansible --user")
    ("ansible-private-key", po::value(&o.ansible_private_key)->value_name("FILE"),
       "ansible --private-key")
    ("ansible-forks", po::value(&o.ansible_forks)->default_value(o.ansible_forks)
       ->value_name("N"),
       "ansible --forks: how many hosts a playbook run works on at once (0: Ansible's default, "
       "5; a large fleet wants more; the replicated config key ansible.forks overrides it)")
    ("extra-vars", po::value(&o.extra_vars)->default_value(o.extra_vars)->value_name("JSON"),
       "JSON object: base extra-vars of every playbook run (the operator's: ansible templates "
       "them, and they may set any variable)")
    ("allow-extra-var", po::value(&o.allow_extra_vars)->composing()->value_name("NAME"),
       "a reserved variable name (ansible_*, a magic variable) that clients may set in their "
       "extra-vars all the same (repeatable)")
    ("ansible-roles-dir", po::value(&o.ansible_roles_dir)->default_value(o.ansible_roles_dir)
       ->value_name("DIR"),
       "directory of the roles shipped with clustermgr (clustermgr_fence); put first in every "
       "run's ANSIBLE_ROLES_PATH")
    ("node-fencing", po::value(node_fencing)->default_value(*node_fencing)->value_name("MODE"),
       "require|warn|off: require refuses to run a playbook whose plays do not apply the "
       "clustermgr_fence role first, warn runs it and says so in the job log, off checks nothing")
    ("host-groups", po::value(host_groups)->default_value(*host_groups)->value_name("LIST"),
       "comma-separated host-groups; the first is the master group");
}

void DescribeHttpAndTuning(DaemonOptions& o, OptionTables& t) {
  t.http.add_options()
    ("http-bind", po::value(&o.http_bind)->value_name("ADDR:PORT"),
       "serve the REST API, /metrics, /healthz and /readyz over HTTP on ADDRESS:PORT (or PORT "
       "on loopback); off unless given")
    ("http-tls-cert", po::value(&o.http_tls_cert)->value_name("FILE"),
       "HTTPS: the gateway's PEM certificate chain")
    ("http-tls-key", po::value(&o.http_tls_key)->value_name("FILE"),
       "HTTPS: the gateway's PEM private key")
    ("http-client-ca", po::value(&o.http_client_ca)->value_name("FILE"),
       "HTTPS: PEM CA that signs the client certificates the gateway accepts (required with TLS)")
    ("http-insecure", po::bool_switch(&o.http_insecure),
       "allow plain HTTP without client authentication on a non-loopback --http-bind")
    ("http-loopback-role", po::value(&o.http_loopback_role)->default_value(o.http_loopback_role)
       ->value_name("ROLE"),
       "reader|operator|admin: the role of plain-HTTP callers (from loopback, or from anywhere "
       "with --http-insecure); a TLS caller's role is that of the client allow-list line named "
       "by its certificate's subject or CN");
  t.tuning.add_options()
    ("sync", po::value(&o.sync)->default_value(o.sync)->value_name("BOOL"),
       "sync each acknowledged write to disk")
    ("ack-replicas", po::value(&o.ack_replicas)->default_value(o.ack_replicas)->value_name("N"),
       "peers that must persist a write before it is acknowledged")
    ("ack-timeout-ms", po::value(&o.ack_timeout_ms)->default_value(o.ack_timeout_ms)
       ->value_name("MS"),
       "how long a write waits for --ack-replicas peers before it is answered "
       "\"outcome unknown\"")
    ("max-clock-offset-ms", po::value(&o.max_clock_offset_ms)
       ->default_value(o.max_clock_offset_ms)->value_name("MS"),
       "report peer timestamps further ahead of the local clock than this (log, status); "
       "the clock still follows them, so that no later write is lost")
    ("token-settle-ms", po::value(&o.token_settle_ms)->default_value(o.token_settle_ms)
       ->value_name("MS"),
       "a side-effect token claim holds after this long without a rival claim; must exceed "
       "--token-lease-ms + --kill-grace-ms")
    ("token-lease-ms", po::value(&o.token_lease_ms)->value_name("MS"),
       "the holder's playbooks are stopped when its event loop has not renewed its lease for "
       "this long (default: 3/8 of --token-settle-ms)")
    ("kill-grace-ms", po::value(&o.kill_grace_ms)->value_name("MS"),
       "a stopped playbook gets SIGTERM, then SIGKILL after this long (default: 1/2 of "
       "--token-settle-ms)");
  t.hidden.add_options()
    ("anti-entropy-ms", po::value(&o.anti_entropy_ms)->default_value(o.anti_entropy_ms),
       "period of anti-entropy rounds")
    ("token-contact-ms", po::value(&o.token_contact_ms)->default_value(o.token_contact_ms),
       "another manager counts for the token only if heard from by replication within this")
    ("delta-log-limit", po::value(&o.delta_log_limit)->default_value(o.delta_log_limit),
       "recent deltas kept per origin for anti-entropy")
    ("test-drop-gossip", po::value(&o.test_drop_gossip)->default_value(o.test_drop_gossip),
       "TEST ONLY: drop this share (0..1) of received gossip messages");
}
// clang-format on

// After parsing: the strings converted, the options validated, the CURVE keys loaded; `out` set
// to exit with status 2 when one of them is wrong.
void FinishOptions(int argc, const char* const* argv, const std::string& host_groups,
                   const std::string& node_fencing, ParsedOptions& out) {
  DaemonOptions& o = out.options;
  o.argv.assign(argv, argv + argc);
  if (o.name.empty()) o.name = HostName();
  o.host_groups = SplitCommas(host_groups);
  if (auto mode = fencing::ParseMode(node_fencing)) {
    o.node_fencing = *mode;
  } else {
    out.exit_now = true;
    out.exit_code = 2;
    out.text =
        "clustermgrd: --node-fencing must be require, warn or off, not \"" + node_fencing + "\"\n";
    return;
  }
  if (Status s = ValidateDaemonOptions(o); !s.ok()) {
    out.exit_now = true;
    out.exit_code = 2;
    out.text = "clustermgrd: " + s.message() + "\n";
    return;
  }
  if (!o.insecure) {
    auto curve = LoadDaemonCurve(o);
    if (!curve.ok()) {
      out.exit_now = true;
      out.exit_code = 2;
      out.text = "clustermgrd: " + curve.status().message() + "\n";
      return;
    }
    o.curve = std::move(curve).value();
  }
}

}  // namespace

ParsedOptions ParseDaemonOptions(int argc, const char* const* argv) {
  ParsedOptions out;
  DaemonOptions& o = out.options;
  std::string host_groups = "service-master,service-worker";
  std::string node_fencing = "warn";
  OptionTables t;
  DescribeGeneralAndNetwork(o, t);
  DescribeSecurityAndAnsible(o, &host_groups, &node_fencing, t);
  DescribeHttpAndTuning(o, t);
  po::options_description desc;
  desc.add(t.general).add(t.network).add(t.security).add(t.ansible).add(t.http).add(t.tuning);
  po::options_description all;
  all.add(desc).add(t.hidden);
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).run(), vm);
    if (vm.count("help")) {
      std::ostringstream text;
      text << "usage: clustermgrd [options]\n\n"
           << "The clustermgr manager daemon: one per manager host, beside a Serf agent.\n"
           << desc
           << "\nexit status: 0 stopped by SIGTERM/SIGINT, 1 failed at start or while running, 2 "
              "bad options.\n";
      out.exit_now = true;
      out.text = text.str();
      return out;
    }
    if (vm.count("version")) {
      out.exit_now = true;
      out.text = "clustermgrd " CLUSTERMGR_VERSION "\n";
      return out;
    }
    if (vm.count("config")) {
      const std::string file = vm["config"].as<std::string>();
      std::ifstream in(file);
      if (!in) throw std::runtime_error("cannot read config file " + file);
      po::store(po::parse_config_file(in, all), vm);
    }
    po::notify(vm);
    o.expect_given = !vm["expect"].defaulted();
  } catch (const std::exception& e) {
    out.exit_now = true;
    out.exit_code = 2;
    out.text = std::string("clustermgrd: ") + e.what() + " (see --help)\n";
    return out;
  }
  FinishOptions(argc, argv, host_groups, node_fencing, out);
  return out;
}

namespace {

// The store, the sockets, replication and the token (the first checks, in their order).
Status ValidateClusterOptions(const DaemonOptions& o) {
  auto bad = [](std::string text) { return Status(Code::kInvalidArgument, std::move(text)); };
  if (o.data_dir.empty()) return bad("--data-dir is required");
  if (!ValidEndpoint(o.rpc_bind)) return bad("--rpc-bind: not a ZeroMQ endpoint: " + o.rpc_bind);
  if (!ValidEndpoint(o.gossip_bind)) {
    return bad("--gossip-bind: not a ZeroMQ endpoint: " + o.gossip_bind);
  }
  if (!o.gossip_advertise.empty()) {
    if (!ValidEndpoint(o.gossip_advertise) || !net::AntiEntropyEndpoint(o.gossip_advertise).ok()) {
      return bad("--gossip-advertise: not a usable gossip endpoint (tcp://HOST:PORT): " +
                 o.gossip_advertise);
    }
    if (net::ConnectableEndpoint(o.gossip_advertise, "x") != o.gossip_advertise) {
      return bad("--gossip-advertise: a wildcard host cannot be reached: " + o.gossip_advertise);
    }
  }
  for (const auto& p : o.peers) {
    if (!ValidEndpoint(p)) return bad("--peer: not a ZeroMQ endpoint: " + p);
  }
  if (o.expect < 1) return bad("--expect must be at least 1");
  if (o.ansible_forks < 0 || o.ansible_forks > kMaxAnsibleForks) {
    return bad("--ansible-forks must be between 0 and " + std::to_string(kMaxAnsibleForks) +
               ", not " + std::to_string(o.ansible_forks));
  }
  if (!o.peers.empty() && !o.expect_given) {
    return bad(
        "--peer given without --expect: pass --expect N, the number of manager instances "
        "the cluster is meant to have (quorum N/2+1), so that no instance holds a quorum "
        "alone");
  }
  if (o.ack_replicas < 0) return bad("--ack-replicas must not be negative");
  if (o.anti_entropy_ms < 10) return bad("--anti-entropy-ms must be at least 10");
  if (o.token_contact_ms < 2 * o.anti_entropy_ms) {
    return bad("--token-contact-ms must be at least twice --anti-entropy-ms");
  }
  if (o.delta_log_limit < 1) return bad("--delta-log-limit must be at least 1");
  if (o.lease_ms() < 100) return bad("--token-lease-ms must be at least 100");
  if (o.token_settle_ms <= o.lease_ms() + o.grace_ms()) {
    // A deposed holder's playbook must be gone before a new holder's claim holds.
    return bad("--token-settle-ms (" + std::to_string(o.token_settle_ms) +
               ") must exceed --token-lease-ms + --kill-grace-ms (" + std::to_string(o.lease_ms()) +
               " + " + std::to_string(o.grace_ms()) + ")");
  }
  if (!(o.test_drop_gossip >= 0 && o.test_drop_gossip < 1)) {
    return bad("--test-drop-gossip must be a share from 0 to below 1");
  }
  return Status::Ok();
}

// Host-groups and the instance name.
Status ValidateNamingOptions(const DaemonOptions& o) {
  auto bad = [](std::string text) { return Status(Code::kInvalidArgument, std::move(text)); };
  if (o.host_groups.empty()) return bad("--host-groups must name at least the master group");
  for (const auto& g : o.host_groups) {
    // Groups become inventory sections and request arguments: the inventory's safe set.
    if (!IsValidHostGroup(g)) {
      return bad("--host-groups: invalid host-group " + QuoteForMessage(g) +
                 ": use 1 to 128 letters, digits, '_', '-', '.', starting with a letter, digit or "
                 "'_'");
    }
  }
  if (o.name.empty() || o.name.size() > 64 ||
      o.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "._-") != std::string::npos) {
    return bad("--name must be 1-64 characters of letters, digits, '.', '_' or '-': \"" + o.name +
               "\"");
  }
  return Status::Ok();
}

}  // namespace

Status ValidateDaemonOptions(const DaemonOptions& o) {
  auto bad = [](std::string text) { return Status(Code::kInvalidArgument, std::move(text)); };
  if (Status s = ValidateClusterOptions(o); !s.ok()) return s;
  if (Status s = ValidateNamingOptions(o); !s.ok()) return s;
  auto vars = nlohmann::json::parse(o.extra_vars, nullptr, false);
  if (vars.is_discarded() || !vars.is_object()) {
    return bad("--extra-vars must be a JSON object: " + o.extra_vars);
  }
  for (const std::string& name : o.allow_extra_vars) {
    if (!IsValidExtraVarKey(name)) {
      return bad("--allow-extra-var: invalid name " + QuoteForMessage(name));
    }
    if (!IsReservedExtraVar(name)) {
      return bad("--allow-extra-var: " + QuoteForMessage(name) +
                 " is not reserved; clients may set it already");
    }
    for (const char* own : kManagerVars) {
      if (name == own) {
        return bad("--allow-extra-var: " + QuoteForMessage(name) +
                   " is set by clustermgr for every run and cannot be allowed");
      }
    }
  }
  if (o.log_level != "debug" && o.log_level != "info" && o.log_level != "warn" &&
      o.log_level != "error") {
    return bad("--log-level must be debug, info, warn or error");
  }
  if (o.log_format != "auto" && o.log_format != "text" && o.log_format != "json") {
    return bad("--log-format must be auto, text or json");
  }
  if (o.http_bind.empty()) {
    if (!o.http_tls_cert.empty() || !o.http_tls_key.empty() || !o.http_client_ca.empty() ||
        o.http_insecure) {
      return bad(
          "--http-tls-cert, --http-tls-key, --http-client-ca and --http-insecure need "
          "--http-bind");
    }
  } else if (Status s = http::CheckGatewayOptions(GatewayOptionsOf(o)); !s.ok()) {
    return s;
  }
  if (!net::ParseRole(o.http_loopback_role)) {
    return bad("--http-loopback-role must be reader, operator or admin: " +
               QuoteForMessage(o.http_loopback_role));
  }
  // Last, so that the other mistakes of a command line are named first.
  if (o.insecure &&
      !(o.curve_key_file.empty() && o.curve_clients_file.empty() && o.curve_peers_file.empty())) {
    return bad("--insecure excludes --curve-key, --curve-clients and --curve-peers");
  }
  if (!o.insecure && o.curve_key_file.empty()) {
    return bad(
        "no --curve-key: pass --curve-key FILE (see 'clustermgr keygen') or --insecure for plain "
        "TCP");
  }
  return Status::Ok();
}

Result<DaemonCurve> LoadDaemonCurve(const DaemonOptions& o) {
  DaemonCurve curve;
  auto self = net::LoadSecretKeyFile(o.curve_key_file);
  if (!self.ok()) {
    return Status(self.status().code(), "--curve-key: " + self.status().message());
  }
  curve.self = std::move(self).value();
  if (!o.curve_clients_file.empty()) {
    auto clients = net::LoadAllowList(o.curve_clients_file);
    if (!clients.ok()) {
      return Status(clients.status().code(), "--curve-clients: " + clients.status().message());
    }
    curve.clients = std::move(clients).value();
  }
  if (!o.curve_peers_file.empty()) {
    auto peers = net::LoadAllowList(o.curve_peers_file);
    if (!peers.ok()) {
      return Status(peers.status().code(), "--curve-peers: " + peers.status().message());
    }
    curve.peers = std::move(peers).value();
  }
  return curve;
}

}  // namespace clustermgr::mgr
