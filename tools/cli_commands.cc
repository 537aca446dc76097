// The clustermgr CLI's commands: one handler per command and the table that names them
// (tools/cli_commands.h).
#include "tools/cli_commands.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "net/curve_keys.h"
#include "net/rpc_client.h"
#include "tools/cli.h"
#include "tools/cli_args.h"
#include "tools/cli_endpoints.h"
#include "tools/cli_output.h"
#include "tools/job_progress.h"

namespace clustermgr::cli {

int Fail(std::ostream& err, const std::string& message) {
  err << "clustermgr: " << message << "\n";
  return kExitFailed;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "clustermgr: " << message << "; see 'clustermgr --help'\n";
  return kExitUsage;
}

namespace {

using std::chrono::milliseconds;
// The handlers' Fail(Context&, ...) below would hide it.
using ::clustermgr::cli::Fail;

// How long one `job get -f` long-poll may be parked on the daemon. Each call's deadline is the
// --timeout plus this.
constexpr milliseconds kFollowWait{5000};
// A daemon that answers a long-poll at once with nothing new is not re-asked sooner than this.
constexpr milliseconds kFollowMinInterval{200};

constexpr std::string_view kDefaultKeyFile = "clustermgr.key";

// The exit status of a failed call: whether the server answered decides.
int ExitCodeOf(const Status& e, net::RpcClient::Delivery delivery) {
  if (e.code() == Code::kOutcomeUnknown) return kExitOutcomeUnknown;
  if (delivery != net::RpcClient::Delivery::kAnswered && e.code() == Code::kUnavailable) {
    return kExitUnreachable;
  }
  return kExitFailed;
}

int Fail(Context& c, const Status& e) {
  std::string text = e.message().empty() ? std::string(CodeName(e.code())) : e.message();
  // A CURVE handshake that fails (either side plain, or a key the server does not accept) looks
  // like a server that never answers: say what to check.
  if (e.code() == Code::kUnavailable && text.find("could not connect") != std::string::npos &&
      c.rpc.last_delivery() == net::RpcClient::Delivery::kNotSent) {
    text += c.curve ? " (check --server-key, and that the server lists this client's key)"
                    : " (if the server uses CURVE, pass --server-key and --key)";
  }
  Fail(c.err, text);
  return ExitCodeOf(e, c.rpc.last_delivery());
}

void PrintJson(Context& c, Json j) {
  if (c.tag_endpoint && j.is_object() && !c.rpc.answered().empty()) {
    j["endpoint"] = c.rpc.answered();
  }
  c.out << j.dump(2) << "\n";
}

std::string ExtraVars(const Context& c) { return c.args.extra_vars.value_or(""); }
std::string Group(const Context& c) { return c.args.group.value_or(""); }

// ---- handlers -------------------------------------------------------------------------------

int NodeGet(Context& c) {
  auto r = c.Call([&](net::RpcClient& rpc) { return rpc.NodeGet(c.operands[0]); });
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.json) {
    PrintJson(c, ToJson(r.value()));
  } else {
    PrintNode(c.out, r.value());
  }
  return kExitOk;
}

int NodesGet(Context& c) {
  auto r = c.Call([](net::RpcClient& rpc) { return rpc.NodesGet(); });
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.json) {
    PrintJson(c, ToJsonArray(r.value()));
  } else {
    PrintNodes(c.out, r.value());
  }
  return kExitOk;
}

int FollowJob(Context& c, net::JobDetail detail, bool progress);

int JobStarted(Context& c, const Result<net::JobAccepted>& r) {
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.wait) {
    const std::string id = r.value().job_id;
    if (!c.args.json) c.out << "job " << id << " started; waiting for it to end\n" << std::flush;
    // An instance that forwarded the request to the token holder learns of the job by
    // replication, a moment later: "not found" is asked again until the timeout.
    const auto deadline = std::chrono::steady_clock::now() + c.rpc.timeout();
    auto detail = c.Call([&](net::RpcClient& rpc) { return rpc.JobGet(id); });
    while (!detail.ok() && detail.status().code() == Code::kNotFound &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(kFollowMinInterval);
      detail = c.Call([&](net::RpcClient& rpc) { return rpc.JobGet(id); });
    }
    if (!detail.ok()) return Fail(c, detail.status());
    return FollowJob(c, std::move(detail).value(), /*progress=*/true);
  }
  if (c.args.json) {
    PrintJson(c, Json{{"job_id", r.value().job_id}});
  } else {
    c.out << "job " << r.value().job_id << " started\n";
  }
  return kExitOk;
}

