#include "mapping/hl7/datatypes.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "mapping/hl7/absl_compat.h"
#include "mapping/hl7/error.h"

namespace bridge::hl7 {
namespace {

absl::Status TypeError(std::string_view what) {
  return Hl7Error(absl::StatusCode::kInvalidArgument, ErrorCode::kDataTypeError, {}, what);
}

bool ReadDigits(std::string_view text, std::size_t pos, std::size_t count, int* out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  *out = value;
  return true;
}

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
  return kDays[month - 1];
}

}  // namespace

absl::StatusOr<DateTime> ParseDateTime(std::string_view text) {
  text = StripWhitespace(text);
  DateTime t;
  // Split off the offset first: it is the only place '+' or '-' may appear.
  std::size_t sign = text.find_first_of("+-");
  std::string_view offset;
  if (sign != std::string_view::npos) {
    offset = text.substr(sign);
    text = text.substr(0, sign);
  }
  std::string_view fraction;
  if (std::size_t dot = text.find('.'); dot != std::string_view::npos) {
    fraction = text.substr(dot + 1);
    text = text.substr(0, dot);
  }
  const std::size_t n = text.size();
  if (n != 4 && n != 6 && n != 8 && n != 10 && n != 12 && n != 14) {
    return TypeError("date/time does not have 4, 6, 8, 10, 12 or 14 digits");
  }
  if (!ReadDigits(text, 0, 4, &t.year)) return TypeError("date/time year is not numeric");
  t.precision = DateTime::Precision::kYear;
  if (n >= 6) {
    if (!ReadDigits(text, 4, 2, &t.month) || t.month < 1 || t.month > 12) {
      return TypeError("date/time month is out of range");
    }
    t.precision = DateTime::Precision::kMonth;
  }
  if (n >= 8) {
    if (!ReadDigits(text, 6, 2, &t.day) || t.day < 1 || t.day > DaysInMonth(t.year, t.month)) {
      return TypeError("date/time day is out of range");
    }
    t.precision = DateTime::Precision::kDay;
  }
  if (n >= 10) {
    if (!ReadDigits(text, 8, 2, &t.hour) || t.hour > 23) {
      return TypeError("date/time hour is out of range");
    }
    t.precision = DateTime::Precision::kHour;
  }
  if (n >= 12) {
    if (!ReadDigits(text, 10, 2, &t.minute) || t.minute > 59) {
      return TypeError("date/time minute is out of range");
    }
    t.precision = DateTime::Precision::kMinute;
  }
  if (n >= 14) {
    if (!ReadDigits(text, 12, 2, &t.second) || t.second > 59) {
      return TypeError("date/time second is out of range");
    }
    t.precision = DateTime::Precision::kSecond;
  }
  if (!fraction.empty()) {
    if (t.precision != DateTime::Precision::kSecond || fraction.size() > 4) {
      return TypeError("date/time fraction needs seconds and at most 4 digits");
    }
    for (char c : fraction) {
      if (c < '0' || c > '9') return TypeError("date/time fraction is not numeric");
    }
    t.fraction = std::string(fraction);
  }
  if (!offset.empty()) {
    int hh = 0;
    int mm = 0;
    if (offset.size() != 5 || !ReadDigits(offset, 1, 2, &hh) || !ReadDigits(offset, 3, 2, &mm) ||
        mm > 59 || hh * 60 + mm > 14 * 60) {
      return TypeError("date/time UTC offset is not +/-HHMM");
    }
    t.utc_offset_minutes = (offset[0] == '-' ? -1 : 1) * (hh * 60 + mm);
  }
  return t;
}

std::string DateTime::ToIso8601() const {
  std::string out = absl::StrFormat("%04d", year);
  if (precision >= Precision::kMonth) absl::StrAppendFormat(&out, "-%02d", month);
  if (precision >= Precision::kDay) absl::StrAppendFormat(&out, "-%02d", day);
  if (precision >= Precision::kHour) absl::StrAppendFormat(&out, "T%02d", hour);
  if (precision >= Precision::kMinute) absl::StrAppendFormat(&out, ":%02d", minute);
  if (precision >= Precision::kSecond) {
    absl::StrAppendFormat(&out, ":%02d", second);
    if (!fraction.empty()) absl::StrAppend(&out, ".", fraction);
  }
  // ISO 8601 has no offset on a bare date, so a date keeps it only in the
  // struct.
  if (utc_offset_minutes.has_value() && precision >= Precision::kHour) {
    int minutes = *utc_offset_minutes;
    char sign = minutes < 0 ? '-' : '+';
    minutes = std::abs(minutes);
    absl::StrAppendFormat(&out, "%c%02d:%02d", sign, minutes / 60, minutes % 60);
  }
  return out;
}

absl::StatusOr<Numeric> ParseNumeric(std::string_view text) {
  text = StripWhitespace(text);
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  std::size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    ++i;
    ++digits;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      ++i;
      ++digits;
    }
  }
  if (digits == 0 || i != text.size()) return TypeError("value is not a number (NM)");
  Numeric number;
  number.lexical = text;
  number.value = std::strtod(std::string(text).c_str(), nullptr);
  return number;
}

Hd Hd::FromSubcomponents(const Element& component) {
  return {component.Sub(1).value(), component.Sub(2).value(), component.Sub(3).value()};
}

Hd Hd::FromComponents(const Element& repetition) {
  return {repetition.Comp(1).value(), repetition.Comp(2).value(), repetition.Comp(3).value()};
}

Ei Ei::From(const Element& r) {
  return {r.Comp(1).value(), {r.Comp(2).value(), r.Comp(3).value(), r.Comp(4).value()}};
}

Cx Cx::From(const Element& r) {
  return {r.Comp(1).value(), r.Comp(2).value(),
          r.Comp(3).value(), Hd::FromSubcomponents(r.Comp(4)),
          r.Comp(5).value(), Hd::FromSubcomponents(r.Comp(6))};
}

Cwe Cwe::From(const Element& r) {
  return {r.Comp(1).value(), r.Comp(2).value(), r.Comp(3).value(),
          r.Comp(4).value(), r.Comp(5).value(), r.Comp(6).value(),
          r.Comp(7).value(), r.Comp(8).value(), r.Comp(9).value()};
}

Xpn Xpn::From(const Element& r) {
  return {r.Comp(1).Sub(1).value(), r.Comp(2).value(), r.Comp(3).value(), r.Comp(4).value(),
          r.Comp(5).value(),        r.Comp(6).value(), r.Comp(7).value()};
}

Xcn Xcn::From(const Element& r) {
  Xcn x;
  x.id = r.Comp(1).value();
  x.family = r.Comp(2).Sub(1).value();
  x.given = r.Comp(3).value();
  x.middle = r.Comp(4).value();
  x.suffix = r.Comp(5).value();
  x.prefix = r.Comp(6).value();
  x.degree = r.Comp(7).value();
  x.assigning_authority = Hd::FromSubcomponents(r.Comp(9));
  x.name_type = r.Comp(10).value();
  x.identifier_type_code = r.Comp(13).value();
  return x;
}

}  // namespace bridge::hl7
