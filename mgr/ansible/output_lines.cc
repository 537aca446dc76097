#include "mgr/ansible/output_lines.h"

namespace clustermgr::mgr {
namespace {

// Length of the UTF-8 sequence starting at s[i] if it is valid, else 0.
std::size_t ValidSequenceLength(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = byte(i);
  if (b < 0x80) return 1;
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xbf;  // range of the second byte
  if (b >= 0xc2 && b <= 0xdf) {
    len = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3;
    if (b == 0xe0) lo = 0xa0;  // overlong
    if (b == 0xed) hi = 0x9f;  // surrogates
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4;
    if (b == 0xf0) lo = 0x90;  // overlong
    if (b == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return len;
}

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

std::string ToValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    std::size_t len = ValidSequenceLength(bytes, i);
    if (len == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(bytes.substr(i, len));
      i += len;
    }
  }
  return out;
}

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
