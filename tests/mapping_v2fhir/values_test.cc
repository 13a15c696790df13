// Unit tests of the value rules (MAPPING.md 4.7, 4.8, 7.1, 7.2), with the
// specification's own test vectors.
#include "mapping/v2_to_fhir/values.h"

#include "gtest/gtest.h"

#include "mapping/hl7/datatypes.h"

namespace bridge::v2_to_fhir {
namespace {

using Kind = StructuredNumeric::Kind;

TEST(ToFhirDecimalTest, KeepsDigitsAndNormalisesJsonForm) {
  EXPECT_EQ(*ToFhirDecimal("0.10"), "0.10");
  EXPECT_EQ(*ToFhirDecimal("1769.859285"), "1769.859285");
  EXPECT_EQ(*ToFhirDecimal("-116.3324"), "-116.3324");
  EXPECT_EQ(*ToFhirDecimal("+5"), "5");
  EXPECT_EQ(*ToFhirDecimal(".5"), "0.5");
  EXPECT_EQ(*ToFhirDecimal("5."), "5");
  EXPECT_EQ(*ToFhirDecimal("007.50"), "7.50");
  EXPECT_EQ(*ToFhirDecimal(" 12 "), "12");
  EXPECT_FALSE(ToFhirDecimal("1e5").has_value());
  EXPECT_FALSE(ToFhirDecimal("abc").has_value());
  EXPECT_FALSE(ToFhirDecimal("").has_value());
  EXPECT_FALSE(ToFhirDecimal("-").has_value());
}

TEST(StructuredNumericTest, SpecificationVectors) {
  StructuredNumeric sn = ParseStructuredNumeric("", "182", "", "");
  EXPECT_EQ(sn.kind, Kind::kQuantity);
  EXPECT_EQ(sn.num1, "182");
  EXPECT_EQ(sn.comparator, "");

  sn = ParseStructuredNumeric("=", "4.2", "", "");
  EXPECT_EQ(sn.kind, Kind::kQuantity);
  EXPECT_EQ(sn.comparator, "");  // "=" is not a FHIR comparator

  sn = ParseStructuredNumeric(">", "1", ".", "3");
  EXPECT_EQ(sn.kind, Kind::kQuantity);
  EXPECT_EQ(sn.comparator, ">");
  EXPECT_EQ(sn.num1, "1");
  EXPECT_EQ(sn.text, ">1.3");  // originalText

  sn = ParseStructuredNumeric("-", "1", "-", "3");
  EXPECT_EQ(sn.kind, Kind::kRange);
  EXPECT_EQ(sn.num1, "1");
  EXPECT_EQ(sn.num2, "3");

  sn = ParseStructuredNumeric("", "1", ":", "3");  // HL7 null comparator arrives as ""
  EXPECT_EQ(sn.kind, Kind::kRatio);
  EXPECT_EQ(sn.num2, "3");

  sn = ParseStructuredNumeric("-", "1", "+", "3");
  EXPECT_EQ(sn.kind, Kind::kString);
  EXPECT_EQ(sn.text, "-1+3");

  sn = ParseStructuredNumeric("", "2", "+", "");
  EXPECT_EQ(sn.kind, Kind::kString);
  EXPECT_EQ(sn.text, "2+");

  sn = ParseStructuredNumeric("<0.10", "", "", "");  // lenient single component
  EXPECT_EQ(sn.kind, Kind::kQuantity);
  EXPECT_EQ(sn.comparator, "<");
  EXPECT_EQ(sn.num1, "0.10");

  sn = ParseStructuredNumeric("<", "0.06", "", "");
  EXPECT_EQ(sn.comparator, "<");
  sn = ParseStructuredNumeric("=", "440", ".", "");
  EXPECT_EQ(sn.kind, Kind::kQuantity);
  EXPECT_EQ(sn.num1, "440");
  sn = ParseStructuredNumeric("", "2", "/", "3");
  EXPECT_EQ(sn.kind, Kind::kRatio);
  sn = ParseStructuredNumeric("<>", "1", "-", "3");
  EXPECT_EQ(sn.kind, Kind::kString);
  EXPECT_EQ(sn.text, "<> 1 - 3");
  sn = ParseStructuredNumeric("", "", "", "");
  EXPECT_EQ(sn.kind, Kind::kInvalid);
}

TEST(ReferenceRangeTest, SpecificationVectors) {
  auto range = [](std::string_view t) {
    RangeBounds b = ParseReferenceRange(t);
    return b.low.value_or("_") + ".." + b.high.value_or("_");
  };
  EXPECT_EQ(range("4.3 to 6.2"), "4.3..6.2");
  EXPECT_EQ(range("0.0 - 5.6"), "0.0..5.6");
  EXPECT_EQ(range("70_105"), "70..105");
  EXPECT_EQ(range("<0.50 IU/mL"), "_..0.50");
  EXPECT_EQ(range("<6.0"), "_..6.0");
  EXPECT_EQ(range("<7800"), "_..7800");
  EXPECT_EQ(range("4000-6100"), "4000..6100");
  EXPECT_EQ(range(">60"), "60.._");
  EXPECT_EQ(range(">= 60"), "60.._");
  EXPECT_EQ(range("3.5-5.0"), "3.5..5.0");
  EXPECT_EQ(range("-5--2"), "-5..-2");
  EXPECT_EQ(range("4.5-11.0 mg/dL"), "4.5..11.0");
  EXPECT_EQ(range("NEGATIVE"), "_.._");
  EXPECT_EQ(range("Negative"), "_.._");
  EXPECT_EQ(range("<1 = Susceptible, >= 1 = Resistant"), "_.._");
  EXPECT_EQ(range("10-5"), "_.._");  // inverted: ambiguous, text only
  EXPECT_EQ(range(""), "_.._");
}

TEST(UcumTest, RecognisesCommonLabUnits) {
  for (const char* unit :
       {"mg/dL",   "mmol/L", "10*3/uL", "10*9/L",  "g/dL",       "%",
        "fL",      "pg",     "U/L",     "[IU]/mL", "m[IU]/L",    "mL/min/{1.73_m2}",
        "{index}", "/[HPF]", "mm[Hg]",  "a",       "ng/mL",      "umol/L",
        "meq/L",   "s",      "kg/m2",   "10*12/L", "{cells}/uL", "pg/{cell}",
        "mg/dl"}) {
    EXPECT_TRUE(IsUcum(unit)) << unit;
  }
  for (const char* unit :
       {"mEq/L", "mill/mm3", "x10E3/uL", "bananas", "IU/L", "CM", "mg per dL", "", "MG/DL"}) {
    EXPECT_FALSE(IsUcum(unit)) << unit;
  }
}

TEST(UnitMapTest, StarterMapOfMappingSection48) {
  EXPECT_EQ(*DefaultUnitMap("mg/dl"), "mg/dL");
  EXPECT_EQ(*DefaultUnitMap("mEq/L"), "meq/L");
  EXPECT_EQ(*DefaultUnitMap("IU/ml"), "[IU]/mL");
  EXPECT_EQ(*DefaultUnitMap("mill/mm3"), "10*6/uL");
  EXPECT_EQ(*DefaultUnitMap("/mm3"), "/uL");
  EXPECT_EQ(*DefaultUnitMap("K/uL"), "10*3/uL");
  EXPECT_EQ(*DefaultUnitMap("tera.l-1"), "10*12/L");
  EXPECT_EQ(*DefaultUnitMap("giga.l-1"), "10*9/L");
  EXPECT_EQ(*DefaultUnitMap("gm/dl"), "g/dL");
  EXPECT_FALSE(DefaultUnitMap("mmol/L").has_value());
}

hl7::DateTime Dt(std::string_view text) {
  absl::StatusOr<hl7::DateTime> t = hl7::ParseDateTime(text);
  EXPECT_TRUE(t.ok()) << text;
  return t.ok() ? *t : hl7::DateTime{};
}

TEST(TimeTest, PrecisionAndZoneRules) {
  EXPECT_EQ(*FhirDateTime(Dt("2023"), 0), "2023");
  EXPECT_EQ(*FhirDateTime(Dt("202311"), 0), "2023-11");
  EXPECT_EQ(*FhirDateTime(Dt("20231102"), 0), "2023-11-02");
  EXPECT_EQ(*FhirDateTime(Dt("20231102-0400"), 0), "2023-11-02");  // no zone on a date
  EXPECT_EQ(*FhirDateTime(Dt("2023110211"), -300), "2023-11-02T11:00:00-05:00");
  EXPECT_EQ(*FhirDateTime(Dt("202311021104"), 60), "2023-11-02T11:04:00+01:00");
  EXPECT_EQ(*FhirDateTime(Dt("20231102110405.67"), 0), "2023-11-02T11:04:05.67+00:00");
  EXPECT_EQ(*FhirDateTime(Dt("20231102110405-0400"), 120), "2023-11-02T11:04:05-04:00");
  EXPECT_EQ(*FhirDateTime(Dt("201203141259-0215"), 0), "2012-03-14T12:59:00-02:15");
  EXPECT_FALSE(FhirInstant(Dt("202308"), 0).has_value());  // never "2023-08" for an instant
  EXPECT_FALSE(FhirInstant(Dt("20230816"), 0).has_value());
  EXPECT_EQ(*FhirInstant(Dt("2023081612"), 0), "2023-08-16T12:00:00+00:00");
  EXPECT_EQ(*FhirDate(Dt("19800102")), "1980-01-02");
}

TEST(TimeTest, TmBecomesFhirTime) {
  EXPECT_EQ(*FhirTime("0845"), "08:45:00");
  EXPECT_EQ(*FhirTime("223100.0000"), "22:31:00.0000");
  EXPECT_EQ(*FhirTime("22"), "22:00:00");
  EXPECT_EQ(*FhirTime("1230-0500"), "12:30:00");
  EXPECT_FALSE(FhirTime("2500").has_value());
  EXPECT_FALSE(FhirTime("ab").has_value());
  EXPECT_FALSE(FhirTime("123").has_value());
}

}  // namespace
}  // namespace bridge::v2_to_fhir
