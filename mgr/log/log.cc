#include "mgr/log/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

namespace clustermgr::mgr {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::string g_instance = "clustermgrd";
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
std::atomic<bool> g_journal_prefix{false};

int Priority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 7;
    case LogLevel::kInfo:
      return 6;
    case LogLevel::kWarn:
      return 4;
    case LogLevel::kError:
      return 3;
  }
  return 6;
}

const char* Name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
void SetLogInstance(std::string instance) { g_instance = std::move(instance); }

void SetLogFormat(LogFormat format) {
  g_format = static_cast<int>(format);
  g_journal_prefix = format == LogFormat::kJournal || StderrIsJournal();
}

bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

bool ParseLogFormat(const std::string& name, LogFormat* format) {
  if (name == "text") {
    *format = LogFormat::kText;
  } else if (name == "json") {
    *format = LogFormat::kJson;
  } else if (name == "auto") {
    *format = StderrIsJournal() ? LogFormat::kJournal : LogFormat::kText;
  } else {
    return false;
  }
  return true;
}
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

bool ParseLogLevel(const std::string& name, LogLevel* level) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (name == Name(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

void LogLine(LogLevel level, const std::string& text) {
  const auto format = static_cast<LogFormat>(g_format.load());
  std::string line;
  if (g_journal_prefix) line = "<" + std::to_string(Priority(level)) + ">";
  if (format == LogFormat::kJournal) {
    line += g_instance + " " + Name(level) + ": " + text + "\n";
  } else {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const std::time_t secs = system_clock::to_time_t(now);
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    const std::string time = std::string(stamp) + "." + (ms < 100 ? (ms < 10 ? "00" : "0") : "") +
                             std::to_string(ms) + "Z";
    if (format == LogFormat::kJson) {
      const nlohmann::ordered_json j = {
          {"time", time}, {"instance", g_instance}, {"level", Name(level)}, {"message", text}};
      line += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
      line += time + " " + g_instance + " " + Name(level) + ": " + text + "\n";
    }
  }
  ssize_t n = write(STDERR_FILENO, line.data(), line.size());  // one write: lines never interleave
  (void)n;
}

}  // namespace clustermgr::mgr
