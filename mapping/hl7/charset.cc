#include "mapping/hl7/charset.h"

#include <errno.h>
#include <iconv.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

#include "mapping/hl7/absl_compat.h"
#include "mapping/hl7/error.h"

namespace bridge::hl7 {
namespace {

bool AllAscii(std::string_view bytes) {
  const char* p = bytes.data();
  std::size_t n = bytes.size();
  while (n >= 32) {
    std::uint64_t words[4];
    std::memcpy(words, p, 32);
    if ((words[0] | words[1] | words[2] | words[3]) & 0x8080808080808080ULL) return false;
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    if (word & 0x8080808080808080ULL) return false;
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    if (static_cast<unsigned char>(*p) & 0x80) return false;
    ++p;
    --n;
  }
  return true;
}

absl::Status BadBytes(std::string_view what) {
  return Hl7Error(absl::StatusCode::kInvalidArgument, ErrorCode::kDataTypeError,
                  {.segment = "MSH", .segment_sequence = 1, .field = 18},
                  "message bytes are not valid " + std::string(what));
}

// Converts with glibc iconv; returns false on any invalid or incomplete input.
bool Iconv(std::string_view bytes, const char* from, std::string* out, const char* to = "UTF-8") {
  iconv_t cd = iconv_open(to, from);
  if (cd == reinterpret_cast<iconv_t>(-1)) return false;
  out->assign(bytes.size() * 4 + 16, '\0');
  char* in_ptr = const_cast<char*>(bytes.data());
  std::size_t in_left = bytes.size();
  char* out_ptr = out->data();
  std::size_t out_left = out->size();
  bool ok = iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left) != static_cast<std::size_t>(-1) &&
            in_left == 0;
  iconv_close(cd);
  if (!ok) return false;
  out->resize(out->size() - out_left);
  return true;
}

}  // namespace

CharsetInfo CharsetFromMsh18(std::string_view msh18) {
  CharsetInfo info;
  info.declared = std::string(StripWhitespace(msh18));
  std::string name = absl::AsciiStrToUpper(info.declared);
  if (name.empty()) return info;
  if (name == "ASCII" || name == "US-ASCII") {
    info.charset = Charset::kAscii;
  } else if (name == "UNICODE UTF-8" || name == "UNICODE" || name == "UTF-8" || name == "UTF8" ||
             name == "UNICODE_UTF-8" || name == "UNICODE UTF8") {
    info.charset = Charset::kUtf8;
  } else if (name.rfind("8859/", 0) == 0 || name.rfind("ISO-8859-", 0) == 0 ||
             name.rfind("ISO8859-", 0) == 0) {
    std::string_view part =
        std::string_view(name).substr(name.rfind(name[0] == '8' ? '/' : '-') + 1);
    int n = 0;
    for (char c : part) {
      if (c < '0' || c > '9') {
        n = -1;
        break;
      }
      n = n * 10 + (c - '0');
    }
    if ((n >= 1 && n <= 9) || n == 15) {
      info.charset = Charset::kIso8859;
      info.iso8859_part = n;
    }
  } else if (name == "GB 18030-2000" || name == "GB18030") {
    info.charset = Charset::kGb18030;
  } else if (name == "KS X 1001" || name == "EUC-KR") {
    info.charset = Charset::kEucKr;
  } else if (name == "BIG-5" || name == "BIG5") {
    info.charset = Charset::kBig5;
  } else if (name.rfind("ISO IR", 0) == 0 || name == "CNS 11643-1992" || name == "UNICODE UTF-16" ||
             name == "UNICODE UTF-32" || name == "JAS2020" || name == "JIS X 0202") {
    info.charset = Charset::kUnsupported;
  }
  // Any other name is treated as unspecified (MAPPING.md 1.4).
  return info;
}

