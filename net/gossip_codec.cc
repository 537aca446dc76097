#include "net/gossip_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <exception>
#include <utility>

#include "net/gossip.capnp.h"

namespace clustermgr::net {
namespace {

static_assert(gossipwire::PROTOCOL_VERSION == kGossipProtocolVersion,
              "kGossipProtocolVersion must follow net/gossip.capnp");

namespace w = gossipwire;

// A decoding failure; thrown inside DecodeGossip only and turned into a Status there.
struct Bad {
  std::string what;
};

capnp::Text::Reader Txt(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }
capnp::Data::Reader Dat(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// ---- encoding -------------------------------------------------------------------------------

void PutVector(capnp::List<w::OriginSeq>::Builder list, const crdt::VersionVector& v) {
  unsigned i = 0;
  for (const auto& [origin, seq] : v.entries()) {
    list[i].setOrigin(Txt(origin));
    list[i].setSeq(seq);
    ++i;
  }
}

void PutDelta(w::DeltaMsg::Builder b, const GossipDelta& d) {
  b.setOrigin(Txt(d.origin));
  b.setSeq(d.seq);
  b.setPayload(Dat(d.payload));
  b.setAckWanted(d.ack_wanted);
}

void PutBody(w::GossipMessage::Builder b, const GossipBody& body) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, GossipDelta>) {
          PutDelta(b.initDelta(), m);
        } else if constexpr (std::is_same_v<T, SyncRequest>) {
          auto r = b.initSyncRequest();
          PutVector(r.initApplied(m.applied.entries().size()), m.applied);
          if (m.durable) PutVector(r.initDurable(m.durable->entries().size()), *m.durable);
        } else if constexpr (std::is_same_v<T, SyncReply>) {
          auto r = b.initSyncReply();
          PutVector(r.initApplied(m.applied.entries().size()), m.applied);
          if (m.durable) PutVector(r.initDurable(m.durable->entries().size()), *m.durable);
          auto deltas = r.initDeltas(static_cast<unsigned>(m.deltas.size()));
          for (unsigned i = 0; i < m.deltas.size(); ++i) PutDelta(deltas[i], m.deltas[i]);
          r.setMore(m.more);
          auto offer = r.initSnapshot();
          offer.setId(m.snapshot.id);
          offer.setChunks(m.snapshot.chunks);
          PutVector(offer.initCovered(m.snapshot.covered.entries().size()), m.snapshot.covered);
          offer.setHlcHighWater(m.snapshot.hlc_high_water);
          auto peers = r.initPeers(static_cast<unsigned>(m.peers.size()));
          for (unsigned i = 0; i < m.peers.size(); ++i) peers.set(i, Txt(m.peers[i]));
        } else if constexpr (std::is_same_v<T, SnapshotFetch>) {
          auto r = b.initSnapshotFetch();
          r.setId(m.id);
          r.setIndex(m.index);
        } else if constexpr (std::is_same_v<T, SnapshotChunk>) {
          auto r = b.initSnapshotChunk();
          r.setId(m.id);
          r.setIndex(m.index);
          r.setState(Dat(m.state));
          r.setGone(m.gone);
        } else if constexpr (std::is_same_v<T, Report>) {
          auto r = b.initReport();
          PutVector(r.initApplied(m.applied.entries().size()), m.applied);
          if (m.durable) PutVector(r.initDurable(m.durable->entries().size()), *m.durable);
        } else if constexpr (std::is_same_v<T, GossipDeltaBatch>) {
          auto deltas = b.initDeltaBatch().initDeltas(static_cast<unsigned>(m.deltas.size()));
          for (unsigned i = 0; i < m.deltas.size(); ++i) PutDelta(deltas[i], m.deltas[i]);
        } else if constexpr (std::is_same_v<T, GossipDeltaRun>) {
          auto r = b.initDeltaRun();
          r.setRun(Dat(m.run));
          r.setAckWanted(m.ack_wanted);
        }
      },
      body);
}

// ---- decoding -------------------------------------------------------------------------------

