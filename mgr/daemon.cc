#include "mgr/daemon.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <set>
#include <vector>

#include "clustermgr_version.h"
#include "mgr/ansible/extra_vars.h"
#include "mgr/audit/audit_trail.h"
#include "mgr/log/log.h"
#include "mgr/repl/restore.h"
#include "mgr/repl/state_digest.h"

namespace clustermgr::mgr {
namespace {

constexpr auto kTick = std::chrono::milliseconds(100);
// How often the monitor reads the agent's member list beside its (coalesced, so up to seconds
// late) event stream; it reads a large list less often (net/serf_monitor.h).
constexpr auto kSerfMembersPoll = std::chrono::milliseconds(250);

// Entries a delta writes (tombstones included): the size of one store batch.
double EntryCount(const crdt::ClusterState& s) {
  return static_cast<double>(s.globals.size() + s.node_vars.size() + s.host_groups.size() +
                             s.inventory.size() + s.jobs.size() + s.job_logs.size() +
                             s.config.size());
}

}  // namespace

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)),
      election_(
          {options_.name, options_.expect, options_.token_settle_ms, options_.token_contact_ms}),
      stop_(EventFd::CreateOrDie()),
      reload_(EventFd::CreateOrDie()) {}

Daemon::~Daemon() {
  http_.reset();     // its threads wait for answers from this loop: stop them first
  tags_.reset();     // its thread uses the monitor's client
  monitor_.reset();  // no more Serf events
  manager_.reset();
  executor_.reset();    // cancels and joins a running job
  replicator_.reset();  // answers parked replies, so before rpc_
  gossip_.reset();
  rpc_.reset();
  replica_.reset();
}

uint64_t Daemon::NowMs() { return crdt::SystemClock().NowMillis(); }

uint64_t Daemon::SteadyMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void Daemon::Stop() { stop_.Signal(); }
void Daemon::Reload() { reload_.Signal(); }

// Start-up, in order: the log, the store, CURVE, the RPC socket, replication, the manager, Serf,
// the HTTP gateway; then a first election tick.
Status Daemon::Start() {
  SetLogInstance(options_.name);
  LogLevel level;
  if (ParseLogLevel(options_.log_level, &level)) SetLogLevel(level);
  LogFormat format;
  if (ParseLogFormat(options_.log_format, &format)) SetLogFormat(format);

  started_ms_ = NowMs();
  if (Status s = OpenStore(); !s.ok()) return s;
  if (Status s = StartCurve(); !s.ok()) return s;
  if (Status s = StartRpc(); !s.ok()) return s;
  if (Status s = StartReplication(); !s.ok()) return s;
  StartManager();
  StartSerf();
  if (Status s = StartHttp(); !s.ok()) return s;

  // Alone (--expect 1) the first election tick makes this instance the holder at a new epoch
  // before it serves anything, and interrupts what a previous run left behind.
  ElectionTick(NowMs());

  CM_LOG(kInfo) << "clustermgrd " << CLUSTERMGR_VERSION << " serving " << rpc_endpoint_
                << ", gossip " << gossip_->bound_endpoint() << " advertised as "
                << gossip_->endpoint() << " (anti-entropy " << gossip_->anti_entropy_endpoint()
                << ")"
                << " as origin " << replica_->origin() << " (data " << options_.data_dir << ")";
  return Status::Ok();
}

Status Daemon::OpenStore() {
  if (options_.restore_from_peers) {
    auto moved = DiscardDataDir(options_.data_dir, started_ms_);
    if (!moved.ok()) return moved.status();
    if (moved->empty()) {
      CM_LOG(kInfo) << "--restore-from-peers: no local store to discard";
    } else {
      CM_LOG(kWarn) << "--restore-from-peers: moved the local store aside to " << *moved
                    << "; restoring the state from peers";
    }
  }
  auto replica = Replica::Open({options_.name, options_.data_dir, options_.sync,
                                options_.max_clock_offset_ms, options_.delta_log_limit},
                               &physical_);
  if (!replica.ok()) return replica.status();
  replica_ = std::move(replica).value();
  // Run dirs a killed predecessor left behind (they hold merged extra-vars): nothing uses them.
  std::error_code ignored;
  std::filesystem::remove_all(RunsDir(options_), ignored);
  return Status::Ok();
}

