#include "mapping/hl7/ack.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "mapping/hl7/absl_compat.h"
#include "mapping/hl7/charset.h"
#include "mapping/hl7/encoder.h"
#include "mapping/hl7/escape.h"

namespace bridge::hl7 {
namespace {

// Compares a "2.5.1"-style version with major.minor.
bool VersionAtLeast(std::string_view version, int major, int minor) {
  const std::size_t dot = version.find('.');
  std::string_view minor_part = dot == std::string_view::npos ? "" : version.substr(dot + 1);
  minor_part = minor_part.substr(0, minor_part.find('.'));
  int v_major = 0;
  int v_minor = 0;
  if (!ParseInt(version.substr(0, dot), &v_major)) return true;  // unknown: newest
  if (!minor_part.empty() && !ParseInt(minor_part, &v_minor)) return true;
  return v_major > major || (v_major == major && v_minor >= minor);
}

// A raw header field of a message that did not parse, or "". Bytes that are
// not printable ASCII or valid UTF-8 become '?', so the NAK itself is always
// valid text whatever the sender sent.
std::string PeekHeaderFieldOrEmpty(std::string_view bytes, int n) {
  std::string value = PeekHeaderField(bytes, n).value_or("");
  if (IsValidUtf8(value)) {
    for (char& c : value) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
    }
    return value;
  }
  for (char& c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F) c = '?';
  }
  return value;
}

absl::Status Unsupported(ErrorCode code, int field, int component, std::string_view message) {
  return Hl7Error(absl::StatusCode::kUnimplemented, code,
                  {.segment = "MSH", .segment_sequence = 1, .field = field, .component = component},
                  message);
}

absl::Status Missing(int field, int component, std::string_view message) {
  return Hl7Error(absl::StatusCode::kInvalidArgument, ErrorCode::kRequiredFieldMissing,
                  {.segment = "MSH", .segment_sequence = 1, .field = field, .component = component},
                  message);
}

}  // namespace

AckDecision MakeAck(const absl::Status& outcome, bool enhanced) {
  AckDecision decision;
  std::optional<Hl7ErrorDetail> detail = GetHl7Error(outcome);
  ErrorCode carried = detail.has_value() ? detail->code : ErrorCode::kNone;
  char letter;
  switch (outcome.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kAlreadyExists:
      letter = 'A';
      break;
    case absl::StatusCode::kInvalidArgument:
      letter = 'E';
      decision.error = carried != ErrorCode::kNone ? carried : ErrorCode::kDataTypeError;
      break;
    case absl::StatusCode::kUnimplemented:
      letter = 'R';
      decision.error = carried != ErrorCode::kNone ? carried : ErrorCode::kUnsupportedMessageType;
      break;
    case absl::StatusCode::kUnavailable:
      letter = 'R';
      decision.error = ErrorCode::kApplicationInternalError;
      break;
    case absl::StatusCode::kPermissionDenied:
      // Refused for who sent it, not for its content: AR, as for a type we
      // do not take.
      letter = 'R';
      decision.error = carried != ErrorCode::kNone ? carried : ErrorCode::kApplicationInternalError;
      break;
    default:
      letter = 'E';
      decision.error = ErrorCode::kApplicationInternalError;
      break;
  }
  decision.code = std::string(1, enhanced ? 'C' : 'A') + letter;
  return decision;
}

