#include "mgr/daemon.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
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
// Serf events handled per loop turn: a storm of member events is written in slices of this
// many, with requests and replication served in between.
constexpr size_t kSerfEventsPerTurn = 2000;
// How often the monitor reads the agent's member list beside its (coalesced, so up to seconds
// late) event stream; it reads a large list less often (net/serf_monitor.h).
constexpr auto kSerfMembersPoll = std::chrono::milliseconds(250);

void Signal(int fd) {
  uint64_t one = 1;
  ssize_t n = write(fd, &one, sizeof(one));
  (void)n;
}

bool Consume(int fd) {
  uint64_t count = 0;
  return read(fd, &count, sizeof(count)) == sizeof(count) && count > 0;
}

// "ip:port" of a connected TCP socket, "" otherwise.
std::string PeerName(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
    port = ntohs(in->sin6_port);
  } else {
    return "";
  }
  return std::string(host) + ":" + std::to_string(port);
}

constexpr size_t kMaxRememberedConnections = 4096;

uint64_t SteadyMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Entries a delta writes (tombstones included): the size of one store batch.
double EntryCount(const crdt::ClusterState& s) {
  return static_cast<double>(s.globals.size() + s.node_vars.size() + s.host_groups.size() +
                             s.inventory.size() + s.jobs.size() + s.job_logs.size() +
                             s.config.size());
}

}  // namespace

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)),
      election_({options_.name, options_.expect, options_.token_settle_ms, options_.lease_ms()}),
      stop_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      reload_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

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
  close(stop_fd_);
  close(reload_fd_);
}

uint64_t Daemon::NowMs() { return crdt::SystemClock().NowMillis(); }

uint64_t Daemon::SteadyMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void Daemon::Stop() { Signal(stop_fd_); }
void Daemon::Reload() { Signal(reload_fd_); }

Status Daemon::Start() {
  SetLogInstance(options_.name);
  LogLevel level;
  if (ParseLogLevel(options_.log_level, &level)) SetLogLevel(level);
  LogFormat format;
  if (ParseLogFormat(options_.log_format, &format)) SetLogFormat(format);

  started_ms_ = NowMs();
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

  if (Status s = StartCurve(); !s.ok()) return s;
  net::RpcServer::Options rpc_options;
  rpc_options.instance_name = options_.name;
  if (options_.curve) {
    rpc_options.curve =
        net::CurveServerConfig{options_.curve->self.secret_key, std::string(net::kZapDomainRpc)};
  }
  auto rpc = net::RpcServer::Bind(context_, options_.rpc_bind, rpc_options);
  if (!rpc.ok()) {
    return Status(Code::kUnavailable,
                  "cannot bind --rpc-bind " + options_.rpc_bind + ": " + rpc.error().message);
  }
  rpc_ = std::move(rpc).value();
  rpc_endpoint_ = rpc_->endpoint();
  if (Status s = StartReplication(); !s.ok()) return s;

  executor_ = std::make_unique<JobExecutor>([this](JobEvent e) { job_mail_.Post(std::move(e)); },
                                            std::chrono::milliseconds(options_.lease_ms()));
  manager_ = std::make_unique<Manager>(
      &options_, replica_.get(), executor_.get(), [this] { return CurrentToken(); },
      [this](const net::ReplyTo& to, net::RpcReply reply) { Reply(to, reply); });
  manager_->SetReplicationView(ReplicationView{
      [this] { return replicator_->Members(NowMs()); },
      [this](net::StatusInfo* info) {
        info->started_ms = static_cast<int64_t>(started_ms_);
        info->gossip_endpoint = gossip_->endpoint();
        info->peers = replicator_->Peers(NowMs());
        info->last_anti_entropy_ms = static_cast<int64_t>(replicator_->last_anti_entropy_ms());
        const crdt::VersionVector applied = replica_->Applied();
        for (const auto& [origin, seq] : applied.entries()) {
          info->applied.push_back(net::OriginCount{origin, seq});
        }
        info->state_digest = LiveStateDigest(replica_->state());
        const ReplicatorCounters& r = replicator_->counters();
        const net::GossipCounters& g = gossip_->counters();
        info->counters = {{"deltas_published", r.published},
                          {"deltas_received", r.deltas_received},
                          {"deltas_applied", r.deltas_applied},
                          {"deltas_duplicate", r.deltas_duplicate},
                          {"deltas_overflow", r.deltas_overflow},
                          {"gaps", r.gaps},
                          {"syncs_sent", r.syncs_sent},
                          {"syncs_answered", r.syncs_answered},
                          {"snapshots_served", r.snapshots_served},
                          {"snapshots_applied", r.snapshots_applied},
                          {"snapshots_abandoned", r.snapshots_abandoned},
                          {"chunks_applied", r.chunks_applied},
                          {"tombstones_collected", r.tombstones_collected},
                          {"bad_messages", r.bad_messages + g.malformed},
                          {"store_errors", r.store_errors},
                          {"messages_received", g.received},
                          {"bytes_received", g.bytes_received},
                          {"messages_fault_dropped", g.fault_dropped},
                          {"bytes_published", g.bytes_published},
                          {"bytes_sent", g.bytes_sent},
                          {"clock_refusals", replica_->clock_refusals()},
                          {"clock_skew_ms", replica_->clock_skew_ms()},
                          {"rpc_connections", rpc_->connections().open()},
                          {"rpc_connections_refused", rpc_->connections().refused()}};
      }});

  forwarder_ = std::make_unique<Forwarder>(
      options_.name, [this](ForwardedReply r) { forward_mail_.Post(std::move(r)); },
      options_.curve ? std::optional<net::CurveKeyPair>(options_.curve->self) : std::nullopt);

  net::SerfClientOptions serf;
  serf.address = options_.serf_rpc;
  serf.auth_key = options_.serf_auth_key;
  serf.on_connection = [this](const net::SerfConnectionEvent& e) {
    // Runs on the Serf client's thread, once per attempt: log changes only.
    // The first attempt is always reported (a wrong auth key or address says so at once).
    const bool first = !serf_reported_.exchange(true);
    if (serf_connected_.exchange(e.connected) == e.connected && !first) return;
    if (e.connected) {
      CM_LOG(kInfo) << "serf: connected to " << options_.serf_rpc;
      if (tags_) tags_->Resync();  // the agent may have restarted and forgotten our tags
    } else {
      CM_LOG(kWarn) << "serf: not connected (retrying): " << e.reason.ToString();
    }
  };
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

  if (!options_.http_bind.empty()) {
    http_access_.instance = options_.name;
    http_access_.plain_role = net::ParseRole(options_.http_loopback_role).value_or(net::Role::kReader);
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
  }

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

int Daemon::ApplyAccess(const DaemonCurve& curve) {
  net::ZapHandler::Policy policy;
  std::map<std::string, net::Caller> callers;
  const std::string& self = options_.curve->self.public_key;
  // Instances are admins: they forward their callers' requests, named in the request.
  callers[self] = net::Caller{self, options_.name, net::Role::kAdmin};
  for (const net::AllowedKey& k : curve.peers) {
    callers[k.key] = net::Caller{k.key, k.name, net::Role::kAdmin};
    policy.gossip_keys.insert(k.key);
  }
  policy.gossip_keys.insert(self);
  for (const net::AllowedKey& k : curve.clients) {
    if (!callers.count(k.key)) callers[k.key] = net::Caller{k.key, k.name, k.role};
  }
  for (const auto& [key, caller] : callers) {
    policy.rpc_keys.insert(key);
    if (!caller.name.empty()) policy.names[key] = caller.name;
  }
  zap_->SetPolicy(std::move(policy));
  callers_ = std::move(callers);
  if (!options_.curve_clients_file.empty()) http_access_.clients = curve.clients;
  int closed = 0;
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (callers_.count(it->second.key)) {
      ++it;
      continue;
    }
    // Only while the descriptor still is the connection we saw (libzmq may have reused it).
    if (PeerName(it->first) == it->second.peer && net::CloseConnection(it->first)) ++closed;
    it = connections_.erase(it);
  }
  return closed;
}

