#include "net/serf_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace clustermgr::net {
namespace {

// Decodes exactly one object from `bytes`.
msgpack::object_handle One(const std::string& bytes) {
  SerfStreamDecoder d;
  d.Feed(bytes.data(), bytes.size());
  msgpack::object_handle oh;
  auto got = d.Next(&oh);
  EXPECT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(got.ok() && *got);
  return oh;
}

std::string Pack(const msgpack::sbuffer& b) { return std::string(b.data(), b.size()); }

SerfMember SampleMember(const std::string& name, const std::string& addr) {
  SerfMember m;
  m.name = name;
  m.addr = addr;
  m.port = 7946;
  m.tags = {{"NodeLabel", "n"}, {"NodeSerial", "1"}};
  m.status = "alive";
  m.protocol_min = 2;
  m.protocol_max = 5;
  m.protocol_cur = 5;
  m.delegate_min = 2;
  m.delegate_max = 5;
  m.delegate_cur = 4;
  return m;
}

TEST(SerfCodecTest, RequestHeaderRoundTrip) {
  auto oh = One(EncodeRequestHeader({"members", 42}));
  SerfRequestHeader h;
  ASSERT_TRUE(DecodeRequestHeader(oh.get(), &h).ok());
  EXPECT_EQ(h.command, "members");
  EXPECT_EQ(h.seq, 42u);
}

TEST(SerfCodecTest, ResponseHeaderRoundTrip) {
  auto oh = One(EncodeResponseHeader({7, "Invalid authentication token"}));
  SerfResponseHeader h;
  ASSERT_TRUE(DecodeResponseHeader(oh.get(), &h).ok());
  EXPECT_EQ(h.seq, 7u);
  EXPECT_EQ(h.error, "Invalid authentication token");
}

TEST(SerfCodecTest, RequestBodiesRoundTrip) {
  int32_t version = 0;
  ASSERT_TRUE(DecodeHandshakeBody(One(EncodeHandshakeBody(1)).get(), &version).ok());
  EXPECT_EQ(version, 1);

  std::string key;
  ASSERT_TRUE(DecodeAuthBody(One(EncodeAuthBody("s3cret")).get(), &key).ok());
  EXPECT_EQ(key, "s3cret");

  std::string type;
  ASSERT_TRUE(DecodeStreamBody(One(EncodeStreamBody("member-join")).get(), &type).ok());
  EXPECT_EQ(type, "member-join");

  uint64_t stop = 0;
  ASSERT_TRUE(DecodeStopBody(One(EncodeStopBody(99)).get(), &stop).ok());
  EXPECT_EQ(stop, 99u);

  std::map<std::string, std::string> set;
  std::vector<std::string> remove;
  ASSERT_TRUE(DecodeTagsBody(One(EncodeTagsBody({{"a", "1"}}, {"b"})).get(), &set, &remove).ok());
  EXPECT_EQ(set, (std::map<std::string, std::string>{{"a", "1"}}));
  EXPECT_EQ(remove, std::vector<std::string>{"b"});

  SerfMemberFilter f;
  f.tags = {{"role", "clustermgr"}};
  f.status = "alive";
  f.name = "m.*";
  SerfMemberFilter g;
  ASSERT_TRUE(DecodeMembersFilteredBody(One(EncodeMembersFilteredBody(f)).get(), &g).ok());
  EXPECT_EQ(g.tags, f.tags);
  EXPECT_EQ(g.status, "alive");
  EXPECT_EQ(g.name, "m.*");

  std::vector<std::string> addrs;
  bool replay = false;
  ASSERT_TRUE(
      DecodeJoinBody(One(EncodeJoinBody({"127.0.0.1:1"}, true)).get(), &addrs, &replay).ok());
  EXPECT_EQ(addrs, std::vector<std::string>{"127.0.0.1:1"});
  EXPECT_TRUE(replay);
}

TEST(SerfCodecTest, MembersRoundTripIPv4AndIPv6) {
  std::vector<SerfMember> in = {SampleMember("a", "127.0.0.1"), SampleMember("b", "::1")};
  std::vector<SerfMember> out;
  ASSERT_TRUE(DecodeMembersBody(One(EncodeMembersBody(in)).get(), &out).ok());
  EXPECT_EQ(out, in);
  EXPECT_EQ(out[0].Endpoint(), "127.0.0.1:7946");
  EXPECT_EQ(out[1].Endpoint(), "[::1]:7946");
}

TEST(SerfCodecTest, MemberEventRoundTripKeepsEveryMember) {
  SerfMemberEvent e{SerfEventType::kMemberFailed,
                    "member-failed",
                    {SampleMember("a", "10.0.0.1"), SampleMember("b", "10.0.0.2")}};
  SerfMemberEvent out;
  ASSERT_TRUE(DecodeMemberEventBody(One(EncodeMemberEventBody(e)).get(), &out).ok());
  EXPECT_EQ(out.type, SerfEventType::kMemberFailed);
  EXPECT_EQ(out.members, e.members);

  SerfMemberEvent empty{SerfEventType::kMemberJoin, "member-join", {}};
  ASSERT_TRUE(DecodeMemberEventBody(One(EncodeMemberEventBody(empty)).get(), &out).ok());
  EXPECT_EQ(out.type, SerfEventType::kMemberJoin);
  EXPECT_TRUE(out.members.empty());
}

TEST(SerfCodecTest, UnknownEventNameIsKeptAsUnknown) {
  SerfMemberEvent e{SerfEventType::kUnknown, "user", {}};
  SerfMemberEvent out;
  ASSERT_TRUE(DecodeMemberEventBody(One(EncodeMemberEventBody(e)).get(), &out).ok());
  EXPECT_EQ(out.type, SerfEventType::kUnknown);
  EXPECT_EQ(out.event, "user");
}

// What Go's codec sends for net.IP: 16 bytes with the IPv4-mapped prefix, or a str.
TEST(SerfCodecTest, AddressForms) {
  std::string text;
  ASSERT_TRUE(SerfAddrBytesToText(std::string("\x7f\0\0\x01", 4), &text));
  EXPECT_EQ(text, "127.0.0.1");
  ASSERT_TRUE(
      SerfAddrBytesToText(std::string("\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x00\x00\x05", 16), &text));
  EXPECT_EQ(text, "10.0.0.5");
  EXPECT_FALSE(SerfAddrBytesToText("abc", &text));

  // A member whose Addr is a 3-byte str is malformed, an absent Addr is fine.
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_map(2);
  pk.pack(std::string("Name"));
  pk.pack(std::string("x"));
  pk.pack(std::string("Addr"));
  pk.pack(std::string("abc"));
  SerfMember m;
  EXPECT_EQ(DecodeMember(One(Pack(b)).get(), &m).code(), Code::kCorruption);

  msgpack::sbuffer b2;
  msgpack::packer<msgpack::sbuffer> pk2(b2);
  pk2.pack_map(1);
  pk2.pack(std::string("Name"));
  pk2.pack(std::string("x"));
  SerfMember m2;
  ASSERT_TRUE(DecodeMember(One(Pack(b2)).get(), &m2).ok());
  EXPECT_EQ(m2.name, "x");
  EXPECT_EQ(m2.addr, "");
}

TEST(SerfCodecTest, NilTagsAndNilMembersAreEmpty) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_map(1);
  pk.pack(std::string("Members"));
  pk.pack_nil();
  std::vector<SerfMember> out{SampleMember("stale", "1.2.3.4")};
  ASSERT_TRUE(DecodeMembersBody(One(Pack(b)).get(), &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(SerfCodecTest, WrongTypesAreProtocolErrors) {
  SerfResponseHeader h;
  // Not a map.
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_array(2);
    pk.pack(1);
    pk.pack(std::string(""));
    EXPECT_EQ(DecodeResponseHeader(One(Pack(b)).get(), &h).code(), Code::kCorruption);
  }
  // Seq as a string.
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(2);
    pk.pack(std::string("Seq"));
    pk.pack(std::string("1"));
    pk.pack(std::string("Error"));
    pk.pack(std::string(""));
    auto st = DecodeResponseHeader(One(Pack(b)).get(), &h);
    EXPECT_EQ(st.code(), Code::kCorruption);
    EXPECT_NE(st.message().find("Seq"), std::string::npos) << st.message();
  }
  // Negative Seq.
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(2);
    pk.pack(std::string("Seq"));
    pk.pack(-1);
    pk.pack(std::string("Error"));
    pk.pack(std::string(""));
    EXPECT_EQ(DecodeResponseHeader(One(Pack(b)).get(), &h).code(), Code::kCorruption);
  }
  // Missing Error.
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(1);
    pk.pack(std::string("Seq"));
    pk.pack(1);
    EXPECT_EQ(DecodeResponseHeader(One(Pack(b)).get(), &h).code(), Code::kCorruption);
  }
  // Members as a map, a member as a string, Port out of range, tag value an integer.
  std::vector<SerfMember> members;
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(1);
    pk.pack(std::string("Members"));
    pk.pack_map(0);
    EXPECT_EQ(DecodeMembersBody(One(Pack(b)).get(), &members).code(), Code::kCorruption);
  }
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(1);
    pk.pack(std::string("Members"));
    pk.pack_array(1);
    pk.pack(std::string("nope"));
    EXPECT_EQ(DecodeMembersBody(One(Pack(b)).get(), &members).code(), Code::kCorruption);
  }
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(2);
    pk.pack(std::string("Name"));
    pk.pack(std::string("x"));
    pk.pack(std::string("Port"));
    pk.pack(70000);
    SerfMember m;
    EXPECT_EQ(DecodeMember(One(Pack(b)).get(), &m).code(), Code::kCorruption);
  }
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(2);
    pk.pack(std::string("Name"));
    pk.pack(std::string("x"));
    pk.pack(std::string("Tags"));
    pk.pack_map(1);
    pk.pack(std::string("k"));
    pk.pack(5);
    SerfMember m;
    EXPECT_EQ(DecodeMember(One(Pack(b)).get(), &m).code(), Code::kCorruption);
  }
  // Members body without Members.
  {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(0);
    EXPECT_EQ(DecodeMembersBody(One(Pack(b)).get(), &members).code(), Code::kCorruption);
  }
}

