// Deterministic identifiers for FHIR resources (MAPPING.md section 2):
// name-based UUIDv5 (RFC 4122, SHA-1) for `urn:uuid:` fullUrls, SHA-256 hex
// keys for Observation business identifiers, and the escaping a business
// value needs before it goes into a conditional search URL.
//
//   std::string id = UuidV5(kBridgeNamespace, "Observation|" + key);
//   std::string url = "Observation?identifier=" + SearchToken(system, value);
//
// Pure, thread-safe (OpenSSL EVP one-shot digests).
#pragma once

#include <string>
#include <string_view>

namespace bridge::fhir {

// The bridge's UUIDv5 namespace (a fixed random UUID; never change it, or
// every deterministic id changes).
inline constexpr std::string_view kBridgeNamespace = "6f1b7c52-3d0e-4c8a-9a57-2f6d4b1e8c30";

// UUIDv5 of `name` in namespace `ns` (lower-case, 36 characters). `ns` must
// be a canonical UUID string; an invalid one is treated as all zeros.
std::string UuidV5(std::string_view ns, std::string_view name);

// Lower-case hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(std::string_view data);

// FHIR search escaping (`\` `|` `,` `$` get a backslash) followed by
// percent-encoding of everything outside the URL unreserved set.
std::string EscapeSearchValue(std::string_view value);

// `system|value` token for identifier searches, both parts escaped (the `|`
// between them stays literal, percent-encoded as %7C is not required).
std::string SearchToken(std::string_view system, std::string_view value);

}  // namespace bridge::fhir
