#include "net/gossip_codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <random>

#include "net/gossip.capnp.h"
#include "net/gossip_endpoint.h"
#include "base/testing/test_seed.h"

namespace clustermgr::net {
namespace {


crdt::VersionVector Vector(std::initializer_list<std::pair<const char*, uint64_t>> entries) {
  crdt::VersionVector v;
  for (const auto& [o, s] : entries) v.Advance(o, s);
  return v;
}

GossipPeerInfo Sender() {
  return GossipPeerInfo{"m1", "m1/00000000000000ab", "tcp://127.0.0.1:9008",
                        "tcp://127.0.0.1:9007"};
}

// One message of each kind, with every field set.
std::vector<GossipMessage> Samples() {
  std::vector<GossipMessage> out;
  out.push_back({{}, GossipDelta{"m1/ab", 7, std::string("\0payload\xff", 9), true}});
  out.push_back({Sender(), SyncRequest{Vector({{"m1/ab", 3}, {"m2/cd", 9}})}});
  SyncReply reply;
  reply.applied = Vector({{"m1/ab", 5}});
  reply.durable = Vector({{"m1/ab", 4}});
  reply.deltas = {{"m1/ab", 4, "x", false}, {"m1/ab", 5, "yy", false}};
  reply.more = true;
  reply.snapshot = SnapshotOffer{42, 3, Vector({{"m1/ab", 5}, {"m3/ef", 1}})};
  reply.peers = {"tcp://127.0.0.1:9010", "tcp://127.0.0.1:9012"};
  out.push_back({Sender(), reply});
  out.push_back({Sender(), SnapshotFetch{42, 2}});
  out.push_back({Sender(), SnapshotChunk{42, 2, std::string(1000, 'z'), false}});
  out.push_back({Sender(), SnapshotChunk{42, 9, "", true}});
  out.push_back({Sender(), Report{Vector({{"m2/cd", 11}})}});
  out.push_back({Sender(), SyncRequest{Vector({{"m1/ab", 3}}), Vector({{"m1/ab", 2}})}});
  out.push_back({Sender(), Report{Vector({{"m2/cd", 11}}), Vector({{"m2/cd", 9}})}});
  out.push_back({{}, GossipDeltaBatch{{{"m1/ab", 8, "p8", true}, {"m1/ab", 9, "p9", true}}}});
  out.push_back({{}, GossipDeltaRun{std::string("run\0bytes", 9), true}});
  out.push_back({{}, GossipDeltaRun{"r", false}});
  return out;
}

TEST(GossipCodecTest, RoundTripsEveryKind) {
  for (const GossipMessage& m : Samples()) {
    const std::string bytes = EncodeGossip(m);
    auto back = DecodeGossip(bytes);
    ASSERT_TRUE(back.ok()) << GossipBodyName(m.body) << ": " << back.status().ToString();
    EXPECT_EQ(*back, m) << GossipBodyName(m.body);
  }
}

TEST(GossipCodecTest, DecodesFromUnalignedMemory) {
  const std::string bytes = EncodeGossip(Samples()[2]);
  std::string shifted = "x" + bytes;
  auto back = DecodeGossip(std::string_view(shifted).substr(1));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, Samples()[2]);
}

TEST(GossipCodecTest, RefusesEmptyPartialAndOversizeInput) {
  EXPECT_EQ(DecodeGossip("").status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeGossip("1234567").status().code(), Code::kCorruption);
  const std::string bytes = EncodeGossip(Samples()[1]);
  GossipLimits small;
  small.max_message_bytes = bytes.size() - 8;
  auto r = DecodeGossip(bytes, small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exceeds the limit"), std::string::npos);
  // Trailing garbage after a whole message.
  EXPECT_FALSE(DecodeGossip(bytes + std::string(8, '\0')).ok());
}

// A message built with the generated builder, then patched where the value types cannot go.
std::string Raw(const std::function<void(gossipwire::GossipMessage::Builder)>& fill) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<gossipwire::GossipMessage>();
  root.setProtocolVersion(kGossipProtocolVersion);
  fill(root);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  return std::string(words.asChars().begin(), words.asChars().size());
}

TEST(GossipCodecTest, RefusesProtocolVersionZero) {
  auto r = DecodeGossip(Raw([](auto b) {
    b.setProtocolVersion(0);
    b.initReport();
  }));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no protocol version"), std::string::npos);
}

TEST(GossipCodecTest, RefusesAnUnknownUnionMember) {
  auto r = DecodeGossip(Raw([](gossipwire::GossipMessage::Builder b) {
    b.initReport();
    // The union discriminant sits right after protocolVersion in the data section.
    capnp::AnyStruct::Builder any = capnp::toAny(kj::mv(b));
    auto data = any.getDataSection();
    ASSERT_GE(data.size(), 6u);
    ASSERT_EQ(data[4], static_cast<kj::byte>(gossipwire::GossipMessage::REPORT));
    data[4] = 99;
  }));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown message #99"), std::string::npos)
      << r.status().message();
}

TEST(GossipCodecTest, RefusesListsAndTextsBeyondTheLimits) {
  GossipLimits limits;
  limits.max_vector_origins = 10;
  limits.max_deltas = 3;
  limits.max_text_bytes = 16;
  auto many_origins = Raw([](auto b) {
    auto list = b.initSyncRequest().initApplied(11);
    for (unsigned i = 0; i < 11; ++i) {
      list[i].setOrigin(("o" + std::to_string(i)).c_str());
      list[i].setSeq(1);
    }
  });
  EXPECT_FALSE(DecodeGossip(many_origins, limits).ok());
  EXPECT_TRUE(DecodeGossip(many_origins).ok());

  auto many_deltas = Raw([](auto b) {
    auto list = b.initSyncReply().initDeltas(4);
    for (unsigned i = 0; i < 4; ++i) {
      list[i].setOrigin("o");
      list[i].setSeq(i + 1);
    }
  });
  EXPECT_FALSE(DecodeGossip(many_deltas, limits).ok());

  auto long_name = Raw([](auto b) {
    b.initSender().setName(std::string(17, 'n').c_str());
    b.initReport();
  });
  EXPECT_FALSE(DecodeGossip(long_name, limits).ok());

  auto seq_zero = Raw([](auto b) {
    auto d = b.initDelta();
    d.setOrigin("o");
    d.setSeq(0);
  });
  EXPECT_FALSE(DecodeGossip(seq_zero).ok());
  auto empty_origin = Raw([](auto b) {
    auto e = b.initReport().initApplied(1);
    e[0].setSeq(3);
  });
  EXPECT_FALSE(DecodeGossip(empty_origin).ok());
  auto offer_without_chunks = Raw([](auto b) { b.initSyncReply().initSnapshot().setId(5); });
  EXPECT_FALSE(DecodeGossip(offer_without_chunks).ok());
}

TEST(GossipCodecTest, SurvivesRandomAndCorruptedInput) {
  std::mt19937_64 rng(TestSeed());
  const auto samples = Samples();
  size_t decoded = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::string bytes;
    switch (rng() % 3) {
      case 0: {  // random words
        bytes.resize(8 * (rng() % 64));
        for (char& c : bytes) c = static_cast<char>(rng());
        break;
      }
      case 1: {  // a valid message with flipped bits
        bytes = EncodeGossip(samples[rng() % samples.size()]);
        const int flips = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < flips; ++i)
          bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
        break;
      }
      default: {  // a truncated valid message
        bytes = EncodeGossip(samples[rng() % samples.size()]);
        bytes.resize(rng() % (bytes.size() + 1));
        break;
      }
    }
    auto r = DecodeGossip(bytes);  // must not crash, throw or hang
    if (r.ok()) {
      ++decoded;
      // Whatever decodes re-encodes and decodes to the same value.
      auto again = DecodeGossip(EncodeGossip(*r));
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, *r);
    }
  }
  std::cout << decoded << " of 20000 mutated inputs still decoded\n";
}

