#include "mapping/v2_to_fhir/values.h"

#include <array>
#include <cstdlib>
#include <utility>

#include "mapping/v2_to_fhir/internal/strings.h"

namespace bridge::v2_to_fhir {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads `[-+]?\d+(\.\d*)?|[-+]?\.\d+` at *pos; returns the raw text.
std::optional<std::string_view> ReadNumber(std::string_view s, size_t* pos) {
  size_t i = *pos;
  const size_t start = i;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t digits = 0;
  while (i < s.size() && IsDigit(s[i])) {
    ++i;
    ++digits;
  }
  if (i < s.size() && s[i] == '.' && i + 1 < s.size() && IsDigit(s[i + 1])) {
    ++i;
    while (i < s.size() && IsDigit(s[i])) {
      ++i;
      ++digits;
    }
  }
  if (digits == 0) return std::nullopt;
  *pos = i;
  return s.substr(start, i - start);
}

void SkipSpaces(std::string_view s, size_t* pos) {
  while (*pos < s.size() && IsSpace(s[*pos])) ++*pos;
}

// A trailing unit token after a range ("mg/dL", "IU/mL", "%"): one word that
// does not start with a digit and holds no punctuation of prose.
bool IsUnitText(std::string_view s) {
  s = Trim(s);
  if (s.empty()) return true;
  if (IsDigit(s.front())) return false;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '/' ||
                    c == '%' || c == '[' || c == ']' || c == '{' || c == '}' || c == '*' ||
                    c == '.' || c == '^' || c == '_' || c == '\'' || u >= 0x80;
    if (!ok) return false;
  }
  return true;
}

constexpr std::array<std::string_view, 40> kMetricAtoms = {
    "m",  "g", "L",   "l",   "s",   "mol", "eq", "U",    "Pa",   "K",   "Cel",   "Hz",    "J", "W",
    "V",  "A", "Ohm", "kat", "osm", "bar", "t",  "[IU]", "[iU]", "cal", "N",     "C",     "F", "S",
    "Wb", "T", "H",   "lm",  "lx",  "Bq",  "Gy", "Sv",   "sr",   "rad", "m[Hg]", "m[H2O]"};
constexpr std::array<std::string_view, 37> kPlainAtoms = {
    "10*",     "10^",     "%",       "min",     "h",       "d",        "wk",      "mo",
    "a",       "[ppm]",   "[ppb]",   "[ppth]",  "[pptr]",  "[pH]",     "[degF]",  "[in_i]",
    "[lb_av]", "[oz_av]", "[ft_i]",  "[CFU]",   "[arb'U]", "[drp]",    "[HPF]",   "[LPF]",
    "deg",     "[S]",     "[APL'U]", "[GPL'U]", "[MPL'U]", "[beth'U]", "[knk'U]", "[mclg'U]",
    "[tb'U]",  "[hp'_X]", "[hp'_C]", "[kp_C]",  "[iU]"};
constexpr std::array<std::string_view, 20> kPrefixes = {"da", "Y", "Z", "E", "P", "T", "G",
                                                        "M",  "k", "h", "d", "c", "m", "u",
                                                        "n",  "p", "f", "a", "z", "y"};

template <size_t N>
bool In(const std::array<std::string_view, N>& set, std::string_view s) {
  for (std::string_view a : set) {
    if (a == s) return true;
  }
  return false;
}

bool IsUcumSymbol(std::string_view base) {
  if (base.empty()) return false;
  if (In(kPlainAtoms, base) || In(kMetricAtoms, base)) return true;
  for (std::string_view p : kPrefixes) {
    if (base.size() > p.size() && base.substr(0, p.size()) == p &&
        In(kMetricAtoms, base.substr(p.size()))) {
      return true;
    }
  }
  return false;
}

// term := ['/'] component (('.' | '/') component)*
bool ParseUcumTerm(std::string_view s, size_t* pos, int depth);

