#include "mgr/ansible/output_lines.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace clustermgr::mgr {
namespace {

std::vector<std::string> Split(const std::vector<std::string>& chunks, std::size_t max = 1024) {
  std::vector<std::string> lines;
  LineCallback collect = [&](std::string_view l) { lines.emplace_back(l); };
  OutputLineSplitter s(max);
  for (const auto& c : chunks) s.Feed(c, collect);
  s.Finish(collect);
  return lines;
}

TEST(OutputLineSplitter, SplitsAcrossChunks) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Split({"a\nb", "c\n\nd"}), (V{"a", "bc", "", "d"}));
  EXPECT_EQ(Split({"x\r\n", "y\r", "\n"}), (V{"x", "y"}));
  EXPECT_EQ(Split({"partial"}), (V{"partial"}));
  EXPECT_EQ(Split({"done\n"}), (V{"done"}));
  EXPECT_EQ(Split({}), V{});
  std::string text = "one\ntwo\nthree";
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(Split(bytes), (V{"one", "two", "three"}));
}

TEST(OutputLineSplitter, TruncatesLongLinesWithAMarker) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Split({"0123456789abc\nok\n"}, 10),
            (V{"0123456789 [clustermgr: line truncated, 3 bytes dropped]", "ok"}));
  EXPECT_EQ(Split({"01234", "56789", "abcdef"}, 10),
            (V{"0123456789 [clustermgr: line truncated, 6 bytes dropped]"}));
  EXPECT_EQ(Split({"0123456789\n"}, 10), (V{"0123456789"}));
  // A cut inside a multi-byte character drops the whole character: "é" is 2 bytes.
  EXPECT_EQ(Split({"123456789\xc3\xa9z\n"}, 10),
            (V{"123456789 [clustermgr: line truncated, 3 bytes dropped]"}));
  EXPECT_EQ(Split({"12345678\xc3\xa9z\n"}, 10),
            (V{"12345678\xc3\xa9 [clustermgr: line truncated, 1 bytes dropped]"}));
}

TEST(OutputLineSplitter, OutputIsValidUtf8) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Split({"a\xff"
                   "b\n"}),
            (V{"a\xef\xbf\xbd"
               "b"}));
}

}  // namespace
}  // namespace clustermgr::mgr
