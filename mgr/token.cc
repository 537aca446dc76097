#include "mgr/token.h"

#include <algorithm>
#include <limits>

namespace clustermgr::mgr {

std::optional<uint64_t> ParseEpochTag(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(ch - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

bool TokenElection::Believable(uint64_t epoch) const {
  const uint64_t floor = highest_seen_.value_or(0);
  const uint64_t top = std::numeric_limits<uint64_t>::max();
  return epoch <= (floor > top - kMaxEpochLead ? top : floor + kMaxEpochLead);
}

int TokenElection::visible() const {
  int n = 1;  // self: this process is alive by definition
  for (const auto& [name, m] : others_) n += m.alive ? 1 : 0;
  return n;
}

std::optional<std::pair<uint64_t, std::string>> TokenElection::BestOtherClaim() const {
  std::optional<std::pair<uint64_t, std::string>> best;
  // A claim below the replicated epoch register is stale: a higher claim was made since, and the
  // claimant stands down as soon as the register reaches it.
  const uint64_t floor = highest_seen_.value_or(0);
  for (const auto& [name, m] : others_) {
    if (!m.alive || m.epoch == 0 || m.epoch < floor || !Believable(m.epoch)) continue;
    std::pair<uint64_t, std::string> claim{m.epoch, name};
    if (!best || claim > *best) best = claim;
  }
  return best;
}

int TokenElection::Rank() const {
  int rank = 0;
  for (const auto& [name, m] : others_) rank += (m.alive && name < config_.self) ? 1 : 0;
  return rank;
}

bool TokenElection::BehindAnyone() const {
  return std::any_of(others_.begin(), others_.end(),
                     [](const auto& kv) { return kv.second.alive && kv.second.behind_it; });
}

TokenElection::Actions TokenElection::Drop(std::string reason) {
  Actions a;
  a.lost_holder = phase_ == Phase::kHolding;
  a.publish_epoch = 0;
  a.reason = std::move(reason);
  phase_ = Phase::kIdle;
  epoch_ = 0;
  eligible_since_ms_.reset();
  return a;
}

bool TokenElection::InContact(uint64_t now_ms) const {
  if (!HasContactRule() || phase_ != Phase::kHolding || !last_tick_ms_) return true;
  return now_ms <= *last_tick_ms_ + config_.contact_ms;
}

TokenElection::Actions TokenElection::Tick(uint64_t now_ms, uint64_t highest_epoch) {
  // A holder that did not tick for longer than the contact window (stopped, starved) may have
  // been replaced meanwhile by a holder whose claim it has not heard of yet: it gives the token
  // up and claims again like any other.
  const bool silent = !InContact(now_ms);
  const uint64_t stopped_ms = last_tick_ms_ ? now_ms - std::min(now_ms, *last_tick_ms_) : 0;
  last_tick_ms_ = now_ms;
  if (silent) {
    return Drop("did not tick for " + std::to_string(stopped_ms) +
                " ms, longer than the contact window (" + std::to_string(config_.contact_ms) +
                " ms): gives the token up, another instance may hold it now");
  }
  // The first look is the baseline; a later rise means a claim is on its way.
  if (!highest_seen_) {
    highest_seen_ = highest_epoch;
  } else if (highest_epoch > *highest_seen_) {
    highest_seen_ = highest_epoch;
    highest_changed_ms_ = now_ms;
  }
  if (!unfit_.empty()) {
    eligible_since_ms_.reset();
    if (phase_ != Phase::kIdle) return Drop("stands down: " + unfit_);
    return {};
  }
  const bool has_quorum = visible() >= quorum();
  const auto best = BestOtherClaim();
  const bool outranked = best && *best > std::pair<uint64_t, std::string>{epoch_, config_.self};
  const std::string seen = "sees " + std::to_string(visible()) + " of " + std::to_string(quorum()) +
                           " required managers";

  if (phase_ != Phase::kIdle) {
    if (!has_quorum) return Drop("lost quorum: " + seen);
    if (outranked) {
      return Drop("a higher claim was seen: epoch " + std::to_string(best->first) + " by " +
                  best->second);
    }
    if (highest_epoch > epoch_) {
      return Drop("the replicated epoch register is at " + std::to_string(highest_epoch) +
                  ", above this instance's epoch " + std::to_string(epoch_));
    }
    if (phase_ == Phase::kClaiming && now_ms >= claim_started_ms_ + Settle()) {
      phase_ = Phase::kHolding;
      Actions a;
      a.became_holder = true;
      a.reason = "holds the token at epoch " + std::to_string(epoch_);
      return a;
    }
    return {};
  }

  // Idle: claim once eligible (quorum, no claim visible, no fresh epoch) for rank * settle.
  if (highest_changed_ms_ && now_ms < *highest_changed_ms_ + 2 * Settle()) {
    eligible_since_ms_.reset();
    return {};
  }
  if (!has_quorum || best || BehindAnyone()) {
    eligible_since_ms_.reset();
    return {};
  }
  if (!eligible_since_ms_) eligible_since_ms_ = now_ms;
  if (now_ms < *eligible_since_ms_ + static_cast<uint64_t>(Rank()) * Settle()) return {};

  // Above every epoch used: the register, and what managers' tags claim (a claim whose register
  // write has not arrived yet, a failed holder's included: the daemon gives a manager that no
  // longer counts the epoch it claimed while it did). An unbelievable claim weighs nothing.
  uint64_t highest = highest_epoch;
  for (const auto& [name, m] : others_) {
    if (Believable(m.epoch)) highest = std::max(highest, m.epoch);
  }
  exhausted_ = highest == std::numeric_limits<uint64_t>::max();
  if (exhausted_) return {};
  epoch_ = highest + 1;
  phase_ = Phase::kClaiming;
  claim_started_ms_ = now_ms;
  Actions a;
  a.publish_epoch = epoch_;
  a.record_epoch = epoch_;
  a.reason = "claims the token at epoch " + std::to_string(epoch_) + " (" + seen + ")";
  if (Settle() == 0) {  // alone: nobody to duel with
    phase_ = Phase::kHolding;
    a.became_holder = true;
  }
  return a;
}

TokenStatus TokenElection::Status() const {
  TokenStatus s;
  s.visible = visible();
  s.quorum = quorum();
  if (phase_ == Phase::kHolding) {
    s.self_holds = true;
    s.epoch = epoch_;
    s.holder = config_.self;
    s.holder_epoch = epoch_;
    return s;
  }
  const std::string seen = "sees " + std::to_string(s.visible) + " of " + std::to_string(s.quorum) +
                           " required managers";
  if (s.visible < s.quorum) {
    s.why_not = "no manager holds the side-effect token: " + seen;
    return s;
  }
  if (auto best = BestOtherClaim()) {
    s.holder = best->second;
    s.holder_epoch = best->first;
    s.holder_rpc = others_.at(best->second).rpc;
    s.why_not = "the side-effect token is held by " + s.holder + " (epoch " +
                std::to_string(s.holder_epoch) + ")";
    return s;
  }
  if (!unfit_.empty()) {
    s.why_not = "no manager holds the side-effect token yet; this instance stands down: " + unfit_;
    return s;
  }
  if (exhausted_) {
    s.why_not =
        "no manager holds the side-effect token: the epoch register is at the top of its range";
    return s;
  }
  s.why_not = phase_ == Phase::kClaiming
                  ? "no manager holds the side-effect token yet: this instance is claiming "
                    "epoch " +
                        std::to_string(epoch_)
                  : "no manager holds the side-effect token yet: an election is in progress";
  return s;
}

}  // namespace clustermgr::mgr