bool ParseUcumComponent(std::string_view s, size_t* pos, int depth) {
  size_t i = *pos;
  if (i >= s.size()) return false;
  if (s[i] == '{') {
    const size_t close = s.find('}', i);
    if (close == std::string_view::npos) return false;
    *pos = close + 1;
    return true;
  }
  if (s[i] == '(') {
    if (depth > 4) return false;
    size_t j = i + 1;
    if (!ParseUcumTerm(s, &j, depth + 1) || j >= s.size() || s[j] != ')') return false;
    *pos = j + 1;
    return true;
  }
  // A symbol: up to an operator, annotation or parenthesis; brackets kept whole.
  size_t j = i;
  while (j < s.size() && s[j] != '.' && s[j] != '/' && s[j] != '{' && s[j] != '(' && s[j] != ')') {
    if (s[j] == '[') {
      const size_t close = s.find(']', j);
      if (close == std::string_view::npos) return false;
      j = close + 1;
    } else {
      ++j;
    }
  }
  std::string_view symbol = s.substr(i, j - i);
  if (symbol.empty()) return false;
  if (IsAllDigits(symbol)) {
    *pos = j;  // a factor
  } else {
    // Split a trailing exponent (digits with an optional sign), not inside [].
    size_t e = symbol.size();
    while (e > 0 && IsDigit(symbol[e - 1])) --e;
    if (e > 0 && e < symbol.size() && (symbol[e - 1] == '-' || symbol[e - 1] == '+')) --e;
    std::string_view base = symbol.substr(0, e);
    if (base.empty() || !IsUcumSymbol(base)) {
      // "10*3": base "10*", exponent "3" already handled; try the whole symbol.
      if (!IsUcumSymbol(symbol)) return false;
    }
    *pos = j;
  }
  if (*pos < s.size() && s[*pos] == '{') {
    const size_t close = s.find('}', *pos);
    if (close == std::string_view::npos) return false;
    *pos = close + 1;
  }
  return true;
}

bool ParseUcumTerm(std::string_view s, size_t* pos, int depth) {
  if (*pos < s.size() && s[*pos] == '/') ++*pos;
  if (!ParseUcumComponent(s, pos, depth)) return false;
  while (*pos < s.size() && (s[*pos] == '.' || s[*pos] == '/')) {
    ++*pos;
    if (!ParseUcumComponent(s, pos, depth)) return false;
  }
  return true;
}

std::string OffsetOrDefault(const hl7::DateTime& t, int default_offset_minutes) {
  return FormatOffset(t.utc_offset_minutes.value_or(default_offset_minutes));
}

}  // namespace

std::optional<std::string> ToFhirDecimal(std::string_view text) {
  text = Trim(text);
  size_t pos = 0;
  std::optional<std::string_view> raw = ReadNumber(text, &pos);
  if (!raw.has_value()) {
    // "5." is an NM too.
    if (text.size() >= 2 && text.back() == '.') {
      std::string_view head = text.substr(0, text.size() - 1);
      size_t p = 0;
      raw = ReadNumber(head, &p);
      if (!raw.has_value() || p != head.size()) return std::nullopt;
      pos = text.size();
    } else {
      return std::nullopt;
    }
  } else if (pos != text.size()) {
    if (pos + 1 == text.size() && text[pos] == '.') {
      pos = text.size();
    } else {
      return std::nullopt;
    }
  }
  std::string_view n = *raw;
  std::string out;
  if (!n.empty() && (n.front() == '-' || n.front() == '+')) {
    if (n.front() == '-') out.push_back('-');
    n.remove_prefix(1);
  }
  size_t dot = n.find('.');
  std::string_view int_part = n.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : n.substr(dot + 1);
  while (int_part.size() > 1 && int_part.front() == '0') int_part.remove_prefix(1);
  if (int_part.empty()) int_part = "0";
  out.append(int_part);
  if (!frac.empty()) {
    out.push_back('.');
    out.append(frac);
  }
  if (out == "-0") return std::string("0");
  return out;
}

