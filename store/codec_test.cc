#include "store/codec.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <span>
#include <vector>
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

// Runs of every length from 1 to 5, from a replica that also receives another origin's deltas
// (so its contexts and tags hold foreign origins, which a run keeps).
TEST(CodecTest, DeltaRunsRoundTrip) {
  RandomReplica a("a/0001", 21), b("b/0002", 22);
  for (int i = 0; i < 200; ++i) {
    std::vector<crdt::Delta> run;
    for (int n = 0; n <= i % 5; ++n) run.push_back(a.Next(6));
    for (int n = 0; n < 2; ++n) a.Receive(b.Next(4));
    const std::string bytes = EncodeDeltaRun(run);
    auto back = DecodeDeltaRun(bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_EQ(back->size(), run.size()) << "run " << i;
    for (size_t k = 0; k < run.size(); ++k) ASSERT_TRUE((*back)[k] == run[k]) << i << "/" << k;
  }
}

TEST(CodecTest, ADeltaRunIsFarSmallerThanItsDeltas) {
  // One small extra-var write, as a client's `global set {"k": "v"}` makes it.
  crdt::DeltaBuilder b(crdt::ClusterState{},
                       crdt::WriteTag{{1, crdt::HlcTimestamp::Make(1764790000123, 2),
                                       "manager-1/5f0c2a9d41e7b386"},
                                      42});
  b.SetGlobal("k", "\"v\"");
  const crdt::Delta d{"manager-1/5f0c2a9d41e7b386", 42, std::move(b).Take()};
  const size_t full = EncodeDelta(d).size();
  const size_t run = EncodeDeltaRun(std::span(&d, 1)).size();
  std::cout << "a small write: Delta " << full << " bytes, DeltaRun " << run << " bytes\n";
  EXPECT_LT(run * 3, full);
}

TEST(CodecTest, MalformedDeltaRunsAreCorruptionNotACrash) {
  RandomReplica r("a/1", 31);
  std::vector<crdt::Delta> run{r.Next(6), r.Next(6), r.Next(6)};
  const std::string good = EncodeDeltaRun(run);
  for (size_t n = 0; n < good.size(); ++n) {
    auto d = DecodeDeltaRun(good.substr(0, n));
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.status().code(), Code::kCorruption);
  }
  EXPECT_FALSE(DecodeDeltaRun(good + std::string(2, '\0')).ok()) << "trailing bytes";
  std::mt19937_64 rng(12);
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    for (int f = 0; f < 1 + i % 4; ++f)
      bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    auto d = DecodeDeltaRun(bad);
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), Code::kCorruption);
    }
  }
  // A run without deltas, without origin, or from seq 0.
  for (auto mutate : {+[](rec::DeltaRun::Builder m) { m.initStates(0); },
                      +[](rec::DeltaRun::Builder m) { m.setOrigin(""); },
                      +[](rec::DeltaRun::Builder m) { m.setFirstSeq(0); }}) {
    capnp::MallocMessageBuilder message;
    auto m = message.initRoot<rec::DeltaRun>();
    m.setOrigin("a/1");
    m.setFirstSeq(1);
    m.initStates(1);
    mutate(m);
    kj::VectorOutputStream out;
    capnp::writePackedMessage(out, message);
    auto bytes = out.getArray();
    auto d = DecodeDeltaRun(std::string_view(reinterpret_cast<const char*>(bytes.begin()),
                                             bytes.size()));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), Code::kCorruption);
  }
}

// Packing writes a run of zero words in two bytes: a few hundred bytes can claim gigabytes.
// The decoder refuses a segment larger than its input justifies, before allocating it.
TEST(CodecTest, APackedBombIsRefusedBeforeItIsUnpacked) {
  // Segment table: one segment of 2^28 words (2 GiB); then zero words, 256 per two bytes.
  std::string bomb = "\x80\x10";
  for (int i = 0; i < 200; ++i) bomb += std::string("\x00\xff", 2);
  auto d = DecodeDeltaRun(bomb);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kCorruption);
  EXPECT_NE(d.status().message().find("too large"), std::string::npos) << d.status().message();
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
