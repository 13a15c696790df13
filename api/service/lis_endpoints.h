// api/service/lis_endpoints.h
//
// The laboratories lab-bridge sends orders to, read from lis_endpoints.json
// (LIS_ENDPOINTS_FILE, default config/lis_endpoints.json; example in
// deploy/lis_endpoints.json). Loaded and validated once at start and again
// on SIGHUP; a bad file stops the start with the path and the problem, and
// a bad file at reload keeps the configuration in force.
//
//   absl::StatusOr<LisEndpoints> endpoints =
//       LoadLisEndpoints(config.lis_endpoints_file, {.ack_timeout = ..., .max_attempts = ...});
//   absl::StatusOr<std::string> id = endpoints->Route({"CBC", "BMP"});
//
// The file: {"endpoints": [ {...}, ... ]}. Each entry needs `id`, `host`,
// `port`, `receiving_application`, `receiving_facility`, and either
// `test_codes` (the tests it serves) or `"default": true` (it takes every
// test no other endpoint lists; at most one). Optional, with defaults:
//   message_type "ORM^O01" | "OML^O21"   version "2.5.1"   processing_id "P"
//   ack_mode "original" | "enhanced"     time_zone "UTC" (IANA name; MSH-7/ORC-9 offsets)
//   coding_system "L" (OBR-4.3)          test_code_map {"CBC": "LIS-CODE", ...}
// and, for the results this laboratory sends back (ORU^R01 whose MSH-3/MSH-4
// are its results_application/results_facility, by default its
// receiving_application/receiving_facility), the mapping's sender settings:
//   time_zone (above: for timestamps without an offset)
//   unit_map {"mEq/l": "meq/L", ...} (OBX-6 text -> UCUM code)
//   code_systems {"99LAB": "http://lab.example/codes", ...} (CWE.3 -> URI)
//   default_code_system "http://..." (codes sent with no CWE.3)
//   client_certificate_names ["lis-a.example", "CN=lis-a,O=Lab A"]: over
//     mutual TLS, the certificates this laboratory sends with (subject in
//     RFC 2253, its CN or a subjectAltName). When any endpoint lists them, a
//     certificate named by a laboratory may only send as that laboratory, and
//     that laboratory's MSH-3/MSH-4 only with its certificates.
//   tls {"ca_file", "cert_file", "key_file", "server_name"} (present = TLS 1.2+)
//   connect_timeout_seconds 10           ack_timeout_seconds ACK_TIMEOUT_SECONDS
//   retry_max_attempts RETRY_MAX_ATTEMPTS (sends at most, first one included)
//   backoff_initial_ms 1000              backoff_max_ms 300000
// Unknown keys are refused (a typo must not silently change routing).
//
// Thread-safety: plain values; copy freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "mapping/fhir_to_v2/orm_builder.h"
#include "mapping/v2_to_fhir/converter.h"
#include "mllp/handler.h"
#include "mllp/options.h"

namespace bridge::api::service {

// Outbox destination of an order no endpoint has taken yet (no endpoint
// configured, or none serves its tests). Not a valid endpoint id.
inline constexpr char kUnroutedEndpoint[] = "*unrouted";

struct LisEndpoint {
  std::string id;
  std::string host;
  std::uint16_t port = 0;
  mllp::ClientTlsOptions tls;
  std::string receiving_application;  // MSH-5
  std::string receiving_facility;     // MSH-6
  fhir_to_v2::OrmOptions::Flavor flavor = fhir_to_v2::OrmOptions::Flavor::kOrmO01;
  std::string version = "2.5.1";
  std::string processing_id = "P";
  // Enhanced mode: a commit ACK (CA) means "sent"; the application ACK that
  // follows on the connection means "acknowledged".
  bool enhanced_ack = false;
  bool is_default = false;
  std::vector<std::string> test_codes;
  std::string time_zone_name = "UTC";
  absl::TimeZone time_zone = absl::UTCTimeZone();
  std::string coding_system = "L";
  std::map<std::string, std::string> test_code_map;
  // The results it sends back: MSH-3/MSH-4 that identify them, and how to
  // map them (time_zone above, units, coding systems).
  std::string results_application;  // default: receiving_application
  std::string results_facility;     // default: receiving_facility
  std::map<std::string, std::string> unit_map;
  std::map<std::string, std::string> code_systems;
  std::string default_code_system;
  std::vector<std::string> client_certificate_names;
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  std::chrono::milliseconds ack_timeout = std::chrono::seconds(30);
  int max_attempts = 3;
  std::chrono::milliseconds backoff_initial = std::chrono::seconds(1);
  std::chrono::milliseconds backoff_max = std::chrono::minutes(5);
};

struct LisEndpoints {
  std::string source;  // the file it was read from ("" when built in code)
  std::vector<LisEndpoint> endpoints;

  // The endpoint with this id, or nullptr.
  const LisEndpoint* Find(std::string_view id) const;

  // The endpoint that takes an order for these tests: the one that lists a
  // code, else the default one. NotFound when no endpoint takes some code
  // (the order waits, unrouted); InvalidArgument "test_codes: ..." when the
  // codes belong to different endpoints (one order goes to one laboratory).
  absl::StatusOr<std::string> Route(const std::vector<std::string>& test_codes) const;

  // Ids of every endpoint.
  std::vector<std::string> ids() const;

  // The mapping settings for results whose MSH-3/MSH-4 name one of these
  // laboratories (compared exactly); nullopt for any other sender.
  std::optional<v2_to_fhir::SenderSettings> SenderSettingsFor(std::string_view application,
                                                              std::string_view facility) const;

  // Whether a message with this MSH-3/MSH-4 may come over a connection whose
  // client certificate has this subject and these names (both empty without
  // mutual TLS): PermissionDenied when the certificate belongs to another
  // laboratory, or the laboratory named sends with certificates of its own
  // and this is none of them. OK when no endpoint lists certificates.
  absl::Status AuthorizeSender(std::string_view application, std::string_view facility,
                               std::string_view certificate_subject,
                               const std::vector<std::string>& certificate_names) const;

 private:
  // The first endpoint whose results come as this MSH-3/MSH-4, or nullptr.
  const LisEndpoint* FindResultsSender(std::string_view application,
                                       std::string_view facility) const;
};

// Values an endpoint takes when the file does not say (from Config).
struct LisEndpointDefaults {
  std::chrono::milliseconds ack_timeout = std::chrono::seconds(30);  // ACK_TIMEOUT_SECONDS
  int max_attempts = 3;                                              // RETRY_MAX_ATTEMPTS
};

// Parses and validates the JSON text. InvalidArgument "<source>: <where>:
// <problem>", e.g. "lis.json: endpoints[1].port: expected 1-65535, got 0".
// TLS files must be readable.
absl::StatusOr<LisEndpoints> ParseLisEndpoints(std::string_view json, const std::string& source,
                                               const LisEndpointDefaults& defaults);

// Reads `path` and parses it. A missing file is "no endpoint" (orders stay
// pending) when `missing_is_empty`, NotFound naming the path otherwise.
absl::StatusOr<LisEndpoints> LoadLisEndpoints(const std::string& path,
                                              const LisEndpointDefaults& defaults,
                                              bool missing_is_empty);

}  // namespace bridge::api::service