void Daemon::NoteConnection(int fd, const std::string& key) {
  if (fd < 0 || key.empty()) return;
  auto it = connections_.find(fd);
  if (it != connections_.end() && it->second.key == key) return;
  if (connections_.size() >= kMaxRememberedConnections) connections_.clear();
  connections_[fd] = SeenConnection{key, PeerName(fd)};
}

Result<net::Caller> Daemon::Identify(const net::IncomingRequest& in) const {
  auto forwarded = [&]() -> Result<net::Caller> {
    const net::ForwardedCaller& f = in.forwarded_caller;
    // An instance older than roles forwards no caller; it let every listed key do everything.
    if (f.role.empty()) return net::Caller{f.key, f.name, net::Role::kAdmin};
    auto role = net::ParseRole(f.role);
    if (!role) {
      return Status(Code::kInvalidArgument,
                    "the request forwarded by " + in.forwarded_by + " names no valid caller role");
    }
    return net::Caller{f.key, f.name, *role};
  };
  // Resolved by HandleHttp (mgr/http/http_caller.h).
  if (in.reply_to.gateway) return in.gateway_caller;
  if (!options_.curve) {
    if (!in.forwarded_by.empty()) return forwarded();
    return net::Caller{};  // plain TCP: no identities, everyone is an admin
  }
  auto it = callers_.find(in.caller_key);
  if (it == callers_.end()) {
    return Status(Code::kFailedPrecondition,
                  "key " + in.caller_key + " is no longer in the allow-lists of " + options_.name);
  }
  if (in.forwarded_by.empty()) return it->second;
  if (!peer_keys_.count(in.caller_key)) {
    return Status(Code::kFailedPrecondition, net::Describe(it->second) +
                                                 " is not a manager instance and may not forward "
                                                 "requests");
  }
  return forwarded();
}

void Daemon::Audit(const net::Caller& caller, const net::RpcRequest& request,
                   const std::string& via, const net::RpcReply& reply, uint64_t now_ms) {
  AuditRecord record;
  record.ms = now_ms;
  record.instance = options_.name;
  record.caller = caller;
  record.operation = std::string(net::OperationName(request));
  record.request = SummarizeRequest(request);
  record.outcome = Outcome(reply);
  record.via = via;
  auto written = replica_->Write(
      [&](crdt::DeltaBuilder& b) { AddAuditRecord(replica_->state(), record, &b); });
  if (!written.ok()) {
    CM_LOG(kError) << "audit: record not stored: " << written.status().message();
  }
}

