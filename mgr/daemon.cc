#include "mgr/daemon.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <vector>

#include "mgr/audit/audit_trail.h"
#include "mgr/log.h"
#include "mgr/restore.h"
#include "mgr/state_digest.h"

namespace clustermgr::mgr {
namespace {

constexpr auto kTick = std::chrono::milliseconds(100);

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

}  // namespace

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)),
      election_({options_.name, options_.expect, options_.token_settle_ms}),
      stop_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      reload_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

Daemon::~Daemon() {
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

void Daemon::Stop() { Signal(stop_fd_); }
void Daemon::Reload() { Signal(reload_fd_); }

Status Daemon::Start() {
  SetLogInstance(options_.name);
  LogLevel level;
  if (ParseLogLevel(options_.log_level, &level)) SetLogLevel(level);

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

  executor_ = std::make_unique<JobExecutor>([this](JobEvent e) { job_mail_.Post(std::move(e)); });
  manager_ = std::make_unique<Manager>(
      &options_, replica_.get(), executor_.get(), [this] { return CurrentToken(); },
      [this](const net::ReplyTo& to, net::RpcReply reply) { rpc_->Reply(to, reply); });
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
      serf, [this](const net::SerfNodeEvent& e) { serf_mail_.Post(e); }, std::move(discovered));
  tags_ = std::make_unique<TagPublisher>(&monitor_->client());
  tags_->Set("role", std::string(net::kSerfRoleManager));
  tags_->Set(kTagInstance, options_.name);
  tags_->Set(kTagRpc, rpc_endpoint_);
  tags_->Set(kTagGossip, gossip_->endpoint());
  tags_->Set(kTagEpoch, "0");
  if (options_.curve) tags_->Set(kTagCurve, options_.curve->self.public_key);

  // Alone (--expect 1) the first election tick makes this instance the holder at a new epoch
  // before it serves anything, and interrupts what a previous run left behind.
  ElectionTick(NowMs());

  CM_LOG(kInfo) << "clustermgrd " << CLUSTERMGR_VERSION << " serving " << rpc_endpoint_
                << ", gossip " << gossip_->endpoint() << " (anti-entropy "
                << gossip_->anti_entropy_endpoint() << ")"
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
  return Status::Ok();
}

std::map<std::string, ManagerSighting> Daemon::CountableManagers(uint64_t now_ms) {
  // Without a connection to our own Serf agent we cannot see anyone: count nobody.
  if (!serf_connected_) return {};
  // Serf's "alive" is the agent's, not the daemon's: a crashed or hung clustermgrd beside a live
  // agent keeps its tags. Count a manager only while replication hears from it too (every
  // anti-entropy round answers), so its token moves on without waiting for a restart.
  const std::map<std::string, uint64_t> heard = replicator_->LastContactByName();
  std::map<std::string, ManagerSighting> out = managers_seen_;
  std::set<std::string> silent;
  for (auto& [name, m] : out) {
    if (!m.alive) continue;
    m.behind_it = !replicator_->CaughtUpWith(name);
    auto it = heard.find(name);
    if (it != heard.end() && now_ms - std::min(now_ms, it->second) <= options_.token_contact_ms) {
      continue;
    }
    m.alive = false;
    silent.insert(name);
  }
  for (const std::string& name : silent) {
    if (!silent_managers_.count(name)) {
      CM_LOG(kInfo) << "token: manager " << name << " is alive in Serf but replication has not "
                    << "heard from it for " << options_.token_contact_ms << " ms: not counted";
    }
  }
  for (const std::string& name : silent_managers_) {
    if (!silent.count(name) && out.count(name) && out.at(name).alive) {
      CM_LOG(kInfo) << "token: manager " << name << " is heard from again: counted";
    }
  }
  silent_managers_ = std::move(silent);
  return out;
}

