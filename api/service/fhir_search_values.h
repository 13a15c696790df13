// api/service/fhir_search_values.h
//
// The values of the multi-valued FHIR search parameters the facade answers,
// read from a resource's JSON when it is stored (Store keeps them in
// fhir_search_values, replaced with each version):
//   Patient         identifier (system|value of each), name (family, given,
//                   prefix, suffix and text of each HumanName, lower-cased),
//                   birthdate (birthDate)
//   ServiceRequest  identifier
// Other types, and JSON that does not parse, give none.
//
//   record.search_values = FhirSearchValues("Patient", json);
//
// Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "storage/store.h"

namespace bridge::api::service {

std::vector<storage::FhirSearchValue> FhirSearchValues(std::string_view resource_type,
                                                       std::string_view json);

// A name (or the start of one) as stored and as searched: ASCII lower case,
// surrounding spaces removed. FHIR asks for case- and accent-insensitive
// matching; accents are kept as they are (not folded).
std::string NormalizeNameForSearch(std::string_view name);

}  // namespace bridge::api::service