std::string Daemon::PeerServerKey(const std::string& instance) const {
  if (!options_.curve) return "";
  auto it = manager_keys_.find(instance);
  return it != manager_keys_.end() ? it->second : default_peer_key_;
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
  replica_->AddObserver([this](const crdt::Delta& d) { replicator_->OnLocalDelta(d); });
  replica_->AddObserver([this](const crdt::Delta& d) {
    if (d.seq != 0) write_batches_.Observe(EntryCount(d.state));
  });
  return Status::Ok();
}

std::map<std::string, ManagerSighting> Daemon::CountableManagers(uint64_t now_ms) {
  // Without a connection to our own Serf agent we cannot see anyone: count nobody.
  if (!serf_connected_) return {};
  // Serf's "alive" is the agent's, not the daemon's: a crashed or hung clustermgrd beside a live
  // agent keeps its tags. And any agent that joins Serf can carry manager tags. So a member
  // counts only while replication hears, at the gossip endpoint the member gives, from the
  // instance the member names (every anti-entropy round answers): a dead daemon's token moves
  // on without waiting for a restart, and an impostor counts for nothing.
  std::map<std::string, ManagerSighting> out;
  std::set<std::string> silent;  // members alive in Serf but not counted
  for (auto& [member, seen] : managers_seen_) {
    ManagerSighting m = seen.sighting;
    uint64_t tag_epoch = 0;
    if (!seen.epoch_tag.empty()) {
      if (auto epoch = ParseEpochTag(seen.epoch_tag)) {
        tag_epoch = *epoch;
      } else if (warned_members_.insert(member).second) {
        CM_LOG(kWarn) << "token: Serf member " << member << " (instance " << seen.instance
                      << ") has an epoch tag that is not a plain decimal: \"" << seen.epoch_tag
                      << "\"; ignored";
      }
    }
    if (m.alive) {
      const auto heard = replicator_->HeardThroughMember(member);
      const bool counted =
          heard && heard->name == seen.instance &&
          now_ms - std::min(now_ms, heard->last_contact_ms) <= options_.token_contact_ms;
      if (counted) {
        m.behind_it = !replicator_->CaughtUpWith(seen.instance);
        seen.counted_epoch = std::max(seen.counted_epoch, tag_epoch);
      } else {
        m.alive = false;
        silent.insert(member);
      }
    }
    // A counted member's claim is its tag; one that does not count (any more) weighs with what
    // it claimed while it did: a failed holder's epoch was used, an impostor's never was.
    m.epoch = m.alive ? tag_epoch : seen.counted_epoch;
    // One sighting per instance: a counted member wins over any other that names it.
    auto [it, added] = out.try_emplace(seen.instance, m);
    if (!added && m.alive && !it->second.alive) it->second = m;
  }
  for (const std::string& member : silent) {
    if (!silent_managers_.count(member)) {
      CM_LOG(kInfo) << "token: manager " << managers_seen_.at(member).instance << " (Serf member "
                    << member << ") is alive in Serf but replication has not heard from it "
                    << "at its gossip endpoint for " << options_.token_contact_ms
                    << " ms: not counted";
    }
  }
  for (const std::string& member : silent_managers_) {
    auto it = managers_seen_.find(member);
    if (!silent.count(member) && it != managers_seen_.end() && it->second.sighting.alive) {
      CM_LOG(kInfo) << "token: manager " << it->second.instance << " (Serf member " << member
                    << ") is heard from again: counted";
    }
  }
  silent_managers_ = std::move(silent);
  return out;
}

void Daemon::StoreRecoveryTick(uint64_t now_ms) {
  const Status failed = replica_->store().write_error();
  if (failed.ok()) return;
  if (store_failed_ms_ == 0) {
    store_failed_ms_ = std::max<uint64_t>(now_ms, 1);
    next_store_retry_ms_ = now_ms + 1000;
    CM_LOG(kError) << "store: a write failed (" << failed.message()
                   << "); standing down from the side-effect token and retrying every second";
    election_.SetUnfit("its store refuses writes (" + failed.message() + ")");
    return;
  }
  if (now_ms < next_store_retry_ms_) return;
  next_store_retry_ms_ = now_ms + 1000;
  if (Status s = replica_->Recover(); !s.ok()) {
    CM_LOG(kDebug) << "store: still not writable: " << s.message();
    return;
  }
  CM_LOG(kInfo) << "store: writable again after " << now_ms - store_failed_ms_
                << " ms; the instance takes part in the token election again";
  store_failed_ms_ = 0;
  election_.SetUnfit("");
}

TokenStatus Daemon::CurrentToken() const {
  TokenStatus token = election_.Status();
  const uint64_t recorded = replica_->state().token_epoch.value();
  if (token.self_holds && recorded > token.epoch) {
    token.self_holds = false;
    token.why_not = "a newer token epoch " + std::to_string(recorded) +
                    " is recorded; this instance's epoch " + std::to_string(token.epoch) +
                    " stands down";
  } else if (token.self_holds && !election_.LeaseCurrent(SteadyMs())) {
    // The loop did not tick for longer than the lease (the process was stopped or starved):
    // what waited meanwhile is handled before the next tick, which gives the token up.
    token.self_holds = false;
    token.why_not = "this instance's lease lapsed (its event loop did not run for longer than " +
                    std::to_string(options_.lease_ms()) + " ms); it re-checks the token";
  }
  return token;
}

