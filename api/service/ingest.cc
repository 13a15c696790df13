#include "api/service/ingest.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "api/service/fhir_search_values.h"
#include "mapping/hl7/ack.h"
#include "mapping/hl7/error.h"
#include "mapping/hl7/message.h"
#include "mapping/v2_to_fhir/converter.h"

namespace bridge::api::service {
namespace {

// Control ids and types go into logs: printable ASCII only, bounded.
std::string Printable(std::string_view s, std::size_t max = 40) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c > 0x20 && c < 0x7f) ? c : '?';
  return out;
}

std::string FirstComponent(std::optional<std::string> field) {
  if (!field.has_value()) return "";
  return field->substr(0, field->find('^'));
}

// A FHIR date/dateTime ("2026-02-21", "2026-02-21T11:00:00+00:00", ...) as a time.
std::optional<absl::Time> ParseFhirDateTime(const std::string& text) {
  if (text.empty()) return std::nullopt;
  static const char* const kFormats[] = {"%Y-%m-%dT%H:%M:%E*S%Ez",
                                         "%Y-%m-%dT%H:%M%Ez",
                                         "%Y-%m-%dT%H:%M:%E*S",
                                         "%Y-%m-%d",
                                         "%Y-%m",
                                         "%Y"};
  for (const char* format : kFormats) {
    absl::Time t;
    std::string error;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &t, &error)) return t;
  }
  return std::nullopt;
}

std::string WithoutDashes(std::string_view date) {
  std::string out;
  for (char c : date) {
    if (c != '-') out += c;
  }
  return out;
}

std::string PatientReference(const std::string& ref) {
  constexpr std::string_view kUrn = "urn:uuid:";
  if (ref.rfind(kUrn, 0) == 0) return absl::StrCat("Patient/", ref.substr(kUrn.size()));
  return ref;
}

// Same person? Two PATIENT_RESULT groups may repeat the same PID.
bool SamePatient(const v2_to_fhir::PatientRecord& a, const v2_to_fhir::PatientRecord& b) {
  if (a.pms_id != b.pms_id || a.identifiers.size() != b.identifiers.size()) return false;
  for (std::size_t i = 0; i < a.identifiers.size(); ++i) {
    if (a.identifiers[i].value != b.identifiers[i].value ||
        a.identifiers[i].authority != b.identifiers[i].authority) {
      return false;
    }
  }
  return true;
}

// The ORM gives each test of an order with several tests the placer number
// "<order number>-<n>" (fhir_to_v2::PlacerNumberFor), which the LIS echoes in
// the ORU's OBR-2: such a number answers the order <order number>. A number
// that is itself an order's, or whose prefix is none, is kept as sent.
void LinkEchoedPlacerNumbers(storage::Store& store, storage::IngestRecord* record) {
  std::map<std::string, std::string> to_order;
  for (const std::string& placer : record->resulted_placer_order_numbers) {
    const std::size_t dash = placer.rfind('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == placer.size() ||
        placer.find_first_not_of("0123456789", dash + 1) != std::string::npos) {
      continue;
    }
    if (store.FindOrderByPlacerNumber(placer).ok()) {
      continue;
    }
    const std::string order_number = placer.substr(0, dash);
    if (store.FindOrderByPlacerNumber(order_number).ok()) {
      to_order[placer] = order_number;
    }
  }
  if (to_order.empty()) {
    return;
  }
  std::set<std::string> resulted;
  for (const std::string& placer : record->resulted_placer_order_numbers) {
    auto it = to_order.find(placer);
    resulted.insert(it == to_order.end() ? placer : it->second);
  }
  record->resulted_placer_order_numbers.assign(resulted.begin(), resulted.end());
  for (storage::ResultRecord& r : record->results) {
    auto it = to_order.find(r.placer_order_number);
    if (it != to_order.end()) {
      r.placer_order_number = it->second;
    }
  }
}