std::string Text(capnp::Text::Reader t, const GossipLimits& limits, const char* field) {
  if (t.size() > limits.max_text_bytes) {
    throw Bad{std::string(field) + " of " + std::to_string(t.size()) + " bytes exceeds " +
              std::to_string(limits.max_text_bytes)};
  }
  return std::string(t.begin(), t.size());
}

std::string Bytes(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

crdt::VersionVector ReadVector(capnp::List<w::OriginSeq>::Reader list, const GossipLimits& limits,
                               const char* field) {
  if (list.size() > limits.max_vector_origins) {
    throw Bad{std::string(field) + " lists " + std::to_string(list.size()) +
              " origins, more than " + std::to_string(limits.max_vector_origins)};
  }
  crdt::VersionVector v;
  for (auto e : list) {
    std::string origin = Text(e.getOrigin(), limits, field);
    if (origin.empty()) throw Bad{std::string(field) + " holds an empty origin"};
    v.Advance(origin, e.getSeq());
  }
  return v;
}

GossipDelta ReadDelta(w::DeltaMsg::Reader r, const GossipLimits& limits) {
  GossipDelta d;
  d.origin = Text(r.getOrigin(), limits, "delta origin");
  d.seq = r.getSeq();
  if (d.origin.empty() || d.seq == 0) throw Bad{"a delta without origin or seq"};
  d.payload = Bytes(r.getPayload());
  d.ack_wanted = r.getAckWanted();
  return d;
}

GossipMessage ReadMessage(w::GossipMessage::Reader r, const GossipLimits& limits) {
  if (r.getProtocolVersion() == 0) throw Bad{"no protocol version"};
  GossipMessage m;
  if (r.hasSender()) {
    auto s = r.getSender();
    m.sender.name = Text(s.getName(), limits, "sender name");
    m.sender.origin = Text(s.getOrigin(), limits, "sender origin");
    m.sender.gossip_endpoint = Text(s.getGossipEndpoint(), limits, "sender gossip endpoint");
    m.sender.rpc_endpoint = Text(s.getRpcEndpoint(), limits, "sender rpc endpoint");
  }
  switch (r.which()) {
    case w::GossipMessage::DELTA:
      m.body = ReadDelta(r.getDelta(), limits);
      break;
    case w::GossipMessage::SYNC_REQUEST: {
      auto q = r.getSyncRequest();
      SyncRequest request{ReadVector(q.getApplied(), limits, "applied"), std::nullopt};
      if (q.hasDurable()) request.durable = ReadVector(q.getDurable(), limits, "durable");
      m.body = std::move(request);
    } break;
    case w::GossipMessage::SYNC_REPLY: {
      auto s = r.getSyncReply();
      SyncReply reply;
      reply.applied = ReadVector(s.getApplied(), limits, "applied");
      if (s.hasDurable()) reply.durable = ReadVector(s.getDurable(), limits, "durable");
      auto deltas = s.getDeltas();
      if (deltas.size() > limits.max_deltas) {
        throw Bad{"a sync reply of " + std::to_string(deltas.size()) + " deltas exceeds " +
                  std::to_string(limits.max_deltas)};
      }
      reply.deltas.reserve(deltas.size());
      for (auto d : deltas) reply.deltas.push_back(ReadDelta(d, limits));
      reply.more = s.getMore();
      if (s.hasSnapshot()) {
        auto o = s.getSnapshot();
        reply.snapshot.id = o.getId();
        reply.snapshot.chunks = o.getChunks();
        reply.snapshot.covered = ReadVector(o.getCovered(), limits, "covered");
        reply.snapshot.hlc_high_water = o.getHlcHighWater();
        if (reply.snapshot.id != 0 && reply.snapshot.chunks == 0) {
          throw Bad{"a snapshot offer without chunks"};
        }
      }
      auto peers = s.getPeers();
      if (peers.size() > limits.max_vector_origins) {
        throw Bad{"a sync reply listing " + std::to_string(peers.size()) + " peers"};
      }
      for (auto p : peers) reply.peers.push_back(Text(p, limits, "peer endpoint"));
      m.body = std::move(reply);
      break;
    }
    case w::GossipMessage::SNAPSHOT_FETCH: {
      auto f = r.getSnapshotFetch();
      m.body = SnapshotFetch{f.getId(), f.getIndex()};
      break;
    }
    case w::GossipMessage::SNAPSHOT_CHUNK: {
      auto c = r.getSnapshotChunk();
      m.body = SnapshotChunk{c.getId(), c.getIndex(), Bytes(c.getState()), c.getGone()};
      break;
    }
    case w::GossipMessage::REPORT: {
      auto q = r.getReport();
      Report report{ReadVector(q.getApplied(), limits, "applied"), std::nullopt};
      if (q.hasDurable()) report.durable = ReadVector(q.getDurable(), limits, "durable");
      m.body = std::move(report);
    } break;
    case w::GossipMessage::DELTA_BATCH: {
      auto deltas = r.getDeltaBatch().getDeltas();
      if (deltas.size() > limits.max_deltas) {
        throw Bad{"a delta batch of " + std::to_string(deltas.size()) + " deltas exceeds " +
                  std::to_string(limits.max_deltas)};
      }
      if (deltas.size() == 0) throw Bad{"an empty delta batch"};
      GossipDeltaBatch batch;
      batch.deltas.reserve(deltas.size());
      for (auto d : deltas) batch.deltas.push_back(ReadDelta(d, limits));
      m.body = std::move(batch);
      break;
    }
    case w::GossipMessage::DELTA_RUN: {
      auto q = r.getDeltaRun();
      if (q.getRun().size() == 0) throw Bad{"an empty delta run"};
      m.body = GossipDeltaRun{Bytes(q.getRun()), q.getAckWanted()};
      break;
    }
    default:
      throw Bad{"unknown message #" + std::to_string(static_cast<unsigned>(r.which())) +
                " (a newer peer?)"};
  }
  return m;
}

}  // namespace

