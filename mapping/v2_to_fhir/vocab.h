// Vocabulary maps v2 -> FHIR R4 (MAPPING.md section 8 and table 4.2): sex,
// abnormal flags, result and order statuses, priority, coding-system names.
// Each lookup returns nullopt (or an empty result) for a code it does not
// map, so the caller decides the fallback and the warning. Codes are matched
// case-sensitively first, then case-insensitively (`*lenient` tells which).
// Pure, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bridge::v2_to_fhir {

inline constexpr std::string_view kV3Interpretation =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
inline constexpr std::string_view kDataAbsentReason =
    "http://terminology.hl7.org/CodeSystem/data-absent-reason";

// Table 0001 -> Patient.gender (8.1). Full words (`Female`) are accepted
// leniently.
std::optional<std::string_view> MapSex(std::string_view v2, bool* lenient = nullptr);

// Table 0078 -> interpretation (8.2).
struct Interpretation {
  std::string system;  // v3-ObservationInterpretation or v2-0078; "" = text only
  std::string code;
};
Interpretation MapAbnormalFlag(std::string_view v2);

// Table 0085 OBX-11 -> Observation.status (8.3), with the data-absent reason
// the status implies ("" when none) and whether the mapping is exact.
struct ObservationStatus {
  std::string_view status;
  std::string_view data_absent_reason;
  bool equivalent = true;
};
std::optional<ObservationStatus> MapObservationStatus(std::string_view v2);

// Table 0123 OBR-25 -> DiagnosticReport.status (8.4). Y and Z (no order / no
// patient) give nullopt with *reject = true.
std::optional<std::string_view> MapReportStatus(std::string_view v2, bool* reject,
                                                bool* equivalent);

// Table 0038 ORC-5 -> ServiceRequest.status (8.5).
std::optional<std::string_view> MapOrderStatus(std::string_view v2, bool* lenient = nullptr);

// Table 0119 ORC-1 -> ServiceRequest.status (8.6); nullopt for RE, SC, ...
std::optional<std::string_view> MapOrderControl(std::string_view v2, bool* lenient = nullptr);

// Table 0485 priority -> ServiceRequest.priority (8.7).
std::optional<std::string_view> MapPriority(std::string_view v2, bool* lenient = nullptr);

// Coding-system name (CWE.3) -> URI for the well-known names of table 4.2;
// nullopt for local and unknown names (the caller applies the sender rule).
std::optional<std::string> WellKnownCodingSystem(std::string_view name);

// True for the local-code names of table 4.2 (`L`, `99xxx`, `LN`-less local).
bool IsLocalCodingSystemName(std::string_view name);

}  // namespace bridge::v2_to_fhir