Status Daemon::StartRpc() {
  net::RpcServer::Options rpc_options;
  rpc_options.instance_name = options_.name;
  if (options_.curve) {
    rpc_options.curve =
        net::CurveServerConfig{options_.curve->self.secret_key, std::string(net::kZapDomainRpc)};
  }
  auto rpc = net::RpcServer::Bind(context_, options_.rpc_bind, rpc_options);
  if (!rpc.ok()) {
    return Status(Code::kUnavailable,
                  "cannot bind --rpc-bind " + options_.rpc_bind + ": " + rpc.status().message());
  }
  rpc_ = std::move(rpc).value();
  rpc_endpoint_ = rpc_->endpoint();
  return Status::Ok();
}

void Daemon::StartManager() {
  executor_ = std::make_unique<JobExecutor>([this](JobEvent e) { job_mail_.Post(std::move(e)); },
                                            std::chrono::milliseconds(options_.lease_ms()));
  manager_ = std::make_unique<Manager>(
      &options_, replica_.get(), executor_.get(), [this] { return CurrentToken(); },
      [this](const net::ReplyTo& to, net::RpcReply reply) { Reply(to, reply); });
  manager_->SetReplicationView(
      ReplicationView{[this] { return replicator_->Members(NowMs()); },
                      [this](net::StatusInfo* info) { FillReplicationStatus(info); }});
  forwarder_ = std::make_unique<Forwarder>(
      options_.name, [this](ForwardedReply r) { forward_mail_.Post(std::move(r)); },
      options_.curve ? std::optional<net::CurveKeyPair>(options_.curve->self) : std::nullopt);
}

void Daemon::StartSerf() {
  net::SerfClientOptions serf;
  serf.address = options_.serf_rpc;
  serf.auth_key = options_.serf_auth_key;
  // Runs on the Serf client's thread, once per attempt: handled by the loop (HandleSerf), which
  // owns the tag publisher.
  serf.on_connection = [this](const net::SerfConnectionEvent& e) { serf_conn_mail_.Post(e); };
  // Nodes this instance last saw alive: Serf's first member list must account for each of them,
  // or they left while nobody watched.
  std::set<std::string> discovered;
  for (const auto& [name, entry] : replica_->state().inventory.entries()) {
    if (!entry.tombstone() && entry.value->state == crdt::NodeState::kDiscovered) {
      discovered.insert(name);
    }
  }
  monitor_ = std::make_unique<net::SerfMonitor>(
      serf, [this](const net::SerfNodeEvent& e) { serf_mail_.Post(e); }, std::move(discovered),
      kSerfMembersPoll);
  tags_ = std::make_unique<TagPublisher>(&monitor_->client());
  tags_->Set("role", std::string(net::kSerfRoleManager));
  tags_->Set(kTagInstance, options_.name);
  tags_->Set(kTagRpc, rpc_endpoint_);
  tags_->Set(kTagGossip, gossip_->endpoint());
  tags_->Set(kTagEpoch, "0");
  if (options_.curve) tags_->Set(kTagCurve, options_.curve->self.public_key);
}

Status Daemon::StartHttp() {
  if (options_.http_bind.empty()) return Status::Ok();
  http_access_.instance = options_.name;
  http_access_.plain_role =
      net::ParseRole(options_.http_loopback_role).value_or(net::Role::kReader);
  auto gateway = http::Gateway::Start(
      GatewayOptionsOf(options_), [this](http::Call call) { http_mail_.Post(std::move(call)); },
      [](std::string_view text) { return ParseExtraVars(text).error; });
  if (!gateway.ok()) return gateway.status();
  http_ = std::move(gateway).value();
  CM_LOG(kInfo) << "http: serving " << http_->url()
                << (http_->tls() ? " (TLS, client certificates required)" : " (plain HTTP)")
                << ": REST API, /metrics at " << http_->url() << "/metrics, /healthz, /readyz";
  if (!http_->tls() && options_.http_insecure) {
    CM_LOG(kWarn) << "--http-insecure: plain HTTP without authentication on " << http_->address()
                  << "; anyone who reaches it controls the cluster";
  }
  return Status::Ok();
}

Status Daemon::StartCurve() {
  if (!options_.curve) {
    CM_LOG(kWarn) << "--insecure: RPC and gossip are plain TCP without authentication or "
                     "encryption; anyone who can reach "
                  << options_.rpc_bind << " or " << options_.gossip_bind << " controls the cluster";
    return Status::Ok();
  }
  const DaemonCurve& curve = *options_.curve;
  const std::string& self = curve.self.public_key;
  peer_keys_.insert(self);
  for (const net::AllowedKey& k : curve.peers) peer_keys_.insert(k.key);
  // With one other key (or only our own: a cluster sharing one key pair) every peer's server
  // key is known without asking.
  std::set<std::string> others = peer_keys_;
  others.erase(self);
  default_peer_key_ = others.size() == 1 ? *others.begin() : others.empty() ? self : "";
  auto zap = net::ZapHandler::Start(
      context_, {}, [](const std::string& line) { CM_LOG(kWarn) << "curve: " << line; });
  if (!zap.ok()) return zap.status();
  zap_ = std::move(zap).value();
  ApplyAccess(curve);
  CM_LOG(kInfo) << "curve: public key " << self << "; " << curve.clients.size()
                << " client key(s), " << curve.peers.size() << " peer key(s) allowed";
  return Status::Ok();
}

