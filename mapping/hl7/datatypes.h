// Typed readers for the HL7 v2 data types lab-bridge maps: DTM/TS (with the
// precision and UTC offset the sender wrote, never silently converted), NM,
// and the composite types HD, EI, CX, CWE/CE/CNE, XPN and XCN.
//
//   absl::StatusOr<DateTime> t = ParseDateTime(m.Get("OBX-14").value());
//   t->ToIso8601();   // "2026-02-21T11:00:00-05:00", or "2026-02" for YYYYMM
//   Cx mrn = Cx::From(m.Get("PID-3").Rep(1));
//
// Composite readers hold string_views into the Message they were read from.
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "mapping/hl7/message.h"

namespace bridge::hl7 {

// DTM / TS: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
struct DateTime {
  enum class Precision { kYear, kMonth, kDay, kHour, kMinute, kSecond };

  int year = 0;
  int month = 0;  // 1..12 when precision >= kMonth
  int day = 0;    // 1..31 when precision >= kDay
  int hour = 0;
  int minute = 0;
  int second = 0;
  std::string fraction;  // digits after the decimal point, as written ("" if none)
  Precision precision = Precision::kYear;
  std::optional<int> utc_offset_minutes;  // as written; nullopt when absent

  // ISO 8601 at the value's own precision: "2026", "2026-02", "2026-02-21",
  // "2026-02-21T11", "2026-02-21T11:30", "2026-02-21T11:30:05.12", with the
  // offset ("+05:30", "Z" is never invented) when one was written.
  std::string ToIso8601() const;

  friend bool operator==(const DateTime&, const DateTime&) = default;
};

// Parses DTM (or the first component of a TS). Surrounding spaces are
// ignored. InvalidArgument (HL7 code 102) for anything else, including
// impossible dates such as 20250230.
absl::StatusOr<DateTime> ParseDateTime(std::string_view text);

// NM: an optional sign, digits, an optional decimal point and digits.
struct Numeric {
  std::string_view lexical;  // exactly as written, without surrounding spaces
  double value = 0;
};
absl::StatusOr<Numeric> ParseNumeric(std::string_view text);

// HD: namespace id ^ universal id ^ universal id type. Read from a component
// (HD inside CX-4) or a repetition (MSH-4).
struct Hd {
  std::string_view namespace_id;
  std::string_view universal_id;
  std::string_view universal_id_type;
  static Hd FromSubcomponents(const Element& component);
  static Hd FromComponents(const Element& repetition);
  bool empty() const { return namespace_id.empty() && universal_id.empty(); }
};

// EI: entity identifier ^ namespace id ^ universal id ^ universal id type.
struct Ei {
  std::string_view entity_identifier;
  Hd assigning_authority;
  static Ei From(const Element& repetition);
};

// CX: id ^ check digit ^ scheme ^ assigning authority (HD) ^ type code ^
// assigning facility (HD).
struct Cx {
  std::string_view id;
  std::string_view check_digit;
  std::string_view check_digit_scheme;
  Hd assigning_authority;
  std::string_view identifier_type_code;
  Hd assigning_facility;
  static Cx From(const Element& repetition);
};

// CWE / CE / CNE: identifier ^ text ^ coding system ^ alternate identifier ^
// alternate text ^ alternate coding system ^ system version ^ alternate
// version ^ original text.
struct Cwe {
  std::string_view identifier;
  std::string_view text;
  std::string_view coding_system;
  std::string_view alternate_identifier;
  std::string_view alternate_text;
  std::string_view alternate_coding_system;
  std::string_view coding_system_version;
  std::string_view alternate_coding_system_version;
  std::string_view original_text;
  static Cwe From(const Element& repetition);
  bool empty() const {
    return identifier.empty() && text.empty() && alternate_identifier.empty() &&
           original_text.empty();
  }
};

// XPN: family name (first subcomponent of FN) ^ given ^ second and further
// given names ^ suffix ^ prefix ^ degree ^ name type code.
struct Xpn {
  std::string_view family;
  std::string_view given;
  std::string_view middle;
  std::string_view suffix;
  std::string_view prefix;
  std::string_view degree;
  std::string_view name_type;
  static Xpn From(const Element& repetition);
};

// XCN: id ^ family ^ given ^ middle ^ suffix ^ prefix ^ degree ^ source
// table ^ assigning authority ^ name type ^ check digit ^ scheme ^
// identifier type code ^ assigning facility.
struct Xcn {
  std::string_view id;
  std::string_view family;
  std::string_view given;
  std::string_view middle;
  std::string_view suffix;
  std::string_view prefix;
  std::string_view degree;
  Hd assigning_authority;
  std::string_view name_type;
  std::string_view identifier_type_code;
  static Xcn From(const Element& repetition);
};

}  // namespace bridge::hl7