absl::Status ValidateHeader(const Message& m, const ValidationOptions& options) {
  const std::string_view type = m.message_code();
  const std::string_view event = m.trigger_event();
  if (type.empty()) return Missing(9, 1, "MSH-9 (message type) is empty");
  if (event.empty() && type != "ACK") return Missing(9, 2, "MSH-9.2 (trigger event) is empty");
  if (m.control_id().empty()) return Missing(10, 0, "MSH-10 (message control id) is empty");
  const std::string_view processing_id = m.Get("MSH-11-1").value();
  if (processing_id.empty()) return Missing(11, 0, "MSH-11 (processing id) is empty");
  const std::string_view version = m.version();
  if (version.empty()) return Missing(12, 0, "MSH-12 (version id) is empty");

  bool type_known = false;
  bool event_known = false;
  for (const auto& accepted : options.accepted) {
    if (accepted.type == type) {
      type_known = true;
      if (accepted.event.empty() || accepted.event == event) event_known = true;
    }
  }
  if (!type_known) {
    return Unsupported(ErrorCode::kUnsupportedMessageType, 9, 1,
                       "MSH-9 message type is not supported");
  }
  if (!event_known) {
    return Unsupported(ErrorCode::kUnsupportedEventCode, 9, 2,
                       "MSH-9.2 trigger event is not supported for this message type");
  }
  bool processing_ok = false;
  for (const auto& id : options.processing_ids) processing_ok |= id == processing_id;
  if (!processing_ok) {
    return Unsupported(ErrorCode::kUnsupportedProcessingId, 11, 0,
                       "MSH-11 processing id is not supported");
  }
  bool version_ok = false;
  for (const auto& v : options.versions) version_ok |= v == version;
  if (!version_ok) {
    return Unsupported(ErrorCode::kUnsupportedVersionId, 12, 0, "MSH-12 version is not supported");
  }
  return absl::OkStatus();
}

bool IsEnhancedMode(const Message& m) {
  return !m.Get("MSH-15").empty() || !m.Get("MSH-16").empty();
}

bool ShouldSendAcceptAck(const Message& m, const AckDecision& decision) {
  const std::string_view mode = m.Get("MSH-15").value();
  const bool success = decision.code == "AA" || decision.code == "CA";
  if (mode == "NE") return false;
  if (mode == "ER") return !success;
  if (mode == "SU") return success;
  return true;
}

