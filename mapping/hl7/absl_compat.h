// Debian 12's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so
// absl::string_view is a type of its own and absl's string functions do not
// accept std::string_view. This one conversion keeps the rest of the code on
// std::string_view. Internal to mapping/hl7.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace bridge::hl7 {

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view FromAbsl(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace bridge::hl7

namespace bridge::hl7 {

inline std::string_view StripWhitespace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Non-negative decimal integer; false for anything else or overflow.
inline bool ParseInt(std::string_view s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  int value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

}  // namespace bridge::hl7
