// The shared string helpers (mapping/fhir/text.h) under this module's
// namespace. Internal to mapping/v2_to_fhir.
#pragma once

#include "mapping/fhir/text.h"

namespace bridge::v2_to_fhir {
using namespace ::bridge::fhir::text;  // NOLINT(google-build-using-namespace)
}  // namespace bridge::v2_to_fhir
