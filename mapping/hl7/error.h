// HL7 error values: an absl::Status that also carries the HL7 table 0357 error
// code and the location (segment, field, repetition, component, subcomponent)
// of a failure, so an edge can turn it into an ERR segment without re-parsing
// text. Messages in these statuses are written by lab-bridge and never quote
// field contents, so they are free of PHI and safe to log and to send back.
//
//   return Hl7Error(absl::StatusCode::kInvalidArgument, ErrorCode::kRequiredFieldMissing,
//                   {.segment = "MSH", .field = 10}, "MSH-10 (message control id) is empty");
//   ...
//   if (std::optional<Hl7ErrorDetail> detail = GetHl7Error(status)) { ... detail->code ... }
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace bridge::hl7 {

// HL7 table 0357 (message error condition codes).
enum class ErrorCode : int {
  kNone = 0,
  kSegmentSequenceError = 100,
  kRequiredFieldMissing = 101,
  kDataTypeError = 102,
  kTableValueNotFound = 103,
  kValueTooLong = 104,
  kUnsupportedMessageType = 200,
  kUnsupportedEventCode = 201,
  kUnsupportedProcessingId = 202,
  kUnsupportedVersionId = 203,
  kUnknownKeyIdentifier = 204,
  kDuplicateKeyIdentifier = 205,
  kApplicationRecordLocked = 206,
  kApplicationInternalError = 207,
};

// The text HL7 gives each code (used in ERR-3.2).
std::string_view ErrorCodeText(ErrorCode code);

// Where in a message an error was found. Numbers are 1-based; 0 means "not
// applicable" (an error about a whole segment has field == 0).
struct ErrorLocation {
  std::string segment;       // segment id, e.g. "PID"; empty if unknown
  int segment_sequence = 0;  // 1-based position of the segment in the message
  int field = 0;
  int repetition = 0;
  int component = 0;
  int subcomponent = 0;
  long long byte_offset = -1;  // offset in the input, -1 if unknown

  // "PID-3(2)-1" style, or "" when there is no segment.
  std::string ToString() const;
};

struct Hl7ErrorDetail {
  ErrorCode code = ErrorCode::kNone;
  ErrorLocation location;
};

// Builds a status with `status_code`, `message` and the HL7 detail attached.
absl::Status Hl7Error(absl::StatusCode status_code, ErrorCode code, ErrorLocation location,
                      std::string_view message);

// The HL7 detail of `status`, or nullopt when it carries none (for example a
// storage error).
std::optional<Hl7ErrorDetail> GetHl7Error(const absl::Status& status);

}  // namespace bridge::hl7