void Daemon::ElectionTick(uint64_t now_ms) {
  election_.SetManagers(CountableManagers(now_ms));
  // A restarted daemon's own agent may still carry the epoch its previous run claimed: that
  // epoch was used, so it counts like the replicated register.
  const uint64_t highest = std::max(replica_->state().token_epoch.value(), own_tag_epoch_);
  const TokenElection::Actions act = election_.Tick(now_ms, highest);
  if (!act.reason.empty()) CM_LOG(kInfo) << "token: " << act.reason;
  if (act.record_epoch) {
    const uint64_t epoch = *act.record_epoch;
    auto written = replica_->Write([&](crdt::DeltaBuilder& b) { b.RaiseEpoch(epoch); }, epoch);
    if (!written.ok()) CM_LOG(kError) << "token: epoch not stored: " << written.status().message();
  }
  if (act.publish_epoch) tags_->Set(kTagEpoch, std::to_string(*act.publish_epoch));
  if (act.lost_holder) manager_->CancelRunningJob();
  if (act.became_holder) {
    // Serf events that came while nobody held the token were not applied: apply what Serf shows.
    for (const auto& [name, obs] : nodes_seen_) manager_->OnNodeObservation(obs, now_ms);
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
    rpc_->Reply(r.to, r.reply);
  }
}

void Daemon::HandleRpc(uint64_t now_ms) {
  while (auto in = rpc_->TryReceive()) {
    NoteConnection(in->source_fd, in->caller_key);
    Result<net::Caller> caller = Identify(*in);
    if (!caller.ok()) {
      CM_LOG(kWarn) << "rpc: refused " << net::OperationName(in->request) << ": "
                    << caller.status().message();
      const net::RpcReply refused =
          net::RpcReply::Error(net::RpcCode::kPermissionDenied, caller.status().message());
      rpc_->Reply(in->reply_to, refused);
      auto listed = callers_.find(in->caller_key);
      Audit(listed != callers_.end()
                ? listed->second
                : net::Caller{in->caller_key, "(not listed)", net::Role::kReader},
            in->request, in->forwarded_by, refused, now_ms);
      // A key removed from the lists: its connection goes too (it may reconnect, and ZAP
      // refuses it then).
      if (!callers_.count(in->caller_key)) net::CloseConnection(in->source_fd);
      continue;
    }
    if (auto refusal = net::Refusal(*caller, in->request)) {
      CM_LOG(kWarn) << "rpc: refused: " << *refusal
                    << (in->forwarded_by.empty() ? "" : " (forwarded by " + in->forwarded_by + ")");
      const net::RpcReply refused = net::RpcReply::Error(net::RpcCode::kPermissionDenied, *refusal);
      rpc_->Reply(in->reply_to, refused);
      Audit(*caller, in->request, in->forwarded_by, refused, now_ms);
      continue;
    }
    const bool mutation = net::IsMutation(in->request);
    if (mutation) {
      CM_LOG(kInfo) << "rpc: " << net::OperationName(in->request) << " by "
                    << net::Describe(*caller)
                    << (in->caller_key.empty() || caller->key == in->caller_key ? ""
                                                                                : " " + caller->key)
                    << (in->forwarded_by.empty() ? "" : " (forwarded by " + in->forwarded_by + ")");
    }
    if (MaybeForward(*in, *caller)) continue;
    const uint64_t seq_before = replica_->last_seq();
    std::optional<net::RpcReply> reply = manager_->Handle(*in, now_ms);
    if (!reply) continue;
    if (mutation) Audit(*caller, in->request, in->forwarded_by, *reply, now_ms);
    if (options_.ack_replicas > 0 && reply->code == net::RpcCode::kOk &&
        replica_->last_seq() > seq_before && net::IsMutation(in->request)) {
      // --ack-replicas: the reply waits until enough peers have persisted the write.
      replicator_->AwaitReplicas(
          replica_->last_seq(), options_.ack_replicas, now_ms, options_.ack_timeout_ms,
          [this, to = in->reply_to, ok = std::move(*reply)](const Status& s) {
            rpc_->Reply(
                to, s.ok() ? ok : net::RpcReply::Error(net::RpcCode::kOutcomeUnknown, s.message()));
          });
      continue;
    }
    rpc_->Reply(in->reply_to, *reply);
  }
}

