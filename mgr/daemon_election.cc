#include <algorithm>
#include <cstddef>
#include <vector>

#include "mgr/daemon.h"
#include "mgr/log/log.h"

// The election glue: what Serf and replication say of the other managers goes into the token
// election (mgr/token.h), and what the election decides is carried out here.

namespace clustermgr::mgr {
namespace {

// Serf events handled per loop turn: a storm of member events is written in slices of this
// many, with requests and replication served in between.
constexpr size_t kSerfEventsPerTurn = 2000;

}  // namespace

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
  if (failed.ok() && store_failed_ms_ == 0) return;
  if (store_failed_ms_ == 0) {
    NoteStoreFailure(now_ms, failed.message());
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

void Daemon::NoteStoreFailure(uint64_t now_ms, const std::string& why) {
  if (store_failed_ms_ != 0) return;
  store_failed_ms_ = std::max<uint64_t>(now_ms, 1);
  next_store_retry_ms_ = now_ms + 1000;
  CM_LOG(kError) << "store: a write failed (" << why
                 << "); standing down from the side-effect token and retrying every second";
  election_.SetUnfit("its store refuses writes (" + why + ")");
}

TokenStatus Daemon::CurrentToken() const {
  TokenStatus token = election_.Status();
  const uint64_t recorded = replica_->state().token_epoch.value();
  if (token.self_holds && recorded > token.epoch) {
    token.self_holds = false;
    token.why_not = "a newer token epoch " + std::to_string(recorded) +
                    " is recorded; this instance's epoch " + std::to_string(token.epoch) +
                    " stands down";
  } else if (token.self_holds && !election_.InContact(SteadyMs())) {
    // The loop did not tick for longer than the contact window (the process was stopped or
    // starved): what waited meanwhile is handled before the next tick, which gives the token up.
    token.self_holds = false;
    token.why_not = "this instance's event loop did not run for longer than the contact window (" +
                    std::to_string(options_.token_contact_ms) + " ms); it re-checks the token";
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

void Daemon::HandleSerfConnections() {
  for (const net::SerfConnectionEvent& e : serf_conn_mail_.Drain()) {
    // Log changes only. The first attempt is always reported (a wrong auth key or address says
    // so at once).
    const bool first = !serf_reported_;
    const bool changed = serf_connected_ != e.connected;
    serf_reported_ = true;
    serf_connected_ = e.connected;
    if (!changed && !first) continue;
    if (e.connected) {
      CM_LOG(kInfo) << "serf: connected to " << options_.serf_rpc;
      tags_->Resync();  // the agent may have restarted and forgotten our tags
    } else {
      CM_LOG(kWarn) << "serf: not connected (retrying): " << e.reason.ToString();
    }
  }
}

void Daemon::HandleSerf(uint64_t now_ms) {
  HandleSerfConnections();
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

}  // namespace clustermgr::mgr
