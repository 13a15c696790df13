// Small synthetic messages shared by the codec tests (no real patient data).
#pragma once

#include <string>

#include "tests/support/test_paths.h"

namespace bridge::hl7::testing {

// The seed guide's sample ORU (Part D Step 1), CR-terminated.
inline std::string GuideSampleOru() {
  return bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() /
                                        "tests/fixtures/hl7/guide_sample_oru.hl7");
}

// A richer synthetic ORU: truncation character, two PID-3 repetitions,
// escapes, NTE at three levels, SN/ST/CWE values, a Z-segment, SPM with an
// OBX, enhanced acknowledgement mode and MSH-18 UNICODE UTF-8.
inline std::string SyntheticFullOru() {
  return bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() /
                                        "tests/fixtures/hl7/synthetic_full_oru.hl7");
}

}  // namespace bridge::hl7::testing