const char* GossipBodyName(const GossipBody& body) {
  static const char* const kNames[] = {"delta",         "syncRequest", "syncReply", "snapshotFetch",
                                       "snapshotChunk", "report",      "deltaBatch",
                                       "deltaRun"};
  return kNames[body.index()];
}

std::string EncodeGossip(const GossipMessage& message) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<w::GossipMessage>();
  root.setProtocolVersion(kGossipProtocolVersion);
  const GossipPeerInfo& s = message.sender;
  if (!s.name.empty() || !s.origin.empty() || !s.gossip_endpoint.empty() ||
      !s.rpc_endpoint.empty()) {
    auto sender = root.initSender();
    sender.setName(Txt(s.name));
    sender.setOrigin(Txt(s.origin));
    sender.setGossipEndpoint(Txt(s.gossip_endpoint));
    sender.setRpcEndpoint(Txt(s.rpc_endpoint));
  }
  PutBody(root, message.body);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  kj::ArrayPtr<const char> chars = words.asChars();
  return std::string(chars.begin(), chars.size());
}

Result<GossipMessage> DecodeGossip(std::string_view bytes, const GossipLimits& limits) {
  auto bad = [&](const std::string& what) {
    return Status(Code::kCorruption,
                  "bad gossip message (" + std::to_string(bytes.size()) + " bytes): " + what);
  };
  if (bytes.size() > limits.max_message_bytes) {
    return bad("exceeds the limit of " + std::to_string(limits.max_message_bytes) + " bytes");
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return bad("not a whole number of 8-byte words");
  }
  // A ZeroMQ frame has no alignment guarantee: copy into words before reading.
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  // Bounded by the message's own size, so many pointers to the same data cannot amplify it.
  options.traversalLimitInWords = words.size() * 4 + 64;
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    if (reader.getEnd() != words.end()) return bad("trailing bytes after the message");
    return ReadMessage(reader.getRoot<w::GossipMessage>(), limits);
  } catch (const Bad& e) {
    return bad(e.what);
  } catch (const kj::Exception& e) {
    return bad(e.getDescription().cStr());
  } catch (const std::exception& e) {
    return bad(e.what());
  }
}

}  // namespace clustermgr::net
