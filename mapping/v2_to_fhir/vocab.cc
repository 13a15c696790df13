#include "mapping/v2_to_fhir/vocab.h"

#include <array>
#include <utility>

#include "absl/strings/ascii.h"

#include "mapping/v2_to_fhir/internal/strings.h"

namespace bridge::v2_to_fhir {
namespace {

using Pair = std::pair<std::string_view, std::string_view>;

template <size_t N>
std::optional<std::string_view> Lookup(const std::array<Pair, N>& table, std::string_view key,
                                       bool* lenient) {
  if (lenient != nullptr) *lenient = false;
  for (const auto& [k, v] : table) {
    if (k == key) return v;
  }
  for (const auto& [k, v] : table) {
    if (EqualsIgnoreCase(k, key)) {
      if (lenient != nullptr) *lenient = true;
      return v;
    }
  }
  return std::nullopt;
}

constexpr std::array<Pair, 10> kSex = {{{"F", "female"},
                                        {"M", "male"},
                                        {"O", "other"},
                                        {"U", "unknown"},
                                        {"A", "other"},
                                        {"N", "other"},
                                        {"female", "female"},
                                        {"male", "male"},
                                        {"other", "other"},
                                        {"unknown", "unknown"}}};

constexpr std::array<std::string_view, 39> kV3Flags = {
    "<",  ">",   "A",  "AA",  "B", "CAR", "D",     "DET",   "E", "EX",  "EXP", "H",   "HH",
    "HU", "I",   "IE", "IND", "L", "LL",  "LU",    "MS",    "N", "NCL", "ND",  "NEG", "NR",
    "NS", "POS", "R",  "RR",  "S", "SDD", "SYN-R", "SYN-S", "U", "UNE", "VS",  "W",   "WR"};
constexpr std::array<std::string_view, 5> kV2OnlyFlags = {"AC", "HM", "OBX", "QCF", "TOX"};

// `A` (some results available) is not in the IG map; LFH and MS give active.
constexpr std::array<Pair, 9> kOrderStatus = {{{"A", "active"},
                                               {"CA", "revoked"},
                                               {"CM", "completed"},
                                               {"DC", "revoked"},
                                               {"ER", "entered-in-error"},
                                               {"HD", "on-hold"},
                                               {"IP", "active"},
                                               {"RP", "revoked"},
                                               {"SC", "active"}}};

constexpr std::array<Pair, 22> kOrderControl = {
    {{"NW", "active"},  {"CA", "active"},  {"CR", "revoked"},   {"OC", "revoked"},
     {"DC", "revoked"}, {"OD", "revoked"}, {"DR", "revoked"},   {"DF", "revoked"},
     {"HD", "active"},  {"HR", "on-hold"}, {"OH", "on-hold"},   {"RL", "active"},
     {"OK", "active"},  {"RO", "active"},  {"RQ", "active"},    {"PR", "active"},
     {"PY", "active"},  {"AF", "active"},  {"FU", "completed"}, {"OR", "active"},
     {"NA", "active"},  {"SN", "active"}}};

constexpr std::array<Pair, 3> kPriority = {{{"S", "stat"}, {"A", "asap"}, {"R", "routine"}}};

constexpr std::array<Pair, 23> kSystems = {{
    {"LN", "http://loinc.org"},
    {"LOINC", "http://loinc.org"},
    {"SCT", "http://snomed.info/sct"},
    {"SNM3", "http://snomed.info/sct"},
    {"SCT2", "http://snomed.info/sct"},
    {"SNOMED", "http://snomed.info/sct"},
    {"SNOMEDCT", "http://snomed.info/sct"},
    {"SNM", "http://terminology.hl7.org/CodeSystem/snm"},
    {"UCUM", "http://unitsofmeasure.org"},
    {"I10", "http://hl7.org/fhir/sid/icd-10"},
    {"I10C", "http://hl7.org/fhir/sid/icd-10-cm"},
    {"ICD10CM", "http://hl7.org/fhir/sid/icd-10-cm"},
    {"I9C", "http://hl7.org/fhir/sid/icd-9-cm"},
    {"I9CDX", "http://hl7.org/fhir/sid/icd-9-cm"},
    {"C4", "http://www.ama-assn.org/go/cpt"},
    {"CPT4", "http://www.ama-assn.org/go/cpt"},
    {"CVX", "http://hl7.org/fhir/sid/cvx"},
    {"NDC", "http://hl7.org/fhir/sid/ndc"},
    {"RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"},
    {"RXN", "http://www.nlm.nih.gov/research/umls/rxnorm"},
    {"CDCREC", "urn:oid:2.16.840.1.113883.6.238"},
    {"NPI", "http://hl7.org/fhir/sid/us-npi"},
    {"CLIA", "urn:oid:2.16.840.1.113883.4.7"},
}};

}  // namespace

std::optional<std::string_view> MapSex(std::string_view v2, bool* lenient) {
  std::optional<std::string_view> gender = Lookup(kSex, v2, lenient);
  // Table 0001 codes are single letters; a full word (`female`), even one
  // spelled like the FHIR code, is a lenient match that the caller warns about.
  if (gender.has_value() && v2.size() > 1 && lenient != nullptr) *lenient = true;
  return gender;
}

Interpretation MapAbnormalFlag(std::string_view v2) {
  for (std::string_view f : kV3Flags) {
    if (f == v2) return {std::string(kV3Interpretation), std::string(v2)};
  }
  for (std::string_view f : kV2OnlyFlags) {
    if (f == v2) return {"http://terminology.hl7.org/CodeSystem/v2-0078", std::string(v2)};
  }
  // Case-insensitive second chance (`h`, `Hh`) keeps the table's spelling.
  for (std::string_view f : kV3Flags) {
    if (EqualsIgnoreCase(f, v2) && f.size() <= 3 && f != "NEG" && f != "POS") {
      return {std::string(kV3Interpretation), std::string(f)};
    }
  }
  return {"", std::string(v2)};
}

std::optional<ObservationStatus> MapObservationStatus(std::string_view v2) {
  if (v2.size() != 1) return std::nullopt;
  switch (absl::ascii_toupper(static_cast<unsigned char>(v2[0]))) {
    case 'A':
      return ObservationStatus{"amended", "", true};
    case 'B':
      return ObservationStatus{"amended", "", false};
    case 'C':
      return ObservationStatus{"corrected", "", true};
    case 'D':
      return ObservationStatus{"entered-in-error", "", true};
    case 'F':
      return ObservationStatus{"final", "", true};
    case 'I':
      return ObservationStatus{"registered", "", false};
    case 'N':
      return ObservationStatus{"final", "not-asked", false};
    case 'O':
      return ObservationStatus{"final", "", false};
    case 'P':
      return ObservationStatus{"preliminary", "", true};
    case 'R':
      return ObservationStatus{"preliminary", "", false};
    case 'S':
      return ObservationStatus{"preliminary", "", false};
    case 'U':
      return ObservationStatus{"final", "", false};
    case 'V':
      return ObservationStatus{"final", "", false};
    case 'W':
      return ObservationStatus{"entered-in-error", "", true};
    case 'X':
      return ObservationStatus{"cancelled", "not-performed", false};
    default:
      return std::nullopt;
  }
}

std::optional<std::string_view> MapReportStatus(std::string_view v2, bool* reject,
                                                bool* equivalent) {
  *reject = false;
  *equivalent = true;
  if (v2.size() != 1) return std::nullopt;
  switch (absl::ascii_toupper(static_cast<unsigned char>(v2[0]))) {
    case 'O':
    case 'I':
    case 'S':
      return "registered";
    case 'A':
      *equivalent = false;
      return "partial";
    case 'P':
      return "preliminary";
    case 'C':
      return "corrected";
    case 'R':
      return "partial";
    case 'F':
      return "final";
    case 'X':
      return "cancelled";
    case 'M':
      *equivalent = false;
      return "preliminary";
    case 'N':
      *equivalent = false;
      return "registered";
    case 'Y':
    case 'Z':
      *reject = true;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::optional<std::string_view> MapOrderStatus(std::string_view v2, bool* lenient) {
  return Lookup(kOrderStatus, v2, lenient);
}

std::optional<std::string_view> MapOrderControl(std::string_view v2, bool* lenient) {
  return Lookup(kOrderControl, v2, lenient);
}

std::optional<std::string_view> MapPriority(std::string_view v2, bool* lenient) {
  return Lookup(kPriority, v2, lenient);
}

std::optional<std::string> WellKnownCodingSystem(std::string_view name) {
  if (name.empty()) return std::nullopt;
  if (std::optional<std::string_view> uri = Lookup(kSystems, name, nullptr)) {
    return std::string(*uri);
  }
  // HL7nnnn / HL7-nnnn -> v2-nnnn.
  std::string_view rest;
  if (StartsWithIgnoreCase(name, "HL7")) rest = name.substr(3);
  if (!rest.empty() && rest.front() == '-') rest.remove_prefix(1);
  if (rest.size() == 4 && IsAllDigits(rest)) {
    return "http://terminology.hl7.org/CodeSystem/v2-" + std::string(rest);
  }
  return std::nullopt;
}

bool IsLocalCodingSystemName(std::string_view name) {
  return name == "L" || (name.size() >= 2 && name.substr(0, 2) == "99");
}

}  // namespace bridge::v2_to_fhir