storage::PatientRecord ToStorage(const v2_to_fhir::PatientRecord& p, std::string_view authority) {
  storage::PatientRecord out;
  std::vector<std::string> others;
  for (const v2_to_fhir::IdentifierRecord& id : p.identifiers) {
    if (out.pms_patient_id.empty() && id.authority == authority && !id.value.empty()) {
      out.pms_patient_id = id.value;
    }
    others.push_back(absl::StrCat(id.value, "^^^", id.authority, "^", id.type));
  }
  if (out.pms_patient_id.empty()) out.other_identifiers = absl::StrJoin(others, "~");
  out.family_name = p.family_name;
  out.given_name = p.given_name;
  out.birth_date = WithoutDashes(p.birth_date);
  out.sex = p.sex;
  return out;
}

storage::ResultRecord ToStorage(const v2_to_fhir::ResultRecord& r,
                                const std::vector<v2_to_fhir::OrderRecord>& orders) {
  storage::ResultRecord out;
  if (r.order_index >= 0 && static_cast<std::size_t>(r.order_index) < orders.size()) {
    out.report_code = orders[static_cast<std::size_t>(r.order_index)].test_code;
    out.report_name = orders[static_cast<std::size_t>(r.order_index)].test_name;
  }
  out.comments = r.comments;
  out.test_code = r.test_code;
  out.test_name = r.test_name;
  out.value = r.value;
  out.value_type = r.value_type;
  out.units = r.units;
  out.reference_range = r.reference_range;
  out.abnormal_flag = r.abnormal_flag;
  out.result_status = r.result_status;
  out.observation_sub_id = r.observation_sub_id;
  out.sending_facility = r.sending_facility;
  out.filler_order_number = r.filler_order_number;
  out.placer_order_number = r.placer_order_number;
  out.observation_date = ParseFhirDateTime(r.observation_date);
  out.critical = r.critical;
  return out;
}

storage::FhirResourceRecord ToStorage(const v2_to_fhir::ResourceRecord& r) {
  return storage::FhirResourceRecord{.resource_type = r.type,
                                     .id = r.id,
                                     .json = r.json,
                                     .patient_reference = PatientReference(r.patient_ref),
                                     .code = r.code,
                                     .date = r.date,
                                     .status = r.status,
                                     .category = r.category,
                                     .search_values = FhirSearchValues(r.type, r.json)};
}

std::string StatusText(const absl::Status& status) {
  return std::string(status.message().data(), status.message().size());
}

}  // namespace

Ingest::Ingest(storage::Store& store, EventBus& bus, IngestOptions options)
    : store_(store), bus_(bus), options_(std::move(options)) {}

std::string Ingest::AckTimestamp() const {
  return absl::FormatTime("%Y%m%d%H%M%S+0000", options_.clock(), absl::UTCTimeZone());
}

std::string Ingest::OversizeNak(std::string_view prefix, std::size_t max_bytes) {
  hl7::AckSpec spec{.application = options_.sending_application,
                    .facility = options_.sending_facility,
                    .control_id = control_ids_.Next(),
                    .timestamp = AckTimestamp()};
  absl::Status status = hl7::Hl7Error(
      absl::StatusCode::kInvalidArgument, hl7::ErrorCode::kValueTooLong, {.segment = "MSH"},
      absl::StrCat("message larger than MAX_MESSAGE_SIZE (", max_bytes, " bytes)"));
  std::string nak = hl7::BuildAck(nullptr, prefix, status, spec);
  if (options_.logger) {
    options_.logger->warn("event=oversize_frame control_id={} max_bytes={} ack=AE",
                          Printable(hl7::PeekControlId(prefix).value_or("")), max_bytes);
  }
  return nak;
}

