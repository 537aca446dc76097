// Quoting a user-supplied value for an operator's message, in the spelling of a JSON string:
// "a \"b\"\n" shows exactly what was given, control characters and all.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace clustermgr {

struct QuoteOptions {
  // DEL and every character above it as \uXXXX (surrogate pairs beyond U+FFFF): for messages that
  // may reach a terminal or log that is not UTF-8.
  bool ascii_only = false;
  // Cut the value to this many bytes first and append "..." after the closing quote.
  std::size_t max_bytes = std::string_view::npos;
};

// `value` between double quotes with ", \ and control characters below U+0020 escaped as JSON
// escapes them (\b \f \n \r \t, others \u00XX) and invalid UTF-8 replaced with U+FFFD.
std::string Quote(std::string_view value, QuoteOptions options = {});

}  // namespace clustermgr
