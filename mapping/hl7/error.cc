#include "mapping/hl7/error.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace bridge::hl7 {
namespace {

constexpr char kPayloadUrl[] = "type.labbridge.dev/hl7.Error";

}  // namespace

std::string_view ErrorCodeText(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNone:
      return "";
    case ErrorCode::kSegmentSequenceError:
      return "Segment sequence error";
    case ErrorCode::kRequiredFieldMissing:
      return "Required field missing";
    case ErrorCode::kDataTypeError:
      return "Data type error";
    case ErrorCode::kTableValueNotFound:
      return "Table value not found";
    case ErrorCode::kValueTooLong:
      return "Value too long";
    case ErrorCode::kUnsupportedMessageType:
      return "Unsupported message type";
    case ErrorCode::kUnsupportedEventCode:
      return "Unsupported event code";
    case ErrorCode::kUnsupportedProcessingId:
      return "Unsupported processing id";
    case ErrorCode::kUnsupportedVersionId:
      return "Unsupported version id";
    case ErrorCode::kUnknownKeyIdentifier:
      return "Unknown key identifier";
    case ErrorCode::kDuplicateKeyIdentifier:
      return "Duplicate key identifier";
    case ErrorCode::kApplicationRecordLocked:
      return "Application record locked";
    case ErrorCode::kApplicationInternalError:
      return "Application internal error";
  }
  return "";
}

std::string ErrorLocation::ToString() const {
  if (segment.empty()) {
    return "";
  }
  std::string out = segment;
  if (field > 0) {
    absl::StrAppend(&out, "-", field);
    if (repetition > 1) {
      absl::StrAppend(&out, "(", repetition, ")");
    }
    if (component > 0) {
      absl::StrAppend(&out, "-", component);
      if (subcomponent > 0) {
        absl::StrAppend(&out, "-", subcomponent);
      }
    }
  }
  return out;
}

absl::Status Hl7Error(absl::StatusCode status_code, ErrorCode code, ErrorLocation location,
                      std::string_view message) {
  absl::Status status(status_code, absl::string_view(message.data(), message.size()));
  // The segment id is sanitised to letters and digits so the payload stays
  // splittable on '|'.
  std::string segment;
  for (char c : location.segment) {
    if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      segment.push_back(c);
    }
  }
  status.SetPayload(kPayloadUrl,
                    absl::Cord(absl::StrCat(static_cast<int>(code), "|", segment, "|",
                                            location.segment_sequence, "|", location.field, "|",
                                            location.repetition, "|", location.component, "|",
                                            location.subcomponent, "|", location.byte_offset)));
  return status;
}

std::optional<Hl7ErrorDetail> GetHl7Error(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kPayloadUrl);
  if (!payload.has_value()) {
    return std::nullopt;
  }
  std::vector<std::string> parts = absl::StrSplit(std::string(*payload), '|');
  if (parts.size() != 8) {
    return std::nullopt;
  }
  Hl7ErrorDetail detail;
  int code = 0;
  long long offset = -1;
  if (!absl::SimpleAtoi(parts[0], &code) ||
      !absl::SimpleAtoi(parts[2], &detail.location.segment_sequence) ||
      !absl::SimpleAtoi(parts[3], &detail.location.field) ||
      !absl::SimpleAtoi(parts[4], &detail.location.repetition) ||
      !absl::SimpleAtoi(parts[5], &detail.location.component) ||
      !absl::SimpleAtoi(parts[6], &detail.location.subcomponent) ||
      !absl::SimpleAtoi(parts[7], &offset)) {
    return std::nullopt;
  }
  detail.code = static_cast<ErrorCode>(code);
  detail.location.segment = parts[1];
  detail.location.byte_offset = offset;
  return detail;
}

}  // namespace bridge::hl7