TEST(GossipEndpointTest, DerivesTheAntiEntropyEndpoint) {
  EXPECT_EQ(*AntiEntropyEndpoint("tcp://127.0.0.1:9008"), "tcp://127.0.0.1:9009");
  EXPECT_EQ(*AntiEntropyEndpoint("tcp://[::1]:1"), "tcp://[::1]:2");
  EXPECT_EQ(*AntiEntropyEndpoint("tcp://host.example:65534"), "tcp://host.example:65535");
  EXPECT_EQ(*AntiEntropyEndpoint("ipc:///tmp/g"), "ipc:///tmp/g.ae");
  EXPECT_EQ(*AntiEntropyEndpoint("inproc://g1"), "inproc://g1.ae");
  for (const char* bad : {"tcp://127.0.0.1:65535", "tcp://127.0.0.1:0", "tcp://127.0.0.1:*",
                          "tcp://127.0.0.1", "tcp://127.0.0.1:x", "udp://a:1", "ipc://", ""}) {
    EXPECT_EQ(AntiEntropyEndpoint(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(GossipEndpointTest, ReplacesWildcardHosts) {
  EXPECT_EQ(ConnectableEndpoint("tcp://*:9008", "10.0.0.5"), "tcp://10.0.0.5:9008");
  EXPECT_EQ(ConnectableEndpoint("tcp://0.0.0.0:9008", "10.0.0.5"), "tcp://10.0.0.5:9008");
  EXPECT_EQ(ConnectableEndpoint("tcp://[::]:9008", "fe80::1"), "tcp://[fe80::1]:9008");
  EXPECT_EQ(ConnectableEndpoint("tcp://10.0.0.1:9008", "10.0.0.5"), "tcp://10.0.0.1:9008");
  EXPECT_EQ(ConnectableEndpoint("tcp://*:9008", ""), "tcp://*:9008");
  EXPECT_EQ(ConnectableEndpoint("ipc:///x", "10.0.0.5"), "ipc:///x");
}

}  // namespace
}  // namespace clustermgr::net