Status Daemon::StartReplication() {
  net::ZmqGossipTransport::Options transport;
  transport.advertise = options_.gossip_advertise;
  if (options_.curve) {
    net::ZmqGossipTransport::Options::Curve curve;
    curve.self = options_.curve->self;
    curve.peer_keys = peer_keys_;
    for (const net::AllowedKey& k : options_.curve->peers) {
      if (!k.endpoint.empty()) curve.endpoint_keys[k.endpoint] = k.key;
    }
    curve.default_key = default_peer_key_;
    transport.curve = std::move(curve);
  }
  transport.drop_share = options_.test_drop_gossip;
  transport.drop_seed = started_ms_;
  if (options_.test_drop_gossip > 0) {
    CM_LOG(kWarn) << "TEST MODE: dropping " << options_.test_drop_gossip * 100
                  << "% of received gossip messages (--test-drop-gossip)";
  }
  auto gossip = net::ZmqGossipTransport::Bind(context_, options_.gossip_bind, transport);
  if (!gossip.ok()) {
    return Status(gossip.status().code(),
                  "cannot bind --gossip-bind " + options_.gossip_bind +
                      " (and the next port, for anti-entropy): " + gossip.status().message());
  }
  gossip_ = std::move(gossip).value();
  ReplicatorOptions r;
  r.rpc_endpoint = rpc_endpoint_;
  r.anti_entropy_ms = options_.anti_entropy_ms;
  r.sync_timeout_ms = std::max<uint64_t>(2 * options_.anti_entropy_ms, 500);
  r.ack_wanted = options_.ack_replicas > 0;
  replicator_ = std::make_unique<Replicator>(r, replica_.get(), gossip_.get());
  for (const std::string& peer : options_.peers) {
    if (Status s = replicator_->AddPeer(peer); !s.ok()) {
      return Status(Code::kInvalidArgument, "--peer " + peer + ": " + s.message());
    }
  }
  replica_->AddBatchObserver(
      [this](const std::vector<crdt::Delta>& d) { replicator_->OnLocalDeltas(d); });
  replica_->AddObserver([this](const crdt::Delta& d) {
    if (d.seq != 0) write_batches_.Observe(EntryCount(d.state));
  });
  return Status::Ok();
}

void Daemon::HandleJobs(uint64_t now_ms) {
  for (JobEvent& e : job_mail_.Drain()) manager_->OnJobEvent(std::move(e), now_ms);
}

void Daemon::ReloadAllowLists(const DaemonOptions& from) {
  if (!options_.curve) return;
  // The lists named now (a --config file may name others than before); our own key stays.
  DaemonOptions paths = options_;
  paths.curve_clients_file = from.curve_clients_file;
  paths.curve_peers_file = from.curve_peers_file;
  auto curve = LoadDaemonCurve(paths);
  if (!curve.ok()) {
    CM_LOG(kError) << "SIGHUP: allow-lists not reloaded (the old ones stay in force): "
                   << curve.status().message();
    return;
  }
  curve->self = options_.curve->self;
  options_.curve_clients_file = paths.curve_clients_file;
  options_.curve_peers_file = paths.curve_peers_file;
  options_.curve->clients = curve->clients;
  options_.curve->peers = curve->peers;
  peer_keys_ = {options_.curve->self.public_key};
  for (const net::AllowedKey& k : curve->peers) peer_keys_.insert(k.key);
  const int closed = ApplyAccess(*curve);
  CM_LOG(kInfo) << "SIGHUP: re-read the allow-lists: " << curve->clients.size()
                << " client key(s), " << curve->peers.size() << " peer key(s); closed " << closed
                << " connection(s) of removed keys";
}

