#include "store/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "store/records.capnp.h"
#include "store/testing/random_replica.h"

namespace clustermgr::store {
namespace {

std::string Bytes(capnp::MallocMessageBuilder& m) {
  auto words = capnp::messageToFlatArray(m);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

TEST(CodecTest, RandomDeltasRoundTrip) {
  RandomReplica a("a/0001", 1), b("b/0002", 2);
  for (int i = 0; i < 300; ++i) {
    RandomReplica& r = i % 3 ? a : b;
    crdt::Delta d = r.Next(6);
    if (i % 5 == 0) (i % 3 ? b : a).Receive(d);
    const std::string bytes = EncodeDelta(d);
    auto back = DecodeDelta(bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_TRUE(*back == d) << "delta " << i;
  }
  // A whole state too.
  auto state = DecodeState(EncodeState(a.state()));
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_TRUE(*state == a.state());
}

TEST(CodecTest, RecordsRoundTrip) {
  Metadata meta;
  meta.instance = "m1";
  meta.incarnation = "0123456789abcdef";
  meta.local_seq = 77;
  meta.hlc_high_water = crdt::HlcTimestamp::Make(123456, 7);
  meta.created_ms = 99;
  auto m = DecodeMeta(EncodeMeta(meta));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, meta);

  crdt::LwwEntry<std::string> tomb{crdt::WriteTag{{3, crdt::HlcTimestamp::Make(5, 1), "o"}, 9},
                                   std::nullopt};
  auto t = DecodeTextEntry(EncodeTextEntry(tomb));
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(*t == tomb);

  const std::string nul_text("a\0b", 3);
  crdt::LwwEntry<std::string> text{tomb.tag, nul_text};
  auto t2 = DecodeTextEntry(EncodeTextEntry(text));
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(*t2->value, nul_text);

  std::set<crdt::Dot> dots{{"a", 1}, {"b", 7}};
  auto e = DecodeElement(EncodeElement(dots));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, dots);

  ContextPart part{4, {6, 9}};
  auto p = DecodeContextPart(EncodeContextPart(part));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, part);

  EXPECT_EQ(*DecodeApplied(EncodeApplied(12)), 12u);
  EXPECT_EQ(*DecodeEpoch(EncodeEpoch(5)), 5u);
}

TEST(CodecTest, MalformedInputIsCorruptionNotACrash) {
  RandomReplica r("a/1", 3);
  const std::string good = EncodeDelta(r.Next(6));
  // Truncations at every word and odd sizes.
  for (size_t n = 0; n < good.size(); n += 8) {
    auto d = DecodeDelta(good.substr(0, n));
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.status().code(), Code::kCorruption);
  }
  EXPECT_FALSE(DecodeDelta(good.substr(0, good.size() - 3)).ok());
  EXPECT_FALSE(DecodeDelta(good + std::string(8, '\0')).ok()) << "trailing word";
  // Random garbage and random bit flips: refused or decoded, never a crash.
  std::mt19937_64 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string bad = good;
    for (int f = 0; f < 1 + i % 4; ++f)
      bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    auto d = DecodeDelta(bad);
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), Code::kCorruption);
    }
  }
  std::string garbage(256, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  EXPECT_FALSE(DecodeDelta(garbage).ok());
  EXPECT_FALSE(DecodeMeta("").ok());
}

TEST(CodecTest, LimitsAreEnforced) {
  RandomReplica r("a/1", 3);
  const std::string good = EncodeDelta(r.Next(6));
  DecodeLimits small;
  small.max_bytes = good.size() - 8;
  auto d = DecodeDelta(good, small);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("exceeds the limit"), std::string::npos);

  // Deep nesting beyond the limit is refused.
  DecodeLimits shallow;
  shallow.nesting_limit = 2;
  crdt::DeltaBuilder b(crdt::ClusterState{}, crdt::WriteTag{{0, {}, "a/1"}, 1});
  crdt::InventoryRecord rec;
  rec.tags["k"] = "v";
  b.PutNode("n", rec);
  EXPECT_FALSE(DecodeDelta(EncodeDelta(crdt::Delta{"a/1", 1, std::move(b).Take()}), shallow).ok());
}

TEST(CodecTest, ValuesAreRangeChecked) {
  {
    capnp::MallocMessageBuilder m;
    auto e = m.initRoot<rec::LwwEntry>();
    e.initTag().setOrigin("o");
    e.getValue().initInventory().setStatus(9);
    auto r = DecodeInventoryEntry(Bytes(m));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("node status 9"), std::string::npos)
        << r.status().message();
  }
  {
    capnp::MallocMessageBuilder m;
    auto e = m.initRoot<rec::LwwEntry>();
    e.getValue().initJob().setStatus(7);  // one past kFenced
    EXPECT_FALSE(DecodeJobEntry(Bytes(m)).ok());
  }
  {
    // A text entry where an inventory record belongs.
    crdt::LwwEntry<std::string> text{{}, "x"};
    auto r = DecodeInventoryEntry(EncodeTextEntry(text));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("no inventory value"), std::string::npos);
  }
  {
    capnp::MallocMessageBuilder m;
    auto d = m.initRoot<rec::Delta>();
    d.setOrigin("o");
    d.setSeq(0);
    EXPECT_FALSE(DecodeDelta(Bytes(m)).ok()) << "seq 0";
  }
  {
    capnp::MallocMessageBuilder m;
    auto d = m.initRoot<rec::Delta>();
    d.setOrigin("o");
    d.setSeq(1);
    auto el = d.initState().initHostGroups(1);
    el[0].setNode("n");
    el[0].setGroup("g");
    EXPECT_FALSE(DecodeDelta(Bytes(m)).ok()) << "element without dots";
    el[0].initDots(1)[0].setOrigin("o");  // counter 0
    EXPECT_FALSE(DecodeDelta(Bytes(m)).ok()) << "dot counter 0";
  }
  EXPECT_FALSE(DecodeContextPart(EncodeContextPart(ContextPart{4, {5}})).ok())
      << "cloud counter contiguous with compact";
  EXPECT_FALSE(DecodeElement(EncodeElement({})).ok());
}

}  // namespace
}  // namespace clustermgr::store
