// What the one-shot CLI commands (parse, convert) share: reading an input
// file (or standard input for "-") whole, and saying where in a message an
// HL7 error is. Streaming commands (parse --check, send) read in pieces.
#pragma once

#include <iosfwd>
#include <string>

#include "absl/status/status.h"

namespace bridge::api {

// On failure writes "lab-bridge COMMAND: cannot read PATH" on `err`.
bool ReadInput(const std::string& command, const std::string& path, std::string* bytes,
               std::ostream& err);

// " [segment 3 (OBX), field 5, byte 120, HL7 error 102]" for a status that
// carries an hl7::Hl7ErrorDetail, "" otherwise.
std::string DescribeHl7Location(const absl::Status& status);

// The status message as a std::string (absl::string_view is not std's here).
std::string MessageOf(const absl::Status& status);

}  // namespace bridge::api
