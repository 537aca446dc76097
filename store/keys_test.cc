#include "store/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace clustermgr::store {
namespace {

using namespace std::string_literals;

std::string RandomBytes(std::mt19937_64& rng) {
  // Mostly bytes around the escape (0x00, 0x01, 0xff) so that every case of the escaping meets.
  static constexpr char kAlphabet[] = {'\0', '\x01', '\xff', 'a', 'b'};
  std::string s;
  const size_t n = rng() % 5;
  for (size_t i = 0; i < n; ++i) s.push_back(kAlphabet[rng() % sizeof kAlphabet]);
  return s;
}

TEST(KeysTest, PairKeysSortLikeThePairs) {
  std::mt19937_64 rng(7);
  using Pair = std::pair<std::string, std::string>;
  std::vector<Pair> pairs;
  for (int i = 0; i < 400; ++i) pairs.emplace_back(RandomBytes(rng), RandomBytes(rng));
  for (const Pair& a : pairs) {
    for (const Pair& b : pairs) {
      const std::string ka = NodeVarKey(a.first, a.second);
      const std::string kb = NodeVarKey(b.first, b.second);
      // std::string compares as unsigned char, as LevelDB's bytewise comparator does.
      ASSERT_EQ(a < b, ka < kb) << EscapeKey(ka) << " vs " << EscapeKey(kb);
      ASSERT_EQ(a == b, ka == kb);
    }
  }
}

TEST(KeysTest, NumberedKeysSortBySeq) {
  std::vector<std::tuple<std::string, uint64_t>> items = {
      {"a", 1}, {"a", 2}, {"a", 256}, {"a", 1ull << 40}, {"a\0"s, 0}, {"ab", 0}, {"b", 3}};
  for (size_t i = 0; i + 1 < items.size(); ++i) {
    EXPECT_LT(DeltaLogKey(std::get<0>(items[i]), std::get<1>(items[i])),
              DeltaLogKey(std::get<0>(items[i + 1]), std::get<1>(items[i + 1])));
    EXPECT_LT(JobLogKey(std::get<0>(items[i]), std::get<1>(items[i])),
              JobLogKey(std::get<0>(items[i + 1]), std::get<1>(items[i + 1])));
  }
  // An origin's log keys all start with its prefix, another origin's never do.
  EXPECT_EQ(DeltaLogKey("a", 5).rfind(DeltaLogPrefix("a"), 0), 0u);
  EXPECT_NE(DeltaLogKey("ab", 5).rfind(DeltaLogPrefix("a"), 0), 0u);
}

TEST(KeysTest, DecodeRoundTrips) {
  const std::string odd("x\0\xff\x01y", 5);
  auto k = DecodeKey(NodeVarKey(odd, "v"));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->section, Section::kNodeVars);
  EXPECT_EQ(k->a, odd);
  EXPECT_EQ(k->b, "v");

  k = DecodeKey(DeltaLogKey("origin/1", 42));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->section, Section::kDeltaLog);
  EXPECT_EQ(k->a, "origin/1");
  EXPECT_EQ(k->n, 42u);

  k = DecodeKey(MetaKey());
  ASSERT_TRUE(k);
  EXPECT_EQ(k->section, Section::kMeta);
  EXPECT_TRUE(DecodeKey(TokenEpochKey()));
  EXPECT_TRUE(DecodeKey(HostGroupContextKey("o")));
}

TEST(KeysTest, MalformedKeysAreRefused) {
  EXPECT_FALSE(DecodeKey(""));
  EXPECT_FALSE(DecodeKey("\x7f"));  // unknown section
  EXPECT_FALSE(
      DecodeKey(std::string("\x10"
                            "abc")));             // no terminator
  EXPECT_FALSE(DecodeKey(GlobalKey("a") + "x"));  // trailing bytes
  EXPECT_FALSE(DecodeKey(MetaKey() + "x"));
  EXPECT_FALSE(
      DecodeKey(std::string("\x10"
                            "a\0\x02",
                            4)));                         // bad escape
  EXPECT_FALSE(DecodeKey(DeltaLogPrefix("a") + "1234"));  // short seq
}

TEST(KeysTest, SectionNames) {
  for (Section s : AllSections()) {
    EXPECT_EQ(ParseSectionName(SectionName(s)), s);
    EXPECT_EQ(SectionOf(std::string(1, static_cast<char>(s))), s);
  }
  EXPECT_FALSE(ParseSectionName("nope"));
  EXPECT_TRUE(std::is_sorted(AllSections().begin(), AllSections().end()));
}

TEST(KeysTest, EscapeKeyShowsEveryByte) {
  EXPECT_EQ(EscapeKey(GlobalKey("ab")), "\\x10ab\\x00\\x01");
  EXPECT_EQ(EscapeKey("a\\b"), "a\\\\b");
}

}  // namespace
}  // namespace clustermgr::store
