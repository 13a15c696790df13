// Value parsing for the ORU -> FHIR mapping, kept free of the message tree so
// each rule can be tested on its own: FHIR decimals from NM text, SN
// structured numerics (MAPPING.md 7.1), reference ranges (7.2), UCUM unit
// recognition (4.8) and FHIR date/dateTime/instant/time text from v2 DTM/TM
// (4.7). Pure, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mapping/hl7/datatypes.h"

namespace bridge::v2_to_fhir {

// A FHIR decimal (JSON number token) with the digits as written: "+5" -> "5",
// ".5" -> "0.5", "5." -> "5", "007" -> "7", "-0.10" -> "-0.10". nullopt when
// `text` is not an HL7 NM.
std::optional<std::string> ToFhirDecimal(std::string_view text);

// `<0.10`, `>= 60`, `=4.2`, `12`: an optional comparator and a number.
struct ComparatorNumber {
  std::string comparator;  // "", "<", "<=", ">", ">=", "="
  std::string number;      // FHIR decimal
};
std::optional<ComparatorNumber> ParseComparatorNumber(std::string_view text);

// SN (7.1) classified from its four components (already decoded; HL7 null
// passed as "").
struct StructuredNumeric {
  enum class Kind { kQuantity, kRange, kRatio, kString, kInvalid };
  Kind kind = Kind::kInvalid;
  std::string comparator;  // Quantity/Ratio: FHIR comparator or "" ("=" dropped)
  std::string num1;        // FHIR decimal (Quantity value, Range low, Ratio numerator)
  std::string num2;        // Range high, Ratio denominator
  std::string text;        // String kind, or originalText of an odd Quantity
};
StructuredNumeric ParseStructuredNumeric(std::string_view comparator, std::string_view num1,
                                         std::string_view separator, std::string_view num2);

// OBX-7 text -> low/high (FHIR decimals) when unambiguous; both empty when
// the range is text only.
struct RangeBounds {
  std::optional<std::string> low;
  std::optional<std::string> high;
};
RangeBounds ParseReferenceRange(std::string_view text);

// True when `unit` is a UCUM expression lab-bridge recognises: products and
// quotients of prefixed atoms with exponents, `10*n` factors and `{...}`
// annotations. Conservative: unknown atoms make it false.
bool IsUcum(std::string_view unit);

// The built-in map of common non-UCUM lab units to UCUM (`mg/dl` -> `mg/dL`,
// `K/uL` -> `10*3/uL`, ...); nullopt when not in it.
std::optional<std::string_view> DefaultUnitMap(std::string_view unit);

// FHIR `date` at the value's precision up to day ("2023", "2023-11",
// "2023-11-02"); nullopt for year 0.
std::optional<std::string> FhirDate(const hl7::DateTime& t);

// FHIR `dateTime`: a date for day precision or coarser; otherwise time padded
// to seconds, the written fraction kept, and the zone: the value's own
// offset, else `default_offset_minutes`. nullopt for year 0.
std::optional<std::string> FhirDateTime(const hl7::DateTime& t, int default_offset_minutes);

// FHIR `instant`: like FhirDateTime but nullopt below hour precision.
std::optional<std::string> FhirInstant(const hl7::DateTime& t, int default_offset_minutes);

// HL7 TM (`HH[MM[SS[.S{1,4}]]][+/-ZZZZ]`) -> FHIR `time` `hh:mm:ss[.f]`
// (offset dropped); nullopt when invalid.
std::optional<std::string> FhirTime(std::string_view text);

// "+HH:MM"/"-HH:MM" for an offset in minutes ("+00:00" for 0).
std::string FormatOffset(int minutes);

}  // namespace bridge::v2_to_fhir