void Daemon::HandleSerf(uint64_t now_ms) {
  using Kind = net::SerfNodeEvent::Kind;
  for (const net::SerfNodeEvent& e : serf_mail_.Drain()) {
    CM_LOG(kDebug) << "serf: " << net::ToString(e);
    if (e.subject == net::SerfNodeEvent::Subject::kManager) {
      replicator_->OnManagerEvent(e);  // ignores our own member (its gossip endpoint)
      auto it = e.tags.find(kTagInstance);
      const std::string instance = it != e.tags.end() ? it->second : e.name;
      if (instance == options_.name) {  // our own agent: remember what our tag ever claimed
        auto own = e.tags.find(kTagEpoch);
        if (own != e.tags.end()) {
          own_tag_epoch_ =
              std::max<uint64_t>(own_tag_epoch_, std::strtoull(own->second.c_str(), nullptr, 10));
        }
        continue;
      }
      ManagerSighting& m = managers_seen_[instance];
      m.alive = e.kind != Kind::kDisappeared;
      auto epoch = e.tags.find(kTagEpoch);
      m.epoch = epoch != e.tags.end() ? std::strtoull(epoch->second.c_str(), nullptr, 10) : 0;
      auto rpc = e.tags.find(kTagRpc);
      m.rpc = rpc != e.tags.end() ? rpc->second : "";
      if (auto key = e.tags.find(kTagCurve); options_.curve && key != e.tags.end()) {
        if (peer_keys_.count(key->second)) {
          manager_keys_[instance] = key->second;
        } else {
          manager_keys_.erase(instance);
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
    manager_->OnNodeObservation(obs, now_ms);
  }
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
  // Only what can change without restarting sockets and the store: playbook settings, extra
  // vars and the log level.
  const DaemonOptions& n = parsed.options;
  options_.playbook_dir = n.playbook_dir.empty() ? options_.playbook_dir : n.playbook_dir;
  options_.configure_playbook = n.configure_playbook;
  options_.cleanup_playbook = n.cleanup_playbook;
  options_.upgrade_playbook = n.upgrade_playbook;
  options_.ansible_user = n.ansible_user;
  options_.ansible_private_key = n.ansible_private_key;
  options_.extra_vars = n.extra_vars;
  options_.allow_extra_vars = n.allow_extra_vars;
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
  uint64_t next_tick = NowMs();
  for (;;) {
    std::vector<zmq::pollitem_t> items = {
        rpc_->PollItem(),
        {nullptr, job_mail_.fd(), ZMQ_POLLIN, 0},
        {nullptr, serf_mail_.fd(), ZMQ_POLLIN, 0},
        {nullptr, forward_mail_.fd(), ZMQ_POLLIN, 0},
        {nullptr, stop_fd_, ZMQ_POLLIN, 0},
        {nullptr, reload_fd_, ZMQ_POLLIN, 0},
        rpc_->ConnectionsPollItem(),  // connection events; HandleRpc handles them
    };
    gossip_->AppendPollItems(&items);  // SUB, ROUTER and a DEALER per peer
    const uint64_t now = NowMs();
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
      FinishRunningJob();
      return 0;
    }
    if (items[5].revents & ZMQ_POLLIN && Consume(reload_fd_)) DoReload();
    HandleJobs(now_ms);
    HandleSerf(now_ms);
    HandleForwarded();
    replicator_->Poll(now_ms);
    HandleRpc(now_ms);
    if (now_ms >= next_tick) {
      replicator_->Tick(now_ms);
      ElectionTick(now_ms);
      manager_->Tick(now_ms);
      next_tick = now_ms + static_cast<uint64_t>(kTick.count());
    }
  }
}

}  // namespace clustermgr::mgr
