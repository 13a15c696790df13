// HL7 v2 escape sequences (v2.5.1 chapter 2.7): decoding one primitive value
// after the message has been split, and encoding plain text so it can be
// written into a field.
//
//   std::string text;
//   UnescapeTo("Fe\\F\\Ni", delimiters, {}, &text);    // text == "Fe|Ni"
//   std::string wire = Escape("a|b\nc", delimiters);   // "a\\F\\b\\.br\\c"
//
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "mapping/hl7/delimiters.h"

namespace bridge::hl7 {

struct UnescapeOptions {
  // \H\ and \N\ (highlighting on/off): dropped by default; when true they are
  // kept verbatim in the value so a renderer can show them.
  bool keep_highlighting = false;
};

// Appends the decoded form of `encoded` to `*out`:
//   \F\ \S\ \T\ \R\ \E\ (and \P\ when a truncation character is declared) ->
//   the delimiter itself; \Xhh..\ -> those bytes (CR/LF pairs become "\n");
//   \.br\ -> "\n"; \.sp n\ -> n newlines; \.in n\ \.ti n\ \.sk n\ -> n spaces;
//   \.fi\ \.nf\ \.ce\ -> nothing; \H\ \N\ -> per options; \Cxxyy\, \Mxxyyzz\,
//   \Z..\ and any unknown sequence -> passed through verbatim. An escape
//   character without a closing one is data.
void UnescapeTo(std::string_view encoded, const Delimiters& delimiters,
                const UnescapeOptions& options, std::string* out);

// Returns `text` with every delimiter and the escape character escaped, "\n"
// written as \.br\ and other control characters (except TAB) as \Xhh\.
std::string Escape(std::string_view text, const Delimiters& delimiters);
void EscapeTo(std::string_view text, const Delimiters& delimiters, std::string* out);

// Rewrites one encoded primitive value from `from` delimiters to `to`
// delimiters so it decodes to the same text: delimiter escapes and data
// characters are escaped as `to` requires, and formatting, hex and charset
// sequences are kept as sequences. Used to re-encode a message.
void TranscodeTo(std::string_view encoded, const Delimiters& from, const Delimiters& to,
                 std::string* out);

}  // namespace bridge::hl7
