@0xf8ae313863737413;
# The values of the durable store's records (store/keys.h has the key layout), and the encoding
# of a Delta, which replication reuses for gossip payloads.
#
# Evolution is append-only: a new field takes the next ordinal; no field is removed, renumbered,
# renamed in meaning or retyped; a union gains members only at the end. Readers take a field
# missing from old data as its default, so every default below must mean "not set". A change
# that older builds must not read bumps Meta.schemaVersion (store/store.h: kSchemaVersion).
# The numeric values of the enums (UInt8 here) are those of crdt/records.h; a reader checks
# their range.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("clustermgr::store::rec");

# Record 0x01: everything about the data dir that is not replicated state.
struct Meta {
  schemaVersion @0 :UInt32;
  instance @1 :Text;        # --name of the instance that created the dir
  incarnation @2 :Text;     # random, made once with the dir: origin id = "<instance>/<incarnation>"
  localSeq @3 :UInt64;      # last delta seq issued by this incarnation's origin
  hlcHighWater @4 :UInt64;  # packed HlcTimestamp: the clock restarts at or above it
  createdMs @5 :UInt64;     # wall time the dir was created
}

# The order stamp and replication dot of an LWW write (crdt::WriteTag).
struct WriteTag {
  epoch @0 :UInt64;
  hlc @1 :UInt64;     # packed HlcTimestamp
  origin @2 :Text;
  seq @3 :UInt64;
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

# crdt::InventoryRecord.
struct Inventory {
  status @0 :UInt8;      # crdt::NodeStatus
  state @1 :UInt8;       # crdt::NodeState
  prevStatus @2 :UInt8;
  prevState @3 :UInt8;
  addr @4 :Text;
  tags @5 :List(KeyValue);
  serfStatus @6 :Text;
  updatedMs @7 :UInt64;
}

# crdt::JobRecord.
struct Job {
  id @0 :Text;
  desc @1 :Text;
  nodes @2 :List(Text);
  hostGroup @3 :Text;
  status @4 :UInt8;      # crdt::JobStatus
  error @5 :Text;
  epoch @6 :UInt64;
  owner @7 :Text;
  createdMs @8 :UInt64;
  startedMs @9 :UInt64;
  endedMs @10 :UInt64;
  logLines @11 :UInt64;
  logChunks @12 :UInt64;
  hosts @13 :List(HostSummary);
}

# crdt::HostSummary.
struct HostSummary {
  host @0 :Text;
  ok @1 :UInt32;
  changed @2 :UInt32;
  unreachable @3 :UInt32;
  failed @4 :UInt32;
  skipped @5 :UInt32;
}

# One LWW entry (records 0x10, 0x11, 0x14..0x17). Which value member is legal depends on the
# section: text for globals, node vars, job logs and config; inventory; job.
struct LwwEntry {
  tag @0 :WriteTag;
  value :union {
    tombstone @1 :Void;
    text @2 :Text;
    inventory @3 :Inventory;
    job @4 :Job;
  }
}

struct Dot {
  origin @0 :Text;
  counter @1 :UInt64;  # from 1
}

# Record 0x12: the dots of one present host-group element (never empty).
struct ElementRecord {
  dots @0 :List(Dot);
}

# Record 0x13: the host-group causal context restricted to one origin (the key's): every
# counter up to `compact`, plus the out-of-order counters in `cloud` (each > compact + 1).
struct ContextRecord {
  compact @0 :UInt64;
  cloud @1 :List(UInt64);
}

# Record 0x02: the highest seq of the key's origin below which every delta has been applied.
struct AppliedRecord {
  seq @0 :UInt64;
}

# Record 0x18: the token's fencing epoch register.
struct EpochRecord {
  epoch @0 :UInt64;
}

# An LWW entry with its key, inside a State. `key` is the section's (first) key: extra-var name,
# node, job id or config key; `subkey` the node var name; `chunk` the job log chunk number.
struct KeyedEntry {
  key @0 :Text;
  subkey @1 :Text;
  chunk @2 :UInt64;
  entry @3 :LwwEntry;
}

struct Element {
  node @0 :Text;
  group @1 :Text;
  dots @2 :List(Dot);
}

struct CausalContext {
  compact @0 :List(Dot);  # one per origin: counters 1..n seen
  cloud @1 :List(Dot);    # seen out of order
}

# A crdt::ClusterState: a delta, or a chunk of a snapshot. Every list is in key order.
struct State {
  globals @0 :List(KeyedEntry);
  nodeVars @1 :List(KeyedEntry);
  hostGroups @2 :List(Element);
  hostGroupContext @3 :CausalContext;
  inventory @4 :List(KeyedEntry);
  jobs @5 :List(KeyedEntry);
  jobLogs @6 :List(KeyedEntry);
  config @7 :List(KeyedEntry);
  tokenEpoch @8 :UInt64;
}

# A crdt::Delta (record 0x03, and the gossip payload): the seq-th delta issued by origin.
struct Delta {
  origin @0 :Text;
  seq @1 :UInt64;
  state @2 :State;
}

# Consecutive deltas of one origin in the compact form replication publishes (store/codec.h
# EncodeDeltaRun), written with Cap'n Proto's packing. The deltas are seqs firstSeq,
# firstSeq + 1, ... of `origin`, one State each. Inside `states`, relative to the run:
#   * a WriteTag's or Dot's origin is left empty when it is the run's origin (an origin is
#     never empty);
#   * a WriteTag's seq is stored XOR its delta's seq (0 when the tag is the delta's own);
#   * a WriteTag's hlc is stored XOR hlcBase (a run's stamps are close together, so the high
#     bytes are zero and packing drops them);
#   * a causal context's compact entry for the run's origin has an empty origin too.
# Nothing else differs from the Delta encoding. Never stored: the delta log keeps Delta.
struct DeltaRun {
  origin @0 :Text;
  firstSeq @1 :UInt64;
  hlcBase @2 :UInt64;
  states @3 :List(State);
}