bool IsValidUtf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    // ASCII runs (nearly all of a message) 32 bytes at a time: one test for
    // four words is what keeps validation off the parse profile.
    if (end - p >= 32) {
      std::uint64_t words[4];
      std::memcpy(words, p, 32);
      if (((words[0] | words[1] | words[2] | words[3]) & 0x8080808080808080ULL) == 0) {
        p += 32;
        continue;
      }
    }
    if (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        p += 8;
        continue;
      }
    }
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int length;
    std::uint32_t min;
    std::uint32_t code;
    if ((c & 0xE0) == 0xC0) {
      length = 2;
      min = 0x80;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      min = 0x800;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      min = 0x10000;
      code = c & 0x07;
    } else {
      return false;
    }
    if (end - p < length) return false;
    for (int i = 1; i < length; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    p += length;
  }
  return true;
}

absl::Status ToUtf8(std::string_view bytes, CharsetInfo* charset, std::string* utf8,
                    bool* converted, std::string* warning) {
  *converted = false;
  const CharsetInfo& info = *charset;
  charset->converted_from.clear();
  switch (info.charset) {
    case Charset::kAscii:
      if (AllAscii(bytes)) return absl::OkStatus();
      if (IsValidUtf8(bytes)) {
        *warning = "MSH-18 declares ASCII but the message holds UTF-8; read as UTF-8";
        return absl::OkStatus();
      }
      return BadBytes("ASCII (MSH-18) nor UTF-8");
    case Charset::kUtf8:
      if (IsValidUtf8(bytes)) return absl::OkStatus();
      return BadBytes("UTF-8 (MSH-18 declares UNICODE UTF-8)");
    case Charset::kUnspecified:
      if (IsValidUtf8(bytes)) return absl::OkStatus();
      // Windows-1252 leaves five bytes undefined; ISO-8859-1 defines all 256,
      // so an undeclared message always decodes to something readable.
      if (Iconv(bytes, "WINDOWS-1252", utf8)) {
        charset->converted_from = "WINDOWS-1252";
      } else if (Iconv(bytes, "ISO-8859-1", utf8)) {
        charset->converted_from = "ISO-8859-1";
      } else {
        return BadBytes("UTF-8, Windows-1252 nor ISO-8859-1 (MSH-18 empty)");
      }
      *converted = true;
      *warning = "MSH-18 is empty and the bytes are not UTF-8; read as " + charset->converted_from;
      return absl::OkStatus();
    case Charset::kIso8859: {
      if (AllAscii(bytes)) return absl::OkStatus();
      if (IsValidUtf8(bytes)) {
        *warning = "MSH-18 declares 8859 but the bytes are valid UTF-8; read as UTF-8";
        return absl::OkStatus();
      }
      std::string from = "ISO-8859-" + std::to_string(info.iso8859_part);
      if (!Iconv(bytes, from.c_str(), utf8)) return BadBytes(from);
      *converted = true;
      charset->converted_from = from;
      return absl::OkStatus();
    }
    case Charset::kGb18030:
    case Charset::kEucKr:
    case Charset::kBig5: {
      if (AllAscii(bytes)) return absl::OkStatus();
      const char* from = info.charset == Charset::kGb18030 ? "GB18030"
                         : info.charset == Charset::kEucKr ? "EUC-KR"
                                                           : "BIG5";
      if (!Iconv(bytes, from, utf8)) return BadBytes(from);
      *converted = true;
      charset->converted_from = from;
      return absl::OkStatus();
    }
    case Charset::kUnsupported:
      return Hl7Error(absl::StatusCode::kUnimplemented, ErrorCode::kTableValueNotFound,
                      {.segment = "MSH", .segment_sequence = 1, .field = 18},
                      "MSH-18 character set is not supported (ISO 2022 or UTF-16/32)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FromUtf8(std::string_view utf8, const CharsetInfo& info) {
  if (info.converted_from.empty()) return std::string(utf8);
  std::string out;
  if (!Iconv(utf8, "UTF-8", &out, info.converted_from.c_str())) {
    return Hl7Error(absl::StatusCode::kInvalidArgument, ErrorCode::kDataTypeError,
                    {.segment = "MSH", .segment_sequence = 1, .field = 18},
                    "text has characters the message's character set cannot hold");
  }
  return out;
}

}  // namespace bridge::hl7