std::optional<ComparatorNumber> ParseComparatorNumber(std::string_view text) {
  text = Trim(text);
  ComparatorNumber out;
  for (std::string_view c : {"<=", ">=", "<", ">", "="}) {
    if (text.substr(0, c.size()) == c) {
      out.comparator = std::string(c);
      text.remove_prefix(c.size());
      break;
    }
  }
  std::optional<std::string> number = ToFhirDecimal(text);
  if (!number.has_value()) return std::nullopt;
  out.number = *std::move(number);
  return out;
}

StructuredNumeric ParseStructuredNumeric(std::string_view comparator, std::string_view num1,
                                         std::string_view separator, std::string_view num2) {
  comparator = Trim(comparator);
  num1 = Trim(num1);
  separator = Trim(separator);
  num2 = Trim(num2);
  StructuredNumeric out;
  auto joined = [&] {
    std::string s(comparator);
    s.append(num1);
    s.append(separator);
    s.append(num2);
    return s;
  };
  if (num1.empty() && separator.empty() && num2.empty()) {
    // Lenient single component: "<0.10" sent as SN.1.
    std::optional<ComparatorNumber> cn = ParseComparatorNumber(comparator);
    if (!cn.has_value()) return out;
    out.kind = StructuredNumeric::Kind::kQuantity;
    out.comparator = cn->comparator == "=" ? "" : cn->comparator;
    out.num1 = cn->number;
    return out;
  }
  // A leading "-" or "+" in SN.1 is not a comparator (`-^1^-^3` is a range).
  const std::string original = joined();
  if (comparator == "-" || comparator == "+") comparator = {};
  const bool valid_comparator = comparator.empty() || comparator == "<" || comparator == ">" ||
                                comparator == "<=" || comparator == ">=" || comparator == "=" ||
                                comparator == "<>";
  std::optional<std::string> n1 = ToFhirDecimal(num1);
  std::optional<std::string> n2 = ToFhirDecimal(num2);
  if (!valid_comparator || !n1.has_value() || (!num2.empty() && !n2.has_value())) {
    out.kind = StructuredNumeric::Kind::kString;
    out.text = original;
    return out;
  }
  const std::string fhir_comparator =
      (comparator == "=" || comparator == "<>") ? "" : std::string(comparator);
  if (comparator == "<>") {
    out.kind = StructuredNumeric::Kind::kString;
    out.text = "<> " + std::string(num1);
    if (!separator.empty()) out.text += " " + std::string(separator);
    if (!num2.empty()) out.text += " " + std::string(num2);
    return out;
  }
  if (separator == ":" || separator == "/") {
    if (!n2.has_value()) {
      out.kind = StructuredNumeric::Kind::kString;
      out.text = joined();
      return out;
    }
    out.kind = StructuredNumeric::Kind::kRatio;
    out.comparator = fhir_comparator;
    out.num1 = *n1;
    out.num2 = *n2;
    return out;
  }
  if (separator == "-" && n2.has_value()) {
    out.kind = StructuredNumeric::Kind::kRange;
    out.num1 = *n1;
    out.num2 = *n2;
    return out;
  }
  if (separator == "+") {
    out.kind = StructuredNumeric::Kind::kString;
    out.text = original;  // "2+", or the whole text when more was sent
    return out;
  }
  out.kind = StructuredNumeric::Kind::kQuantity;
  out.comparator = fhir_comparator;
  out.num1 = *n1;
  if (!separator.empty() || !num2.empty()) out.text = joined();
  return out;
}

