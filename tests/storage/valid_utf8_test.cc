// ValidUtf8 (storage/internal/connection.h) skips plain ASCII 8 bytes at a
// time; checked here against a byte-by-byte reference at every position and
// alignment, so the fast path can never keep a NUL or an invalid byte.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

#include "storage/internal/connection.h"

namespace bridge::storage::internal {
namespace {

// The rule of connection.h, one byte at a time, with no shortcut.
std::string Reference(std::string_view text) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t length = 0;
    if (c >= 0x01 && c < 0x80) {
      length = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
    }
    bool valid = length > 0 && i + length <= n;
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (p[i + k] & 0xC0) == 0x80;
    }
    if (valid && length == 3) {
      valid = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] >= 0xA0);
    }
    if (valid && length == 4) {
      valid = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] >= 0x90);
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

TEST(ValidUtf8Test, PlainAsciiIsKeptAsIs) {
  const std::string text = "MSH|^~\\&|LIS|LAB|LAB_BRIDGE|MPS_PMS|20260101120000||ORU^R01|1|P|2.5.1";
  EXPECT_EQ(ValidUtf8(text), text);
  EXPECT_EQ(ValidUtf8(""), "");
}

TEST(ValidUtf8Test, EveryOddByteAtEveryPositionIsHandledAsByteByByte) {
  const std::string base(40, 'a');
  const std::string odd[] = {std::string(1, '\0'), "\x80", "\xC3\xA9",     "\xE2\x82\xAC",
                             "\xF0\x9F\x98\x80",   "\xC3", "\xED\xA0\x80", "\xE0\x80\x80",
                             "\xF4\x90\x80\x80",   "\xFF", "\x7F",         "\x01"};
  for (const std::string& insert : odd) {
    for (size_t pos = 0; pos <= base.size(); ++pos) {
      for (size_t start = 0; start < 8; ++start) {
        std::string text = base;
        text.insert(pos, insert);
        const std::string_view view = std::string_view(text).substr(start);
        ASSERT_EQ(ValidUtf8(view), Reference(view)) << "pos " << pos << " start " << start;
      }
    }
  }
}

TEST(ValidUtf8Test, RandomBytesMatchTheReference) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string text(static_cast<size_t>(rng() % 64), '\0');
    for (char& c : text) {
      // Mostly ASCII, as real messages are, with some of everything.
      const unsigned r = rng() % 16;
      c = static_cast<char>(r < 12 ? 0x20 + rng() % 0x5F : rng() % 256);
    }
    ASSERT_EQ(ValidUtf8(text), Reference(text));
  }
}

}  // namespace
}  // namespace bridge::storage::internal