void Daemon::ElectionTick(uint64_t now_ms) {
  election_.SetManagers(CountableManagers(now_ms));
  // A restarted daemon's own agent may still carry the epoch its previous run claimed: that
  // epoch was used, so it counts like the replicated register (if believable).
  const uint64_t register_epoch = replica_->state().token_epoch.value();
  const uint64_t highest =
      own_tag_epoch_ - std::min(own_tag_epoch_, register_epoch) <= TokenElection::kMaxEpochLead
          ? std::max(register_epoch, own_tag_epoch_)
          : register_epoch;
  const TokenElection::Actions act = election_.Tick(SteadyMs(), highest);
  if (!act.reason.empty()) CM_LOG(kInfo) << "token: " << act.reason;
  // More managers alive than --expect counts: two sides of a partition could each hold a
  // quorum. Said loudly, once per new count.
  const int visible = election_.Status().visible;
  if (visible > options_.expect && visible != undercount_logged_) {
    CM_LOG(kWarn) << "WARNING: " << visible << " manager instances are visible but --expect is "
                  << options_.expect << " (quorum " << options_.expect / 2 + 1
                  << "): a partition may elect two token holders; restart every instance with "
                     "--expect "
                  << visible;
    undercount_logged_ = visible;
  } else if (visible <= options_.expect) {
    undercount_logged_ = 0;
  }
  if (act.record_epoch) {
    const uint64_t epoch = *act.record_epoch;
    auto written = replica_->Write([&](crdt::DeltaBuilder& b) { b.RaiseEpoch(epoch); }, epoch);
    if (!written.ok()) CM_LOG(kError) << "token: epoch not stored: " << written.status().message();
  }
  if (act.publish_epoch) tags_->Set(kTagEpoch, std::to_string(*act.publish_epoch));
  if (act.lost_holder) {
    executor_->EndLease();
    manager_->CancelRunningJob();
  }
  // The lease: renewed on every tick while this instance may act. Should this loop stop (the
  // process stopped, wedged, starved), renewals stop and the running playbook's guard stops it
  // within the lease, before another instance's claim can hold (settle > lease + kill grace).
  if (CurrentToken().self_holds) {
    executor_->RenewLease();
  } else {
    executor_->EndLease();
  }
  if (act.became_holder) {
    // Serf events that came while nobody held the token were not applied: apply what Serf shows,
    // as one delta (a fleet's worth of changes must not cost a sync each).
    std::vector<NodeObservation> seen;
    seen.reserve(nodes_seen_.size());
    for (const auto& [name, obs] : nodes_seen_) seen.push_back(obs);
    manager_->OnNodeObservations(seen, now_ms);
    next_orphan_check_ms_ = 0;
  }
  // The holder keeps interrupting jobs of other owners: one may reach it late by replication.
  if (election_.Status().self_holds && now_ms >= next_orphan_check_ms_) {
    manager_->InterruptOrphanedJobs(now_ms);
    next_orphan_check_ms_ = now_ms + 1000;
  }
}

bool Daemon::MaybeForward(net::IncomingRequest& in, const net::Caller& caller) {
  const bool side_effect = std::holds_alternative<net::CommissionRequest>(in.request) ||
                           std::holds_alternative<net::DecommissionRequest>(in.request) ||
                           std::holds_alternative<net::UpdateRequest>(in.request) ||
                           std::holds_alternative<net::UpgradeRequest>(in.request) ||
                           std::holds_alternative<net::DiscoverRequest>(in.request) ||
                           std::holds_alternative<net::JobCancelRequest>(in.request);
  if (!side_effect || !in.forwarded_by.empty()) return false;  // never forward twice
  const TokenStatus token = CurrentToken();
  if (token.self_holds || token.holder.empty() || token.holder_rpc.empty()) return false;
  forwarder_->Forward(in.reply_to, std::move(in.request), token.holder_rpc, token.holder,
                      PeerServerKey(token.holder), caller);
  return true;
}

void Daemon::HandleForwarded() {
  for (ForwardedReply& r : forward_mail_.Drain()) {
    // The holder records what it handled; a request that never reached it is recorded here.
    if (r.undelivered) Audit(r.caller, r.request, "", r.reply, NowMs());
    Reply(r.to, r.reply);
  }
}

void Daemon::Stamp(net::ReplyTo* to, const net::RpcRequest& request) {
  to->received_us = SteadyMicros();
  to->operation = std::string(net::OperationName(request));
}

void Daemon::Reply(const net::ReplyTo& to, const net::RpcReply& reply) {
  if (!to.operation.empty()) {
    RequestStats& stats = request_stats_[{to.gateway ? "http" : "rpc", to.operation}];
    ++stats.requests;
    if (reply.code != net::RpcCode::kOk) ++stats.errors;
    stats.latency.Observe(static_cast<double>(SteadyMicros() - to.received_us) / 1e6);
  }
  if (to.gateway) {
    if (http_) http_->Complete(to.request_id, reply);
    return;
  }
  rpc_->Reply(to, reply);
}

