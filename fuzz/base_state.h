// The live state the join-checking fuzz targets join decoded deltas into: a few entries in every
// section, made through the normal write path (DeltaBuilder), so joins meet real entries.
#pragma once

#include <utility>

#include "crdt/cluster_state.h"

namespace clustermgr::fuzz {

inline const crdt::ClusterState& BaseState() {
  static const crdt::ClusterState base = [] {
    crdt::ClusterState state;
    crdt::WriteTag tag{{1, crdt::HlcTimestamp::Make(1000, 0), "a/0000000000000001"}, 1};
    crdt::DeltaBuilder b(state, tag);
    b.SetGlobal("ntp_server", "\"10.0.0.1\"");
    b.SetNodeVar("node1", "role", "\"db\"");
    b.AddHostGroup("node1", "service-master");
    crdt::InventoryRecord rec;
    rec.status = crdt::NodeStatus::kAllocated;
    rec.state = crdt::NodeState::kDiscovered;
    rec.addr = "10.0.0.1";
    b.PutNode("node1", rec);
    crdt::JobRecord job;
    job.id = "a-1";
    job.desc = "commission";
    job.nodes = {"node1"};
    job.status = crdt::JobStatus::kComplete;
    b.PutJob(job);
    b.PutJobLogChunk("a-1", 0, "line 1\nline 2");
    b.SetConfig("user", "\"root\"");
    b.RaiseEpoch(1);
    state.Join(std::move(b).Take());
    return state;
  }();
  return base;
}

}  // namespace clustermgr::fuzz