void Daemon::DoReload() {
  if (options_.config_file.empty()) {
    ReloadAllowLists(options_);
    CM_LOG(kInfo) << "SIGHUP: no --config file to re-read";
    return;
  }
  // The same command line again: it still wins over the file, whose other keys may have changed.
  std::vector<const char*> argv;
  for (const std::string& arg : options_.argv) argv.push_back(arg.c_str());
  ParsedOptions parsed = ParseDaemonOptions(static_cast<int>(argv.size()), argv.data());
  if (parsed.exit_now) {
    CM_LOG(kError) << "SIGHUP: config not reloaded: " << parsed.text;
    return;
  }
  ReloadAllowLists(parsed.options);
  // Only what can change without restarting sockets and the store: playbook settings (with the
  // roles dir, --ansible-forks and --node-fencing), extra vars and the log level.
  const DaemonOptions& n = parsed.options;
  options_.playbook_dir = n.playbook_dir.empty() ? options_.playbook_dir : n.playbook_dir;
  options_.configure_playbook = n.configure_playbook;
  options_.cleanup_playbook = n.cleanup_playbook;
  options_.upgrade_playbook = n.upgrade_playbook;
  options_.ansible_user = n.ansible_user;
  options_.ansible_private_key = n.ansible_private_key;
  options_.ansible_forks = n.ansible_forks;
  options_.extra_vars = n.extra_vars;
  options_.allow_extra_vars = n.allow_extra_vars;
  options_.ansible_roles_dir = n.ansible_roles_dir;
  options_.node_fencing = n.node_fencing;
  options_.log_level = n.log_level;
  LogLevel level;
  if (ParseLogLevel(options_.log_level, &level)) SetLogLevel(level);
  CM_LOG(kInfo) << "SIGHUP: re-read " << options_.config_file;
}

void Daemon::FinishRunningJob() {
  if (manager_->running_job().empty()) return;
  manager_->BeginShutdown();
  // The playbook's process group gets SIGTERM, then SIGKILL after the runner's grace period;
  // wait a little longer for the job's end so it is recorded, not left Running.
  const uint64_t deadline = NowMs() + 15'000;
  while (!manager_->running_job().empty() && NowMs() < deadline) {
    zmq::pollitem_t item{nullptr, job_mail_.fd(), ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t&) {
      // EINTR from a second signal: keep waiting until the deadline
    }
    HandleJobs(NowMs());
  }
}

int Daemon::Run() {
  // Ticks are scheduled on the monotonic clock: a wall-clock jump must neither delay them (the
  // lease would lapse) nor bunch them up.
  uint64_t next_tick = SteadyMs();
  // Ready: the store is open and the sockets are bound (Start). The watchdog is fed from this
  // loop's ticks, so a wedged loop gets the service restarted.
  notifier_.Ready("serving RPC on " + rpc_endpoint_);
  for (;;) {
    std::vector<zmq::pollitem_t> items = {
        rpc_->PollItem(),
        {nullptr, job_mail_.fd(), ZMQ_POLLIN, 0},
        {nullptr, serf_mail_.fd(), ZMQ_POLLIN, 0},
        {nullptr, forward_mail_.fd(), ZMQ_POLLIN, 0},
        {nullptr, stop_.fd(), ZMQ_POLLIN, 0},
        {nullptr, reload_.fd(), ZMQ_POLLIN, 0},
        {nullptr, http_mail_.fd(), ZMQ_POLLIN, 0},
        rpc_->ConnectionsPollItem(),  // connection events; HandleRpc handles them
        {nullptr, serf_conn_mail_.fd(), ZMQ_POLLIN, 0},
    };
    gossip_->AppendPollItems(&items);  // SUB, ROUTER and a DEALER per peer
    const uint64_t now = SteadyMs();
    const auto wait = std::chrono::milliseconds(next_tick > now ? next_tick - now : 0);
    try {
      zmq::poll(items.data(), items.size(), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        CM_LOG(kError) << "poll failed: " << e.what();
        return 1;
      }
    }
    const uint64_t now_ms = NowMs();
    if (items[4].revents & ZMQ_POLLIN && stop_.Consume()) {
      CM_LOG(kInfo) << "stopping";
      notifier_.Stopping();
      FinishRunningJob();
      return 0;
    }
    if (items[5].revents & ZMQ_POLLIN && reload_.Consume()) DoReload();
    HandleJobs(now_ms);
    HandleSerf(now_ms);
    HandleForwarded();
    replicator_->Poll(now_ms);
    HandleRpc(now_ms);
    HandleHttp(now_ms);
    if (const uint64_t steady = SteadyMs(); steady >= next_tick) {
      replicator_->Tick(now_ms);
      StoreRecoveryTick(now_ms);
      ElectionTick(now_ms);
      manager_->Tick(now_ms);
      notifier_.Tick(now_ms);
      next_tick = steady + static_cast<uint64_t>(kTick.count());
    }
  }
}

}  // namespace clustermgr::mgr
