// Acknowledgements: deciding AA/AE/AR (or CA/CE/CR) from an outcome, checking
// the header fields that decide between AE and AR, and building the ACK or
// NAK message itself.
//
//   absl::Status outcome = ValidateHeader(message, {});
//   AckSpec spec{.application = "LAB_BRIDGE", .facility = "MPS_PMS",
//                .control_id = NextId(), .timestamp = "20260221120000+0000"};
//   std::string ack = BuildAck(&message, message.raw(), outcome, spec);
//
// No clock and no id generator inside: the caller passes both in. Error texts
// in ERR segments come from the Status message, which lab-bridge writes
// without field contents, so an ACK never carries PHI. Pure, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include "mapping/hl7/error.h"
#include "mapping/hl7/message.h"

namespace bridge::hl7 {

// What to answer for an outcome (the MLLP column of STYLE.md's table).
struct AckDecision {
  std::string code;  // "AA", "AE", "AR" (original) or "CA", "CE", "CR" (enhanced)
  ErrorCode error = ErrorCode::kNone;
  char severity = 'E';  // ERR-4: E error, W warning, I information
};

// kOk and kAlreadyExists (a duplicate is re-acknowledged) -> AA;
// kInvalidArgument -> AE with the status' HL7 code (default 102);
// kUnimplemented -> AR with its code (default 200); kUnavailable -> AR 207
// (the sender may resend); kPermissionDenied (a sender refused for who it
// is) -> AR with its code (default 207); everything else -> AE 207.
// `enhanced` turns AA/AE/AR into CA/CE/CR.
AckDecision MakeAck(const absl::Status& outcome, bool enhanced = false);

struct ValidationOptions {
  // Message types and events accepted; an entry "ACK" with an empty event
  // accepts any trigger. Others: unknown type -> AR 200, known type with an
  // unknown event -> AR 201.
  struct Accepted {
    std::string type;
    std::string event;  // "" = any
  };
  std::vector<Accepted> accepted = {{"ORU", "R01"}, {"ACK", ""},    {"ORM", "O01"},
                                    {"OML", "O21"}, {"ORL", "O22"}, {"ORR", "O02"}};
  std::vector<std::string> versions = {"2.1", "2.2", "2.3",   "2.3.1", "2.4",   "2.5",  "2.5.1",
                                       "2.6", "2.7", "2.7.1", "2.8",   "2.8.1", "2.8.2"};
  std::vector<std::string> processing_ids = {"P", "T", "D"};
};

// Checks MSH: MSH-9 (type and event), MSH-10, MSH-11 and MSH-12 present
// (InvalidArgument, 101 -> AE), then the supported type, event, processing
// id and version (Unimplemented, 200/201/202/203 -> AR).
absl::Status ValidateHeader(const Message& message, const ValidationOptions& options);

// True when the message asks for enhanced acknowledgement mode (MSH-15 or
// MSH-16 valued).
bool IsEnhancedMode(const Message& message);

// Whether a commit ACK should be sent at all for `decision` under MSH-15
// (AL always, NE never, ER only on error, SU only on success; empty = AL).
bool ShouldSendAcceptAck(const Message& message, const AckDecision& decision);

struct AckSpec {
  std::string application = "LAB_BRIDGE";  // our MSH-3
  std::string facility = "MPS_PMS";        // our MSH-4
  std::string control_id;                  // MSH-10 of the ACK; unique, from the caller
  std::string timestamp;                   // MSH-7, DTM with offset, from the caller's clock
  std::string default_version = "2.5.1";   // when the original's version is unreadable
};

// Builds the ACK for `original` (nullptr when it did not parse; then
// `raw` is searched for the sender's MSH-10 so MSA-2 still echoes it).
// MSH swaps sender and receiver, MSH-9 is `ACK^<trigger>^ACK` (`ACK` for 2.3
// and earlier), MSH-11 and MSH-12 are echoed; MSA-1 from MakeAck (enhanced
// codes when the original asks for them); an ERR segment for errors, shaped
// for the version (ERR-1 before 2.5; ERR-2, ERR-3, ERR-4 from 2.5 on).
std::string BuildAck(const Message* original, std::string_view raw, const absl::Status& outcome,
                     const AckSpec& spec);

// Reads the acknowledgement code (MSA-1) and the acknowledged control id
// (MSA-2) of an ACK; nullopt when `ack` has no MSA.
struct AckSummary {
  std::string code;
  std::string acknowledged_control_id;
  std::string error_text;  // ERR-3.2 / ERR-1.4.2 / MSA-3, first found
};
std::optional<AckSummary> ReadAck(const Message& ack);

}  // namespace bridge::hl7
