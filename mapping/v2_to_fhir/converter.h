// ORU^R01 -> FHIR R4 transaction Bundle + lab domain records, in one walk of
// the message (MAPPING.md sections 2-8), so the REST rows and the FHIR
// resources can never disagree. Nothing is dropped silently: every segment,
// field or value the mapping does not carry is listed in the UnmappedReport.
//
//   absl::StatusOr<hl7::Message> m = hl7::Message::Parse(bytes);
//   ConvertOptions options;
//   options.now = absl::Now();               // the caller owns the clock
//   absl::StatusOr<Conversion> c = ConvertOru(*m, options);
//   std::cout << c->bundle_json;             // transaction Bundle
//   for (const UnmappedItem& u : c->report.items) ... u.location, u.reason
//
// Deterministic: the same message and options give a byte-identical Bundle.
// Resource ids are UUIDv5 of business keys (section 2): a corrected result
// (OBX-11 `C`) maps to the same Observation id as the original.
//
// Pure (no I/O, no clock), thread-safe: options are read only.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "mapping/hl7/message.h"

namespace bridge::v2_to_fhir {

// Per-sender settings (from lis_endpoints.json, read by api/).
struct SenderSettings {
  // The sender's IANA zone for timestamps that carry a time but no offset
  // (DST-aware). Loaded by the caller (absl::LoadTimeZone reads tzdata, which
  // mapping/ does not); takes precedence over utc_offset_minutes.
  std::optional<absl::TimeZone> time_zone;
  // Fixed UTC offset, in minutes, for such timestamps. With neither setting:
  // MSH-7's offset, then ConvertOptions::default_utc_offset_minutes.
  std::optional<int> utc_offset_minutes;
  // Sender unit text (OBX-6.1) -> UCUM code; consulted before the built-in map.
  std::map<std::string, std::string> unit_map;
  // v2 coding-system name (CWE.3) -> URI, for local names such as `L`, `99LAB`.
  std::map<std::string, std::string> code_systems;
  // Assigning authority namespace (HD.1) -> identifier system URI. Must hold
  // our own placer namespace so echoed placer numbers get the same system.
  std::map<std::string, std::string> assigning_authorities;
  // System for codes sent with no coding system (CWE.1 without CWE.3); empty:
  // keep code without system and warn.
  std::string default_code_system;
};

struct ConvertOptions {
  // Time of the conversion (Provenance.recorded). Passed in: mapping/ has no clock.
  absl::Time now = absl::UnixEpoch();
  // Identifier of the raw message the Bundle was made from: Provenance.entity
  // (role source, MAPPING 6.1) when set. Ingest passes SourceMessageId().
  std::string source_message_id;
  SenderSettings sender;
  // Bridge default zone for naive timestamps when neither the sender setting
  // nor MSH-7 gives one (minutes east of UTC); its use is warned about.
  int default_utc_offset_minutes = 0;
  // Base URI for systems the bridge mints (local code systems, namespace-only
  // assigning authorities, the Observation key system).
  std::string base_uri = "https://lab-bridge.local/fhir";
  // The PMS's assigning authority in PID-3 (CX-4 namespace).
  std::string pms_assigning_authority = "MPS_PMS";
  // OBX-8 flags that make a result critical, in addition to HH, LL and AA.
  std::vector<std::string> critical_flags;
  // Whether to add the Provenance resource.
  bool include_provenance = true;
};

// One thing the mapping did not carry into FHIR.
struct UnmappedItem {
  std::string location;  // "ZPI", "OBX(3)-5", "PID-10"
  std::string reason;
};
struct UnmappedReport {
  std::vector<UnmappedItem> items;
  // Human-readable, one line per item.
  std::string ToText() const;
  // JSON array of {"location","reason"}.
  std::string ToJson() const;
};

struct IdentifierRecord {
  std::string value;
  std::string authority;  // CX-4.1 (namespace) or CX-4.2
  std::string type;       // CX-5
  std::string system;     // resolved FHIR system ("" when none)
};

struct PatientRecord {
  // PMS patient id: PID-3 whose CX-4 namespace is pms_assigning_authority,
  // else the first MR, else the first PID-3.
  std::string pms_id;
  std::vector<IdentifierRecord> identifiers;  // all of PID-3 (pms_id included)
  std::string family_name;
  std::string given_name;
  std::string birth_date;  // FHIR date ("" when absent or invalid)
  std::string sex;         // PID-8 as sent
  std::string gender;      // FHIR gender ("" when unmapped)
  std::string fhir_id;     // Patient fullUrl uuid
};

struct OrderRecord {
  int patient_index = 0;            // into LabDomain::patients
  std::string placer_order_number;  // ORC-2 else OBR-2 (EI.1)
  std::string filler_order_number;  // ORC-3 else OBR-3 (EI.1)
  std::string test_code;            // OBR-4.1
  std::string test_name;            // OBR-4.2
  std::string result_status;        // OBR-25 as sent
  std::string observation_date;     // OBR-7 as FHIR dateTime
  std::string diagnostic_report_id;
  std::string service_request_id;
};

// One per OBX (columns of the guide's lab_results table, plus links).
struct ResultRecord {
  int patient_index = 0;
  int order_index = 0;           // into LabDomain::orders
  std::string test_code;         // OBX-3.1
  std::string test_name;         // OBX-3.2 (else OBX-3.9)
  std::string test_system;       // OBX-3.3 as sent
  std::string value;             // OBX-5 as text (repetitions joined with "~" for non-text types)
  std::string units;             // OBX-6.1
  std::string reference_range;   // OBX-7
  std::string abnormal_flag;     // OBX-8 (first repetition)
  std::string result_status;     // OBX-11
  std::string sending_facility;  // MSH-4.1
  std::string filler_order_number;
  std::string placer_order_number;
  std::string observation_date;    // OBX-14, else OBR-7, as FHIR dateTime ("" when none)
  std::string value_type;          // OBX-2
  std::string observation_sub_id;  // OBX-4
  std::string set_id;              // OBX-1
  std::string segment;             // location of the OBX, e.g. "OBX(3)"
  bool critical = false;
  std::vector<std::string> comments;  // NTE-3 after the OBX
  std::string observation_id;         // Observation fullUrl uuid ("" when not mapped)
};

// A FHIR resource as stored and indexed by storage.
struct ResourceRecord {
  std::string type;         // "Observation"
  std::string id;           // uuid (the fullUrl without urn:uuid:)
  std::string json;         // the resource (no id inside; storage assigns)
  std::string patient_ref;  // "urn:uuid:..." of the subject, "" when none
  std::string code;         // "system|code" of the first coding, "" when none
  std::string date;         // effective/occurrence/issued dateTime, "" when none
  std::string status;
  std::string category;    // "laboratory", "LAB", ... ("" when none)
  std::string identifier;  // "system|value" business key, "" when none
};

struct LabDomain {
  std::vector<PatientRecord> patients;  // one per PATIENT_RESULT with a PID
  std::vector<OrderRecord> orders;
  std::vector<ResultRecord> results;
  std::vector<ResourceRecord> resources;  // in Bundle order
};

struct Conversion {
  std::string bundle_json;  // FHIR R4 transaction Bundle, compact UTF-8 JSON
  LabDomain domain;
  UnmappedReport report;
  std::vector<std::string> warnings;  // no message content beyond codes/locations
  // True when an order group was refused (OBR-25 Y/Z): the caller should ACK AE.
  bool rejected_orders = false;
};

// Converts an ORU^R01 (v2.3 - 2.8). InvalidArgument (with an HL7 error code)
// when the message is not an ORU^R01 or has no OBR at all.
absl::StatusOr<Conversion> ConvertOru(const hl7::Message& message, const ConvertOptions& options);

// The raw message's identifier for ConvertOptions::source_message_id:
// "<MSH-3.1>|<MSH-4.1>|<MSH-10>", the key the store files the message's
// hl7_messages row under (and recognises resends by). Unlike the row id it is
// known before the message is stored, and the same message always gets it.
std::string SourceMessageId(const hl7::Message& message);

// Parse + convert, for the CLI (`lab-bridge convert`) and tests.
absl::StatusOr<Conversion> ConvertOruText(std::string_view er7, const ConvertOptions& options);

}  // namespace bridge::v2_to_fhir
