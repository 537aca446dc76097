// A small leveled logger: one line per event on stderr, in one of three formats:
//   text     "2026-11-26T14:50:00.123Z <instance> <level>: <text>"
//   journal  "<N><instance> <level>: <text>", N the syslog priority (7 debug, 6 info, 4 warn,
//            3 error) that journald reads from the prefix; no timestamp (journald adds its own)
//   json     {"time":"2026-...Z","instance":...,"level":...,"message":...} (with the <N> prefix
//            as well when stderr is journald's)
// Thread-safe (one write per line).
#pragma once

#include <sstream>
#include <string>

namespace clustermgr::mgr {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kText, kJournal, kJson };

// Process-wide settings, set once at start-up before threads run.
void SetLogLevel(LogLevel level);
bool ParseLogLevel(const std::string& name, LogLevel* level);
void SetLogInstance(std::string instance);
void SetLogFormat(LogFormat format);
// "text", "json", or "auto": journal when stderr is journald's stream ($JOURNAL_STREAM names its
// device and inode), text otherwise. False for another name.
bool ParseLogFormat(const std::string& name, LogFormat* format);
// True when stderr is connected to journald.
bool StderrIsJournal();
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, const std::string& text);

}  // namespace clustermgr::mgr

// CM_LOG(kInfo) << "text " << value;  — the stream is only evaluated when the level is enabled.
#define CM_LOG(level)                                                                             \
  for (bool cm_once = ::clustermgr::mgr::LogEnabled(::clustermgr::mgr::LogLevel::level); cm_once; \
       cm_once = false)                                                                           \
  ::clustermgr::mgr::LogMessage(::clustermgr::mgr::LogLevel::level).stream()

namespace clustermgr::mgr {
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { LogLine(level_, out_.str()); }
  std::ostringstream& stream() { return out_; }

 private:
  LogLevel level_;
  std::ostringstream out_;
};
}  // namespace clustermgr::mgr
