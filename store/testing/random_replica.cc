#include "store/testing/random_replica.h"

#include <utility>
#include <vector>

namespace clustermgr::store {

RandomReplica::RandomReplica(std::string origin, uint64_t seed)
    : origin_(std::move(origin)),
      rng_(seed),
      hlc_(crdt::HlcTimestamp::Make(1'700'000'000'000, 0)) {}

std::string RandomReplica::Pick(const char* prefix, int pool) {
  const int n = static_cast<int>(rng_() % static_cast<uint64_t>(pool));
  std::string s = std::string(prefix) + std::to_string(n);
  // Now and then a name with bytes a text format could mangle.
  if (n % 7 == 3) s += std::string("\0\xff\x01", 3);
  return s;
}

crdt::Delta RandomReplica::Next(int max_ops) {
  ++seq_;
  // The HLC moves on by 0..2 ms; the epoch rises now and then (a new token holder).
  hlc_ = crdt::HlcTimestamp::Make(hlc_.millis() + rng_() % 3, hlc_.counter() + 1);
  if (rng_() % 50 == 0) ++epoch_;
  crdt::WriteTag tag{crdt::LwwStamp{epoch_, hlc_, origin_}, seq_};
  crdt::DeltaBuilder b(state_, tag);
  const int ops = 1 + static_cast<int>(rng_() % static_cast<uint64_t>(max_ops));
  for (int i = 0; i < ops; ++i) {
    const std::string value = "{\"v\":" + std::to_string(rng_() % 1000) + "}";
    switch (rng_() % 13) {
      case 0:
        b.SetGlobal(Pick("g", 20), value);
        break;
      case 1:
        b.EraseGlobal(Pick("g", 20));
        break;
      case 2: {
        const std::string node = Pick("n", 8);
        b.SetNodeVar(node, Pick("var", 6), value);
        break;
      }
      case 3: {
        const std::string node = Pick("n", 8);
        b.EraseNodeVar(node, Pick("var", 6));
        break;
      }
      case 4:
      case 5: {
        const std::string node = Pick("n", 8);
        b.AddHostGroup(node, rng_() % 2 ? "service-master" : "service-worker");
        break;
      }
      case 6: {
        const std::string node = Pick("n", 8);
        b.RemoveHostGroup(node, rng_() % 2 ? "service-master" : "service-worker");
        break;
      }
      case 7: {
        crdt::InventoryRecord r;
        r.status = static_cast<crdt::NodeStatus>(rng_() % 6);
        r.state = static_cast<crdt::NodeState>(rng_() % 3);
        r.prev_status = static_cast<crdt::NodeStatus>(rng_() % 6);
        r.prev_state = static_cast<crdt::NodeState>(rng_() % 3);
        r.addr = "10.0.0." + std::to_string(rng_() % 255);
        r.tags["NodeLabel"] = "node";
        r.tags["NodeSerial"] = std::to_string(rng_() % 100);
        r.serf_status = rng_() % 2 ? "alive" : "failed";
        r.updated_ms = hlc_.millis();
        const std::string node = Pick("n", 8);
        b.PutNode(node, std::move(r));
        break;
      }
      case 8: {
        crdt::JobRecord j;
        j.id = Pick("job", 5);
        j.desc = "commission";
        j.nodes = {Pick("n", 8), Pick("n", 8)};
        j.host_group = "service-worker";
        j.status = static_cast<crdt::JobStatus>(rng_() % 6);
        j.error = rng_() % 4 == 0 ? "playbook failed" : "";
        j.epoch = epoch_;
        j.owner = origin_;
        j.created_ms = hlc_.millis();
        j.log_chunks = rng_() % 4;
        if (rng_() % 2 == 0) {
          const auto r = static_cast<uint32_t>(rng_() % 3);
          j.hosts = {{j.nodes[0], 2 + r, r, 0, r == 2 ? 1u : 0u, 1}};
        }
        b.PutJob(std::move(j));
        break;
      }
      case 9: {
        const std::string job = Pick("job", 5);
        b.PutJobLogChunk(job, rng_() % 4, "line one\nline two");
        break;
      }
      case 10:
        b.SetConfig(Pick("cfg", 5), value);
        break;
      case 11:
        b.RaiseEpoch(rng_() % 10);
        break;
      default: {
        std::vector<std::string> groups;
        if (rng_() % 2) groups.push_back("service-master");
        if (rng_() % 2) groups.push_back("service-worker");
        const std::string node = Pick("n", 8);
        b.SetHostGroups(node, groups);
        break;
      }
    }
  }
  crdt::Delta delta{origin_, seq_, std::move(b).Take()};
  state_.Join(delta.state);
  return delta;
}

void RandomReplica::Receive(const crdt::Delta& delta) {
  state_.Join(delta.state);
  // Stay causally after what was received, as HybridClock::Observe would.
  for (const auto& [k, e] : delta.state.globals.entries()) hlc_ = std::max(hlc_, e.tag.stamp.hlc);
  for (const auto& [k, e] : delta.state.inventory.entries()) {
    hlc_ = std::max(hlc_, e.tag.stamp.hlc);
  }
}

}  // namespace clustermgr::store