void Daemon::HandleRpc(uint64_t now_ms) {
  while (auto in = rpc_->TryReceive()) {
    Stamp(&in->reply_to, in->request);
    HandleRequest(*in, now_ms);
  }
}

void Daemon::HandleRequest(net::IncomingRequest& in, uint64_t now_ms) {
  const char* via = in.reply_to.gateway ? "http" : "rpc";
  if (!in.reply_to.gateway) NoteConnection(in.source_fd, in.caller_key);
  Result<net::Caller> caller = Identify(in);
  if (!caller.ok()) {
    CM_LOG(kWarn) << via << ": refused " << net::OperationName(in.request) << ": "
                  << caller.status().message();
    const net::RpcReply refused =
        net::RpcReply::Error(net::RpcCode::kPermissionDenied, caller.status().message());
    Reply(in.reply_to, refused);
    auto listed = callers_.find(in.caller_key);
    Audit(listed != callers_.end() ? listed->second
                                   : net::Caller{in.caller_key, "(not listed)", net::Role::kReader},
          in.request, in.forwarded_by, refused, now_ms);
    // A key removed from the lists: its connection goes too (it may reconnect, and ZAP refuses
    // it then).
    if (!in.reply_to.gateway && !callers_.count(in.caller_key)) {
      net::CloseConnection(in.source_fd);
    }
    return;
  }
  if (auto refusal = net::Refusal(*caller, in.request)) {
    CM_LOG(kWarn) << via << ": refused: " << *refusal
                  << (in.forwarded_by.empty() ? "" : " (forwarded by " + in.forwarded_by + ")");
    const net::RpcReply refused = net::RpcReply::Error(net::RpcCode::kPermissionDenied, *refusal);
    Reply(in.reply_to, refused);
    Audit(*caller, in.request, in.forwarded_by, refused, now_ms);
    return;
  }
  const bool mutation = net::IsMutation(in.request);
  if (mutation) {
    CM_LOG(kInfo) << via << ": " << net::OperationName(in.request) << " by "
                  << net::Describe(*caller)
                  << (in.caller_key.empty() || caller->key == in.caller_key ? ""
                                                                            : " " + caller->key)
                  << (in.forwarded_by.empty() ? "" : " (forwarded by " + in.forwarded_by + ")");
  }
  if (MaybeForward(in, *caller)) return;
  const uint64_t seq_before = replica_->last_seq();
  std::optional<net::RpcReply> reply = manager_->Handle(in, now_ms);
  if (!reply) return;
  if (mutation) Audit(*caller, in.request, in.forwarded_by, *reply, now_ms);
  if (options_.ack_replicas > 0 && reply->code == net::RpcCode::kOk &&
      replica_->last_seq() > seq_before && mutation) {
    // --ack-replicas: the reply waits until enough peers have persisted the write.
    replicator_->AwaitReplicas(
        replica_->last_seq(), options_.ack_replicas, now_ms, options_.ack_timeout_ms,
        [this, to = in.reply_to, ok = std::move(*reply)](const Status& s) {
          Reply(to, s.ok() ? ok : net::RpcReply::Error(net::RpcCode::kOutcomeUnknown, s.message()));
        });
    return;
  }
  Reply(in.reply_to, *reply);
}

void Daemon::HandleHttp(uint64_t now_ms) {
  for (http::Call& call : http_mail_.Drain()) {
    Result<net::Caller> caller = http::ResolveCaller(call.caller, http_access_);
    if (!caller.ok() && !std::holds_alternative<http::HealthProbe>(call.ask)) {
      RefuseHttp(call, caller.status().message(), now_ms);
      continue;
    }
    if (auto* request = std::get_if<net::RpcRequest>(&call.ask)) {
      net::IncomingRequest in;
      in.reply_to = call.reply_to;
      in.protocol_version = net::kRpcProtocolVersion;
      in.gateway_caller = *caller;
      in.request = std::move(*request);
      Stamp(&in.reply_to, in.request);
      HandleRequest(in, now_ms);
    } else if (std::holds_alternative<http::MetricsScrape>(call.ask)) {
      if (http_) http_->Complete(call.reply_to.request_id, Metrics(now_ms));
    } else if (auto* probe = std::get_if<http::HealthProbe>(&call.ask)) {
      // Liveness: this loop answered. Readiness: the checks.
      if (http_) {
        http_->Complete(call.reply_to.request_id,
                        probe->readiness ? Readiness(now_ms) : http::Health{true, ""});
      }
    } else if (auto* event = std::get_if<http::MonitorEvent>(&call.ask)) {
      // What a monitor event does is a discovery's (or a node's disappearance): operator work.
      if (!net::RoleAllows(caller->role, net::Role::kOperator)) {
        RefuseHttp(call, net::Describe(*caller) + " may not post monitor events: it needs the " +
                             "operator role", now_ms);
        continue;
      }
      ApplyMonitorEvent(call, *event, now_ms);
    }
  }
}

void Daemon::RefuseHttp(const http::Call& call, const std::string& why, uint64_t now_ms) {
  CM_LOG(kWarn) << "http: refused: " << why;
  const net::RpcReply refused = net::RpcReply::Error(net::RpcCode::kPermissionDenied, why);
  if (const auto* request = std::get_if<net::RpcRequest>(&call.ask)) {
    Audit(net::Caller{"", http::Describe(call.caller), net::Role::kReader}, *request, "", refused,
          now_ms);
  }
  if (http_ && call.reply_to.request_id != 0) http_->Complete(call.reply_to.request_id, refused);
}