int Commission(Context& c) {
  return JobStarted(c, c.Call([&](net::RpcClient& rpc) {
    return rpc.Commission(c.operands, Group(c), ExtraVars(c));
  }));
}
int Decommission(Context& c) {
  return JobStarted(
      c, c.Call([&](net::RpcClient& rpc) { return rpc.Decommission(c.operands, ExtraVars(c)); }));
}
// --serial N: 1 to 100000 nodes at a time (0 = all at once: the flag left out). Sets *serial, or
// returns a usage error's exit code.
std::optional<int> ParseSerial(Context& c, uint32_t* serial) {
  *serial = 0;
  if (!c.args.serial) return std::nullopt;
  const std::string& text = *c.args.serial;
  char* end = nullptr;
  const unsigned long n = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || text[0] == '-' || n < 1 || n > 100000) {
    return Usage(c.err, "--serial takes a number of nodes from 1 to 100000, not \"" + text + "\"");
  }
  *serial = static_cast<uint32_t>(n);
  return std::nullopt;
}

int Update(Context& c) {
  uint32_t serial = 0;
  if (auto usage = ParseSerial(c, &serial)) return *usage;
  return JobStarted(c, c.Call([&](net::RpcClient& rpc) {
    return rpc.Update(c.operands, Group(c), ExtraVars(c), serial);
  }));
}
int Upgrade(Context& c) {
  uint32_t serial = 0;
  if (auto usage = ParseSerial(c, &serial)) return *usage;
  return JobStarted(c, c.Call([&](net::RpcClient& rpc) {
    return rpc.Upgrade(c.operands, ExtraVars(c), serial);
  }));
}
int Discover(Context& c) {
  return JobStarted(
      c, c.Call([&](net::RpcClient& rpc) { return rpc.Discover(c.operands, ExtraVars(c)); }));
}

int ShowJsonText(Context& c, const Result<std::string>& r) {
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.json) {
    PrintJson(c, JsonFromText(r.value()));
  } else {
    PrintJsonText(c.out, r.value());
  }
  return kExitOk;
}

int Acknowledge(Context& c, const Result<net::Ack>& r, std::string_view what) {
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.json) {
    PrintJson(c, Json{{"ok", true}});
  } else {
    c.out << what << "\n";
  }
  return kExitOk;
}

int GlobalGet(Context& c) {
  return ShowJsonText(c, c.Call([](net::RpcClient& rpc) { return rpc.GlobalGet(); }));
}
int GlobalSet(Context& c) {
  return Acknowledge(c, c.Call([&](net::RpcClient& rpc) { return rpc.GlobalSet(ExtraVars(c)); }),
                     "global extra-vars set");
}
int ConfigGet(Context& c) {
  return ShowJsonText(c, c.Call([](net::RpcClient& rpc) { return rpc.ConfigGet(); }));
}

int ConfigSet(Context& c) {
  const std::string& source = c.operands[0];
  std::string text;
  if (source == "-") {
    std::ostringstream buffer;
    buffer << c.in.rdbuf();
    text = buffer.str();
  } else {
    std::ifstream file(source, std::ios::binary);
    if (!file) return Fail(c.err, "cannot read \"" + source + "\"");
    std::ostringstream buffer;
    buffer << file.rdbuf();
    if (file.bad()) return Fail(c.err, "cannot read \"" + source + "\"");
    text = buffer.str();
  }
  return Acknowledge(c, c.Call([&](net::RpcClient& rpc) { return rpc.ConfigSet(text); }),
                     "configuration set");
}

// How a followed job's log is shown: its lines as they are (`job get -f`), or the progress of
// each host and task (`--wait`).
class LogView {
 public:
  LogView(Context& c, bool progress) : c_(c), progress_(progress) {}
  void Line(const std::string& line) {
    if (c_.args.json) return;
    if (!progress_) {
      c_.out << line << "\n";
      return;
    }
    auto event = progress_state_.Feed(line);
    if (!event) return;
    if (c_.live) {
      block_.Draw(c_.out, progress_state_.Lines());
    } else {
      c_.out << *event << "\n";
    }
  }

