#include <algorithm>
#include <deque>
#include <vector>

#include "mgr/daemon.h"
#include "mgr/repl/state_digest.h"

// /metrics and /readyz: what the daemon reports about itself.

namespace clustermgr::mgr {
namespace {

using Type = http::MetricFamily::Type;

// Collects metric families; the pointers Family returns stay valid (a deque).
class MetricSink {
 public:
  http::MetricFamily* Family(const std::string& name, const std::string& help, Type type) {
    out_.push_back(http::MetricFamily{name, help, type, {}, {}});
    return &out_.back();
  }
  void One(const std::string& name, const std::string& help, Type type, double value) {
    Family(name, help, type)->samples.push_back({{}, value});
  }
  std::vector<http::MetricFamily> Take() {
    return {std::make_move_iterator(out_.begin()), std::make_move_iterator(out_.end())};
  }

 private:
  std::deque<http::MetricFamily> out_;
};

// A counter of the `status` answer; 0 when it has none of that name.
double Counter(const net::StatusInfo& status, const std::string& name) {
  for (const net::Counter& c : status.counters) {
    if (c.name == name) return static_cast<double>(c.value);
  }
  return 0;
}

// Requests by transport and method, refused RPC messages, write batch sizes.
template <typename RequestStats>
void AddRequestMetrics(MetricSink& sink, const RequestStats& request_stats,
                       const net::RpcServerCounters& rc, const http::Histogram& write_batches) {
  http::MetricFamily* requests = sink.Family(
      "clustermgr_requests_total", "Requests answered, by transport and method", Type::kCounter);
  http::MetricFamily* errors =
      sink.Family("clustermgr_request_errors_total",
                  "Requests answered with an error, by transport and method", Type::kCounter);
  http::MetricFamily* latency = sink.Family(
      "clustermgr_request_duration_seconds",
      "Time from a request's arrival to its reply, by transport and method", Type::kHistogram);
  for (const auto& [key, stats] : request_stats) {
    const http::Labels labels{{"transport", key.first}, {"method", key.second}};
    requests->samples.push_back({labels, static_cast<double>(stats.requests)});
    errors->samples.push_back({labels, static_cast<double>(stats.errors)});
    latency->histograms.push_back({labels, stats.latency});
  }
  http::MetricFamily* rejected =
      sink.Family("clustermgr_rpc_rejected_total",
                  "RPC messages refused before reaching a handler, by reason", Type::kCounter);
  rejected->samples = {
      {{{"reason", "oversize"}}, static_cast<double>(rc.rejected_oversize)},
      {{{"reason", "malformed"}}, static_cast<double>(rc.rejected_malformed)},
      {{{"reason", "unimplemented"}}, static_cast<double>(rc.rejected_unimplemented)}};
  sink.Family("clustermgr_write_batch_entries",
              "Entries per committed local write (one store batch)", Type::kHistogram)
      ->histograms.push_back({{}, write_batches});
}

// Gossip traffic by peer, apply lag, deltas, state size, anti-entropy and snapshots.
void AddReplicationMetrics(MetricSink& sink, const net::StatusInfo& status,
                           const net::MemberList& members,
                           const std::map<std::string, Replicator::PeerTraffic>& traffic) {
  http::MetricFamily* msg_in =
      sink.Family("clustermgr_gossip_messages_in_total",
                  "Gossip messages received, by peer instance", Type::kCounter);
  http::MetricFamily* bytes_in =
      sink.Family("clustermgr_gossip_bytes_in_total", "Gossip bytes received, by peer instance",
                  Type::kCounter);
  http::MetricFamily* msg_out =
      sink.Family("clustermgr_gossip_messages_out_total",
                  "Gossip messages sent, by peer instance (\"*\": published to every subscriber)",
                  Type::kCounter);
  http::MetricFamily* bytes_out = sink.Family(
      "clustermgr_gossip_bytes_out_total",
      "Gossip bytes sent, by peer instance (\"*\": published to every subscriber)", Type::kCounter);
  for (const auto& [peer, t] : traffic) {
    const http::Labels labels{{"peer", peer}};
    msg_in->samples.push_back({labels, static_cast<double>(t.messages_in)});
    bytes_in->samples.push_back({labels, static_cast<double>(t.bytes_in)});
    msg_out->samples.push_back({labels, static_cast<double>(t.messages_out)});
    bytes_out->samples.push_back({labels, static_cast<double>(t.bytes_out)});
  }
  http::MetricFamily* lag = sink.Family(
      "clustermgr_apply_lag_deltas",
      "Deltas a manager instance has not applied yet, by instance and origin", Type::kGauge);
  for (const net::MemberInfo& m : members.members) {
    for (const net::OriginCount& o : m.lag_by_origin) {
      lag->samples.push_back(
          {{{"instance", m.name}, {"origin", o.origin}}, static_cast<double>(o.count)});
    }
  }
  http::MetricFamily* deltas =
      sink.Family("clustermgr_deltas_total", "Replicated deltas, by event", Type::kCounter);
  for (const char* event : {"published", "received", "applied", "duplicate", "overflow"}) {
    deltas->samples.push_back(
        {{{"event", event}}, Counter(status, std::string("deltas_") + event)});
  }
  sink.One("clustermgr_state_entries", "Entries in the replicated state (tombstones included)",
           Type::kGauge, static_cast<double>(status.state_entries));
  sink.One("clustermgr_tombstones", "Tombstones in the replicated state", Type::kGauge,
           static_cast<double>(status.tombstones));
  sink.One("clustermgr_tombstones_collected_total", "Tombstones collected", Type::kCounter,
           Counter(status, "tombstones_collected"));
  sink.One("clustermgr_store_writes_total",
           "LevelDB writes of the store (each one sync unless --sync=false)", Type::kCounter,
           Counter(status, "store_writes"));
  sink.One("clustermgr_rpc_write_batches_total",
           "Batches of RPC requests whose writes one store write made durable", Type::kCounter,
           Counter(status, "rpc_write_batches"));
  sink.One("clustermgr_anti_entropy_rounds_total", "Anti-entropy requests sent to peers",
           Type::kCounter, Counter(status, "syncs_sent"));
  sink.One("clustermgr_anti_entropy_replies_total", "Anti-entropy replies received", Type::kCounter,
           Counter(status, "syncs_answered"));
  http::MetricFamily* snapshots = sink.Family(
      "clustermgr_snapshot_transfers_total",
      "State snapshot transfers: served to peers, applied from a peer, abandoned", Type::kCounter);
  for (const char* what : {"served", "applied", "abandoned"}) {
    snapshots->samples.push_back(
        {{{"result", what}}, Counter(status, std::string("snapshots_") + what)});
  }
}

void AddTokenMetrics(MetricSink& sink, const net::TokenInfo& token) {
  sink.Family("clustermgr_token_holder", "1 for the instance this one believes holds the token",
              Type::kGauge)
      ->samples.push_back({{{"holder", token.holder}}, token.holder.empty() ? 0.0 : 1.0});
  sink.One("clustermgr_token_self_holds", "1 when this instance holds the side-effect token",
           Type::kGauge, token.self_holds ? 1 : 0);
  sink.One("clustermgr_token_epoch", "Epoch of the current holder's claim", Type::kGauge,
           static_cast<double>(token.epoch));
  sink.One("clustermgr_token_highest_epoch", "Highest epoch in the replicated register",
           Type::kGauge, static_cast<double>(token.highest_epoch));
  sink.One("clustermgr_quorum", "Managers that must be visible to hold the token", Type::kGauge,
           token.quorum);
  sink.One("clustermgr_managers_visible", "Managers counted alive, this one included", Type::kGauge,
           token.visible_managers);
  sink.One("clustermgr_quorum_reached", "1 when the visible managers reach the quorum",
           Type::kGauge, token.has_quorum ? 1 : 0);
}

// Jobs by status, Serf, the store, the clock, start time.
void AddLocalMetrics(MetricSink& sink, const net::StatusInfo& status,
                     const crdt::ClusterState& state, bool serf_connected,
                     const std::map<std::string, NodeObservation>& nodes_seen,
                     const std::vector<ManagerSighting>& managers_seen, uint64_t started_ms) {
  http::MetricFamily* jobs =
      sink.Family("clustermgr_jobs", "Jobs in the state, by status", Type::kGauge);
  std::map<std::string, double> by_status;
  for (const char* s : {"Queued", "Running", "Complete", "Errored", "Cancelled", "Interrupted"}) {
    by_status[s] = 0;
  }
  for (const auto& [id, entry] : state.jobs.entries()) {
    if (!entry.tombstone()) by_status[std::string(crdt::ToString(entry.value->status))] += 1;
  }
  for (const auto& [s, n] : by_status) jobs->samples.push_back({{{"status", s}}, n});
  sink.One("clustermgr_serf_connected", "1 while connected to the Serf agent", Type::kGauge,
           serf_connected ? 1 : 0);
  http::MetricFamily* serf = sink.Family(
      "clustermgr_serf_members", "Serf members as last seen, by kind and state", Type::kGauge);
  double nodes_alive = 0, nodes_gone = 0, managers_alive = 1, managers_gone = 0;  // 1: this one
  for (const auto& [name, obs] : nodes_seen) {
    (obs.kind == NodeObservation::Kind::kDisappeared ? nodes_gone : nodes_alive) += 1;
  }
  for (const ManagerSighting& m : managers_seen) (m.alive ? managers_alive : managers_gone) += 1;
  serf->samples = {{{{"kind", "node"}, {"state", "alive"}}, nodes_alive},
                   {{{"kind", "node"}, {"state", "gone"}}, nodes_gone},
                   {{{"kind", "manager"}, {"state", "alive"}}, managers_alive},
                   {{{"kind", "manager"}, {"state", "gone"}}, managers_gone}};
  sink.One("clustermgr_store_errors_total", "Store writes of replicated data that failed",
           Type::kCounter, Counter(status, "store_errors"));
  sink.One("clustermgr_store_writable", "1 while the store accepts writes", Type::kGauge,
           status.store_ok ? 1 : 0);
  sink.One("clustermgr_clock_refusals_total",
           "Peer timestamps further ahead of the local clock than --max-clock-offset-ms "
           "(followed, and reported)",
           Type::kCounter, Counter(status, "clock_refusals"));
  sink.One("clustermgr_clock_skew_ms",
           "How far ahead of the local clock the latest such peer timestamp was (ms)", Type::kGauge,
           Counter(status, "clock_skew_ms"));
  sink.One("clustermgr_bad_messages_total", "Gossip messages dropped as malformed", Type::kCounter,
           Counter(status, "bad_messages"));
  sink.One("clustermgr_start_time_seconds", "When this clustermgrd started (Unix time)",
           Type::kGauge, static_cast<double>(started_ms) / 1000);
}

}  // namespace

std::vector<http::MetricFamily> Daemon::Metrics(uint64_t now_ms) {
  // The `status`, `token` and `members` answers hold most of it: one source for RPC and HTTP.
  net::IncomingRequest ask;
  ask.request = net::StatusRequest{};
  const net::StatusInfo status = std::get<net::StatusInfo>(manager_->Handle(ask, now_ms)->payload);
  ask.request = net::TokenRequest{};
  const net::TokenInfo token = std::get<net::TokenInfo>(manager_->Handle(ask, now_ms)->payload);
  ask.request = net::MembersRequest{};
  const net::MemberList members = std::get<net::MemberList>(manager_->Handle(ask, now_ms)->payload);
  MetricSink sink;
  AddRequestMetrics(sink, request_stats_, rpc_->counters(), write_batches_);
  AddReplicationMetrics(sink, status, members, replicator_->traffic());
  AddTokenMetrics(sink, token);
  std::vector<ManagerSighting> managers;  // one per Serf member with manager tags
  for (const auto& [member, m] : managers_seen_) managers.push_back(m.sighting);
  AddLocalMetrics(sink, status, replica_->state(), serf_connected_, nodes_seen_, managers,
                  started_ms_);
  return sink.Take();
}

void Daemon::FillReplicationStatus(net::StatusInfo* info) {
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
                    {"store_writes", replica_->store().write_stats().batches},
                    {"rpc_write_batches", rpc_write_batches_},
                    {"rpc_connections", rpc_->connections().open()},
                    {"rpc_connections_refused", rpc_->connections().refused()}};
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

}  // namespace clustermgr::mgr