std::string BuildAck(const Message* original, std::string_view raw, const absl::Status& outcome,
                     const AckSpec& spec) {
  const Delimiters delimiters = original != nullptr ? original->delimiters() : Delimiters{};
  MessageBuilder builder(delimiters);
  const bool enhanced = original != nullptr && IsEnhancedMode(*original);
  const AckDecision decision = MakeAck(outcome, enhanced);

  std::string version;
  std::string trigger;
  MessageBuilder::SegmentBuilder& msh = builder.Segment("MSH");
  msh.Set(3, spec.application).Set(4, spec.facility).Set(7, spec.timestamp);
  msh.Set(10, spec.control_id);
  if (original != nullptr) {
    // Echoed fields keep the sender's encoding (same delimiters).
    msh.SetEncoded(5, original->Get("MSH-3").encoded());
    msh.SetEncoded(6, original->Get("MSH-4").encoded());
    msh.SetEncoded(11, original->Get("MSH-11").encoded());
    msh.SetEncoded(12, original->Get("MSH-12").encoded());
    version = std::string(original->version());
    trigger = std::string(original->trigger_event());
  } else {
    // The header could not be parsed: echo what can be read, as plain text.
    auto first_component = [](std::string value) { return value.substr(0, value.find('^')); };
    msh.Set(5, first_component(PeekHeaderFieldOrEmpty(raw, 3)));
    msh.Set(6, first_component(PeekHeaderFieldOrEmpty(raw, 4)));
    // MSH-11 is required: without a readable one the NAK says P, as an
    // ACK for a parsed message does.
    const std::string processing_id = first_component(PeekHeaderFieldOrEmpty(raw, 11));
    msh.Set(11, processing_id.empty() ? "P" : processing_id);
    version = first_component(PeekHeaderFieldOrEmpty(raw, 12));
    trigger = PeekHeaderFieldOrEmpty(raw, 9);
    std::size_t caret = trigger.find('^');
    trigger = caret == std::string::npos ? "" : trigger.substr(caret + 1);
    trigger = trigger.substr(0, trigger.find('^'));
    bool printable = !trigger.empty() && trigger.size() <= 3;
    for (char c : trigger) printable &= absl::ascii_isalnum(static_cast<unsigned char>(c));
    if (!printable) trigger.clear();
    msh.Set(12, version.empty() ? spec.default_version : version);
  }
  if (original != nullptr && original->Get("MSH-11").empty()) msh.Set(11, "P");
  if (version.empty()) {
    version = spec.default_version;
    if (original != nullptr) msh.Set(12, version);
  }
  const bool plain_ack_type = !VersionAtLeast(version, 2, 4) && version != "2.3.1";
  if (plain_ack_type || trigger.empty()) {
    msh.Set(9, 1, "ACK");
  } else {
    msh.Set(9, 1, "ACK").Set(9, 2, trigger).Set(9, 3, "ACK");
  }

  MessageBuilder::SegmentBuilder& msa = builder.Segment("MSA");
  msa.Set(1, decision.code);
  if (original != nullptr && !original->control_id().empty()) {
    msa.SetEncoded(2, original->control_id());
  } else if (std::string id = PeekHeaderFieldOrEmpty(raw, 10); !id.empty()) {
    msa.Set(2, id);
  }

  if (decision.error != ErrorCode::kNone) {
    std::optional<Hl7ErrorDetail> detail = GetHl7Error(outcome);
    // Only texts lab-bridge wrote for HL7 errors are sent back; anything
    // else (a database message, say) may quote data, so the table text is
    // used instead.
    const std::string text = detail.has_value() ? std::string(outcome.message())
                                                : std::string(ErrorCodeText(decision.error));
    const ErrorLocation location = detail.has_value() ? detail->location : ErrorLocation{};
    const std::string code = std::to_string(static_cast<int>(decision.error));
    MessageBuilder::SegmentBuilder& err = builder.Segment("ERR");
    if (!VersionAtLeast(version, 2, 5)) {
      msa.Set(3, text);
      err.Set(1, 1, location.segment);
      if (location.segment_sequence > 0) err.Set(1, 2, std::to_string(location.segment_sequence));
      if (location.field > 0) err.Set(1, 3, std::to_string(location.field));
      err.Set(1, 4, 1, code).Set(1, 4, 2, ErrorCodeText(decision.error)).Set(1, 4, 3, "HL70357");
    } else {
      if (!location.segment.empty()) {
        err.Set(2, 1, location.segment);
        if (location.segment_sequence > 0) {
          err.Set(2, 2, std::to_string(location.segment_sequence));
        }
        if (location.field > 0) err.Set(2, 3, std::to_string(location.field));
        if (location.repetition > 0) err.Set(2, 4, std::to_string(location.repetition));
        if (location.component > 0) err.Set(2, 5, std::to_string(location.component));
        if (location.subcomponent > 0) err.Set(2, 6, std::to_string(location.subcomponent));
      }
      err.Set(3, 1, code).Set(3, 2, ErrorCodeText(decision.error)).Set(3, 3, "HL70357");
      err.Set(4, std::string(1, decision.severity));
      err.Set(8, text);
    }
  }
  return builder.Build();
}

std::optional<AckSummary> ReadAck(const Message& ack) {
  std::optional<SegmentRef> msa = ack.Segment("MSA");
  if (!msa.has_value()) return std::nullopt;
  AckSummary summary;
  summary.code = std::string(msa->Field(1).value());
  summary.acknowledged_control_id = std::string(msa->Field(2).value());
  if (std::optional<SegmentRef> err = ack.Segment("ERR"); err.has_value()) {
    summary.error_text = std::string(err->Field(8).value());
    if (summary.error_text.empty()) summary.error_text = std::string(err->Field(3).Comp(2).value());
    if (summary.error_text.empty()) {
      summary.error_text = std::string(err->Field(1).Comp(4).Sub(2).value());
    }
  }
  if (summary.error_text.empty()) summary.error_text = std::string(msa->Field(3).value());
  return summary;
}

}  // namespace bridge::hl7