RangeBounds ParseReferenceRange(std::string_view text) {
  RangeBounds out;
  const std::string_view t = Trim(text);
  if (t.empty()) return out;
  size_t pos = 0;
  // Comparator forms: <x, <=x, ≤x -> high; >x, >=x, ≥x -> low.
  int side = 0;  // -1 high only, +1 low only
  if (t.substr(0, 2) == "<=" || t.substr(0, 2) == ">=") {
    side = t[0] == '<' ? -1 : 1;
    pos = 2;
  } else if (t.substr(0, 3) == "\xE2\x89\xA4" || t.substr(0, 3) == "\xE2\x89\xA5") {
    side = t[2] == '\xA4' ? -1 : 1;
    pos = 3;
  } else if (t[0] == '<' || t[0] == '>') {
    side = t[0] == '<' ? -1 : 1;
    pos = 1;
  }
  if (side != 0) {
    SkipSpaces(t, &pos);
    std::optional<std::string_view> n = ReadNumber(t, &pos);
    if (!n.has_value() || !IsUnitText(t.substr(pos))) return out;
    if (pos < t.size() && !IsSpace(t[pos])) return out;
    std::optional<std::string> d = ToFhirDecimal(*n);
    if (!d.has_value()) return out;
    if (side < 0) {
      out.high = *d;
    } else {
      out.low = *d;
    }
    return out;
  }
  std::optional<std::string_view> n1 = ReadNumber(t, &pos);
  if (!n1.has_value()) return out;
  SkipSpaces(t, &pos);
  bool separated = false;
  for (std::string_view sep : {"\xE2\x80\x93", "..", "-", "_", "to", "TO"}) {
    if (t.substr(pos, sep.size()) == sep) {
      pos += sep.size();
      separated = true;
      break;
    }
  }
  if (!separated) return out;
  SkipSpaces(t, &pos);
  std::optional<std::string_view> n2 = ReadNumber(t, &pos);
  if (!n2.has_value()) return out;
  if (pos < t.size() && !IsSpace(t[pos])) return out;
  if (!IsUnitText(t.substr(pos))) return out;
  std::optional<std::string> low = ToFhirDecimal(*n1);
  std::optional<std::string> high = ToFhirDecimal(*n2);
  if (!low.has_value() || !high.has_value()) return out;
  if (std::strtod(low->c_str(), nullptr) > std::strtod(high->c_str(), nullptr)) return out;
  out.low = *std::move(low);
  out.high = *std::move(high);
  return out;
}

bool IsUcum(std::string_view unit) {
  if (unit.empty() || unit.size() > 64) return false;
  for (char c : unit) {
    if (IsSpace(c) || static_cast<unsigned char>(c) >= 0x80) return false;
  }
  size_t pos = 0;
  return ParseUcumTerm(unit, &pos, 0) && pos == unit.size();
}

std::optional<std::string_view> DefaultUnitMap(std::string_view unit) {
  static constexpr std::pair<std::string_view, std::string_view> kMap[] = {
      {"mg/dl", "mg/dL"},
      {"umol/l", "umol/L"},
      {"mEq/L", "meq/L"},
      {"mEq/l", "meq/L"},
      {"IU/ml", "[IU]/mL"},
      {"IU/mL", "[IU]/mL"},
      {"IU/L", "[IU]/L"},
      {"mIU/mL", "m[IU]/mL"},
      {"uIU/mL", "u[IU]/mL"},
      {"mIU/L", "m[IU]/L"},
      {"mill/mm3", "10*6/uL"},
      {"/mm3", "/uL"},
      {"x10E3/uL", "10*3/uL"},
      {"x10E6/uL", "10*6/uL"},
      {"K/uL", "10*3/uL"},
      {"K/mm3", "10*3/uL"},
      {"M/uL", "10*6/uL"},
      {"tera.l-1", "10*12/L"},
      {"giga.l-1", "10*9/L"},
      {"gm/dl", "g/dL"},
      {"mmHg", "mm[Hg]"},
      {"sec", "s"},
      {"hr", "h"},
      {"mcg/dL", "ug/dL"},
      {"mcg/L", "ug/L"},
      {"mcg/mL", "ug/mL"},
      {"cells/uL", "{cells}/uL"},
      {"years", "a"},
      {"yr", "a"},
      {"Years", "a"},
  };
  for (const auto& [from, to] : kMap) {
    if (from == unit) return to;
  }
  for (const auto& [from, to] : kMap) {
    if (EqualsIgnoreCase(from, unit)) return to;
  }
  return std::nullopt;
}

