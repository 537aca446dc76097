// TokenElection: which single manager instance may perform side effects.
//
// Serf has no consensus, so the token is a claim carried in Serf tags, made safe enough by three
// rules:
//   * Quorum: an instance may claim or hold the token only while it sees at least
//     expect/2+1 managers alive, itself included. Of two sides of a partition at most one has a
//     quorum, so at most one side has a holder — as far as Serf's view of "alive" is right.
//     "Alive" (decided by the daemon, see Daemon::CountableManagers) is Serf's view of the
//     manager's agent AND replication having heard from the daemon within --token-contact-ms:
//     a crashed or hung daemon beside a live agent stops counting, and its claim with it.
//   * Fencing epoch: a claim takes epoch = (highest epoch seen, in the replicated max-register
//     or in a manager's tag) + 1. Only what counted managers claimed weighs (the daemon gives a
//     manager that no longer counts the epoch it claimed while it did, 0 for one that never
//     counted): any agent can join Serf with manager tags. A tag's epoch is a plain decimal
//     (ParseEpochTag) and counts only up to kMaxEpochLead above the register; the arithmetic
//     never wraps (with the register at the top of the range nobody can claim, and Status says
//     why). Every job and every
//     write a job makes carries its epoch, and the LWW order puts the epoch first, so a deposed
//     holder's late writes lose to the new holder's.
//   * Settle and preference: a claim is announced in the tag (`epoch=<E>`) and becomes a hold
//     only after a settle period in which no higher (epoch, name) claim was seen. To avoid
//     duelling claims, an eligible instance waits rank * settle before claiming, where rank is
//     the number of alive managers with a lower name: the lowest name claims first. A rise of
//     the replicated epoch register (a claim whose tag has not arrived yet) also holds claims
//     back for 2 × settle.
//   * Caught up: an instance claims only once it has applied everything every counted manager
//     reported having (and is not restoring a snapshot), so the epoch register it builds its
//     claim on is the cluster's: a wiped or restarted instance cannot claim an epoch below one
//     already used.
// A holder (or claimant) drops at once when it loses quorum, sees an alive member with a
// higher (epoch, name), or finds the replicated epoch register above its own epoch (a higher
// claim was made; its own writes would lose to that epoch's); the daemon then cancels its
// running job and starts no new side effect.
//
// What it does not guarantee: during a partition that Serf has not yet detected, the old holder
// may still run a playbook while a new one starts (at most for the failure-detection time plus
// the settle period); fencing keeps the state right, but the playbook side effect itself can
// happen twice. With --expect 1 the instance is always the holder.
//
// Pure logic: time and membership are inputs; no I/O, no threads. Owned by the event loop.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace clustermgr::mgr {

// The epoch of an `epoch=` tag: decimal digits only (no sign, no space, no "0x"), at most
// 2^64-1. nullopt for anything else: such a tag claims nothing.
std::optional<uint64_t> ParseEpochTag(std::string_view text);

// What this instance knows of another manager instance, from its Serf member and tags.
struct ManagerSighting {
  bool alive = false;
  uint64_t epoch = 0;  // the epoch its tag claims; 0: no claim
  std::string rpc;     // its RPC endpoint (tag `rpc`)
  // This instance has not applied everything the manager reported having (or has no report from
  // it yet): its replicated epoch register may be stale, so it must not claim.
  bool behind_it = false;
};

struct TokenStatus {
  bool self_holds = false;  // this instance may act now
  uint64_t epoch = 0;       // self_holds: the epoch to stamp side effects with
  std::string holder;       // the instance believed to hold the token ("" = none)
  uint64_t holder_epoch = 0;
  std::string holder_rpc;  // its RPC endpoint, for forwarding
  int visible = 0;         // managers seen alive, self included
  int quorum = 0;
  std::string why_not;  // when !self_holds: one line for the client
};

class TokenElection {
 public:
  struct Config {
    std::string self;
    int expect = 1;
    uint64_t settle_ms = 2000;
    // The contact window (--token-contact-ms): the others stop counting a manager they have not
    // heard from for this long, and may then elect another holder. A holder whose ticks stopped
    // for longer (its process was stopped or starved) gives the token up at its next tick - a new
    // holder's claim may not have reached it yet - and claims again like any other. Shorter
    // stalls cannot have cost it the token. 0: no such rule. Not applied alone (expect 1).
    uint64_t contact_ms = 0;
  };
  // What the daemon must do after a Tick.
  struct Actions {
    std::optional<uint64_t> publish_epoch;  // set the own `epoch` tag to this (0 = clear)
    std::optional<uint64_t> record_epoch;   // raise the replicated epoch register to this
    bool became_holder = false;
    bool lost_holder = false;  // stop side effects now (cancel the running job)
    std::string reason;        // for the log
  };

  // A claim more than this far above the replicated register is not believed: legitimate
  // claims are register + 1, and the register reaches every caught-up instance.
  static constexpr uint64_t kMaxEpochLead = uint64_t{1} << 20;

  explicit TokenElection(Config config) : config_(std::move(config)) {}

  // The other manager instances by instance name (self excluded), as Serf shows them now.
  void SetManagers(std::map<std::string, ManagerSighting> others) { others_ = std::move(others); }
  // Advances the election. `now_ms` is a monotonic clock (never the wall clock: a clock jump
  // must not shorten the settle period or fake a stall); `highest_epoch` is the
  // replicated max-register.
  Actions Tick(uint64_t now_ms, uint64_t highest_epoch);
  // Whether a holder is still in contact at `now_ms` (same clock as Tick): its last tick is at
  // most contact_ms old. Always true without the rule, alone, or when not holding.
  bool InContact(uint64_t now_ms) const;

  // While `reason` is not empty this instance neither holds nor claims the token (a holder
  // drops at the next Tick): it cannot record what its side effects do (its store refuses
  // writes). Empty again: it may claim as usual.
  void SetUnfit(std::string reason) { unfit_ = std::move(reason); }

  TokenStatus Status() const;
  int quorum() const { return config_.expect / 2 + 1; }
  int visible() const;

 private:
  enum class Phase { kIdle, kClaiming, kHolding };

  // The alive other instance with the highest (epoch, name) claim, if any.
  std::optional<std::pair<uint64_t, std::string>> BestOtherClaim() const;
  // An alive manager's claim worth believing: not above the register by more than the lead.
  bool Believable(uint64_t epoch) const;
  int Rank() const;
  // An alive other manager has state this instance has not applied yet.
  bool BehindAnyone() const;
  // Alone (expect 1) there is nobody to duel with: claims hold at once.
  uint64_t Settle() const { return config_.expect == 1 ? 0 : config_.settle_ms; }
  Actions Drop(std::string reason);
  bool HasContactRule() const { return config_.contact_ms > 0 && config_.expect > 1; }

  Config config_;
  std::string unfit_;
  std::map<std::string, ManagerSighting> others_;
  Phase phase_ = Phase::kIdle;
  uint64_t epoch_ = 0;  // claimed or held epoch
  uint64_t claim_started_ms_ = 0;
  std::optional<uint64_t> eligible_since_ms_;
  // The replicated epoch register travels by gossip, faster than Serf tags: when it rises,
  // someone has just claimed, and its tag will follow. Idle instances wait 2 × settle after.
  std::optional<uint64_t> highest_seen_;
  std::optional<uint64_t> highest_changed_ms_;
  bool exhausted_ = false;  // the register is at the top of the range: no claim is possible
  std::optional<uint64_t> last_tick_ms_;  // the contact window runs from here
};

}  // namespace clustermgr::mgr
