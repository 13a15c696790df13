// Delimiters: the encoding characters of one HL7 v2 message (MSH-1, MSH-2).
//
// Every parser and encoder in mapping/hl7 takes them from the message itself,
// never from constants, because real senders use other sets (`$%~\&`, `_`).
#pragma once

#include <string>

namespace bridge::hl7 {

struct Delimiters {
  char field = '|';         // MSH-1
  char component = '^';     // MSH-2.1
  char repetition = '~';    // MSH-2.2
  char escape = '\\';       // MSH-2.3
  char subcomponent = '&';  // MSH-2.4
  char truncation = '\0';   // MSH-2.5 (v2.7+); '\0' when the message declares none

  // MSH-2 as it is written in a message header with these delimiters.
  std::string EncodingCharacters() const {
    std::string chars{component, repetition, escape, subcomponent};
    if (truncation != '\0') {
      chars.push_back(truncation);
    }
    return chars;
  }

  friend bool operator==(const Delimiters&, const Delimiters&) = default;
};

}  // namespace bridge::hl7