void Daemon::ApplyMonitorEvent(const http::Call& call, const http::MonitorEvent& event,
                               uint64_t now_ms) {
  const char* kind = event.disappeared ? "Disappeared" : "Discovered";
  CM_LOG(kInfo) << "http: monitor event " << kind << " of " << event.nodes.size() << " node(s) by "
                << http::Describe(call.caller);
  if (event.nodes.empty()) {
    CM_LOG(kWarn) << "http: monitor event " << kind << " names no node: nothing to do";
    return;
  }
  if (!CurrentToken().self_holds) {
    CM_LOG(kWarn) << "http: monitor event " << kind
                  << " not applied: this instance does not hold the side-effect token (the "
                     "holder applies what its Serf agent shows)";
    return;
  }
  std::vector<NodeObservation> observations;
  for (const http::MonitorNode& node : event.nodes) {
    NodeObservation obs;
    obs.kind = event.disappeared ? NodeObservation::Kind::kDisappeared
                                 : NodeObservation::Kind::kDiscovered;
    obs.name = node.label + "-" + node.serial;
    obs.addr = node.addr;
    if (!event.disappeared) {
      obs.tags = {{"NodeLabel", node.label}, {"NodeSerial", node.serial}, {"NodeAddr", node.addr}};
    }
    observations.push_back(std::move(obs));
  }
  manager_->OnNodeObservations(observations, now_ms);  // logs and skips an invalid name
}