 private:
  Context& c_;
  bool progress_;
  JobProgress progress_state_;
  LiveBlock block_;
};

// Shows the log as it arrives until the job ends. Exit 0 only if it completed.
int FollowJob(Context& c, net::JobDetail detail, bool progress) {
  LogView view(c, progress);
  std::uint64_t next = detail.first_line + detail.log_lines.size();
  for (const auto& line : detail.log_lines) view.Line(line);
  c.out.flush();
  net::JobStatus status = detail.job.status;
  std::string error = detail.job.error;
  while (!net::JobEnded(status)) {
    const auto asked = std::chrono::steady_clock::now();
    auto r = c.Call(
        [&](net::RpcClient& rpc) { return rpc.JobLogFollow(detail.job.id, next, kFollowWait); });
    if (!r.ok()) return Fail(c, r.status());
    net::JobLogChunk& chunk = r.value();
    if (chunk.first_line > next) {
      std::string gap = "[... " + std::to_string(chunk.first_line - next) +
                        " log lines dropped by the daemon's cap ...]";
      if (c.args.json) {
        detail.log_lines.push_back(gap);
      } else if (!progress) {
        c.out << gap << "\n";
      }
    }
    for (auto& line : chunk.lines) {
      view.Line(line);
      if (c.args.json) detail.log_lines.push_back(std::move(line));
    }
    c.out.flush();
    next = chunk.first_line + chunk.lines.size();
    if (chunk.ended) {
      status = net::JobEnded(chunk.status) ? chunk.status : net::JobStatus::kComplete;
      error = chunk.error;
      break;
    }
    if (chunk.lines.empty() && std::chrono::steady_clock::now() - asked < kFollowMinInterval) {
      std::this_thread::sleep_for(kFollowMinInterval);  // pacing a daemon that does not park
    }
  }
  detail.job.status = status;
  detail.job.error = error;
  detail.job.log_line_count = next;
  if (c.args.json) {
    PrintJson(c, ToJson(detail));
  } else {
    c.out << "--- job " << detail.job.id << " " << net::ToString(status)
          << (error.empty() ? "" : ": " + error) << " ---\n";
  }
  if (status == net::JobStatus::kComplete) return kExitOk;
  c.err << "clustermgr: job " << detail.job.id << " " << net::ToString(status)
        << (error.empty() ? "" : ": " + error) << "\n";
  return kExitFailed;
}

int JobGet(Context& c) {
  auto r = c.Call([&](net::RpcClient& rpc) { return rpc.JobGet(c.operands[0]); });
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.follow) return FollowJob(c, std::move(r.value()), /*progress=*/false);
  if (c.args.json) {
    PrintJson(c, ToJson(r.value()));
    return kExitOk;
  }
  PrintJob(c.out, r.value().job);
  if (!r.value().log_lines.empty()) {
    c.out << "--- log";
    if (r.value().first_line > 0) c.out << " from line " << r.value().first_line;
    c.out << " ---\n";
    for (const auto& line : r.value().log_lines) c.out << line << "\n";
  }
  return kExitOk;
}

int JobsList(Context& c) {
  auto r = c.Call([](net::RpcClient& rpc) { return rpc.JobsList(); });
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.json) {
    PrintJson(c, ToJsonArray(r.value()));
  } else {
    PrintJobs(c.out, r.value());
  }
  return kExitOk;
}

int JobCancel(Context& c) {
  auto r = c.Call(
      [&](net::RpcClient& rpc) { return rpc.JobCancel(c.operands.empty() ? "" : c.operands[0]); });
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.json) {
    PrintJson(c, Json{{"job_id", r.value()}});
  } else {
    c.out << "job " << r.value() << " cancelled\n";
  }
  return kExitOk;
}

int Members(Context& c) {
  auto r = c.Call([](net::RpcClient& rpc) { return rpc.Members(); });
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.json) {
    PrintJson(c, ToJsonArray(r.value()));
  } else {
    PrintMembers(c.out, r.value());
  }
  return kExitOk;
}

// A loud warning when more manager instances are visible than --expect counts: each side of a
// partition could then hold a quorum of its own. Empty when the count is as configured.
std::string ExpectWarning(const net::TokenInfo& t) {
  if (t.expected_managers == 0 || t.visible_managers <= t.expected_managers) return "";
  return "WARNING: " + std::to_string(t.visible_managers) +
         " manager instances are visible but --expect counts " +
         std::to_string(t.expected_managers) + " (quorum " + std::to_string(t.quorum) +
         "): a partition may elect two token holders; restart every instance with --expect " +
         std::to_string(t.visible_managers);
}

