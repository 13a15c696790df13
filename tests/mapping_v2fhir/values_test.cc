#include "mapping/v2_to_fhir/values.h"

#include "gtest/gtest.h"

namespace bridge::v2_to_fhir {
namespace {

TEST(ValuesTest, Placeholder) { EXPECT_EQ(*ToFhirDecimal("0.10"), "0.10"); }

}  // namespace
}  // namespace bridge::v2_to_fhir
