#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>

#include "mgr/audit/audit_trail.h"
#include "mgr/daemon.h"
#include "mgr/log/log.h"

// Requests: who sent them (CURVE keys and the allow-lists), forwarding to the token holder,
// handling, auditing and replying, from the RPC socket and the HTTP gateway alike.

namespace clustermgr::mgr {
namespace {

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

// Requests that start side effects (playbook runs, cancellations) are handled outside a batch:
// what they start must not run ahead of the durable record of it.
bool StartsSideEffects(const net::RpcRequest& request) {
  return std::holds_alternative<net::CommissionRequest>(request) ||
         std::holds_alternative<net::DecommissionRequest>(request) ||
         std::holds_alternative<net::UpdateRequest>(request) ||
         std::holds_alternative<net::UpgradeRequest>(request) ||
         std::holds_alternative<net::DiscoverRequest>(request) ||
         std::holds_alternative<net::JobCancelRequest>(request);
}

// What reads no replicated state, so it is answered even while memory is ahead of the disk.
bool ServedWhileStoreFails(const net::RpcRequest& request) {
  return std::holds_alternative<net::StatusRequest>(request) ||
         std::holds_alternative<net::TokenRequest>(request) ||
         std::holds_alternative<net::MembersRequest>(request);
}

uint64_t SteadyMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

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
                   const std::string& via, const net::RpcReply& reply, uint64_t now_ms,
                   std::optional<uint64_t> seq_before) {
  AuditRecord record;
  record.ms = now_ms;
  record.instance = options_.name;
  record.caller = caller;
  record.operation = std::string(net::OperationName(request));
  record.request = SummarizeRequest(request);
  record.outcome = Outcome(reply);
  record.via = via;
  auto written =
      replica_->Amend(seq_before.value_or(replica_->last_seq()), [&](crdt::DeltaBuilder& b) {
        AddAuditRecord(replica_->state(), record, &b);
      });
  if (!written.ok()) {
    CM_LOG(kError) << "audit: record not stored: " << written.status().message();
  }
}

std::string Daemon::PeerServerKey(const std::string& instance) const {
  if (!options_.curve) return "";
  auto it = manager_keys_.find(instance);
  return it != manager_keys_.end() ? it->second : default_peer_key_;
}

bool Daemon::MaybeForward(net::IncomingRequest& in, const net::Caller& caller) {
  if (!StartsSideEffects(in.request) || !in.forwarded_by.empty())
    return false;  // never forward twice
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
  if (batch_.open && !to.gateway && replica_->staged() > 0 &&
      (reply.code == Code::kOk || batch_.waiting.count(to.identity))) {
    batch_.replies.push_back(PendingReply{to, reply, batch_.mutation, 0});
    batch_.waiting.insert(to.identity);
    return;
  }
  if (!to.operation.empty()) {
    RequestStats& stats = request_stats_[{to.gateway ? "http" : "rpc", to.operation}];
    ++stats.requests;
    if (reply.code != Code::kOk) ++stats.errors;
    stats.latency.Observe(static_cast<double>(SteadyMicros() - to.received_us) / 1e6);
  }
  if (to.gateway) {
    if (http_) http_->Complete(to.request_id, reply);
    return;
  }
  rpc_->Reply(to, reply);
}

void Daemon::HandleRpc(uint64_t now_ms) {
  // A batch is whatever waits now: no timer, so a lone client waits for nothing.
  for (bool more = true; more;) {
    OpenBatch();
    size_t taken = 0;
    for (; taken < kMaxRpcBatch; ++taken) {
      auto in = rpc_->TryReceive();
      if (!in) break;
      Stamp(&in->reply_to, in->request);
      if (StartsSideEffects(in->request)) {
        CloseBatch(now_ms);
        HandleRequest(*in, now_ms);
        OpenBatch();
        continue;
      }
      batch_.mutation = net::IsMutation(in->request);
      HandleRequest(*in, now_ms);
    }
    CloseBatch(now_ms);
    more = taken == kMaxRpcBatch;
  }
}

void Daemon::OpenBatch() {
  batch_.open = true;
  batch_.mutation = false;
  replica_->BeginBatch();
}

void Daemon::CloseBatch(uint64_t now_ms) {
  if (!batch_.open) return;
  batch_.open = false;
  batch_.mutation = false;
  if (replica_->staged() > 0) ++rpc_write_batches_;
  const Status durable = replica_->EndBatch();
  std::vector<PendingReply> replies = std::move(batch_.replies);
  batch_.replies.clear();
  batch_.waiting.clear();
  if (!durable.ok()) {
    CM_LOG(kError) << "store: a batch of writes failed: " << durable.message();
    NoteStoreFailure(now_ms, durable.message());
  }
  for (PendingReply& p : replies) {
    if (!durable.ok() && p.reply.code == Code::kOk) {
      // Nothing of the batch is acknowledged, nor anything read from it.
      p.reply = p.mutation ? net::RpcReply::Error(Code::kOutcomeUnknown, durable.message())
                           : net::RpcReply::Error(Code::kUnavailable,
                                                  "not answered: the store failed a write (" +
                                                      durable.message() + "); ask again");
      p.ack_seq = 0;
    }
    if (p.ack_seq != 0) {
      AwaitAck(p.to, std::move(p.reply), p.ack_seq, now_ms);
    } else {
      Reply(p.to, p.reply);
    }
  }
}

void Daemon::AwaitAck(const net::ReplyTo& to, net::RpcReply ok, uint64_t seq, uint64_t now_ms) {
  replicator_->AwaitReplicas(
      seq, options_.ack_replicas, now_ms, options_.ack_timeout_ms,
      [this, to, ok = std::move(ok)](const Status& s) {
        Reply(to, s.ok() ? ok : net::RpcReply::Error(Code::kOutcomeUnknown, s.message()));
      });
}

void Daemon::HandleRequest(net::IncomingRequest& in, uint64_t now_ms) {
  const char* via = in.reply_to.gateway ? "http" : "rpc";
  if (!in.reply_to.gateway) NoteConnection(in.source_fd, in.caller_key);
  Result<net::Caller> caller = Identify(in);
  if (!caller.ok()) {
    CM_LOG(kWarn) << via << ": refused " << net::OperationName(in.request) << ": "
                  << caller.status().message();
    const net::RpcReply refused =
        net::RpcReply::Error(Code::kPermissionDenied, caller.status().message());
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
    const net::RpcReply refused = net::RpcReply::Error(Code::kPermissionDenied, *refusal);
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
  if (replica_->ahead_of_disk() && !mutation && !ServedWhileStoreFails(in.request)) {
    // A failed batch left memory ahead of the disk until the store reopens: nothing read from
    // it goes out (writes are refused by the store itself).
    Reply(in.reply_to, net::RpcReply::Error(Code::kUnavailable,
                                            "not answered: the store failed a write and is "
                                            "reopened within a second; ask again"));
    return;
  }
  const uint64_t seq_before = replica_->last_seq();
  std::optional<net::RpcReply> reply = manager_->Handle(in, now_ms);
  if (!reply) return;
  if (mutation) Audit(*caller, in.request, in.forwarded_by, *reply, now_ms, seq_before);
  if (options_.ack_replicas > 0 && reply->code == Code::kOk && replica_->last_seq() > seq_before &&
      mutation) {
    // --ack-replicas: the reply waits until enough peers have persisted the write (in a
    // batch: from when the batch is durable).
    if (batch_.open) {
      batch_.replies.push_back(
          PendingReply{in.reply_to, std::move(*reply), true, replica_->last_seq()});
      batch_.waiting.insert(in.reply_to.identity);
    } else {
      AwaitAck(in.reply_to, std::move(*reply), replica_->last_seq(), now_ms);
    }
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
        RefuseHttp(call,
                   net::Describe(*caller) + " may not post monitor events: it needs the " +
                       "operator role",
                   now_ms);
        continue;
      }
      ApplyMonitorEvent(call, *event, now_ms);
    }
  }
}

void Daemon::RefuseHttp(const http::Call& call, const std::string& why, uint64_t now_ms) {
  CM_LOG(kWarn) << "http: refused: " << why;
  const net::RpcReply refused = net::RpcReply::Error(Code::kPermissionDenied, why);
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

}  // namespace clustermgr::mgr
