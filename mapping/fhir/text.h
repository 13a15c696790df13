// Small string helpers shared by the mapping modules (std::string_view based:
// Debian's Abseil has its own string_view type, so absl::StrCat and friends
// do not take std::string_view). Not for use outside mapping/.
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <type_traits>

namespace bridge::fhir::text {

namespace strings_internal {
// Each piece as text; integers are formatted into `buffer` first, so the
// total size is known and the result is allocated once.
inline std::string_view Piece(std::string_view s, char*) { return s; }
inline std::string_view Piece(const char* s, char*) { return s; }
inline std::string_view Piece(const std::string& s, char*) { return s; }
template <typename T>
requires std::is_integral_v<T> std::string_view Piece(T n, char* buffer) {
  const std::to_chars_result r = std::to_chars(buffer, buffer + 24, n);
  return std::string_view(buffer, static_cast<size_t>(r.ptr - buffer));
}
}  // namespace strings_internal

// absl::StrCat for std::string_view (Debian's Abseil has its own string_view).
template <typename... Args>
void Append(std::string* out, const Args&... args) {
  char buffers[sizeof...(Args)][24];
  size_t i = 0;
  const std::string_view pieces[] = {strings_internal::Piece(args, buffers[i++])...};
  size_t total = out->size();
  for (std::string_view p : pieces) total += p.size();
  out->reserve(total);
  for (std::string_view p : pieces) out->append(p);
}
template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  Append(&out, args...);
  return out;
}

inline char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

inline bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

inline bool IsAllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

inline bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

inline std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace bridge::fhir::text