std::vector<http::MetricFamily> Daemon::Metrics(uint64_t now_ms) {
  using Type = http::MetricFamily::Type;
  std::deque<http::MetricFamily> out;  // a deque: `family` hands out pointers that must stay
  auto family = [&](const std::string& name, const std::string& help, Type type) {
    out.push_back(http::MetricFamily{name, help, type, {}, {}});
    return &out.back();
  };
  auto one = [&](const std::string& name, const std::string& help, Type type, double value) {
    family(name, help, type)->samples.push_back({{}, value});
  };
  // The `status`, `token` and `members` answers hold most of it: one source for RPC and HTTP.
  net::IncomingRequest ask;
  ask.request = net::StatusRequest{};
  const net::StatusInfo status = std::get<net::StatusInfo>(manager_->Handle(ask, now_ms)->payload);
  ask.request = net::TokenRequest{};
  const net::TokenInfo token = std::get<net::TokenInfo>(manager_->Handle(ask, now_ms)->payload);
  ask.request = net::MembersRequest{};
  const net::MemberList members = std::get<net::MemberList>(manager_->Handle(ask, now_ms)->payload);
  auto counter = [&](const std::string& name) -> double {
    for (const net::Counter& c : status.counters) {
      if (c.name == name) return static_cast<double>(c.value);
    }
    return 0;
  };

  http::MetricFamily* requests = family(
      "clustermgr_requests_total", "Requests answered, by transport and method", Type::kCounter);
  http::MetricFamily* errors =
      family("clustermgr_request_errors_total",
             "Requests answered with an error, by transport and method", Type::kCounter);
  http::MetricFamily* latency = family(
      "clustermgr_request_duration_seconds",
      "Time from a request's arrival to its reply, by transport and method", Type::kHistogram);
  for (const auto& [key, stats] : request_stats_) {
    const http::Labels labels{{"transport", key.first}, {"method", key.second}};
    requests->samples.push_back({labels, static_cast<double>(stats.requests)});
    errors->samples.push_back({labels, static_cast<double>(stats.errors)});
    latency->histograms.push_back({labels, stats.latency});
  }
  http::MetricFamily* rejected =
      family("clustermgr_rpc_rejected_total",
             "RPC messages refused before reaching a handler, by reason", Type::kCounter);
  const net::RpcServerCounters& rc = rpc_->counters();
  rejected->samples = {
      {{{"reason", "oversize"}}, static_cast<double>(rc.rejected_oversize)},
      {{{"reason", "malformed"}}, static_cast<double>(rc.rejected_malformed)},
      {{{"reason", "unimplemented"}}, static_cast<double>(rc.rejected_unimplemented)}};
  family("clustermgr_write_batch_entries", "Entries per committed local write (one store batch)",
         Type::kHistogram)
      ->histograms.push_back({{}, write_batches_});

  http::MetricFamily* msg_in = family("clustermgr_gossip_messages_in_total",
                                      "Gossip messages received, by peer instance", Type::kCounter);
  http::MetricFamily* bytes_in = family("clustermgr_gossip_bytes_in_total",
                                        "Gossip bytes received, by peer instance", Type::kCounter);
  http::MetricFamily* msg_out =
      family("clustermgr_gossip_messages_out_total",
             "Gossip messages sent, by peer instance (\"*\": published to every subscriber)",
             Type::kCounter);
  http::MetricFamily* bytes_out = family(
      "clustermgr_gossip_bytes_out_total",
      "Gossip bytes sent, by peer instance (\"*\": published to every subscriber)", Type::kCounter);
  for (const auto& [peer, t] : replicator_->traffic()) {
    const http::Labels labels{{"peer", peer}};
    msg_in->samples.push_back({labels, static_cast<double>(t.messages_in)});
    bytes_in->samples.push_back({labels, static_cast<double>(t.bytes_in)});
    msg_out->samples.push_back({labels, static_cast<double>(t.messages_out)});
    bytes_out->samples.push_back({labels, static_cast<double>(t.bytes_out)});
  }
  http::MetricFamily* lag =
      family("clustermgr_apply_lag_deltas",
             "Deltas a manager instance has not applied yet, by instance and origin", Type::kGauge);
  for (const net::MemberInfo& m : members.members) {
    for (const net::OriginCount& o : m.lag_by_origin) {
      lag->samples.push_back(
          {{{"instance", m.name}, {"origin", o.origin}}, static_cast<double>(o.count)});
    }
  }
  http::MetricFamily* deltas =
      family("clustermgr_deltas_total", "Replicated deltas, by event", Type::kCounter);
  for (const char* event : {"published", "received", "applied", "duplicate", "overflow"}) {
    deltas->samples.push_back({{{"event", event}}, counter(std::string("deltas_") + event)});
  }
  one("clustermgr_state_entries", "Entries in the replicated state (tombstones included)",
      Type::kGauge, static_cast<double>(status.state_entries));
  one("clustermgr_tombstones", "Tombstones in the replicated state", Type::kGauge,
      static_cast<double>(status.tombstones));
  one("clustermgr_tombstones_collected_total", "Tombstones collected", Type::kCounter,
      counter("tombstones_collected"));
  one("clustermgr_anti_entropy_rounds_total", "Anti-entropy requests sent to peers", Type::kCounter,
      counter("syncs_sent"));
  one("clustermgr_anti_entropy_replies_total", "Anti-entropy replies received", Type::kCounter,
      counter("syncs_answered"));
  http::MetricFamily* snapshots = family(
      "clustermgr_snapshot_transfers_total",
      "State snapshot transfers: served to peers, applied from a peer, abandoned", Type::kCounter);
  for (const char* what : {"served", "applied", "abandoned"}) {
    snapshots->samples.push_back({{{"result", what}}, counter(std::string("snapshots_") + what)});
  }
  family("clustermgr_token_holder", "1 for the instance this one believes holds the token",
         Type::kGauge)
      ->samples.push_back({{{"holder", token.holder}}, token.holder.empty() ? 0.0 : 1.0});
  one("clustermgr_token_self_holds", "1 when this instance holds the side-effect token",
      Type::kGauge, token.self_holds ? 1 : 0);
  one("clustermgr_token_epoch", "Epoch of the current holder's claim", Type::kGauge,
      static_cast<double>(token.epoch));
  one("clustermgr_token_highest_epoch", "Highest epoch in the replicated register", Type::kGauge,
      static_cast<double>(token.highest_epoch));
  one("clustermgr_quorum", "Managers that must be visible to hold the token", Type::kGauge,
      token.quorum);
  one("clustermgr_managers_visible", "Managers counted alive, this one included", Type::kGauge,
      token.visible_managers);
  one("clustermgr_quorum_reached", "1 when the visible managers reach the quorum", Type::kGauge,
      token.has_quorum ? 1 : 0);
  http::MetricFamily* jobs =
      family("clustermgr_jobs", "Jobs in the state, by status", Type::kGauge);
  std::map<std::string, double> by_status;
  for (const char* s : {"Queued", "Running", "Complete", "Errored", "Cancelled", "Interrupted"}) {
    by_status[s] = 0;
  }
  for (const auto& [id, entry] : replica_->state().jobs.entries()) {
    if (!entry.tombstone()) by_status[std::string(crdt::ToString(entry.value->status))] += 1;
  }
  for (const auto& [s, n] : by_status) jobs->samples.push_back({{{"status", s}}, n});
  one("clustermgr_serf_connected", "1 while connected to the Serf agent", Type::kGauge,
      serf_connected_ ? 1 : 0);
  http::MetricFamily* serf = family("clustermgr_serf_members",
                                    "Serf members as last seen, by kind and state", Type::kGauge);
  double nodes_alive = 0, nodes_gone = 0, managers_alive = 1, managers_gone = 0;  // 1: this one
  for (const auto& [name, obs] : nodes_seen_) {
    (obs.kind == NodeObservation::Kind::kDisappeared ? nodes_gone : nodes_alive) += 1;
  }
  for (const auto& [member, m] : managers_seen_) {
    (m.sighting.alive ? managers_alive : managers_gone) += 1;
  }
  serf->samples = {{{{"kind", "node"}, {"state", "alive"}}, nodes_alive},
                   {{{"kind", "node"}, {"state", "gone"}}, nodes_gone},
                   {{{"kind", "manager"}, {"state", "alive"}}, managers_alive},
                   {{{"kind", "manager"}, {"state", "gone"}}, managers_gone}};
  one("clustermgr_store_errors_total", "Store writes of replicated data that failed",
      Type::kCounter, counter("store_errors"));
  one("clustermgr_store_writable", "1 while the store accepts writes", Type::kGauge,
      status.store_ok ? 1 : 0);
  one("clustermgr_clock_refusals_total",
      "Peer timestamps further ahead of the local clock than --max-clock-offset-ms (followed, "
      "and reported)",
      Type::kCounter, counter("clock_refusals"));
  one("clustermgr_clock_skew_ms",
      "How far ahead of the local clock the latest such peer timestamp was (ms)", Type::kGauge,
      counter("clock_skew_ms"));
  one("clustermgr_bad_messages_total", "Gossip messages dropped as malformed", Type::kCounter,
      counter("bad_messages"));
  one("clustermgr_start_time_seconds", "When this clustermgrd started (Unix time)", Type::kGauge,
      static_cast<double>(started_ms_) / 1000);
  return {std::make_move_iterator(out.begin()), std::make_move_iterator(out.end())};
}

