// UTF-8 checks and repair for text that crosses into JSON, logs and operators' terminals.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace clustermgr {

// Length (1-4) of the valid UTF-8 sequence starting at s[i], or 0 if none starts there
// (overlong forms, surrogates and code points above U+10FFFF are invalid). Needs i < s.size().
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i);

// `bytes` with every byte that starts no valid sequence replaced by U+FFFD.
std::string ToValidUtf8(std::string_view bytes);

}  // namespace clustermgr
