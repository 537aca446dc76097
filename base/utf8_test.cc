#include "base/utf8.h"

#include "gtest/gtest.h"

namespace clustermgr {
namespace {

TEST(Utf8Test, ValidTextIsKeptAndEveryInvalidByteBecomesOneReplacement) {
  EXPECT_EQ(ToValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(ToValidUtf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong
  EXPECT_EQ(ToValidUtf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(ToValidUtf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");                  // cut short
  EXPECT_EQ(ToValidUtf8("\xf4\x90\x80\x80").substr(0, 3), "\xef\xbf\xbd");         // > U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("a\xf0\x9f\x98\x80", 1), 4u);
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0u);
}

}  // namespace
}  // namespace clustermgr