IngestResult Ingest::Handle(std::string_view payload, const IngestPeer& peer) {
  const auto started = std::chrono::steady_clock::now();
  IngestResult result;
  hl7::AckSpec spec{.application = options_.sending_application,
                    .facility = options_.sending_facility,
                    .control_id = control_ids_.Next(),
                    .timestamp = AckTimestamp()};

  storage::IngestRecord record;
  storage::InboundMessage& row = record.message;
  row.raw_message = std::string(payload);
  row.source_ip = peer.source_ip;
  row.peer_certificate_subject = peer.certificate_subject;

  absl::StatusOr<hl7::Message> parsed = hl7::Message::Parse(payload);
  // The outcome decides the ACK. Every message gets one: an MLLP sender waits
  // for a reply to each frame, and silence (or a close) only makes it resend.
  absl::Status outcome = absl::OkStatus();
  bool enhanced = false;
  int uncoded_results = 0;
  std::optional<v2_to_fhir::Conversion> conversion;

  if (!parsed.ok()) {
    outcome = parsed.status();
    row.message_control_id = hl7::PeekControlId(payload).value_or("");
    row.sending_application = FirstComponent(hl7::PeekHeaderField(payload, 3));
    row.sending_facility = FirstComponent(hl7::PeekHeaderField(payload, 4));
    row.receiving_application = FirstComponent(hl7::PeekHeaderField(payload, 5));
    row.receiving_facility = FirstComponent(hl7::PeekHeaderField(payload, 6));
    std::string type = hl7::PeekHeaderField(payload, 9).value_or("");
    std::size_t caret = type.find('^');
    row.message_type = type.substr(0, caret);
    if (caret != std::string::npos) {
      row.trigger_event = type.substr(caret + 1, type.find('^', caret + 1) - caret - 1);
    }
    row.version = FirstComponent(hl7::PeekHeaderField(payload, 12));
  } else {
    const hl7::Message& m = *parsed;
    enhanced = hl7::IsEnhancedMode(m);
    row.message_type = std::string(m.message_code());
    row.trigger_event = std::string(m.trigger_event());
    row.message_control_id = std::string(m.control_id());
    row.sending_application = std::string(m.Get("MSH-3").value());
    row.sending_facility = std::string(m.Get("MSH-4").value());
    row.receiving_application = std::string(m.Get("MSH-5").value());
    row.receiving_facility = std::string(m.Get("MSH-6").value());
    row.version = std::string(m.version());
    outcome = hl7::ValidateHeader(m, {});
    if (outcome.ok() && options_.authorize_sender) {
      if (absl::Status allowed =
              options_.authorize_sender(row.sending_application, row.sending_facility, peer);
          !allowed.ok()) {
        // Refused for who sent it, not for what it says (AR); the reason
        // names laboratories and fields, never content.
        outcome = hl7::Hl7Error(
            absl::StatusCode::kPermissionDenied, hl7::ErrorCode::kApplicationInternalError,
            {.segment = "MSH", .segment_sequence = 1, .field = 3}, std::string(allowed.message()));
      }
    }
    if (outcome.ok() && row.message_type == "ORU" && row.trigger_event == "R01") {
      v2_to_fhir::ConvertOptions convert;
      convert.now = options_.clock();
      // Provenance.entity: the stored Provenance points at this message's
      // audit row by the key the row is filed under (MAPPING 6.1).
      convert.source_message_id = v2_to_fhir::SourceMessageId(m);
      convert.pms_assigning_authority = options_.sending_facility;
      convert.critical_flags = options_.critical_flags;
      if (options_.sender_settings) {
        if (std::optional<v2_to_fhir::SenderSettings> sender =
                options_.sender_settings(row.sending_application, row.sending_facility)) {
          convert.sender = *std::move(sender);
        }
      }
      absl::StatusOr<v2_to_fhir::Conversion> c = v2_to_fhir::ConvertOru(m, convert);
      if (!c.ok()) {
        outcome = c.status().code() == absl::StatusCode::kInvalidArgument ||
                          c.status().code() == absl::StatusCode::kUnimplemented
                      ? c.status()
                      : hl7::Hl7Error(absl::StatusCode::kInvalidArgument,
                                      hl7::ErrorCode::kApplicationInternalError, {},
                                      "the ORU^R01 could not be mapped");
      } else {
        conversion = std::move(*c);
        const v2_to_fhir::LabDomain& d = conversion->domain;
        for (std::size_t i = 1; i < d.patients.size(); ++i) {
          if (!SamePatient(d.patients[0], d.patients[i])) {
            outcome = hl7::Hl7Error(
                absl::StatusCode::kInvalidArgument, hl7::ErrorCode::kSegmentSequenceError,
                {.segment = "PID"},
                "results for more than one patient in one ORU^R01 are not accepted; send one "
                "message per patient");
            break;
          }
        }
        if (outcome.ok() && d.patients.empty() && !d.results.empty()) {
          outcome = hl7::Hl7Error(absl::StatusCode::kInvalidArgument,
                                  hl7::ErrorCode::kRequiredFieldMissing, {.segment = "PID"},
                                  "ORU^R01 without a PID segment: results cannot be linked to a "
                                  "patient");
        }
        if (outcome.ok()) {
          if (!d.patients.empty()) {
            record.patient = ToStorage(d.patients[0], options_.sending_facility);
          }
          std::set<std::string> placers;
          for (const v2_to_fhir::ResultRecord& r : d.results) {
            if (!r.placer_order_number.empty()) placers.insert(r.placer_order_number);
            if (r.test_code.empty()) {
              // lab_results rows are keyed by test code. An OBX without
              // OBX-3.1 stays in the audit row and in the FHIR resources
              // (MAPPING.md rule T: narrative -> DiagnosticReport.presentedForm);
              // refusing the whole message for it would lose every other result.
              ++uncoded_results;
              continue;
            }
            record.results.push_back(ToStorage(r, d.orders));
          }
          for (const v2_to_fhir::OrderRecord& o : d.orders) {
            if (!o.placer_order_number.empty()) placers.insert(o.placer_order_number);
          }
          record.resulted_placer_order_numbers.assign(placers.begin(), placers.end());
          LinkEchoedPlacerNumbers(store_, &record);
          for (const v2_to_fhir::ResourceRecord& r : d.resources) {
            record.fhir_resources.push_back(ToStorage(r));
          }
          if (conversion->rejected_orders) {
            outcome =
                hl7::Hl7Error(absl::StatusCode::kInvalidArgument,
                              hl7::ErrorCode::kTableValueNotFound, {.segment = "OBR", .field = 25},
                              "an order group was refused (OBR-25 Y or Z); the other "
                              "results were stored");
          }
        }
      }
    }
  }

  const hl7::Message* original = parsed.ok() ? &*parsed : nullptr;
  hl7::AckDecision decision = hl7::MakeAck(outcome, enhanced);
  // AE for the rejected order groups keeps the other results; any other
  // error stores the audit row alone.
  if (!outcome.ok() && !(conversion.has_value() && conversion->rejected_orders)) {
    record.patient.reset();
    record.results.clear();
    record.resulted_placer_order_numbers.clear();
    record.fhir_resources.clear();
  }
  row.ack_message = hl7::BuildAck(original, payload, outcome, spec);
  row.ack_status = decision.code;
  row.error_detail = outcome.ok() ? "" : StatusText(outcome);

  result.control_id = row.message_control_id;
  result.message_type =
      row.message_type.empty() ? "" : absl::StrCat(row.message_type, "^", row.trigger_event);

  absl::StatusOr<storage::IngestOutcome> stored = store_.Ingest(record);
  if (!stored.ok() && stored.status().code() == absl::StatusCode::kInvalidArgument &&
      (record.patient.has_value() || !record.results.empty())) {
    // The derived rows cannot be stored as given: keep the audit row, answer AE.
    const std::string why = StatusText(stored.status());
    outcome =
        hl7::Hl7Error(absl::StatusCode::kInvalidArgument, hl7::ErrorCode::kApplicationInternalError,
                      {}, "the message's results could not be stored");
    decision = hl7::MakeAck(outcome, enhanced);
    record.patient.reset();
    record.results.clear();
    record.resulted_placer_order_numbers.clear();
    record.fhir_resources.clear();
    row.ack_message = hl7::BuildAck(original, payload, outcome, spec);
    row.ack_status = decision.code;
    row.error_detail = absl::StrCat(StatusText(outcome), ": ", why);
    stored = store_.Ingest(record);
  }

  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (!stored.ok()) {
    // Nothing stored: ask the sender to resend (AR, ERR-3 207).
    absl::Status unavailable =
        absl::UnavailableError("the message could not be stored; resend it later");
    result.reply = hl7::BuildAck(original, payload, unavailable, spec);
    result.ack_code = hl7::MakeAck(unavailable, enhanced).code;
    result.error = StatusText(unavailable);
    if (options_.logger) {
      options_.logger->error(
          "event=ingest control_id={} type={} conn={} ack={} stored=false error=\"{}\" ms={:.2f}",
          Printable(result.control_id), Printable(result.message_type), peer.connection_id,
          result.ack_code, absl::StatusCodeToString(stored.status().code()), ms);
    }
    return result;
  }

  result.stored = true;
  result.message_id = stored->message_id;
  result.control_id_reused = stored->control_id_reused;
  if (stored->duplicate_of.has_value()) {
    // A resend: the original answer, byte for byte; nothing else happened.
    result.duplicate = true;
    result.reply = stored->ack_message;
    result.ack_code = stored->ack_status;
    if (result.reply->empty()) result.reply.reset();
    if (options_.logger) {
      options_.logger->info(
          "event=ingest control_id={} type={} conn={} ack={} duplicate_of={} message_id={} "
          "ms={:.2f}",
          Printable(result.control_id), Printable(result.message_type), peer.connection_id,
          result.ack_code, *stored->duplicate_of, stored->message_id, ms);
    }
    return result;
  }

  result.ack_code = decision.code;
  result.error = row.error_detail;
  result.uncoded_results = uncoded_results;
  result.reply = std::move(row.ack_message);
  result.result_ids = stored->result_ids;

  std::vector<ResultEvent> events;
  for (std::size_t i = 0; i < stored->result_ids.size() && i < record.results.size(); ++i) {
    const storage::ResultRecord& r = record.results[i];
    ResultEvent event{.result_id = stored->result_ids[i],
                      .patient_id = stored->patient_id.value_or(0),
                      .pms_patient_id = record.patient ? record.patient->pms_patient_id : "",
                      .message_id = stored->message_id,
                      .critical = r.critical,
                      .status = r.result_status,
                      .corrected = r.result_status == "C"};
    if (r.critical) {
      ++result.critical_results;
      if (options_.logger) {
        options_.logger->warn(
            "event=critical_result control_id={} result_id={} patient_id={} test_code={} "
            "flag={}",
            Printable(result.control_id), event.result_id, event.patient_id, Printable(r.test_code),
            Printable(r.abnormal_flag, 8));
      }
    }
    events.push_back(std::move(event));
  }
  bus_.Publish(events);

  if (options_.logger) {
    auto level = result.ack_code == "AA" || result.ack_code == "CA" ? spdlog::level::info
                                                                    : spdlog::level::warn;
    options_.logger->log(
        level,
        "event=ingest control_id={} type={} conn={} ack={} message_id={} results={} critical={} "
        "uncoded_results={} reused_control_id={} replied={} error=\"{}\" ms={:.2f}",
        Printable(result.control_id), Printable(result.message_type), peer.connection_id,
        result.ack_code, stored->message_id, result.result_ids.size(), result.critical_results,
        result.uncoded_results, result.control_id_reused, result.reply.has_value(), result.error,
        ms);
  }
  return result;
}

}  // namespace bridge::api::service
