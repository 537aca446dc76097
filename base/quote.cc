#include "base/quote.h"

#include <cstdint>
#include <cstdio>

#include "base/utf8.h"

namespace clustermgr {
namespace {

void AppendEscapedUnit(std::string* out, std::uint32_t unit) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(unit));
  out->append(buf);
}

std::uint32_t DecodeCodePoint(std::string_view s, std::size_t len) {
  auto b = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[k]));
  };
  switch (len) {
    case 2:
      return ((b(0) & 0x1f) << 6) | (b(1) & 0x3f);
    case 3:
      return ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
  }
}

}  // namespace

std::string Quote(std::string_view value, QuoteOptions options) {
  const bool shortened = value.size() > options.max_bytes;
  if (shortened) value = value.substr(0, options.max_bytes);
  const std::string text = ToValidUtf8(value);
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = Utf8SequenceLength(text, i);  // >= 1: the text is valid
    const char c = text[i];
    if (len > 1) {
      if (!options.ascii_only) {
        out.append(text, i, len);
      } else if (const std::uint32_t cp = DecodeCodePoint(text.substr(i, len), len); cp > 0xffff) {
        AppendEscapedUnit(&out, 0xd800 + ((cp - 0x10000) >> 10));
        AppendEscapedUnit(&out, 0xdc00 + ((cp - 0x10000) & 0x3ff));
      } else {
        AppendEscapedUnit(&out, cp);
      }
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\b') {
      out += "\\b";
    } else if (c == '\f') {
      out += "\\f";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || (c == 0x7f && options.ascii_only)) {
      AppendEscapedUnit(&out, static_cast<unsigned char>(c));
    } else {
      out += c;
    }
    i += len;
  }
  out += '"';
  if (shortened) out += "...";
  return out;
}

}  // namespace clustermgr
