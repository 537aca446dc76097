#include "base/quote.h"

#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "base/testing/test_seed.h"
#include "gtest/gtest.h"

namespace clustermgr {
namespace {

TEST(QuoteTest, EscapesLikeJson) {
  EXPECT_EQ(Quote("plain"), "\"plain\"");
  EXPECT_EQ(Quote("a \"b\"\\"), "\"a \\\"b\\\"\\\\\"");
  EXPECT_EQ(Quote("\n\t\r\b\f\x01\x1f"), "\"\\n\\t\\r\\b\\f\\u0001\\u001f\"");
  EXPECT_EQ(Quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(Quote("bad \xff"), "\"bad \xef\xbf\xbd\"");
}

TEST(QuoteTest, AsciiOnlyEscapesEveryNonAsciiCharacter) {
  EXPECT_EQ(Quote("caf\xc3\xa9 \xf0\x9f\x98\x80", {.ascii_only = true}),
            "\"caf\\u00e9 \\ud83d\\ude00\"");
  EXPECT_EQ(Quote("\xff", {.ascii_only = true}), "\"\\ufffd\"");
}

TEST(QuoteTest, ShortensToMaxBytesAndSaysSo) {
  EXPECT_EQ(Quote("abcdef", {.max_bytes = 3}), "\"abc\"...");
  EXPECT_EQ(Quote("abc", {.max_bytes = 3}), "\"abc\"");
  // A cut inside a character leaves a replacement, never half a character.
  EXPECT_EQ(Quote("\xc3\xa9", {.max_bytes = 1}), "\"\xef\xbf\xbd\"...");
}

// The same text nlohmann::json writes for a string (the spelling of our JSON output), for
// random bytes, with and without ensure_ascii.
TEST(QuoteTest, MatchesAJsonLibraryOnRandomText) {
  const std::uint64_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  const std::string alphabet =
      std::string("ab\"\\\n\x01\x7f", 7) + "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\xc0";
  for (int round = 0; round < 2000; ++round) {
    std::string value;
    const std::size_t n = rng() % 12;
    for (std::size_t k = 0; k < n; ++k) value += alphabet[rng() % alphabet.size()];
    for (bool ascii : {false, true}) {
      const std::string expected =
          nlohmann::json(value).dump(-1, ' ', ascii, nlohmann::json::error_handler_t::replace);
      if (expected.find("\xef\xbf\xbd") != std::string::npos ||
          expected.find("\\ufffd") != std::string::npos) {
        continue;  // invalid input: the libraries may cut replacement runs differently
      }
      ASSERT_EQ(Quote(value, {.ascii_only = ascii}), expected) << "seed " << seed;
    }
  }
}

}  // namespace
}  // namespace clustermgr
