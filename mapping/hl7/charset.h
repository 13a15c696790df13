// Character sets (MSH-18, HL7 table 0211): which one a message declares, and
// turning its bytes into UTF-8, the only encoding used inside lab-bridge.
//
// Pure functions (glibc iconv for the non-UTF-8 sets), thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace bridge::hl7 {

enum class Charset {
  kUnspecified,  // MSH-18 empty or unknown: UTF-8 if valid, else Windows-1252
  kAscii,
  kUtf8,
  kIso8859,  // with `iso8859_part` 1..9 or 15
  kGb18030,
  kEucKr,  // KS X 1001
  kBig5,
  kUnsupported,  // ISO 2022 families, UTF-16/32: refused
};

struct CharsetInfo {
  Charset charset = Charset::kUnspecified;
  int iso8859_part = 0;
  std::string declared;  // MSH-18 as written (first repetition, trimmed)
  // The encoding the bytes were converted from ("ISO-8859-1", "WINDOWS-1252",
  // ...), or "" when they were used as they are (ASCII / UTF-8). Set by
  // ToUtf8.
  std::string converted_from;
};

// Maps an MSH-18 value ("UNICODE UTF-8", "8859/1", "ASCII", ...) to a charset.
CharsetInfo CharsetFromMsh18(std::string_view msh18);

// True when `bytes` is well-formed UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(std::string_view bytes);

// Converts `bytes` in `info`'s charset to UTF-8. Returns:
//   - OkStatus with `*utf8` untouched and `*converted` false when the bytes
//     can be used as they are (ASCII or valid UTF-8);
//   - OkStatus with `*utf8` filled and `*converted` true after a conversion;
//   - InvalidArgument (HL7 code 102, at MSH-18) when the bytes are not valid
//     in the declared charset;
//   - Unimplemented (HL7 code 203 is not right here; the caller maps it) for
//     sets lab-bridge does not decode.
// `*warning` is set when lab-bridge had to guess (for example undeclared
// Windows-1252, or UTF-8 bytes under a declared ASCII).
//
// Bytes declared 8859-n that are valid UTF-8 with non-ASCII characters are
// read as UTF-8 (with a warning): real senders mislabel UTF-8 this way, and
// Latin text almost never forms valid UTF-8 sequences by accident.
absl::Status ToUtf8(std::string_view bytes, CharsetInfo* info, std::string* utf8, bool* converted,
                    std::string* warning);

// Converts UTF-8 text back to the encoding `info` was converted from (no-op
// copy when it was not converted). InvalidArgument when a character has no
// representation there.
absl::StatusOr<std::string> FromUtf8(std::string_view utf8, const CharsetInfo& info);

}  // namespace bridge::hl7
