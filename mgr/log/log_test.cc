#include "mgr/log/log.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace clustermgr::mgr {
namespace {

// Runs `emit` with stderr redirected to a temp file; returns what was written.
template <typename F>
std::string CaptureStderr(F emit) {
  std::FILE* file = std::tmpfile();
  const int saved = dup(STDERR_FILENO);
  dup2(fileno(file), STDERR_FILENO);
  emit();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string text;
  std::rewind(file);
  for (int c; (c = std::fgetc(file)) != EOF;) text.push_back(static_cast<char>(c));
  std::fclose(file);
  return text;
}

class LogFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* v = getenv("JOURNAL_STREAM")) saved_ = v;
    unsetenv("JOURNAL_STREAM");
    SetLogInstance("mgr-t");
  }
  void TearDown() override {
    if (!saved_.empty()) setenv("JOURNAL_STREAM", saved_.c_str(), 1);
    SetLogFormat(LogFormat::kText);
  }
  std::string saved_;
};

TEST_F(LogFormatTest, TextCarriesATimestampJournalAPriorityInstead) {
  SetLogFormat(LogFormat::kText);
  std::string line = CaptureStderr([] { LogLine(LogLevel::kWarn, "disk slow"); });
  EXPECT_EQ(line.size(), std::string("2026-11-26T14:50:00.123Z mgr-t warn: disk slow\n").size());
  EXPECT_EQ(line.substr(line.find(' ')), " mgr-t warn: disk slow\n");

  SetLogFormat(LogFormat::kJournal);
  EXPECT_EQ(CaptureStderr([] { LogLine(LogLevel::kWarn, "disk slow"); }),
            "<4>mgr-t warn: disk slow\n");
  EXPECT_EQ(CaptureStderr([] { LogLine(LogLevel::kError, "x"); }), "<3>mgr-t error: x\n");
  EXPECT_EQ(CaptureStderr([] { LogLine(LogLevel::kInfo, "x"); }), "<6>mgr-t info: x\n");
}

TEST_F(LogFormatTest, JsonIsOneObjectPerLine) {
  SetLogFormat(LogFormat::kJson);
  std::string line = CaptureStderr([] { LogLine(LogLevel::kInfo, "say \"hi\"\nthere"); });
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["instance"], "mgr-t");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["message"], "say \"hi\"\nthere");
  EXPECT_EQ(j["time"].get<std::string>().size(), std::string("2026-11-26T14:50:00.123Z").size());
}

TEST_F(LogFormatTest, AutoPicksJournalWhenStderrIsJournaldsStream) {
  LogFormat format;
  ASSERT_TRUE(ParseLogFormat("auto", &format));
  EXPECT_EQ(format, LogFormat::kText);
  std::string journal_stream;
  std::string out = CaptureStderr([&] {
    struct stat st {};
    ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
    journal_stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    setenv("JOURNAL_STREAM", journal_stream.c_str(), 1);
    LogFormat f;
    ASSERT_TRUE(ParseLogFormat("auto", &f));
    EXPECT_EQ(f, LogFormat::kJournal);
    SetLogFormat(LogFormat::kJson);  // JSON under journald keeps the priority prefix
    LogLine(LogLevel::kError, "e");
  });
  EXPECT_EQ(out.rfind("<3>{", 0), 0u) << out;
  EXPECT_FALSE(ParseLogFormat("xml", &format));
}

}  // namespace
}  // namespace clustermgr::mgr
