// Orders -> HL7 v2: builds the ORM^O01 (or OML^O21) that lab-bridge sends to
// a LIS for a new or cancelled lab order (MAPPING.md section 9), reads such a
// message back into the same order data, and turns a FHIR ServiceRequest
// (alone, with a contained Patient, or in a Bundle with its Patient and
// Practitioner) into an order.
//
//   OrderRequest order;
//   order.patient_id = "12345";
//   order.test_codes = {{.code = "CBC", .display = "Complete Blood Count", .system = "L"}};
//   order.placer_order_number = "ORD001";
//   OrmOptions options;
//   options.control_id = NextControlId();   // unique, <= 20 characters (caller's)
//   options.timestamp = absl::Now();        // mapping/ has no clock
//   absl::StatusOr<std::string> er7 = BuildOrm(order, options);
//
// One ORC/OBR pair per test code, each with a stable placer order number
// (the order's number when there is one test, `<number>-<n>` otherwise) that
// the LIS echoes in the ORU's OBR-2; ORC-4 carries the order's number as the
// placer group. Every value is escaped by the codec's MessageBuilder.
// Pure and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "mapping/hl7/message.h"

namespace bridge::fhir_to_v2 {

struct TestCode {
  std::string code;            // OBR-4.1
  std::string display;         // OBR-4.2
  std::string system;          // OBR-4.3, a v2 coding-system name (`L`, `99LAB`, `LN`); never a URI
  std::string alternate_code;  // OBR-4.4 (e.g. LOINC)
  std::string alternate_display;  // OBR-4.5
  std::string alternate_system;   // OBR-4.6
  friend bool operator==(const TestCode&, const TestCode&) = default;
};

struct PatientDemographics {
  std::string family_name;
  std::string given_name;
  std::string middle_name;
  std::string birth_date;  // YYYY-MM-DD or YYYYMMDD ("" when unknown)
  std::string sex;         // v2 table 0001 (F, M, O, U) or FHIR gender (female, ...)
  std::string phone;       // PID-13
  friend bool operator==(const PatientDemographics&, const PatientDemographics&) = default;
};

struct Provider {
  std::string id;  // XCN-1, e.g. an NPI
  std::string family_name;
  std::string given_name;
  std::string id_type;  // XCN-13, e.g. "NPI" (then XCN-9 is the NPI authority)
  friend bool operator==(const Provider&, const Provider&) = default;
};

struct OrderRequest {
  std::string patient_id;  // PMS id: PID-3 = id^^^<patient authority>^MR
  std::optional<PatientDemographics> demographics;
  std::string encounter_id;  // PV1-19; a PV1 is sent only when set
  std::vector<TestCode> test_codes;
  Provider ordering_provider;  // ORC-12 and OBR-16
  std::string priority = "R";  // R routine, S stat, A asap (OBR-5 / TQ1-9)
  std::string placer_order_number;
  std::string filler_order_number;   // ORC-3/OBR-3, for a cancel once the LIS assigned one
  std::string order_control = "NW";  // NW new, CA cancel (MAPPING 9.2)
  std::string note;                  // NTE after each OBR ("" = none); newlines kept
  friend bool operator==(const OrderRequest&, const OrderRequest&) = default;
};

struct OrmOptions {
  enum class Flavor { kOrmO01, kOmlO21 };
  std::string sending_application = "LAB_BRIDGE";  // MSH-3
  std::string sending_facility = "MPS_PMS";        // MSH-4
  std::string receiving_application;               // MSH-5 (the LIS)
  std::string receiving_facility;                  // MSH-6
  std::string control_id;                          // MSH-10: unique, 1..20 characters (passed in)
  absl::Time timestamp = absl::UnixEpoch();        // MSH-7 and ORC-9 (passed in)
  int utc_offset_minutes = 0;                      // zone MSH-7 is written in
  std::string version = "2.5.1";                   // MSH-12
  std::string processing_id = "P";                 // MSH-11
  Flavor flavor = Flavor::kOrmO01;
  // Assigning authority of PID-3 and namespace of the placer numbers (ORC-2).
  std::string patient_authority = "MPS_PMS";
  std::string placer_namespace = "MPS_PMS";
};

// The ER7 message (CR-terminated segments). InvalidArgument naming the field
// for an order that cannot be sent (no patient id, no test, bad priority or
// order control, control id empty or over 20 characters, unsupported
// version for the flavor).
absl::StatusOr<std::string> BuildOrm(const OrderRequest& order, const OrmOptions& options);

// The placer order number BuildOrm gives test `index` (0-based) of `order`.
std::string PlacerNumberFor(const OrderRequest& order, size_t index);

// Reads an ORM^O01 / OML^O21 back into order data (the first ORC's control
// and numbers; one test per OBR). Used by the round-trip tests and by anyone
// checking what was sent.
absl::StatusOr<OrderRequest> ParseOrder(const hl7::Message& message);

struct ServiceRequestOptions {
  // Patient.identifier system whose value is the PMS id; "" = first MR
  // identifier, else the first identifier.
  std::string patient_system;
  // Coding systems (URI) -> v2 names for OBR-4; loinc.org -> LN and
  // snomed.info/sct -> SCT are built in; any other system -> "L".
  std::vector<std::pair<std::string, std::string>> code_systems;
  // The catalog system to put first in OBR-4 (the LIS's orderable codes);
  // "" = the first coding that is not LOINC.
  std::string catalog_system;
};

// A FHIR R4 ServiceRequest JSON (or a Bundle holding one ServiceRequest, its
// Patient and Practitioner; a contained Patient also works) -> OrderRequest.
// status active -> NW, revoked / entered-in-error -> CA; priority routine R,
// stat S, asap A, urgent A (MAPPING 9.5, DEV). InvalidArgument naming what
// is missing or ill-typed.
absl::StatusOr<OrderRequest> FromServiceRequest(std::string_view json,
                                                const ServiceRequestOptions& options = {});

// FromServiceRequest + BuildOrm, for `lab-bridge convert --to hl7`.
absl::StatusOr<std::string> ServiceRequestToOrm(std::string_view json,
                                                const ServiceRequestOptions& sr_options,
                                                const OrmOptions& orm_options);

}  // namespace bridge::fhir_to_v2