TEST(SerfStreamDecoderTest, ReassemblesObjectsFedByteByByte) {
  const std::string bytes = EncodeResponseHeader({1, ""}) +
                            EncodeMembersBody({SampleMember("a", "127.0.0.1")}) +
                            EncodeResponseHeader({2, "boom"});
  SerfStreamDecoder d;
  std::vector<msgpack::object_handle> got;
  for (char ch : bytes) {
    d.Feed(&ch, 1);
    while (true) {
      msgpack::object_handle oh;
      auto r = d.Next(&oh);
      ASSERT_TRUE(r.ok()) << r.status().message();
      if (!*r) break;
      got.push_back(std::move(oh));
    }
  }
  ASSERT_EQ(got.size(), 3u);
  SerfResponseHeader h;
  ASSERT_TRUE(DecodeResponseHeader(got[2].get(), &h).ok());
  EXPECT_EQ(h.seq, 2u);
  EXPECT_EQ(h.error, "boom");
  EXPECT_EQ(d.pending_bytes(), 0u);
}

TEST(SerfStreamDecoderTest, GarbageIsAnErrorAndStaysOne) {
  SerfStreamDecoder d;
  const char garbage[] = "\xc1\xc1\xc1 not msgpack";
  d.Feed(garbage, sizeof garbage - 1);
  msgpack::object_handle oh;
  auto r = d.Next(&oh);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  const std::string more = EncodeResponseHeader({1, ""});
  d.Feed(more.data(), more.size());
  EXPECT_FALSE(d.Next(&oh).ok());
}

