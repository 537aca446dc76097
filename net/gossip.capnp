# clustermgr replication: the wire contract between clustermgrd instances.
#
# Sockets (each instance; see net/gossip_transport.h for the endpoint scheme):
#   PUB    bound at --gossip-bind                 publishes the instance's own deltas (`deltaRun`;
#                                                  builds before it sent `delta` or `deltaBatch`)
#   SUB    connected to every peer's PUB          receives the peers' own deltas
#   ROUTER bound at the anti-entropy endpoint      answers `syncRequest` and `snapshotFetch`,
#          (the gossip port + 1)                   takes `report`s
#   DEALER one per peer, to the peer's ROUTER      sends requests and reports, gets the replies
# Every ZeroMQ message is ONE frame holding one GossipMessage in Cap'n Proto's standard
# (unpacked) framing; the ROUTER adds and strips the routing identity.
#
# Anti-entropy (pull): an instance sends `syncRequest` (its applied version vector) to each
# peer periodically, at once when a peer (re)appears and when it sees a gap in an origin's seqs.
# The peer answers `syncReply`: its own applied vector and the deltas the requester lacks, from
# its delta log, bounded per reply (`more` = ask again); or, when its log no longer reaches back
# far enough, a `snapshot` offer. The requester then pulls the offer's chunks with
# `snapshotFetch` (a few in flight, re-asked on timeout) and applies the last chunk, which
# carries the OR-set causal context, once all others are in, with the offer's `covered` vector
# (ZeroMQ Clone pattern: the SUB socket is connected first, so deltas published meanwhile wait
# in the receiver's buffer and apply on top of the snapshot).
#
# EVOLUTION IS APPEND-ONLY, as for net/rpc.capnp: never renumber, remove, retype or re-mean a
# field; new fields and union members take the next ordinal. A receiver drops (and counts) a
# message whose union member it does not know.
# Limits every reader applies (net/gossip_codec.h): frame size cap, traversal and nesting limits.

@0xfdfff54d0ab325fa;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("clustermgr::net::gossipwire");

const protocolVersion :UInt32 = 2;
# 2: deltaRun (the compact form of published deltas).
# The version of this schema the sender was built with; zero = not a clustermgr peer (dropped).

struct OriginSeq {
  origin @0 :Text;   # a replication origin: "<instance name>/<incarnation>"
  seq @1 :UInt64;    # a sequence number of that origin (from 1, without gaps)
}

struct PeerInfo {
  name @0 :Text;            # the sender's --name
  origin @1 :Text;          # the sender's current origin (its deltas' origin)
  gossipEndpoint @2 :Text;  # the sender's PUB endpoint (peers key it by this)
  rpcEndpoint @3 :Text;     # the sender's RPC endpoint (for `clustermgr members`)
}

struct GossipMessage {
  protocolVersion @0 :UInt32;
  sender @1 :PeerInfo;      # empty in `delta` (the origin says who published it)
  union {
    delta @2 :DeltaMsg;
    syncRequest @3 :SyncRequest;
    syncReply @4 :SyncReply;
    snapshotFetch @5 :SnapshotFetch;
    snapshotChunk @6 :SnapshotChunk;
    report @7 :Report;
    deltaBatch @8 :DeltaBatch;
    deltaRun @9 :DeltaRun;
  }
}

# One delta: store/records.capnp's Delta encoding in `payload` (its origin and seq must equal
# the ones here). Published by its origin; shipped by anyone in a syncReply.
struct DeltaMsg {
  origin @0 :Text;
  seq @1 :UInt64;
  payload @2 :Data;
  ackWanted @3 :Bool;   # the publisher waits for peers to persist it (--ack-replicas): answer
                        # with a `report` once it is applied
}

struct SyncRequest {
  applied @0 :List(OriginSeq);  # the requester's applied version vector
  durable @1 :List(OriginSeq);  # what of it is synced to its disk (absent from older builds,
                                # which sync every batch they apply: then `applied`)
}

struct SyncReply {
  applied @0 :List(OriginSeq);  # the responder's applied version vector
  deltas @1 :List(DeltaMsg);    # consecutive deltas per origin, above the requester's vector
  more @2 :Bool;                # the reply was cut at its size bound: ask again
  snapshot @3 :SnapshotOffer;   # set (id != 0) when the deltas cannot be served from the log
  peers @4 :List(Text);         # gossip endpoints of the responder's live peers: the requester
                                # connects to those it does not know (a full mesh from partial
                                # --peer lists)
  durable @5 :List(OriginSeq);  # what of `applied` is synced to the responder's disk (as in
                                # SyncRequest)
}

struct SnapshotOffer {
  id @0 :UInt64;                # the responder's snapshot session; 0 = no offer
  chunks @1 :UInt32;            # chunk count (>= 1); the last one carries the OR-set context
  covered @2 :List(OriginSeq);  # the responder's applied vector when it took the snapshot
  hlcHighWater @3 :UInt64;      # the responder's hybrid clock then (packed); the restoring
                                # instance's clock rises to it (0 from older builds)
}

struct SnapshotFetch {
  id @0 :UInt64;
  index @1 :UInt32;
}

struct SnapshotChunk {
  id @0 :UInt64;
  index @1 :UInt32;
  state @2 :Data;      # store/records.capnp's State encoding of this part of the snapshot
  gone @3 :Bool;       # the session or index is unknown (expired): start over
}

# Several of the publisher's own deltas, committed together (one durable write), in seq order.
# Published like `delta`; each one means what a `delta` would.
struct DeltaBatch {
  deltas @0 :List(DeltaMsg);
}

# The sender's applied vector, unsolicited (after applying deltas that asked for an ack).
struct Report {
  applied @0 :List(OriginSeq);
  durable @1 :List(OriginSeq);  # as in SyncRequest
}

# The publisher's own deltas written together, consecutive in seq, in the compact form:
# store/records.capnp's DeltaRun, packed (the origin once, stamps relative to the run). What the
# instance publishes since protocol version 2; each delta in it means what a `delta` would. A
# peer built before it drops the message as unknown and gets the deltas by anti-entropy.
struct DeltaRun {
  run @0 :Data;
  ackWanted @1 :Bool;   # as in DeltaMsg, for every delta of the run
}
