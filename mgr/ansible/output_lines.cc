#include "mgr/ansible/output_lines.h"

#include "base/utf8.h"

namespace clustermgr::mgr {
namespace {

// Length of `s` without a trailing, incomplete UTF-8 sequence (left by cutting a long line).
std::size_t CompletePrefix(std::string_view s) {
  std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    auto b = static_cast<unsigned char>(s[n - back]);
    if ((b & 0xc0) == 0x80) continue;  // continuation byte: keep looking for the lead
    std::size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

}  // namespace

void OutputLineSplitter::Feed(std::string_view bytes, const LineCallback& on_line) {
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    std::string_view chunk = bytes.substr(0, nl);
    std::size_t room = max_line_bytes_ > pending_.size() ? max_line_bytes_ - pending_.size() : 0;
    if (chunk.size() <= room) {
      pending_.append(chunk);
    } else {
      pending_.append(chunk.substr(0, room));
      dropped_ += chunk.size() - room;
    }
    if (nl == std::string_view::npos) return;
    Emit(on_line);
    bytes.remove_prefix(nl + 1);
  }
}

void OutputLineSplitter::Finish(const LineCallback& on_line) {
  if (!pending_.empty() || dropped_ > 0) Emit(on_line);
}

void OutputLineSplitter::Emit(const LineCallback& on_line) {
  std::string_view line = pending_;
  if (dropped_ > 0) {
    // The cut may have split a character; what was dropped of it counts as dropped.
    std::size_t keep = CompletePrefix(line);
    dropped_ += line.size() - keep;
    line = line.substr(0, keep);
  } else if (line.ends_with('\r')) {
    line.remove_suffix(1);
  }
  std::string text = ToValidUtf8(line);
  if (dropped_ > 0) {
    text += " [clustermgr: line truncated, " + std::to_string(dropped_) + " bytes dropped]";
  }
  pending_.clear();
  dropped_ = 0;
  on_line(text);
}

}  // namespace clustermgr::mgr