// A 5-byte array or map header announcing 2^32-1 elements must not make msgpack allocate for
// them: refused at once.
TEST(SerfStreamDecoderTest, HugeDeclaredContainersAreRefused) {
  for (const std::string& bytes :
       {std::string("\xdd\xff\xff\xff\xff", 5), std::string("\xdf\xff\xff\xff\xff", 5)}) {
    SerfStreamDecoder d;
    d.Feed(bytes.data(), bytes.size());
    msgpack::object_handle oh;
    auto r = d.Next(&oh);
    ASSERT_FALSE(r.ok()) << "accepted " << std::hex << static_cast<int>(bytes[0] & 0xff);
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    EXPECT_NE(r.status().message().find("limit"), std::string::npos) << r.status().message();
  }
}

// A huge declared str or bin allocates nothing up front: the decoder waits for the bytes and
// refuses once more than max_message_bytes are buffered.
TEST(SerfStreamDecoderTest, HugeDeclaredStringsAreRefusedByTheBound) {
  SerfStreamDecoder::Limits limits;
  limits.max_message_bytes = 4096;
  for (const std::string& header :
       {std::string("\xdb\xff\xff\xff\xff", 5), std::string("\xc6\x7f\xff\xff\xff", 5)}) {
    SerfStreamDecoder d(limits);
    d.Feed(header.data(), header.size());
    msgpack::object_handle oh;
    auto r = d.Next(&oh);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(*r);
    const std::string filler(8192, 'x');
    d.Feed(filler.data(), filler.size());
    r = d.Next(&oh);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("exceeds 4096 bytes"), std::string::npos)
        << r.status().message();
  }
}

