// Shared helpers for the v2 <-> FHIR mapping tests: fixed conversion options
// (so golden files are stable), JSON comparison and the node validator.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "mapping/v2_to_fhir/converter.h"

namespace bridge::v2_to_fhir::testing {

// Options used by every golden test: a fixed clock, message id "42",
// sender offset unset (MSH-7 or UTC).
ConvertOptions GoldenOptions();

// Runs tests/mapping_v2fhir/validate_fhir.mjs on `files` in one node
// process. Returns the exit code; `*output` gets what it printed.
int RunValidator(const std::vector<std::filesystem::path>& files, std::string* output);

// True when node and @medplum/core are available (else the test skips).
bool ValidatorAvailable();

}  // namespace bridge::v2_to_fhir::testing