int Token(Context& c) {
  auto r = c.Call([](net::RpcClient& rpc) { return rpc.Token(); });
  if (!r.ok()) return Fail(c, r.status());
  const std::string warning = ExpectWarning(r.value());
  if (c.args.json) {
    Json j = ToJson(r.value());
    if (!warning.empty()) j["warning"] = warning;
    PrintJson(c, j);
  } else {
    PrintToken(c.out, r.value());
    if (!warning.empty()) c.out << warning << "\n";
  }
  if (!warning.empty()) c.err << "clustermgr: " << warning << "\n";
  return kExitOk;
}

// Creates the missing directories above `path`, each 0700 (they will hold secret keys).
// Returns an error message, or "" when every parent exists.
std::string MakeParentDirs(const std::string& path) {
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return "cannot create directory " + dir + ": " + std::strerror(errno);
    }
  }
  return "";
}

int Audit(Context& c) {
  uint32_t count = 0;  // the daemon's default
  if (c.args.count) {
    const std::string& text = *c.args.count;
    char* end = nullptr;
    const unsigned long n = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || end != text.c_str() + text.size() || text[0] == '-' || n < 1 || n > 1000) {
      return Usage(c.err, "-n/--count takes a number from 1 to 1000, not \"" + text + "\"");
    }
    count = static_cast<uint32_t>(n);
  }
  auto r = c.Call([count](net::RpcClient& rpc) { return rpc.AuditList(count); });
  if (!r.ok()) return Fail(c, r.status());
  if (c.args.json) {
    PrintJson(c, JsonFromText(r.value()));
  } else {
    PrintAudit(c.out, JsonFromText(r.value()));
  }
  return kExitOk;
}

int Keygen(Context& c) {
  const std::string path = c.args.out.value_or(std::string(kDefaultKeyFile));
  if (path.empty()) return Fail(c.err, "--out needs a file name");
  auto pair = net::GenerateCurveKeyPair();
  if (!pair.ok()) return Fail(c.err, pair.status().message());
  // The .pub line is labelled with the file's stem, ready to be appended to an allow-list.
  std::string label = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (label.size() > 4 && label.substr(label.size() - 4) == ".key") label.resize(label.size() - 4);
  if (std::string error = MakeParentDirs(path); !error.empty()) return Fail(c.err, error);
  if (Status s = net::WriteKeyPairFiles(path, *pair, label); !s.ok()) {
    return Fail(c.err, s.message());
  }
  if (c.args.json) {
    PrintJson(c, Json{{"public_key", pair->public_key},
                      {"secret_key_file", path},
                      {"public_key_file", path + ".pub"}});
  } else {
    c.out << pair->public_key << "\n"
          << "wrote the key pair to " << path << " (secret, mode 0600) and its public key to "
          << path << ".pub\n";
  }
  return kExitOk;
}

int Status(Context& c) {
  auto r = c.Call([](net::RpcClient& rpc) { return rpc.Status(); });
  if (!r.ok()) return Fail(c, r.status());
  // The same instance's token view says whether --expect undercounts the managers; status
  // still answers when it cannot be had.
  auto token = c.Call([](net::RpcClient& rpc) { return rpc.Token(); });
  const std::string warning = token.ok() ? ExpectWarning(token.value()) : "";
  if (c.args.json) {
    Json j = ToJson(r.value());
    if (!warning.empty()) j["warning"] = warning;
    PrintJson(c, j);
  } else {
    PrintStatus(c.out, r.value());
    if (!warning.empty()) c.out << warning << "\n";
  }
  if (!warning.empty()) c.err << "clustermgr: " << warning << "\n";
  return kExitOk;
}