// A complete string longer than max_str is refused even within the message bound.
TEST(SerfStreamDecoderTest, LongStringBeyondTheStringLimitIsRefused) {
  SerfStreamDecoder::Limits limits;
  limits.max_str = 100;
  SerfStreamDecoder d(limits);
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack(std::string(200, 'y'));
  d.Feed(b.data(), b.size());
  msgpack::object_handle oh;
  EXPECT_FALSE(d.Next(&oh).ok());
}

TEST(SerfStreamDecoderTest, DeepNestingIsRefused) {
  std::string bytes(64, '\x91');  // 64 nested one-element arrays
  bytes += '\xc0';
  SerfStreamDecoder d;
  d.Feed(bytes.data(), bytes.size());
  msgpack::object_handle oh;
  EXPECT_FALSE(d.Next(&oh).ok());
}

TEST(SerfStreamDecoderTest, IncompleteMessageBeyondTheBoundIsRefused) {
  SerfStreamDecoder::Limits limits;
  limits.max_message_bytes = 1024;
  SerfStreamDecoder d(limits);
  // An array of 4000 one-byte strings, fed whole but for its last element.
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(4000);
  for (int i = 0; i < 4000; ++i) pk.pack(std::string("x"));
  d.Feed(b.data(), b.size() - 2);
  msgpack::object_handle oh;
  auto r = d.Next(&oh);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exceeds 1024 bytes"), std::string::npos)
      << r.status().message();
}

TEST(SerfStreamDecoderTest, TruncatedMessageWaitsForMore) {
  const std::string bytes = EncodeMembersBody({SampleMember("a", "127.0.0.1")});
  SerfStreamDecoder d;
  d.Feed(bytes.data(), bytes.size() - 1);
  msgpack::object_handle oh;
  auto r = d.Next(&oh);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(d.pending_bytes(), bytes.size() - 1);
  d.Feed(bytes.data() + bytes.size() - 1, 1);
  r = d.Next(&oh);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
}

// Random bytes and random corruptions of valid messages: every outcome is a value or an error,
// never a crash or an exception. Set SERF_FUZZ_SEED to replay a run.
TEST(SerfStreamDecoderTest, RandomAndCorruptedInputNeverCrashes) {
  const char* env = std::getenv("SERF_FUZZ_SEED");
  const unsigned seed =
      env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
  std::cout << "SERF_FUZZ_SEED=" << seed << std::endl;
  std::mt19937 rng(seed);
  const std::string valid =
      EncodeResponseHeader({3, ""}) +
      EncodeMembersBody({SampleMember("a", "127.0.0.1"), SampleMember("b", "::1")}) +
      EncodeMemberEventBody(
          {SerfEventType::kMemberJoin, "member-join", {SampleMember("c", "10.0.0.3")}});
  SerfStreamDecoder::Limits limits;
  limits.max_message_bytes = 64 * 1024;
  for (int round = 0; round < 2000; ++round) {
    std::string bytes;
    if (round % 2 == 0) {
      bytes.resize(rng() % 256);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {
      bytes = valid;
      for (int flips = 1 + rng() % 8; flips > 0; --flips) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      }
      if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    }
    SerfStreamDecoder d(limits);
    std::size_t off = 0;
    while (off < bytes.size()) {
      const std::size_t n = std::min<std::size_t>(1 + rng() % 64, bytes.size() - off);
      d.Feed(bytes.data() + off, n);
      off += n;
      bool failed = false;
      while (true) {
        msgpack::object_handle oh;
        auto r = d.Next(&oh);
        if (!r.ok()) {
          failed = true;
          break;
        }
        if (!*r) break;
        // Every decoder must cope with any object.
        SerfResponseHeader h;
        std::vector<SerfMember> members;
        SerfMemberEvent event;
        int32_t num = 0;
        SerfRequestHeader rh;
        (void)DecodeResponseHeader(oh.get(), &h);
        (void)DecodeMembersBody(oh.get(), &members);
        (void)DecodeMemberEventBody(oh.get(), &event);
        (void)DecodeJoinResponseBody(oh.get(), &num);
        (void)DecodeRequestHeader(oh.get(), &rh);
      }
      if (failed) break;
    }
  }
}

}  // namespace
}  // namespace clustermgr::net