http::Health Daemon::Readiness(uint64_t now_ms) {
  if (Status s = replica_->store().write_error(); !s.ok()) {
    return {false, "store not writable: " + s.message()};
  }
  if (!serf_connected_) return {false, "not connected to the Serf agent at " + options_.serf_rpc};
  if (replicator_->fetching_snapshot()) return {false, "restoring the state from a peer"};
  // Caught up with every manager replication hears from.
  const std::map<std::string, uint64_t> heard = replicator_->LastContactByName();
  for (const auto& [name, last] : heard) {
    if (now_ms - std::min(now_ms, last) > options_.token_contact_ms) continue;
    if (!replicator_->CaughtUpWith(name)) return {false, "catching up with " + name};
  }
  return {true, ""};
}

void Daemon::HandleSerf(uint64_t now_ms) {
  using Kind = net::SerfNodeEvent::Kind;
  std::vector<NodeObservation> observations;
  for (const net::SerfNodeEvent& e : serf_mail_.Drain(kSerfEventsPerTurn)) {
    CM_LOG(kDebug) << "serf: " << net::ToString(e);
    if (e.subject == net::SerfNodeEvent::Subject::kManager) {
      replicator_->OnManagerEvent(e);  // ignores our own member (its gossip endpoint)
      auto it = e.tags.find(kTagInstance);
      const std::string instance = it != e.tags.end() ? it->second : e.name;
      auto gossip = e.tags.find(kTagGossip);
      const bool own = instance == options_.name && gossip != e.tags.end() &&
                       gossip->second == gossip_->endpoint();
      if (own) {  // our own agent: remember what our tag ever claimed
        auto tag = e.tags.find(kTagEpoch);
        if (tag != e.tags.end()) {
          own_tag_epoch_ = std::max(own_tag_epoch_, ParseEpochTag(tag->second).value_or(0));
        }
        continue;
      }
      if (instance == options_.name) {
        if (warned_members_.insert(e.member).second) {
          CM_LOG(kWarn) << "token: Serf member " << e.member << " names this instance (" << instance
                        << ") but does not give its gossip endpoint: ignored";
        }
        continue;
      }
      SerfManager& seen = managers_seen_[e.member];
      seen.instance = instance;
      ManagerSighting& m = seen.sighting;
      m.alive = e.kind != Kind::kDisappeared;
      auto epoch = e.tags.find(kTagEpoch);
      seen.epoch_tag = epoch != e.tags.end() ? epoch->second : "";
      auto rpc = e.tags.find(kTagRpc);
      m.rpc = rpc != e.tags.end() ? rpc->second : "";
      if (auto key = e.tags.find(kTagCurve); options_.curve && key != e.tags.end()) {
        if (peer_keys_.count(key->second)) {
          manager_keys_[instance] = key->second;
        } else {
          // Not erased: another member may be reusing the instance name of a trusted one.
          CM_LOG(kWarn) << "curve: manager instance " << instance << " publishes key "
                        << key->second << ", which is not in --curve-peers: not trusted";
        }
      }
      continue;
    }
    NodeObservation obs;
    obs.kind = e.kind == Kind::kDiscovered    ? NodeObservation::Kind::kDiscovered
               : e.kind == Kind::kDisappeared ? NodeObservation::Kind::kDisappeared
                                              : NodeObservation::Kind::kUpdated;
    obs.name = e.name;
    obs.addr = e.address;
    obs.tags = e.tags;
    obs.serf_status = e.status;
    // Remember the latest word on each node as a state (an update of a present node is still
    // "discovered"), so a new holder can apply it.
    NodeObservation latest = obs;
    if (latest.kind == NodeObservation::Kind::kUpdated) {
      latest.kind = NodeObservation::Kind::kDiscovered;
    }
    nodes_seen_[e.name] = latest;
    observations.push_back(std::move(obs));
  }
  // A storm of member events becomes one write (see Manager::OnNodeObservations).
  if (!observations.empty()) manager_->OnNodeObservations(observations, now_ms);
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
        {nullptr, stop_fd_, ZMQ_POLLIN, 0},
        {nullptr, reload_fd_, ZMQ_POLLIN, 0},
        {nullptr, http_mail_.fd(), ZMQ_POLLIN, 0},
        rpc_->ConnectionsPollItem(),  // connection events; HandleRpc handles them
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
    if (items[4].revents & ZMQ_POLLIN && Consume(stop_fd_)) {
      CM_LOG(kInfo) << "stopping";
      notifier_.Stopping();
      FinishRunningJob();
      return 0;
    }
    if (items[5].revents & ZMQ_POLLIN && Consume(reload_fd_)) DoReload();
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