constexpr Command kCommands[] = {
    {"node get", "NAME", 1, 1, 0, 0, "inventory, monitoring and configuration of a node", NodeGet,
     "node get cluster-node1-0"},
    {"nodes get", "", 0, 0, 0, 0, "the same for every node", NodesGet, "nodes get --json"},
    {"node commission", "NAME -g GROUP [-e JSON] [--wait]", 1, 1, kGroup | kExtraVars | kWait,
     kGroup, "provision a node with the configure playbook", Commission,
     "node commission cluster-node1-0 -g service-master -e '{\"env\":\"prod\"}' --wait"},
    {"nodes commission", "NAME... -g GROUP [-e JSON] [--wait]", 1, -1, kGroup | kExtraVars | kWait,
     kGroup, "provision several nodes", Commission,
     "nodes commission cluster-node1-0 cluster-node2-0 -g service-worker"},
    {"node decommission", "NAME [-e JSON] [--wait]", 1, 1, kExtraVars | kWait, 0,
     "clean a node up with the cleanup playbook", Decommission,
     "node decommission cluster-node1-0 --wait"},
    {"nodes decommission", "NAME... [-e JSON] [--wait]", 1, -1, kExtraVars | kWait, 0,
     "clean several nodes up", Decommission, "nodes decommission cluster-node1-0 cluster-node2-0"},
    {"node update", "NAME [-g GROUP] [-e JSON] [--wait]", 1, 1, kGroup | kExtraVars | kWait, 0,
     "clean up then configure a node; may change its group", Update,
     "node update cluster-node1-0 -g service-worker --wait"},
    {"nodes update", "NAME... [-g GROUP] [-e JSON] [--serial N] [--wait]", 1, -1,
     kGroup | kExtraVars | kWait | kSerial, 0,
     "update several nodes; --serial N: N at a time, the others stay in service", Update,
     "nodes update cluster-node1-0 cluster-node2-0 cluster-node3-0 --serial 1"},
    {"node upgrade", "NAME [-e JSON] [--wait]", 1, 1, kExtraVars | kWait, 0,
     "run the upgrade playbook on an allocated node", Upgrade,
     "node upgrade cluster-node1-0 --wait"},
    {"nodes upgrade", "NAME... [-e JSON] [--serial N] [--wait]", 1, -1,
     kExtraVars | kWait | kSerial, 0,
     "upgrade several nodes; --serial N: N at a time, the others stay in service", Upgrade,
     "nodes upgrade cluster-node1-0 cluster-node2-0 cluster-node3-0 --serial 1 --wait"},
    {"discover", "IP... [-e JSON] [--wait]", 1, -1, kExtraVars | kWait, 0,
     "configure new addresses so that their nodes join", Discover,
     "discover 10.0.0.5 10.0.0.6 --wait"},
    {"global get", "", 0, 0, 0, 0, "show the global extra-vars", GlobalGet, "global get --json",
     true},
    {"global set", "-e JSON", 0, 0, kExtraVars, kExtraVars, "replace the global extra-vars",
     GlobalSet, "global set -e '{\"ntp_server\":\"10.0.0.1\"}'"},
    {"job get", "active|last|ID [-f]", 1, 1, kFollow, 0,
     "a job's status and log; -f follows the live log", JobGet, "job get active -f"},
    {"jobs list", "", 0, 0, 0, 0, "every job", JobsList, "jobs list"},
    {"job cancel", "[ID]", 0, 1, 0, 0, "cancel a job (default: the active one)", JobCancel,
     "job cancel"},
    {"config get", "", 0, 0, 0, 0, "show the runtime Ansible configuration", ConfigGet,
     "config get --json", true},
    {"config set", "FILE|-", 1, 1, 0, 0, "replace it from a JSON file or stdin", ConfigSet,
     "config set ansible.json"},
    {"members", "", 0, 0, 0, 0, "manager instances and their replication state", Members,
     "members -u mgr-1:9007,mgr-2:9007,mgr-3:9007"},
    {"token", "", 0, 0, 0, 0, "who holds the side-effect token, epoch and quorum", Token, "token"},
    {"status", "", 0, 0, 0, 0, "this instance: version, state size, peers, store", Status,
     "status --json"},
    {"audit", "[-n N]", 0, 0, kCount, 0,
     "the newest N (default 50, at most 1000) audit records: who changed what, and the outcome",
     Audit, "audit -n 20"},
    {"keygen", "[--out PATH]", 0, 0, kOut, 0,
     "write a CURVE key pair: PATH (default clustermgr.key; secret, 0600) and PATH.pub", Keygen,
     "keygen --out ~/.config/clustermgr/admin.key"},
};

}  // namespace

std::span<const Command> Commands() { return kCommands; }

bool IsKeygen(const Command& command) { return command.run == Keygen; }

}  // namespace clustermgr::cli