namespace {

// Appends `n` as exactly `width` digits (n >= 0; wider values are written
// in full).
void AppendDigits(std::string* out, int n, int width) {
  char buf[12];
  int len = 0;
  do {
    buf[len++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0 && len < 11);
  for (int i = len; i < width; ++i) out->push_back('0');
  while (len > 0) out->push_back(buf[--len]);
}

}  // namespace

std::string FormatOffset(int minutes) {
  std::string out;
  out.push_back(minutes < 0 ? '-' : '+');
  minutes = std::abs(minutes);
  AppendDigits(&out, minutes / 60, 2);
  out.push_back(':');
  AppendDigits(&out, minutes % 60, 2);
  return out;
}

std::optional<std::string> FhirDate(const hl7::DateTime& t) {
  using P = hl7::DateTime::Precision;
  if (t.year <= 0) return std::nullopt;
  std::string out;
  out.reserve(10);
  AppendDigits(&out, t.year, 4);
  if (t.precision >= P::kMonth) {
    out.push_back('-');
    AppendDigits(&out, t.month, 2);
  }
  if (t.precision >= P::kDay) {
    out.push_back('-');
    AppendDigits(&out, t.day, 2);
  }
  return out;
}

std::optional<std::string> FhirDateTime(const hl7::DateTime& t, int default_offset_minutes) {
  using P = hl7::DateTime::Precision;
  if (t.precision <= P::kDay) return FhirDate(t);
  return FhirInstant(t, default_offset_minutes);
}

std::optional<std::string> FhirInstant(const hl7::DateTime& t, int default_offset_minutes) {
  using P = hl7::DateTime::Precision;
  if (t.year <= 0 || t.precision < P::kHour) return std::nullopt;
  std::string out;
  out.reserve(32);
  AppendDigits(&out, t.year, 4);
  out.push_back('-');
  AppendDigits(&out, t.month, 2);
  out.push_back('-');
  AppendDigits(&out, t.day, 2);
  out.push_back('T');
  AppendDigits(&out, t.hour, 2);
  out.push_back(':');
  AppendDigits(&out, t.precision >= P::kMinute ? t.minute : 0, 2);
  out.push_back(':');
  AppendDigits(&out, t.precision >= P::kSecond ? t.second : 0, 2);
  if (t.precision >= P::kSecond && !t.fraction.empty()) {
    out.push_back('.');
    out.append(t.fraction);
  }
  out.append(OffsetOrDefault(t, default_offset_minutes));
  return out;
}

std::optional<std::string> FhirTime(std::string_view text) {
  text = Trim(text);
  // Drop an offset.
  const size_t sign = text.find_first_of("+-");
  if (sign != std::string_view::npos) text = text.substr(0, sign);
  std::string_view digits = text;
  std::string_view fraction;
  const size_t dot = text.find('.');
  if (dot != std::string_view::npos) {
    digits = text.substr(0, dot);
    fraction = text.substr(dot + 1);
    if (fraction.empty() || !IsAllDigits(fraction)) return std::nullopt;
  }
  if (!IsAllDigits(digits) || (digits.size() != 2 && digits.size() != 4 && digits.size() != 6)) {
    return std::nullopt;
  }
  if (!fraction.empty() && digits.size() != 6) return std::nullopt;
  const int hh = std::atoi(std::string(digits.substr(0, 2)).c_str());
  const int mm = digits.size() >= 4 ? std::atoi(std::string(digits.substr(2, 2)).c_str()) : 0;
  const int ss = digits.size() >= 6 ? std::atoi(std::string(digits.substr(4, 2)).c_str()) : 0;
  if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
  std::string out;
  AppendDigits(&out, hh, 2);
  out.push_back(':');
  AppendDigits(&out, mm, 2);
  out.push_back(':');
  AppendDigits(&out, ss, 2);
  if (!fraction.empty()) {
    out.push_back('.');
    out.append(fraction);
  }
  return out;
}

}  // namespace bridge::v2_to_fhir
