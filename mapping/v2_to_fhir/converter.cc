#include "mapping/v2_to_fhir/converter.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <set>
#include <utility>

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "mapping/fhir/ids.h"
#include "mapping/fhir/json.h"
#include "mapping/hl7/datatypes.h"
#include "mapping/hl7/error.h"
#include "mapping/hl7/oru.h"
#include "mapping/v2_to_fhir/internal/strings.h"
#include "mapping/v2_to_fhir/values.h"
#include "mapping/v2_to_fhir/vocab.h"

namespace bridge::v2_to_fhir {
namespace {

using fhir::Json;
using hl7::Element;

constexpr std::string_view kV20203 = "http://terminology.hl7.org/CodeSystem/v2-0203";
constexpr std::string_view kUcum = "http://unitsofmeasure.org";
constexpr std::string_view kSubIdExtension =
    "http://hl7.org/fhir/StructureDefinition/observation-v2-subid";
constexpr std::string_view kAnalysisTimeExtension =
    "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time";
constexpr std::string_view kDataAbsentExtension =
    "http://hl7.org/fhir/StructureDefinition/data-absent-reason";
constexpr std::string_view kAlternateCodesExtension =
    "http://hl7.org/fhir/StructureDefinition/alternate-codes";
constexpr std::string_view kAttachmentExtension =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value";

constexpr std::uint64_t FieldMask(std::initializer_list<int> fields) {
  std::uint64_t mask = 0;
  for (int f : fields) mask |= std::uint64_t{1} << f;
  return mask;
}

// Fields each known segment maps, as a mask (bit n for field n); any other
// non-empty field is reported. nullopt for a segment the converter does not
// map field by field.
std::optional<std::uint64_t> MappedFields(std::string_view segment) {
  static constexpr struct {
    std::string_view segment;
    std::uint64_t fields;
  } kMapped[] = {
      {"MSH", FieldMask({1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 15, 16, 18, 21})},
      {"PID", FieldMask({1, 2, 3, 5, 6, 7, 8, 11, 13, 14, 19})},
      {"ORC", FieldMask({1, 2, 3, 4, 5, 7, 9, 12})},
      {"OBR", FieldMask({1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 15, 16, 22, 24, 25, 27, 31})},
      {"OBX", FieldMask({1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 16, 17, 18, 19, 20, 21, 23, 29})},
      {"NTE", FieldMask({1, 2, 3})},
      {"SPM", FieldMask({1, 2, 4, 8, 17, 18})},
      {"TQ1", FieldMask({1, 9})},
  };
  for (const auto& m : kMapped) {
    if (m.segment == segment) return m.fields;
  }
  return std::nullopt;
}

std::string Base64(std::string_view data) {
  static constexpr char kChars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(data[i]) << 16) |
                       (static_cast<unsigned char>(data[i + 1]) << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    out.push_back(kChars[(n >> 18) & 63]);
    out.push_back(kChars[(n >> 12) & 63]);
    out.push_back(kChars[(n >> 6) & 63]);
    out.push_back(kChars[n & 63]);
  }
  if (i < data.size()) {
    unsigned n = static_cast<unsigned char>(data[i]) << 16;
    if (i + 1 < data.size()) n |= static_cast<unsigned char>(data[i + 1]) << 8;
    out.push_back(kChars[(n >> 18) & 63]);
    out.push_back(kChars[(n >> 12) & 63]);
    out.push_back(i + 1 < data.size() ? kChars[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool IsBase64(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || (c == '=' && i + 2 >= s.size());
    if (!ok) return false;
  }
  return true;
}

// Table 0200 name type (XPN.7, XCN.10) -> HumanName.use (MAPPING 4.4);
// nullopt for the types with no FHIR use.
std::optional<std::string_view> NameUse(std::string_view name_type) {
  static const std::map<std::string_view, std::string_view> kUse = {
      {"L", "official"},    {"R", "official"}, {"D", "usual"},  {"M", "maiden"}, {"N", "nickname"},
      {"MSK", "anonymous"}, {"TEMP", "temp"},  {"NAV", "temp"}, {"BAD", "old"}};
  if (auto it = kUse.find(Trim(name_type)); it != kUse.end()) return it->second;
  return std::nullopt;
}

// MIME type for ED.2/ED.3 (RP.3/RP.4): type of data (table 0191) and data
// subtype (table 0291), MAPPING 5.7; unknown -> application/octet-stream.
std::string AttachmentContentType(std::string_view type_of_data, std::string_view subtype) {
  if (EqualsIgnoreCase(subtype, "PDF")) return "application/pdf";
  if (EqualsIgnoreCase(subtype, "JPEG") || EqualsIgnoreCase(subtype, "JPG")) return "image/jpeg";
  if (EqualsIgnoreCase(subtype, "PNG")) return "image/png";
  if (EqualsIgnoreCase(subtype, "RTF")) return "text/rtf";
  if (EqualsIgnoreCase(subtype, "HTML")) return "text/html";
  if (EqualsIgnoreCase(type_of_data, "TEXT") && subtype.empty()) return "text/plain";
  return "application/octet-stream";
}

// ED.5 with ED.4 = Hex (table 0299): two hex digits per byte, either case.
// nullopt for an odd length or a non-hex character: such data is reported,
// never guessed at.
std::optional<std::string> DecodeHex(std::string_view s) {
  if (s.empty() || s.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string bytes;
  bytes.reserve(s.size() / 2);
  for (size_t i = 0; i < s.size(); i += 2) {
    const int high = nibble(s[i]);
    const int low = nibble(s[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    bytes.push_back(static_cast<char>((high << 4) | low));
  }
  return bytes;
}

std::string UrlComponent(std::string_view s) {
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool IsOid(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (char c : s) {
    if (!(c == '.' || (c >= '0' && c <= '9'))) return false;
  }
  return s.find('.') != std::string_view::npos;
}

// All decoded text of an element, its parts joined by the delimiter that
// separated them (for text values a sender forgot to escape).
void AppendFullText(const Element& e, std::string* out) {
  if (e.is_leaf() || e.level() == hl7::Level::kSubcomponent) {
    out->append(e.value());
    return;
  }
  char sep = '^';
  switch (e.level()) {
    case hl7::Level::kField:
      sep = '~';
      break;
    case hl7::Level::kRepetition:
      sep = '^';
      break;
    default:
      sep = '&';
  }
  const int n = e.size();
  for (int i = 1; i <= n; ++i) {
    if (i > 1) out->push_back(sep);
    Element child = e.level() == hl7::Level::kField        ? e.Rep(i)
                    : e.level() == hl7::Level::kRepetition ? e.Comp(i)
                                                           : e.Sub(i);
    AppendFullText(child, out);
  }
}

std::string FullText(const Element& e) {
  std::string out;
  AppendFullText(e, &out);
  return out;
}

std::string Ref(std::string_view uuid) { return Cat("urn:uuid:", uuid); }

// Provenance.recorded: the conversion time in UTC, to the second. Formatting
// it cost more than the rest of the Provenance; messages converted within the
// same second on a thread share the text.
std::string Recorded(absl::Time now) {
  thread_local int64_t last_second = -1;
  thread_local std::string last_text;
  const int64_t second = absl::ToUnixSeconds(now);
  if (second != last_second) {
    last_text = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone());
    last_second = second;
  }
  return last_text;
}

// References and fixed codings are never inspected after they are built, so
// they are kept as serialized text (one allocation instead of a small tree).
Json Reference(std::string_view uuid) {
  // hex and dashes only: nothing to escape
  return Json::Raw({"{\"reference\":\"urn:uuid:", uuid, "\"}"});
}

void SetIf(Json& obj, std::string_view key, std::string_view value) {
  if (!Trim(value).empty()) obj.Set(key, Json(value));
}

// Builds a Json::Raw value: subtrees that are never inspected after they are
// built (codings, quantities, identifiers) are written as text at once,
// instead of as tree nodes to serialize later. The text goes to a per-thread
// scratch string per nesting level, and Build() copies it into the tree.
class RawBuilder {
 public:
  RawBuilder() : text_(Scratch(depth_++)) {
    text_.clear();
    sink_.emplace(&text_);
  }
  ~RawBuilder() { --depth_; }
  RawBuilder(const RawBuilder&) = delete;
  RawBuilder& operator=(const RawBuilder&) = delete;

  fhir::JsonSink& sink() { return *sink_; }
  Json Build() {
    sink_.reset();  // trims the string to what was written
    return Json::Raw(text_);
  }

 private:
  static std::string& Scratch(size_t depth) {
    thread_local std::deque<std::string> scratch;  // deque: references stay valid
    while (scratch.size() <= depth) scratch.emplace_back();
    return scratch[depth];
  }
  static thread_local size_t depth_;
  std::string& text_;
  std::optional<fhir::JsonSink> sink_;
};
thread_local size_t RawBuilder::depth_ = 0;

// Writes an object's members, each but the first after a comma.
class ObjectWriter {
 public:
  explicit ObjectWriter(fhir::JsonSink& sink) : sink_(sink) { sink_.Put('{'); }
  void Key(std::string_view key) {
    sink_.Append(first_ ? "\"" : ",\"");
    first_ = false;
    sink_.Append(key);
    sink_.Append("\":");
  }
  void String(std::string_view key, std::string_view value) {
    Key(key);
    sink_.String(value);
  }
  // As SetIf: only a value that is not blank.
  void StringIf(std::string_view key, std::string_view value) {
    if (!Trim(value).empty()) String(key, value);
  }
  void Number(std::string_view key, std::string_view lexical) {
    Key(key);
    sink_.Append(lexical);
  }
  bool empty() const { return first_; }
  void Close() { sink_.Put('}'); }

 private:
  fhir::JsonSink& sink_;
  bool first_ = true;
};

// A Coding's members, each only when not blank.
void WriteCoding(fhir::JsonSink& sink, std::string_view system, std::string_view code,
                 std::string_view display, std::string_view version = {}) {
  ObjectWriter coding(sink);
  coding.StringIf("system", system);
  coding.StringIf("code", Trim(code));
  coding.StringIf("display", display);
  coding.StringIf("version", version);
  coding.Close();
}

// A CodeableConcept of the one Coding.
void WriteConcept(fhir::JsonSink& sink, std::string_view system, std::string_view code,
                  std::string_view display = {}) {
  sink.Append(R"({"coding":[)");
  WriteCoding(sink, system, code, display);
  sink.Append("]}");
}

Json CodingJson(std::string_view system, std::string_view code, std::string_view display) {
  RawBuilder raw;
  WriteCoding(raw.sink(), system, code, display);
  return raw.Build();
}

Json ConceptOf(std::string_view system, std::string_view code, std::string_view display = {}) {
  RawBuilder raw;
  WriteConcept(raw.sink(), system, code, display);
  return raw.Build();
}

struct Entry {
  std::string uuid;
  Json resource;
  std::string method;  // POST / PUT
  std::string url;
  std::string if_none_exist;
  ResourceRecord record;
};

class Converter {
 public:
  Converter(const hl7::Message& m, const ConvertOptions& o, Conversion* out)
      : m_(m), o_(o), out_(out) {}

  absl::Status Run();

 private:
  // ---- context helpers --------------------------------------------------
  void Warn(std::string text) { out_->warnings.push_back(std::move(text)); }
  void Report(std::string location, std::string reason) {
    out_->report.items.push_back({std::move(location), std::move(reason)});
  }
  std::string Loc(int segment_index, int field = 0) const;
  // Where a value was read, for the warnings and report lines about it. Most
  // values need none, so the text is only made when one is written.
  struct Where {
    Where(int segment_index, int field) : segment(segment_index), field(field) {}
    Where(const char* text) : text(text) {}  // NOLINT: a fixed location ("MSH-7")
    int segment = -1;
    int field = 0;
    std::string_view text;
  };
  static Where At(int segment_index, int field) { return Where(segment_index, field); }
  std::string Text(const Where& where) const {
    return where.segment < 0 ? std::string(where.text) : Loc(where.segment, where.field);
  }
  // Offset (minutes) for a timestamp written without one (MAPPING 4.7).
  int Offset(const hl7::DateTime& t);
  std::string SystemForCodingName(std::string_view name, const Where& loc);
  std::string SystemForHd(const hl7::Hd& hd);
  Json CodeableConcept(const Element& rep, const Where& loc);
  // `*system_out` (when given) is set to the identifier's system.
  std::optional<Json> Identifier(std::string_view value, const hl7::Hd& hd,
                                 std::string_view type_code, std::string* system_out = nullptr);
  enum class TimeKind { kDate, kDateTime, kInstant };
  std::optional<std::string> Time(const Element& e, const Where& loc, TimeKind kind);
  // A comparator (SN, NM "<5") is written right after the value, or last for
  // a Ratio's numerator: the order these Quantities have always had.
  enum class ComparatorAt { kAfterValue, kLast };
  Json Quantity(std::string_view value, const Element& units, const Where& loc,
                std::string_view comparator = {},
                ComparatorAt comparator_at = ComparatorAt::kAfterValue);
  std::vector<Json> Notes(const std::vector<int>& nte_segments);
  std::vector<std::string> NoteLines(const std::vector<int>& nte_segments);

  // ---- resources ----------------------------------------------------------
  Entry& Add(std::string type, std::string key, Json resource);
  std::string OrganizationFromHd(const hl7::Hd& hd);
  std::string OrganizationFromXon(const Element& rep, const Where& loc);
  std::string OrganizationFromXonUncached(const Element& rep, const Where& loc);
  std::string Practitioner(const Element& rep, const Where& loc);
  std::string PractitionerUncached(const Element& rep, const Where& loc);
  void MapPatient(int pid_segment);
  void MapOrder(const hl7::OrderObservation& order);
  struct ObservationContext;
  // Returns the Observation's uuid; *ask_at_order_entry tells whether it is
  // an AOE answer (OBX-29 QST/SCI or OBX-11 O) for ServiceRequest.supportingInfo.
  std::string MapObservation(const hl7::Observation& obs, const ObservationContext& ctx,
                             bool specimen_level, bool* ask_at_order_entry);
  bool MapValue(const hl7::SegmentRef& obx, int obx_index, Json& target, std::string* domain_value);
  void Finish();

  const hl7::Message& m_;
  const ConvertOptions& o_;
  Conversion* out_;

  std::string sender_;
  std::optional<int> msh7_offset_;
  bool default_offset_warned_ = false;
  std::string sending_facility_;
  std::string msh_org_uuid_;
  std::string patient_uuid_;
  int patient_index_ = -1;
  std::deque<Entry> entries_;                  // deque: references from Add() stay valid
  std::map<std::string, size_t> entry_index_;  // uuid -> entries_
  struct TimeMemo {
    std::string_view text;  // the message's own bytes, alive for the conversion
    TimeKind kind;
    std::string value;
  };
  std::vector<TimeMemo> time_memo_;
  std::set<std::string> observation_keys_;
  std::set<int> misplaced_status_;
  // Encoded XON / XCN -> uuid ("" when nothing was created), per message.
  std::map<std::string, std::string, std::less<>> xon_cache_;
  std::map<std::string, std::string, std::less<>>
      xcn_cache_;                // OBX segments whose status was read from OBX-10
  std::vector<int> occurrence_;  // per segment: 1-based occurrence of its name
};

std::string Converter::Loc(int segment_index, int field) const {
  const hl7::SegmentRef seg = m_.segment(segment_index);
  std::string loc(seg.name());
  const int occ = occurrence_[static_cast<size_t>(segment_index)];
  if (occ > 1 || (seg.name() != "MSH" && seg.name() != "PID")) {
    Append(&loc, "(", occ, ")");
  }
  if (field > 0) Append(&loc, "-", field);
  return loc;
}

int Converter::Offset(const hl7::DateTime& t) {
  if (o_.sender.time_zone.has_value()) {
    // The sender's IANA zone at that wall-clock time (DST-aware); for a time
    // that is skipped or repeated by a transition, the offset before it.
    const absl::TimeZone::TimeInfo info = o_.sender.time_zone->At(absl::CivilSecond(
        t.year, std::max(t.month, 1), std::max(t.day, 1), t.hour, t.minute, t.second));
    return o_.sender.time_zone->At(info.pre).offset / 60;
  }
  if (o_.sender.utc_offset_minutes.has_value()) return *o_.sender.utc_offset_minutes;
  if (msh7_offset_.has_value()) return *msh7_offset_;
  if (!default_offset_warned_) {
    default_offset_warned_ = true;
    Warn("timestamps without a UTC offset: used the bridge default zone");
  }
  return o_.default_utc_offset_minutes;
}

std::string Converter::SystemForCodingName(std::string_view name, const Where& loc) {
  name = Trim(name);
  if (name.empty()) {
    if (!o_.sender.default_code_system.empty()) return o_.sender.default_code_system;
    Warn(Cat(Text(loc), ": code without a coding system"));
    return "";
  }
  if (auto it = o_.sender.code_systems.find(std::string(name));
      it != o_.sender.code_systems.end()) {
    return it->second;
  }
  if (std::optional<std::string> uri = WellKnownCodingSystem(name)) return *uri;
  if (!IsLocalCodingSystemName(name)) {
    Warn(Cat(Text(loc), ": unknown coding system ", name, ", minted a local URI"));
  }
  return Cat(o_.base_uri, "/CodeSystem/v2-local/", UrlComponent(sender_), "/", UrlComponent(name));
}

std::string Converter::SystemForHd(const hl7::Hd& hd) {
  const std::string_view ns = Trim(hd.namespace_id);
  const std::string_view uid = Trim(hd.universal_id);
  const std::string_view type = Trim(hd.universal_id_type);
  if (!ns.empty()) {
    if (auto it = o_.sender.assigning_authorities.find(std::string(ns));
        it != o_.sender.assigning_authorities.end()) {
      return it->second;
    }
  }
  if (!uid.empty()) {
    if (auto it = o_.sender.assigning_authorities.find(std::string(uid));
        it != o_.sender.assigning_authorities.end()) {
      return it->second;
    }
  }
  if (!ns.empty() && ns == o_.pms_assigning_authority) {
    return Cat(o_.base_uri, "/sid/", UrlComponent(ns));
  }
  if (IsOid(uid) && (type.empty() || EqualsIgnoreCase(type, "ISO"))) {
    if (uid == "2.16.840.1.113883.4.6") return "http://hl7.org/fhir/sid/us-npi";
    if (uid == "2.16.840.1.113883.4.1") return "http://hl7.org/fhir/sid/us-ssn";
    return Cat("urn:oid:", uid);
  }
  if (!uid.empty() && EqualsIgnoreCase(type, "UUID")) return Cat("urn:uuid:", uid);
  if (!uid.empty() && (EqualsIgnoreCase(type, "URI") || EqualsIgnoreCase(type, "URL"))) {
    return std::string(uid);
  }
  if (EqualsIgnoreCase(ns, "CLIA") || EqualsIgnoreCase(type, "CLIA")) {
    return "urn:oid:2.16.840.1.113883.4.7";
  }
  if (EqualsIgnoreCase(ns, "NPI") || EqualsIgnoreCase(type, "NPI")) {
    return "http://hl7.org/fhir/sid/us-npi";
  }
  if (!ns.empty()) {
    return Cat(o_.base_uri, "/sid/", UrlComponent(sender_), "/", UrlComponent(ns));
  }
  return "";
}

Json Converter::CodeableConcept(const Element& rep, const Where& loc) {
  RawBuilder raw;
  fhir::JsonSink& sink = raw.sink();
  ObjectWriter cc(sink);
  std::string_view text;
  bool any_coding = false;
  static constexpr std::array<std::array<int, 4>, 3> kTriplets = {
      {{1, 2, 3, 7}, {4, 5, 6, 8}, {10, 11, 12, 13}}};
  for (const auto& t : kTriplets) {
    const std::string_view code = Trim(rep.Comp(t[0]).value());
    const std::string_view display = Trim(rep.Comp(t[1]).value());
    const std::string_view name = rep.Comp(t[2]).value();
    const std::string_view version = Trim(rep.Comp(t[3]).value());
    if (code.empty()) {
      if (!display.empty() && text.empty()) text = display;
      continue;
    }
    if (!any_coding) cc.Key("coding");
    sink.Put(any_coding ? ',' : '[');
    any_coding = true;
    WriteCoding(sink, SystemForCodingName(name, loc), code, display, version);
  }
  if (any_coding) sink.Put(']');
  if (const std::string_view original = Trim(rep.Comp(9).value()); !original.empty()) {
    text = original;
  }
  cc.StringIf("text", text);
  if (cc.empty()) return Json::Object();  // callers add a data-absent extension to it
  cc.Close();
  return raw.Build();
}

std::optional<Json> Converter::Identifier(std::string_view value, const hl7::Hd& hd,
                                          std::string_view type_code, std::string* system_out) {
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  RawBuilder raw;
  fhir::JsonSink& sink = raw.sink();
  ObjectWriter id(sink);
  if (!Trim(type_code).empty()) {
    id.Key("type");
    WriteConcept(sink, kV20203, type_code);
  }
  const std::string system = SystemForHd(hd);
  id.StringIf("system", system);
  id.String("value", value);
  const std::string_view ns = Trim(hd.namespace_id);
  if (!system.empty() && !ns.empty() && system.rfind(o_.base_uri, 0) == 0) {
    id.Key("assigner");
    ObjectWriter assigner(sink);
    assigner.String("display", ns);
    assigner.Close();
  }
  id.Close();
  if (system_out != nullptr) *system_out = Trim(system).empty() ? "" : system;
  return raw.Build();
}

std::optional<std::string> Converter::Time(const Element& e, const Where& loc, TimeKind kind) {
  // value() is the first leaf: the DTM of a TS, or the element itself.
  const std::string_view text = Trim(e.value());
  if (text.empty()) return std::nullopt;
  // Labs repeat the same few timestamps on every OBX.
  for (const TimeMemo& m : time_memo_) {
    if (m.kind == kind && m.text == text) return m.value;
  }
  absl::StatusOr<hl7::DateTime> t = hl7::ParseDateTime(text);
  if (!t.ok() || t->year == 0) {
    Warn(Cat(Text(loc), ": invalid date/time dropped"));
    Report(Text(loc), "invalid date/time, dropped");
    return std::nullopt;
  }
  const bool has_time = t->precision >= hl7::DateTime::Precision::kHour;
  const int offset = (has_time && !t->utc_offset_minutes.has_value()) ? Offset(*t) : 0;
  std::optional<std::string> out;
  switch (kind) {
    case TimeKind::kDate:
      out = FhirDate(*t);
      break;
    case TimeKind::kDateTime:
      out = FhirDateTime(*t, offset);
      break;
    case TimeKind::kInstant:
      out = FhirInstant(*t, offset);
      if (!out.has_value()) {
        Warn(Cat(Text(loc), ": date/time too imprecise for an instant, omitted"));
        Report(Text(loc), "precision below hour cannot be a FHIR instant, omitted");
      }
      break;
  }
  // Only values that converted cleanly: a warning names each place it applies.
  if (out.has_value() && time_memo_.size() < 16) time_memo_.push_back({text, kind, *out});
  return out;
}

Json Converter::Quantity(std::string_view value, const Element& units, const Where& loc,
                         std::string_view comparator, ComparatorAt comparator_at) {
  RawBuilder raw;
  ObjectWriter q(raw.sink());
  q.Number("value", value);
  if (!comparator.empty() && comparator_at == ComparatorAt::kAfterValue) {
    q.String("comparator", comparator);
  }
  const std::string_view code = Trim(units.Comp(1).value());
  const std::string_view text = Trim(units.Comp(2).value());
  const std::string_view system = Trim(units.Comp(3).value());
  auto close = [&] {
    if (!comparator.empty() && comparator_at == ComparatorAt::kLast) {
      q.String("comparator", comparator);
    }
    q.Close();
    return raw.Build();
  };
  if (code.empty() && text.empty()) return close();
  q.String("unit", text.empty() ? code : text);
  if (code.empty()) return close();
  std::string ucum;
  if (EqualsIgnoreCase(system, "UCUM")) {
    ucum = std::string(code);
  } else if (system.empty() || system == "L" || IsLocalCodingSystemName(system)) {
    if (auto it = o_.sender.unit_map.find(std::string(code)); it != o_.sender.unit_map.end()) {
      ucum = it->second;
    } else if (std::optional<std::string_view> mapped = DefaultUnitMap(code)) {
      ucum = std::string(*mapped);
    } else if (IsUcum(code)) {
      ucum = std::string(code);
    }
  } else {
    // A named non-UCUM system (ANSI+, ISO+...): code with that system.
    q.String("system", SystemForCodingName(system, loc));
    q.String("code", code);
    return close();
  }
  if (!ucum.empty()) {
    q.String("system", kUcum);
    q.String("code", ucum);
  }
  return close();
}

std::vector<std::string> Converter::NoteLines(const std::vector<int>& ntes) {
  std::vector<std::string> lines;
  for (int index : ntes) {
    const hl7::SegmentRef nte = m_.segment(index);
    const Element comment = nte.Field(3);
    std::vector<std::string> parts;
    for (const Element& rep : comment.Reps())
      parts.push_back(std::string(TrimRight(FullText(rep))));
    std::string line;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) line.push_back('\n');
      line += parts[i];
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<Json> Converter::Notes(const std::vector<int>& ntes) {
  // Consecutive NTEs with the same NTE-4/5/6 become one Annotation (5.9).
  std::vector<Json> notes;
  std::string current;
  std::string current_key;
  bool open = false;
  const std::vector<std::string> lines = NoteLines(ntes);
  auto flush = [&] {
    if (open && !Trim(current).empty()) {
      Json a = Json::Object();
      a.Set("text", Json(current));
      notes.push_back(std::move(a));
    }
    current.clear();
    open = false;
  };
  for (size_t i = 0; i < ntes.size(); ++i) {
    const hl7::SegmentRef nte = m_.segment(ntes[i]);
    std::string key =
        Cat(nte.Field(4).encoded(), "|", nte.Field(5).encoded(), "|", nte.Field(6).encoded());
    if (open && key != current_key) flush();
    if (open) current.push_back('\n');
    current += lines[i];
    current_key = std::move(key);
    open = true;
  }
  flush();
  return notes;
}

Entry& Converter::Add(std::string type, std::string key, Json resource) {
  std::string uuid = fhir::UuidV5(fhir::kBridgeNamespace, Cat(type, "|", key));
  if (auto it = entry_index_.find(uuid); it != entry_index_.end()) return entries_[it->second];
  Entry e;
  e.uuid = uuid;
  e.resource = std::move(resource);
  e.method = "POST";
  e.url = type;
  e.record.type = std::move(type);
  e.record.id = std::move(uuid);
  entry_index_[e.uuid] = entries_.size();
  entries_.push_back(std::move(e));
  return entries_.back();
}

std::string Converter::OrganizationFromHd(const hl7::Hd& hd) {
  if (hd.empty()) return "";
  Json org = Json::Object();
  org.Set("resourceType", "Organization");
  std::string key;
  std::string system;
  std::string value;
  if (IsOid(Trim(hd.universal_id))) {
    system = "urn:ietf:rfc:3986";
    value = Cat("urn:oid:", Trim(hd.universal_id));
  } else if (!Trim(hd.namespace_id).empty()) {
    system = Cat(o_.base_uri, "/sid/facility");
    value = std::string(Trim(hd.namespace_id));
  }
  if (!value.empty()) {
    Json id = Json::Object();
    id.Set("system", Json(system));
    id.Set("value", Json(value));
    org.Set("identifier", Json::Array()).Push(std::move(id));
  }
  SetIf(org, "name", Trim(hd.namespace_id));
  key = Cat(system, "|", value);
  Entry& e = Add("Organization", key, std::move(org));
  if (!value.empty()) {
    e.if_none_exist = Cat("identifier=", fhir::SearchToken(system, value));
    e.record.identifier = Cat(system, "|", value);
  }
  return e.uuid;
}

std::string Converter::OrganizationFromXon(const Element& rep, const Where& loc) {
  // The same XON (usually on every OBX) maps to the same Organization.
  const std::string_view encoded = rep.encoded();
  if (auto it = xon_cache_.find(encoded); it != xon_cache_.end()) return it->second;
  std::string uuid = OrganizationFromXonUncached(rep, loc);
  xon_cache_.emplace(std::string(encoded), uuid);
  return uuid;
}

std::string Converter::OrganizationFromXonUncached(const Element& rep, const Where& loc) {
  const std::string_view name = Trim(rep.Comp(1).value());
  std::string_view id_value = Trim(rep.Comp(10).value());
  if (id_value.empty()) id_value = Trim(rep.Comp(3).value());
  if (name.empty() && id_value.empty()) return "";
  Json org = Json::Object();
  org.Set("resourceType", "Organization");
  std::string key;
  std::string system;
  if (std::optional<Json> id = Identifier(id_value, hl7::Hd::FromSubcomponents(rep.Comp(6)),
                                          rep.Comp(7).value(), &system)) {
    key = Cat(system, "|", id_value);
    org.Set("identifier", Json::Array()).Push(*std::move(id));
  } else {
    key = Cat("name|", name);
  }
  SetIf(org, "name", name);
  (void)loc;
  Entry& e = Add("Organization", key, std::move(org));
  if (key.front() != '|' && key.rfind("name|", 0) != 0) {
    e.record.identifier = key;
    e.if_none_exist = Cat("identifier=", fhir::SearchToken(key.substr(0, key.find('|')), id_value));
  }
  return e.uuid;
}

std::string Converter::Practitioner(const Element& rep, const Where& loc) {
  const std::string_view encoded = rep.encoded();
  if (auto it = xcn_cache_.find(encoded); it != xcn_cache_.end()) return it->second;
  std::string uuid = PractitionerUncached(rep, loc);
  xcn_cache_.emplace(std::string(encoded), uuid);
  return uuid;
}

std::string Converter::PractitionerUncached(const Element& rep, const Where& loc) {
  hl7::Xcn x = hl7::Xcn::From(rep);
  const std::string_view id = Trim(x.id);
  const std::string_view family = Trim(x.family);
  const std::string_view given = Trim(x.given);
  if (id.empty() && family.empty() && given.empty()) return "";
  Json p = Json::Object();
  p.Set("resourceType", "Practitioner");
  std::string key;
  // A free-text name in XCN.1 ("Dr. Smith") with no other parts is a name.
  const bool name_in_id = family.empty() && given.empty() && x.assigning_authority.empty() &&
                          id.find(' ') != std::string_view::npos;
  std::string system;
  if (!id.empty() && !name_in_id) {
    hl7::Hd hd = x.assigning_authority;
    system = SystemForHd(hd);
    if (system.empty() && EqualsIgnoreCase(Trim(x.identifier_type_code), "NPI")) {
      system = "http://hl7.org/fhir/sid/us-npi";
    }
    Json ident = Json::Object();
    if (!Trim(x.identifier_type_code).empty()) {
      ident.Set("type", ConceptOf(kV20203, Trim(x.identifier_type_code)));
    }
    SetIf(ident, "system", system);
    ident.Set("value", Json(id));
    // As Identifier() does for a namespace-only authority (MAPPING 4.3 rule 5).
    if (const std::string_view ns = Trim(hd.namespace_id);
        !ns.empty() && system.rfind(o_.base_uri, 0) == 0) {
      Json assigner = Json::Object();
      assigner.Set("display", Json(ns));
      ident.Set("assigner", std::move(assigner));
    }
    p.Set("identifier", Json::Array()).Push(std::move(ident));
    key = Cat(system, "|", id);
  }
  Json name = Json::Object();
  if (name_in_id) {
    name.Set("text", Json(id));
  } else {
    SetIf(name, "family", family);
    if (!given.empty() || !Trim(x.middle).empty()) {
      Json& g = name.Set("given", Json::Array());
      if (!given.empty()) g.Push(Json(given));
      if (!Trim(x.middle).empty()) g.Push(Json(Trim(x.middle)));
    }
    if (!Trim(x.prefix).empty()) name.Set("prefix", Json::Array()).Push(Json(Trim(x.prefix)));
    if (!Trim(x.suffix).empty()) name.Set("suffix", Json::Array()).Push(Json(Trim(x.suffix)));
    // MAPPING 4.6: name.use = XCN.10 (table 0200, as XPN.7), first as in Patient.name.
    std::optional<std::string_view> use = NameUse(x.name_type);
    if (!name.empty() && use.has_value()) {
      Json with_use = Json::Object();
      with_use.Set("use", Json(*use));
      for (const auto& [key, value] : name.members()) with_use.Set(key, value);
      name = std::move(with_use);
    }
  }
  if (!name.empty()) p.Set("name", Json::Array()).Push(std::move(name));
  // MAPPING 4.6: qualification.code = XCN.7 degree (table 0360).
  if (const std::string_view degree = Trim(x.degree); !degree.empty()) {
    Json qualification = Json::Object();
    qualification.Set("code", ConceptOf("http://terminology.hl7.org/CodeSystem/v2-0360", degree));
    p.Set("qualification", Json::Array()).Push(std::move(qualification));
  }
  if (key.empty()) key = Cat("name|", family, "|", given, "|", name_in_id ? id : "");
  (void)loc;
  Entry& e = Add("Practitioner", key, std::move(p));
  if (!system.empty()) {
    e.if_none_exist = Cat("identifier=", fhir::SearchToken(system, id));
    e.record.identifier = Cat(system, "|", id);
  }
  return e.uuid;
}

void Converter::MapPatient(int pid_index) {
  const hl7::SegmentRef pid = m_.segment(pid_index);
  PatientRecord record;
  Json p = Json::Object();
  p.Set("resourceType", "Patient");
  Json ids = Json::Array();
  std::string key_system;
  std::string key_value;
  std::string first_system;
  std::string first_value;
  for (int field : {2, 3, 4}) {
    for (const Element& rep : pid.Field(field).Reps()) {
      hl7::Cx cx = hl7::Cx::From(rep);
      std::string system;
      std::optional<Json> id =
          Identifier(cx.id, cx.assigning_authority, cx.identifier_type_code, &system);
      if (!id.has_value()) continue;
      IdentifierRecord ir;
      ir.value = std::string(Trim(cx.id));
      ir.authority = std::string(!cx.assigning_authority.namespace_id.empty()
                                     ? cx.assigning_authority.namespace_id
                                     : cx.assigning_authority.universal_id);
      ir.type = std::string(Trim(cx.identifier_type_code));
      ir.system = system;
      if (field == 3) {
        if (first_value.empty()) {
          first_value = ir.value;
          first_system = system;
        }
        if (key_value.empty() && ir.type == "MR") {
          key_value = ir.value;
          key_system = system;
        }
        if (record.pms_id.empty() &&
            Trim(cx.assigning_authority.namespace_id) == o_.pms_assigning_authority) {
          record.pms_id = ir.value;
        }
      }
      record.identifiers.push_back(std::move(ir));
      ids.Push(*std::move(id));
    }
  }
  if (record.pms_id.empty()) {
    for (const IdentifierRecord& ir : record.identifiers) {
      if (ir.type == "MR") {
        record.pms_id = ir.value;
        break;
      }
    }
  }
  if (record.pms_id.empty()) record.pms_id = first_value;
  if (key_value.empty()) {
    key_value = first_value;
    key_system = first_system;
  }
  if (const std::string_view ssn = Trim(pid.Field(19).value()); !ssn.empty()) {
    Json id = Json::Object();
    id.Set("type", ConceptOf(kV20203, "SS"));
    id.Set("system", "http://hl7.org/fhir/sid/us-ssn");
    id.Set("value", Json(ssn));
    ids.Push(std::move(id));
  }
  if (!ids.empty()) p.Set("identifier", std::move(ids));
  if (key_value.empty()) Warn(Cat(Loc(pid_index, 3), ": patient has no identifier"));

  Json names = Json::Array();
  for (const Element& rep : pid.Field(5).Reps()) {
    hl7::Xpn x = hl7::Xpn::From(rep);
    Json name = Json::Object();
    if (std::optional<std::string_view> use = NameUse(x.name_type)) name.Set("use", Json(*use));
    SetIf(name, "family", Trim(x.family));
    if (!Trim(x.given).empty() || !Trim(x.middle).empty()) {
      Json& g = name.Set("given", Json::Array());
      if (!Trim(x.given).empty()) g.Push(Json(Trim(x.given)));
      if (!Trim(x.middle).empty()) g.Push(Json(Trim(x.middle)));
    }
    if (!Trim(x.prefix).empty()) name.Set("prefix", Json::Array()).Push(Json(Trim(x.prefix)));
    if (!Trim(x.suffix).empty() || !Trim(x.degree).empty()) {
      Json& s = name.Set("suffix", Json::Array());
      if (!Trim(x.suffix).empty()) s.Push(Json(Trim(x.suffix)));
      if (!Trim(x.degree).empty()) s.Push(Json(Trim(x.degree)));
    }
    if (record.family_name.empty() && record.given_name.empty()) {
      record.family_name = std::string(Trim(x.family));
      record.given_name = std::string(Trim(x.given));
    }
    if (name.Has("family") || name.Has("given")) names.Push(std::move(name));
  }
  if (!names.empty()) p.Set("name", std::move(names));

  if (const std::string_view gender_code = Trim(pid.Field(8).value()); !gender_code.empty()) {
    record.sex = std::string(gender_code);
    bool lenient = false;
    if (std::optional<std::string_view> g = MapSex(gender_code, &lenient)) {
      p.Set("gender", Json(*g));
      record.gender = std::string(*g);
      if (lenient) Warn(Cat(Loc(pid_index, 8), ": sex matched leniently"));
    } else {
      Warn(Cat(Loc(pid_index, 8), ": unknown sex code, gender omitted"));
      Report(Loc(pid_index, 8), "sex code not in table 0001");
    }
  }
  if (std::optional<std::string> birth = Time(pid.Field(7), At(pid_index, 7), TimeKind::kDate)) {
    p.Set("birthDate", Json(*birth));
    record.birth_date = *birth;
    absl::StatusOr<hl7::DateTime> t = hl7::ParseDateTime(Trim(pid.Field(7).Comp(1).value()));
    if (t.ok() && t->precision >= hl7::DateTime::Precision::kHour) {
      if (std::optional<std::string> dt =
              Time(pid.Field(7), At(pid_index, 7), TimeKind::kDateTime)) {
        Json ext = Json::Object();
        ext.Set("url", "http://hl7.org/fhir/StructureDefinition/patient-birthTime");
        ext.Set("valueDateTime", Json(*dt));
        p.Find("birthDate");  // keep order: extension goes on the primitive
        Json prim = Json::Object();
        prim.Set("extension", Json::Array()).Push(std::move(ext));
        p.Set("_birthDate", std::move(prim));
      }
    }
  }
  if (const std::string_view maiden = Trim(pid.Field(6).Comp(1).value()); !maiden.empty()) {
    Json ext = Json::Object();
    ext.Set("url", "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName");
    ext.Set("valueString", Json(maiden));
    p.Set("extension", Json::Array()).Push(std::move(ext));
  }
  Json addresses = Json::Array();
  for (const Element& rep : pid.Field(11).Reps()) {
    Json a = Json::Object();
    const std::string_view type = Trim(rep.Comp(7).value());
    if (type == "H") a.Set("use", "home");
    if (type == "B" || type == "O") a.Set("use", "work");
    Json lines = Json::Array();
    for (int c : {1, 2}) {
      const std::string_view line = Trim(rep.Comp(c).value());
      if (!line.empty()) lines.Push(Json(line));
    }
    if (!lines.empty()) a.Set("line", std::move(lines));
    SetIf(a, "city", Trim(rep.Comp(3).value()));
    SetIf(a, "district", Trim(rep.Comp(9).value()));
    SetIf(a, "state", Trim(rep.Comp(4).value()));
    SetIf(a, "postalCode", Trim(rep.Comp(5).value()));
    SetIf(a, "country", Trim(rep.Comp(6).value()));
    if (a.Has("line") || a.Has("city") || a.Has("postalCode")) addresses.Push(std::move(a));
  }
  if (!addresses.empty()) p.Set("address", std::move(addresses));
  Json telecoms = Json::Array();
  for (int field : {13, 14}) {
    for (const Element& rep : pid.Field(field).Reps()) {
      const std::string_view equipment = Trim(rep.Comp(3).value());
      std::string value(Trim(rep.Comp(1).value()));
      std::string system = "phone";
      if (equipment == "Internet" || equipment == "X.400" ||
          (equipment.empty() && value.empty() && !Trim(rep.Comp(4).value()).empty())) {
        value = std::string(Trim(rep.Comp(4).value()));
        system = "email";
      } else if (equipment == "FX") {
        system = "fax";
      } else if (equipment == "BP") {
        system = "pager";
      }
      if (value.empty()) {
        const std::string_view area = Trim(rep.Comp(6).value());
        const std::string_view local = Trim(rep.Comp(7).value());
        if (!local.empty()) value = area.empty() ? std::string(local) : Cat(area, " ", local);
      }
      if (value.empty()) continue;
      Json t = Json::Object();
      t.Set("system", Json(system));
      t.Set("value", Json(value));
      const std::string_view use = Trim(rep.Comp(2).value());
      if (equipment == "CP" || use == "PRS") {
        t.Set("use", "mobile");
      } else if (use == "WPN" || (use.empty() && field == 14)) {
        t.Set("use", "work");
      } else {
        t.Set("use", "home");
      }
      telecoms.Push(std::move(t));
    }
  }
  if (!telecoms.empty()) p.Set("telecom", std::move(telecoms));

  const std::string key = key_value.empty() ? Cat("msg|", m_.control_id(), "|", pid_index)
                                            : Cat(key_system, "|", key_value);
  Entry& e = Add("Patient", key, std::move(p));
  if (!key_value.empty() && !key_system.empty()) {
    e.if_none_exist = Cat("identifier=", fhir::SearchToken(key_system, key_value));
    e.record.identifier = Cat(key_system, "|", key_value);
  }
  e.record.patient_ref = Ref(e.uuid);
  patient_uuid_ = e.uuid;
  record.fhir_id = e.uuid;
  out_->domain.patients.push_back(std::move(record));
  patient_index_ = static_cast<int>(out_->domain.patients.size()) - 1;
}

struct Converter::ObservationContext {
  int order_index = 0;
  std::string filler_system;
  std::string filler_number;
  std::string placer_number;
  std::string service_request_uuid;
  std::string obr7;            // FHIR dateTime
  std::string issued;          // FHIR instant
  std::string specimen_uuid;   // single specimen of the group
  std::string specimen_focus;  // SPECIMEN_OBSERVATION: the SPM's Specimen
};

bool Converter::MapValue(const hl7::SegmentRef& obx, int obx_index, Json& target,
                         std::string* domain_value) {
  const std::string type(Trim(obx.Field(2).value()));
  const Element value = obx.Field(5);
  const Where loc = At(obx_index, 5);
  const Element units = obx.Field(6);
  if (value.empty() || value.is_null()) return false;
  const bool text_type = type == "ST" || type == "TX" || type == "FT";
  if (text_type) {
    std::string joined;
    const std::vector<Element> reps = value.Reps();
    for (size_t i = 0; i < reps.size(); ++i) {
      if (i > 0) joined.push_back('\n');
      joined += FullText(reps[i]);
    }
    *domain_value = joined;
    if (Trim(joined).empty()) return false;
    target.Set("valueString", Json(joined));
    return true;
  }
  if (type == "NA") {
    // DEV (docs/mapping-decisions.md D21): MAPPING 5.7 asks for
    // valueSampledData, but R4 SampledData requires a sampling period that a
    // numeric array does not carry; inventing one would misstate the data.
    // The array stays one value (repetitions are rows, MAPPING 5.6 excludes NA
    // from components), as sent, and the report says so.
    const std::string raw = FullText(value);
    *domain_value = raw;
    if (Trim(raw).empty()) return false;
    Report(Text(loc), "value type NA kept as valueString (SampledData needs a period NA lacks)");
    target.Set("valueString", Json(raw));
    return true;
  }
  std::vector<Element> reps = value.Reps();
  std::vector<std::pair<std::string_view, Json>> values;  // (key literal, value) per repetition
  std::string domain;
  for (size_t i = 0; i < reps.size(); ++i) {
    const Element& rep = reps[i];
    if (i > 0) domain.push_back('~');
    std::string_view key;  // a literal: Json keys are not copied
    Json v;
    if (type == "NM") {
      domain += std::string(Trim(rep.value()));
      if (std::optional<ComparatorNumber> cn = ParseComparatorNumber(rep.value())) {
        key = "valueQuantity";
        v = Quantity(cn->number, units, loc, cn->comparator == "=" ? "" : cn->comparator);
      } else if (!Trim(rep.value()).empty()) {
        Warn(Cat(Text(loc), ": NM value is not a number, kept as text"));
        key = "valueString";
        v = Json(FullText(rep));
      }
    } else if (type == "SN") {
      const StructuredNumeric sn = ParseStructuredNumeric(rep.Comp(1).value(), rep.Comp(2).value(),
                                                          rep.Comp(3).value(), rep.Comp(4).value());
      domain += Cat(Trim(rep.Comp(1).value()), Trim(rep.Comp(2).value()), Trim(rep.Comp(3).value()),
                    Trim(rep.Comp(4).value()));
      switch (sn.kind) {
        case StructuredNumeric::Kind::kQuantity: {
          key = "valueQuantity";
          v = Quantity(sn.num1, units, loc, sn.comparator);
          break;
        }
        case StructuredNumeric::Kind::kRange: {
          key = "valueRange";
          v = Json::Object();
          v.Set("low", Quantity(sn.num1, units, loc));
          v.Set("high", Quantity(sn.num2, units, loc));
          break;
        }
        case StructuredNumeric::Kind::kRatio: {
          key = "valueRatio";
          v = Json::Object();
          v.Set("numerator", Quantity(sn.num1, units, loc, sn.comparator, ComparatorAt::kLast));
          Json den = Json::Object();
          den.Set("value", Json::Number(sn.num2));
          v.Set("denominator", std::move(den));
          break;
        }
        case StructuredNumeric::Kind::kString: {
          key = "valueString";
          std::string s = sn.text;
          if (const std::string_view u = Trim(units.Comp(1).value()); !u.empty()) {
            Append(&s, " ", u);
          }
          v = Json(s);
          break;
        }
        case StructuredNumeric::Kind::kInvalid:
          Warn(Cat(Text(loc), ": SN value not understood"));
          break;
      }
    } else if (type == "CE" || type == "CWE" || type == "CNE" || type == "CF" || type == "IS" ||
               type == "ID") {
      Json cc = CodeableConcept(rep, loc);
      const std::string_view display = Trim(rep.Comp(2).value());
      domain += std::string(display.empty() ? Trim(rep.Comp(1).value()) : display);
      if (!cc.empty()) {
        key = "valueCodeableConcept";
        v = std::move(cc);
      }
    } else if (type == "DT" || type == "DTM" || type == "TS") {
      domain += std::string(Trim(rep.Comp(1).value()));
      Element first = rep;
      if (std::optional<std::string> dt = Time(first, loc, TimeKind::kDateTime)) {
        key = "valueDateTime";
        v = Json(*dt);
      }
    } else if (type == "TM") {
      domain += std::string(Trim(rep.value()));
      if (std::optional<std::string> t = FhirTime(rep.value())) {
        key = "valueTime";
        v = Json(*t);
      } else {
        Warn(Cat(Text(loc), ": invalid TM dropped"));
        Report(Text(loc), "invalid time, dropped");
      }
    } else if (type == "DR") {
      domain += FullText(rep);
      Json period = Json::Object();
      if (std::optional<std::string> s = Time(rep.Comp(1).Sub(1), loc, TimeKind::kDateTime)) {
        period.Set("start", Json(*s));
      }
      if (std::optional<std::string> e = Time(rep.Comp(2).Sub(1), loc, TimeKind::kDateTime)) {
        period.Set("end", Json(*e));
      }
      if (!period.empty()) {
        key = "valuePeriod";
        v = std::move(period);
      }
    } else if (type == "NR") {
      domain += FullText(rep);
      Json range = Json::Object();
      if (std::optional<std::string> lo = ToFhirDecimal(rep.Comp(1).value())) {
        range.Set("low", Quantity(*lo, units, loc));
      }
      if (std::optional<std::string> hi = ToFhirDecimal(rep.Comp(2).value())) {
        range.Set("high", Quantity(*hi, units, loc));
      }
      if (!range.empty()) {
        key = "valueRange";
        v = std::move(range);
      }
    } else if (type == "VR") {
      domain += FullText(rep);
      key = "valueString";
      v = Json(Cat(Trim(rep.Comp(1).value()), "-", Trim(rep.Comp(2).value())));
    } else if (type == "EI") {
      domain += std::string(Trim(rep.Comp(1).value()));
      if (!Trim(rep.Comp(1).value()).empty()) {
        key = "valueString";
        v = Json(Trim(rep.Comp(1).value()));
      }
    } else if (type == "ED" || type == "RP") {
      domain += "[attachment]";
      Json attachment = Json::Object();
      if (type == "ED") {
        attachment.Set("contentType", Json(AttachmentContentType(Trim(rep.Comp(2).value()),
                                                                 Trim(rep.Comp(3).value()))));
        const std::string_view encoding = Trim(rep.Comp(4).value());
        const std::string data(Trim(rep.Comp(5).value()));
        if (EqualsIgnoreCase(encoding, "Base64") && IsBase64(data)) {
          attachment.Set("data", Json(data));
        } else if (EqualsIgnoreCase(encoding, "A") || encoding.empty()) {
          if (!data.empty()) attachment.Set("data", Json(Base64(data)));
        } else if (std::optional<std::string> bytes;
                   EqualsIgnoreCase(encoding, "Hex") && (bytes = DecodeHex(data))) {
          // MAPPING 5.7: Hex is converted; Attachment.data is base64Binary.
          attachment.Set("data", Json(Base64(*bytes)));
        } else {
          Report(Text(loc),
                 "ED data encoding not supported, or data not valid for it (base64, hex): dropped");
        }
      } else {
        // RP = pointer ^ application id ^ type of data ^ subtype: the last two
        // name the content as ED.2/ED.3 do; sent without them, none is claimed.
        const std::string_view kind = Trim(rep.Comp(3).value());
        const std::string_view sub = Trim(rep.Comp(4).value());
        if (!kind.empty() || !sub.empty()) {
          attachment.Set("contentType", Json(AttachmentContentType(kind, sub)));
        }
        const std::string_view pointer = Trim(rep.Comp(1).value());
        if (!pointer.empty()) attachment.Set("url", Json(pointer));
      }
      if (attachment.Has("data") || attachment.Has("url")) {
        Json ext = Json::Object();
        ext.Set("url", Json(kAttachmentExtension));
        ext.Set("valueAttachment", std::move(attachment));
        Json* exts = target.Find("extension");
        if (exts == nullptr) exts = &target.Set("extension", Json::Array());
        exts->Push(std::move(ext));
        *domain_value = domain;
        return true;
      }
    } else {
      domain += FullText(rep);
      const std::string raw = FullText(rep);
      if (!Trim(raw).empty()) {
        Warn(Cat(Text(loc), ": value type ", type.empty() ? "(empty)" : type,
                 " not mapped, kept as text"));
        Report(Text(loc), Cat("value type ", type.empty() ? "(empty)" : type,
                              " has no FHIR mapping; kept as valueString"));
        key = "valueString";
        v = Json(raw);
      }
    }
    if (!key.empty()) values.emplace_back(std::move(key), std::move(v));
  }
  *domain_value = domain;
  if (values.empty()) return false;
  if (values.size() == 1) {
    target.Set(values[0].first, std::move(values[0].second));
    return true;
  }
  // Repetitions of a non-text type: one component per repetition (5.6).
  Json components = Json::Array();
  for (auto& [k, v] : values) {
    Json c = Json::Object();
    if (const Json* code = target.Find("code")) c.Set("code", *code);
    c.Set(k, std::move(v));
    components.Push(std::move(c));
  }
  target.Set("component", std::move(components));
  return true;
}

std::string Converter::MapObservation(const hl7::Observation& obs, const ObservationContext& ctx,
                                      bool specimen_level, bool* ask_at_order_entry) {
  const hl7::SegmentRef obx = m_.segment(obs.obx);
  const std::string type(Trim(obx.Field(2).value()));
  const Element code_field = obx.Field(3);
  const std::string_view sub_id = Trim(obx.Field(4).value());
  const std::string_view set_id = Trim(obx.Field(1).value());
  std::string_view status_code = Trim(obx.Field(11).value());
  if (status_code.empty()) {
    // DEV (docs/mapping-decisions.md): the setup guide's sample ORU puts the
    // result status in OBX-10; a 0085 code there that is not a 0080 code is
    // taken as the status.
    const std::string_view f10 = Trim(obx.Field(10).value());
    if (f10 == "F" || f10 == "P" || f10 == "C" || f10 == "X" || f10 == "D" || f10 == "I") {
      status_code = f10;
      misplaced_status_.insert(obs.obx);
      Warn(Cat(Loc(obs.obx, 10), ": result status found in OBX-10 (OBX-11 empty), used"));
    }
  }
  const std::string_view nature = Trim(obx.Field(29).value());
  const bool aoe = nature == "QST" || nature == "SCI" || status_code == "O";
  *ask_at_order_entry = aoe;

  ResultRecord r;
  r.patient_index = std::max(patient_index_, 0);
  r.order_index = ctx.order_index;
  r.test_code = std::string(Trim(code_field.Comp(1).value()));
  r.test_name = std::string(Trim(code_field.Comp(2).value()));
  if (r.test_name.empty()) r.test_name = std::string(Trim(code_field.Comp(9).value()));
  r.test_system = std::string(Trim(code_field.Comp(3).value()));
  r.units = std::string(Trim(obx.Field(6).Comp(1).value()));
  r.reference_range = std::string(Trim(FullText(obx.Field(7))));
  r.abnormal_flag = std::string(Trim(obx.Field(8).Rep(1).Comp(1).value()));
  r.result_status = std::string(status_code);
  r.sending_facility = sending_facility_;
  r.filler_order_number = ctx.filler_number;
  r.placer_order_number = ctx.placer_number;
  r.value_type = type;
  r.observation_sub_id = std::string(sub_id);
  r.set_id = std::string(set_id);
  r.segment = Loc(obs.obx);
  for (const Element& flag : obx.Field(8).Reps()) {
    const std::string_view f = Trim(flag.Comp(1).value());
    if (f == "HH" || f == "LL" || f == "AA" ||
        std::find(o_.critical_flags.begin(), o_.critical_flags.end(), f) !=
            o_.critical_flags.end()) {
      r.critical = true;
    }
  }
  r.comments = NoteLines(obs.notes);

  Json o = Json::Object();
  o.Set("resourceType", Json::Literal("Observation"));
  Json extensions = Json::Array();
  if (!sub_id.empty()) {
    Json ext = Json::Object();
    ext.Set("url", Json::Literal(kSubIdExtension));
    ext.Set("valueString", Json(sub_id));
    extensions.Push(std::move(ext));
  }
  if (std::optional<std::string> analysis =
          Time(obx.Field(19), At(obs.obx, 19), TimeKind::kDateTime)) {
    Json ext = Json::Object();
    ext.Set("url", Json::Literal(kAnalysisTimeExtension));
    ext.Set("valueDateTime", Json(*analysis));
    extensions.Push(std::move(ext));
  }
  if (!extensions.empty()) o.Set("extension", std::move(extensions));

  // Business key (section 2).
  const std::string code_system(Trim(code_field.Comp(3).value()));
  std::string order_key =
      ctx.filler_number.empty() ? Cat("placer:", ctx.placer_number) : ctx.filler_number;
  if (ctx.filler_number.empty() && ctx.placer_number.empty()) {
    order_key = Cat("msg:", m_.control_id(), ":", ctx.order_index);
  }
  std::string tuple = Cat(ctx.filler_system, "\x1f", order_key, "\x1f", code_system, "\x1f",
                          r.test_code, "\x1f", sub_id);
  if (r.test_code.empty() || observation_keys_.count(tuple) > 0) {
    Append(&tuple, "\x1f", set_id, "\x1f", obs.obx);
    if (!r.test_code.empty()) {
      Warn(Cat(Loc(obs.obx), ": OBX-3/OBX-4 repeat within the order; key uses OBX-1"));
    }
  }
  observation_keys_.insert(tuple);
  const std::string key = fhir::Sha256Hex(tuple).substr(0, 32);
  const std::string key_system = Cat(o_.base_uri, "/sid/obx-key");
  Json ids = Json::Array();
  {
    Json id = Json::Object();
    id.Set("system", Json(key_system));
    id.Set("value", Json(key));
    ids.Push(std::move(id));
  }
  {
    hl7::Ei ei = hl7::Ei::From(obx.Field(21).Rep(1));
    if (std::optional<Json> id = Identifier(ei.entity_identifier, ei.assigning_authority, "FILL")) {
      ids.Push(*std::move(id));
    }
  }
  o.Set("identifier", std::move(ids));
  if (!ctx.service_request_uuid.empty()) {
    o.Set("basedOn", Json::Array()).Push(Reference(ctx.service_request_uuid));
  }

  // Status.
  std::string status = "unknown";
  std::string absent_reason;
  if (std::optional<ObservationStatus> s = MapObservationStatus(status_code)) {
    status = std::string(s->status);
    absent_reason = std::string(s->data_absent_reason);
  } else {
    Warn(Cat(Loc(obs.obx, 11), ": result status missing or unknown"));
    if (!status_code.empty()) Report(Loc(obs.obx, 11), "status not in table 0085; unknown");
  }
  o.Set("status", Json(status));
  if (!status_code.empty() && !(MapObservationStatus(status_code).has_value() &&
                                MapObservationStatus(status_code)->equivalent)) {
    Json alt = Json::Object();
    Json ext = Json::Object();
    ext.Set("url", Json(kAlternateCodesExtension));
    ext.Set("valueCodeableConcept",
            ConceptOf("http://terminology.hl7.org/CodeSystem/v2-0085", status_code));
    alt.Set("extension", Json::Array()).Push(std::move(ext));
    o.Set("_status", std::move(alt));
  }
  if (!aoe) {
    o.Set("category",
          Json::RawLiteral(
              R"([{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/)"
              R"(observation-category","code":"laboratory","display":"Laboratory"}]}])"));
    r.result_status = std::string(status_code);
  }
  Json code = CodeableConcept(code_field.Rep(1), At(obs.obx, 3));
  if (code.empty()) {
    Json ext = Json::Object();
    ext.Set("url", Json(kDataAbsentExtension));
    ext.Set("valueCode", "unknown");
    code.Set("extension", Json::Array()).Push(std::move(ext));
    Warn(Cat(Loc(obs.obx, 3), ": observation without a code"));
  }
  o.Set("code", std::move(code));
  if (!patient_uuid_.empty()) o.Set("subject", Reference(patient_uuid_));
  if (!ctx.specimen_focus.empty()) {
    o.Set("focus", Json::Array()).Push(Reference(ctx.specimen_focus));
  }
  std::optional<std::string> effective = Time(obx.Field(14), At(obs.obx, 14), TimeKind::kDateTime);
  if (!effective.has_value() && !ctx.obr7.empty()) effective = ctx.obr7;
  if (effective.has_value()) {
    o.Set("effectiveDateTime", Json(*effective));
    r.observation_date = *effective;
  }
  if (!ctx.issued.empty()) o.Set("issued", Json(ctx.issued));
  Json performers = Json::Array();
  for (const Element& rep : obx.Field(16).Reps()) {
    const std::string uuid = Practitioner(rep, At(obs.obx, 16));
    if (!uuid.empty()) performers.Push(Reference(uuid));
  }
  std::string performing_org = OrganizationFromXon(obx.Field(23).Rep(1), At(obs.obx, 23));
  if (performing_org.empty()) performing_org = msh_org_uuid_;
  if (!performing_org.empty()) performers.Push(Reference(performing_org));
  if (!performers.empty()) o.Set("performer", std::move(performers));

  std::string domain_value;
  const bool has_value = MapValue(obx, obs.obx, o, &domain_value);
  r.value = domain_value;
  if (!has_value && !o.Has("component")) {
    if (absent_reason.empty()) absent_reason = "unknown";
    o.Set("dataAbsentReason", ConceptOf(kDataAbsentReason, absent_reason));
  } else if (!absent_reason.empty()) {
    Warn(Cat(Loc(obs.obx, 11), ": status implies no value, but a value was sent"));
  }

  Json interpretations = Json::Array();
  for (const Element& flag : obx.Field(8).Reps()) {
    const std::string_view f = Trim(flag.Comp(1).value());
    if (f.empty()) continue;
    Interpretation in = MapAbnormalFlag(f);
    if (in.system.empty()) {
      Json cc = Json::Object();
      cc.Set("text", Json(f));
      interpretations.Push(std::move(cc));
    } else {
      interpretations.Push(ConceptOf(in.system, in.code));
    }
  }
  if (!interpretations.empty()) o.Set("interpretation", std::move(interpretations));
  std::vector<Json> notes = Notes(obs.notes);
  if (!notes.empty()) {
    Json& arr = o.Set("note", Json::Array());
    for (Json& n : notes) arr.Push(std::move(n));
  }
  if (!obx.Field(17).empty()) {
    Json method = CodeableConcept(obx.Field(17).Rep(1), At(obs.obx, 17));
    if (!method.empty()) o.Set("method", std::move(method));
  }
  if (!obx.Field(20).empty()) {
    Json site = CodeableConcept(obx.Field(20).Rep(1), At(obs.obx, 20));
    if (!site.empty()) o.Set("bodySite", std::move(site));
  }
  if (!ctx.specimen_uuid.empty() && !specimen_level) {
    o.Set("specimen", Reference(ctx.specimen_uuid));
  }
  // OBX-18 equipment: a logical reference (no Device resource, MAPPING 5.6).
  if (const std::string_view device_id = Trim(obx.Field(18).Rep(1).Comp(1).value());
      !device_id.empty()) {
    Json device = Json::Object();
    Json id = Json::Object();
    id.Set("value", Json(device_id));
    device.Set("identifier", std::move(id));
    const std::string_view ns = Trim(obx.Field(18).Rep(1).Comp(2).value());
    const std::string display = ns.empty() ? std::string(device_id) : Cat(ns, " ", device_id);
    device.Set("display", Json(display));
    o.Set("device", std::move(device));
  }
  const std::string range_text(Trim(FullText(obx.Field(7))));
  if (!range_text.empty()) {
    Json range = Json::Object();
    RangeBounds bounds;
    const Element rr = obx.Field(7);
    if (rr.Comp(1).size() >= 2) {
      std::optional<std::string> lo = ToFhirDecimal(rr.Comp(1).Sub(1).value());
      std::optional<std::string> hi = ToFhirDecimal(rr.Comp(1).Sub(2).value());
      if (lo.has_value() && hi.has_value()) {
        bounds.low = lo;
        bounds.high = hi;
      }
    } else {
      bounds = ParseReferenceRange(range_text);
    }
    auto bound = [&](const std::string& number) {
      Json q = Quantity(number, obx.Field(6), At(obs.obx, 6));
      return q;
    };
    if (bounds.low.has_value()) range.Set("low", bound(*bounds.low));
    if (bounds.high.has_value()) range.Set("high", bound(*bounds.high));
    std::string display_text = range_text;
    std::replace(display_text.begin(), display_text.end(), '&', '-');
    range.Set("text", Json(rr.Comp(1).size() >= 2 ? display_text : range_text));
    o.Set("referenceRange", Json::Array()).Push(std::move(range));
  }

  Entry& e = Add("Observation", key, std::move(o));
  e.method = "PUT";
  e.url = Cat("Observation?identifier=", fhir::SearchToken(key_system, key));
  e.record.identifier = Cat(key_system, "|", key);
  e.record.patient_ref = patient_uuid_.empty() ? "" : Ref(patient_uuid_);
  e.record.code = r.test_system.empty() && r.test_code.empty()
                      ? ""
                      : Cat(SystemForCodingName(r.test_system, At(obs.obx, 3)), "|", r.test_code);
  if (r.test_code.empty()) e.record.code.clear();
  e.record.date = r.observation_date;
  e.record.status = status;
  e.record.category = aoe ? "" : "laboratory";
  r.observation_id = e.uuid;
  out_->domain.results.push_back(std::move(r));
  return e.uuid;
}

void Converter::MapOrder(const hl7::OrderObservation& order) {
  if (order.obr < 0) {
    if (order.orc >= 0) Report(Loc(order.orc), "ORC without OBR: order group not mapped");
    return;
  }
  const hl7::SegmentRef obr = m_.segment(order.obr);
  std::optional<hl7::SegmentRef> orc;
  if (order.orc >= 0) orc = m_.segment(order.orc);
  auto field = [&](int orc_field, int obr_field) -> Element {
    if (orc.has_value() && !orc->Field(orc_field).empty() && !orc->Field(orc_field).is_null()) {
      return orc->Field(orc_field);
    }
    return obr.Field(obr_field);
  };
  hl7::Ei placer = hl7::Ei::From(field(2, 2).Rep(1));
  hl7::Ei filler = hl7::Ei::From(field(3, 3).Rep(1));
  // DEV (docs/mapping-decisions.md): a placer number without an authority is
  // ours (lab-bridge is the only placer on the link), and a filler number
  // without one belongs to the sending lab, so both still get a system and
  // can be conditional keys.
  if (placer.assigning_authority.empty() && !Trim(placer.entity_identifier).empty()) {
    placer.assigning_authority.namespace_id = o_.pms_assigning_authority;
  }
  if (filler.assigning_authority.empty() && !Trim(filler.entity_identifier).empty()) {
    filler.assigning_authority.namespace_id = sender_;
  }
  if (orc.has_value()) {
    if (!orc->Field(2).empty() && !obr.Field(2).empty() &&
        Trim(orc->Field(2).value()) != Trim(obr.Field(2).value())) {
      Warn(Cat(Loc(order.obr, 2), ": ORC-2 and OBR-2 differ; ORC-2 used"));
    }
  }
  const std::string placer_number(Trim(placer.entity_identifier));
  const std::string filler_number(Trim(filler.entity_identifier));
  const std::string placer_system = SystemForHd(placer.assigning_authority);
  const std::string filler_system = SystemForHd(filler.assigning_authority);

  OrderRecord rec;
  rec.patient_index = std::max(patient_index_, 0);
  rec.placer_order_number = placer_number;
  rec.filler_order_number = filler_number;
  rec.test_code = std::string(Trim(obr.Field(4).Comp(1).value()));
  rec.test_name = std::string(Trim(obr.Field(4).Comp(2).value()));
  rec.result_status = std::string(Trim(obr.Field(25).value()));
  const int order_index = static_cast<int>(out_->domain.orders.size());

  // OBR-25 Y/Z: no order / no patient on record -> refuse the group.
  bool reject = false;
  bool equivalent = true;
  std::optional<std::string_view> report_status =
      MapReportStatus(rec.result_status, &reject, &equivalent);
  if (reject) {
    out_->rejected_orders = true;
    Warn(Cat(Loc(order.obr, 25), ": OBR-25 ", rec.result_status,
             " (no order/patient on record): order group refused"));
    Report(Loc(order.obr, 25), "OBR-25 Y/Z: order group refused, not mapped");
    for (const hl7::Observation& obs : order.observations) {
      Report(Loc(obs.obx), "in an order group refused for OBR-25 Y/Z: not mapped");
    }
    for (const hl7::Specimen& s : order.specimens) {
      for (const hl7::Observation& obs : s.observations) {
        Report(Loc(obs.obx), "in an order group refused for OBR-25 Y/Z: not mapped");
      }
    }
    return;
  }

  ObservationContext ctx;
  ctx.order_index = order_index;
  ctx.filler_system = filler_system;
  ctx.filler_number = filler_number;
  ctx.placer_number = placer_number;
  if (std::optional<std::string> t = Time(obr.Field(7), At(order.obr, 7), TimeKind::kDateTime)) {
    ctx.obr7 = *t;
    rec.observation_date = *t;
  }
  if (std::optional<std::string> t = Time(obr.Field(22), At(order.obr, 22), TimeKind::kInstant)) {
    ctx.issued = *t;
  }

  // ServiceRequest.
  Json sr = Json::Object();
  sr.Set("resourceType", "ServiceRequest");
  // ORC-9, read once: the businessEvent date and, for NW, authoredOn.
  std::optional<std::string> transaction_time;
  if (orc.has_value()) {
    transaction_time = Time(orc->Field(9), At(order.orc, 9), TimeKind::kDateTime);
  }
  if (const std::string_view control = orc.has_value() ? Trim(orc->Field(1).value()) : "";
      !control.empty()) {
    // MAPPING 5.3 / 8.6: the businessEvent extension keeps the raw ORC-1
    // (value) and ORC-9 (date), whether or not ORC-1 decided the status.
    Json event = Json::Object();
    event.Set("url", "http://hl7.org/fhir/StructureDefinition/businessEvent");
    Json& parts = event.Set("extension", Json::Array());
    Json value = Json::Object();
    value.Set("url", "value");
    value.Set("valueCodeableConcept",
              ConceptOf("http://terminology.hl7.org/CodeSystem/v2-0119", control));
    parts.Push(std::move(value));
    if (transaction_time.has_value()) {
      Json date = Json::Object();
      date.Set("url", "date");
      date.Set("valueDateTime", Json(*transaction_time));
      parts.Push(std::move(date));
    }
    sr.Set("extension", Json::Array()).Push(std::move(event));
  }
  Json sr_ids = Json::Array();
  if (std::optional<Json> id = Identifier(placer_number, placer.assigning_authority, "PLAC")) {
    sr_ids.Push(*id);
  }
  if (std::optional<Json> id = Identifier(filler_number, filler.assigning_authority, "FILL")) {
    sr_ids.Push(*id);
  }
  if (!sr_ids.empty()) sr.Set("identifier", sr_ids);
  if (orc.has_value()) {
    const hl7::Ei group = hl7::Ei::From(orc->Field(4).Rep(1));
    if (std::optional<Json> id =
            Identifier(group.entity_identifier, group.assigning_authority, "PGN")) {
      sr.Set("requisition", *std::move(id));
    }
  }
  std::string sr_status;
  if (orc.has_value()) {
    const std::string_view order_status = Trim(orc->Field(5).value());
    bool lenient = false;
    if (std::optional<std::string_view> s = MapOrderStatus(order_status, &lenient)) {
      sr_status = std::string(*s);
      if (lenient) Warn(Cat(Loc(order.orc, 5), ": order status matched case-insensitively"));
    } else if (order_status.empty()) {
      if (std::optional<std::string_view> s2 =
              MapOrderControl(Trim(orc->Field(1).value()), &lenient)) {
        sr_status = std::string(*s2);
        if (lenient) Warn(Cat(Loc(order.orc, 1), ": order control matched case-insensitively"));
      }
    } else {
      // MAPPING 8: an unmapped code falls back as stated (5.3: from OBR-25),
      // and is not lost: the report names it.
      Report(Loc(order.orc, 5),
             Cat("order status ", order_status, " not in table 0038; status derived from OBR-25"));
    }
  }
  if (sr_status.empty()) {
    const std::string_view r25 = rec.result_status;
    sr_status = (r25 == "F" || r25 == "C") ? "completed" : r25 == "X" ? "revoked" : "active";
  }
  sr.Set("status", Json(sr_status));
  sr.Set("intent", Json(Trim(obr.Field(11).value()) == "G" ? "reflex-order" : "order"));
  {
    std::string_view priority = Trim(obr.Field(5).value());
    std::string priority_location = Loc(order.obr, 5);
    if (priority.empty()) {
      priority = Trim(obr.Field(27).Comp(6).value());
      priority_location = Cat(Loc(order.obr, 27), ".6");
    }
    if (priority.empty() && orc.has_value()) {
      priority = Trim(orc->Field(7).Comp(6).value());
      priority_location = Cat(Loc(order.orc, 7), ".6");
    }
    for (int tq : order.timing) {
      if (priority.empty() && m_.segment(tq).name() == "TQ1") {
        priority = Trim(m_.segment(tq).Field(9).Comp(1).value());
        priority_location = Loc(tq, 9);
      }
    }
    bool lenient = false;
    if (std::optional<std::string_view> p = MapPriority(priority, &lenient)) {
      sr.Set("priority", Json(*p));
      if (lenient) Warn(Cat(priority_location, ": priority matched case-insensitively"));
    } else if (!priority.empty()) {
      // MAPPING 8.7: P, C, T, TS<n>, PRN have no FHIR priority; omitted, reported.
      Report(priority_location, Cat("priority ", priority, " has no FHIR ServiceRequest.priority"));
    }
  }
  Json obr_code = CodeableConcept(obr.Field(4).Rep(1), At(order.obr, 4));
  if (!obr_code.empty()) sr.Set("code", obr_code);
  if (!patient_uuid_.empty()) sr.Set("subject", Reference(patient_uuid_));
  if (std::optional<std::string> t = Time(obr.Field(6), At(order.obr, 6), TimeKind::kDateTime)) {
    sr.Set("occurrenceDateTime", Json(*t));
  }
  if (orc.has_value() && Trim(orc->Field(1).value()) == "NW" && transaction_time.has_value()) {
    sr.Set("authoredOn", Json(*transaction_time));
  }
  {
    std::string requester;
    if (orc.has_value()) requester = Practitioner(orc->Field(12).Rep(1), At(order.orc, 12));
    if (requester.empty()) requester = Practitioner(obr.Field(16).Rep(1), At(order.obr, 16));
    if (!requester.empty()) sr.Set("requester", Reference(requester));
  }
  {
    Json reasons = Json::Array();
    for (const Element& rep : obr.Field(31).Reps()) {
      Json cc = CodeableConcept(rep, At(order.obr, 31));
      if (!cc.empty()) reasons.Push(std::move(cc));
    }
    if (!reasons.empty()) sr.Set("reasonCode", std::move(reasons));
  }
  std::vector<Json> order_notes = Notes(order.notes);
  if (!order_notes.empty()) {
    Json& arr = sr.Set("note", Json::Array());
    for (Json& n : order_notes) arr.Push(std::move(n));
  }
  std::string sr_key = placer_number.empty()
                           ? Cat("filler|", filler_system, "|", filler_number, "|",
                                 placer_number.empty() && filler_number.empty()
                                     ? Cat(m_.control_id(), "|", order.obr)
                                     : "")
                           : Cat(placer_system, "|", placer_number);
  Entry& sr_entry = Add("ServiceRequest", sr_key, std::move(sr));
  const std::string sr_uuid = sr_entry.uuid;
  if (!placer_number.empty() && !placer_system.empty()) {
    sr_entry.if_none_exist = Cat("identifier=", fhir::SearchToken(placer_system, placer_number));
    sr_entry.record.identifier = Cat(placer_system, "|", placer_number);
  }
  sr_entry.record.patient_ref = patient_uuid_.empty() ? "" : Ref(patient_uuid_);
  sr_entry.record.status = sr_status;
  sr_entry.record.code =
      rec.test_code.empty()
          ? ""
          : Cat(SystemForCodingName(Trim(obr.Field(4).Comp(3).value()), At(order.obr, 4)), "|",
                rec.test_code);
  const std::string sr_code = sr_entry.record.code;  // sr_entry dangles after the next Add()
  ctx.service_request_uuid = sr_uuid;
  rec.service_request_id = sr_uuid;

  // Specimens: SPM, else one from OBR-7/OBR-15.
  std::vector<std::string> specimen_uuids;
  std::vector<std::string> spm_specimens;
  for (const hl7::Specimen& s : order.specimens) {
    const hl7::SegmentRef spm = m_.segment(s.spm);
    Json sp = Json::Object();
    sp.Set("resourceType", "Specimen");
    const Element spm2 = spm.Field(2);
    Json ids = Json::Array();
    const hl7::Hd placer_hd =
        hl7::Hd::FromSubcomponents(spm2.Comp(1).Sub(2).present() ? spm2.Comp(1) : Element());
    std::string_view spm_placer = Trim(spm2.Comp(1).Sub(1).value());
    std::string_view spm_filler = Trim(spm2.Comp(2).Sub(1).value());
    hl7::Hd placer_auth{spm2.Comp(1).Sub(2).value(), spm2.Comp(1).Sub(3).value(),
                        spm2.Comp(1).Sub(4).value()};
    hl7::Hd filler_auth{spm2.Comp(2).Sub(2).value(), spm2.Comp(2).Sub(3).value(),
                        spm2.Comp(2).Sub(4).value()};
    (void)placer_hd;
    std::string sp_key;
    if (std::optional<Json> id = Identifier(spm_placer, placer_auth, "PLAC")) {
      sp_key = Cat("PLAC|", SystemForHd(placer_auth), "|", spm_placer);
      ids.Push(*std::move(id));
    }
    if (std::optional<Json> id = Identifier(spm_filler, filler_auth, "FILL")) {
      sp_key = Cat("FILL|", SystemForHd(filler_auth), "|", spm_filler);
      sp.Set("accessionIdentifier", *id);
      ids.Push(*std::move(id));
    }
    if (!ids.empty()) sp.Set("identifier", std::move(ids));
    Json type = CodeableConcept(spm.Field(4).Rep(1), At(s.spm, 4));
    if (!type.empty()) sp.Set("type", std::move(type));
    if (!patient_uuid_.empty()) sp.Set("subject", Reference(patient_uuid_));
    if (std::optional<std::string> t = Time(spm.Field(18), At(s.spm, 18), TimeKind::kDateTime)) {
      sp.Set("receivedTime", Json(*t));
    }
    sp.Set("request", Json::Array()).Push(Reference(sr_uuid));
    Json collection = Json::Object();
    {
      std::optional<std::string> start =
          Time(spm.Field(17).Comp(1), At(s.spm, 17), TimeKind::kDateTime);
      std::optional<std::string> end =
          Time(spm.Field(17).Comp(2), At(s.spm, 17), TimeKind::kDateTime);
      if (start.has_value() && end.has_value() && *start != *end) {
        Json period = Json::Object();
        period.Set("start", Json(*start));
        period.Set("end", Json(*end));
        collection.Set("collectedPeriod", std::move(period));
      } else if (start.has_value()) {
        collection.Set("collectedDateTime", Json(*start));
      }
    }
    Json site = CodeableConcept(spm.Field(8).Rep(1), At(s.spm, 8));
    if (!site.empty()) collection.Set("bodySite", std::move(site));
    if (!collection.empty()) sp.Set("collection", std::move(collection));
    std::vector<Json> notes = Notes(s.notes);
    if (!notes.empty()) {
      Json& arr = sp.Set("note", Json::Array());
      for (Json& n : notes) arr.Push(std::move(n));
    }
    if (sp_key.empty()) sp_key = Cat("msg|", m_.control_id(), "|", s.spm);
    Entry& e = Add("Specimen", sp_key, std::move(sp));
    e.record.patient_ref = patient_uuid_.empty() ? "" : Ref(patient_uuid_);
    specimen_uuids.push_back(e.uuid);
    spm_specimens.push_back(e.uuid);
  }
  if (order.specimens.empty() && (!obr.Field(7).empty() || !obr.Field(15).empty())) {
    Json sp = Json::Object();
    sp.Set("resourceType", "Specimen");
    const Element sps = obr.Field(15).Rep(1).Comp(1);
    if (!sps.empty()) {
      Json type = Json::Object();
      const std::string_view code = Trim(sps.Sub(1).value());
      const std::string_view text = Trim(sps.Sub(2).value());
      if (!code.empty() && (sps.size() > 1)) {
        Json coding =
            CodingJson(SystemForCodingName(sps.Sub(3).value(), At(order.obr, 15)), code, text);
        type.Set("coding", Json::Array()).Push(std::move(coding));
      } else if (!code.empty()) {
        type.Set("text", Json(code));
      }
      if (!type.empty()) sp.Set("type", std::move(type));
    }
    if (!patient_uuid_.empty()) sp.Set("subject", Reference(patient_uuid_));
    if (std::optional<std::string> t =
            Time(obr.Field(14), At(order.obr, 14), TimeKind::kDateTime)) {
      sp.Set("receivedTime", Json(*t));
    }
    sp.Set("request", Json::Array()).Push(Reference(sr_uuid));
    Json collection = Json::Object();
    std::optional<std::string> end = Time(obr.Field(8), At(order.obr, 8), TimeKind::kDateTime);
    if (!ctx.obr7.empty() && end.has_value() && *end != ctx.obr7) {
      Json period = Json::Object();
      period.Set("start", Json(ctx.obr7));
      period.Set("end", Json(*end));
      collection.Set("collectedPeriod", std::move(period));
    } else if (!ctx.obr7.empty()) {
      collection.Set("collectedDateTime", Json(ctx.obr7));
    }
    if (!collection.empty()) sp.Set("collection", std::move(collection));
    Entry& e = Add("Specimen", Cat("obr|", sr_key), std::move(sp));
    e.record.patient_ref = patient_uuid_.empty() ? "" : Ref(patient_uuid_);
    specimen_uuids.push_back(e.uuid);
  }
  if (specimen_uuids.size() == 1) ctx.specimen_uuid = specimen_uuids.front();

  // Observations.
  std::vector<std::string> results;
  std::vector<std::string> supporting;  // AOE answers -> ServiceRequest.supportingInfo
  std::vector<std::string> narrative;   // rule T
  std::vector<std::string> performer_orgs;
  for (const hl7::Observation& obs : order.observations) {
    const hl7::SegmentRef obx = m_.segment(obs.obx);
    const std::string_view type = Trim(obx.Field(2).value());
    const bool text_type = type == "ST" || type == "TX" || type == "FT";
    if (text_type && obx.Field(3).empty()) {
      std::string text;
      const std::vector<Element> reps = obx.Field(5).Reps();
      for (size_t i = 0; i < reps.size(); ++i) {
        if (i > 0) text.push_back('\n');
        text += FullText(reps[i]);
      }
      narrative.push_back(text);
      ResultRecord r;
      r.patient_index = std::max(patient_index_, 0);
      r.order_index = order_index;
      r.value = text;
      r.value_type = std::string(type);
      r.set_id = std::string(Trim(obx.Field(1).value()));
      r.segment = Loc(obs.obx);
      r.result_status = std::string(Trim(obx.Field(11).value()));
      r.sending_facility = sending_facility_;
      r.filler_order_number = filler_number;
      r.placer_order_number = placer_number;
      r.observation_date = ctx.obr7;
      r.comments = NoteLines(obs.notes);
      out_->domain.results.push_back(std::move(r));
      Report(Loc(obs.obx), "text OBX without OBX-3: DiagnosticReport.presentedForm (rule T)");
      continue;
    }
    bool aoe = false;
    const std::string uuid = MapObservation(obs, ctx, false, &aoe);
    (aoe ? supporting : results).push_back(uuid);
    const std::string org = OrganizationFromXon(obx.Field(23).Rep(1), At(obs.obx, 23));
    if (!org.empty() &&
        std::find(performer_orgs.begin(), performer_orgs.end(), org) == performer_orgs.end()) {
      performer_orgs.push_back(org);
    }
    for (int other : obs.other) Report(Loc(other), "segment not mapped");
  }
  for (size_t i = 0; i < order.specimens.size(); ++i) {
    ObservationContext sctx = ctx;
    sctx.specimen_focus = spm_specimens[i];
    sctx.specimen_uuid.clear();
    for (const hl7::Observation& obs : order.specimens[i].observations) {
      bool aoe = false;
      const std::string uuid = MapObservation(obs, sctx, true, &aoe);
      if (aoe) supporting.push_back(uuid);
      for (int other : obs.other) Report(Loc(other), "segment not mapped");
    }
    for (int other : order.specimens[i].other) Report(Loc(other), "segment not mapped");
  }

  if (!supporting.empty()) {
    Json& info = entries_[entry_index_.at(sr_uuid)].resource.Set("supportingInfo", Json::Array());
    for (const std::string& uuid : supporting) info.Push(Reference(uuid));
  }

  // DiagnosticReport.
  Json dr = Json::Object();
  dr.Set("resourceType", "DiagnosticReport");
  Json dr_ids = Json::Array();
  if (std::optional<Json> id = Identifier(placer_number, placer.assigning_authority, "PLAC")) {
    dr_ids.Push(*std::move(id));
  }
  if (std::optional<Json> id = Identifier(filler_number, filler.assigning_authority, "FILL")) {
    dr_ids.Push(*std::move(id));
  }
  if (!dr_ids.empty()) dr.Set("identifier", std::move(dr_ids));
  dr.Set("basedOn", Json::Array()).Push(Reference(sr_uuid));
  std::string dr_status;
  if (report_status.has_value()) {
    dr_status = std::string(*report_status);
    if (!equivalent) {
      Json alt = Json::Object();
      Json ext = Json::Object();
      ext.Set("url", Json(kAlternateCodesExtension));
      ext.Set("valueCodeableConcept",
              ConceptOf("http://terminology.hl7.org/CodeSystem/v2-0123", rec.result_status));
      alt.Set("extension", Json::Array()).Push(std::move(ext));
      dr.Set("_status", std::move(alt));
    }
  } else {
    // Derive from OBX-11 (5.5).
    bool all_final = !order.observations.empty();
    bool any_corrected = false;
    bool any_preliminary = false;
    for (const hl7::Observation& obs : order.observations) {
      std::string_view s = Trim(m_.segment(obs.obx).Field(11).value());
      if (s.empty() && misplaced_status_.count(obs.obx) > 0) {
        s = Trim(m_.segment(obs.obx).Field(10).value());
      }
      if (s != "F") all_final = false;
      if (s == "C") any_corrected = true;
      if (s == "P" || s == "R") any_preliminary = true;
    }
    dr_status = any_corrected     ? "corrected"
                : any_preliminary ? "preliminary"
                : all_final       ? "final"
                                  : "unknown";
    if (!rec.result_status.empty()) {
      Report(Loc(order.obr, 25), "result status not in table 0123; derived from OBX-11");
    }
  }
  dr.Set("status", Json(dr_status));
  {
    Json categories = Json::Array();
    const std::string_view section = Trim(obr.Field(24).value());
    categories.Push(ConceptOf("http://terminology.hl7.org/CodeSystem/v2-0074",
                              section.empty() ? "LAB" : section));
    dr.Set("category", std::move(categories));
  }
  if (obr_code.empty()) {
    Json ext = Json::Object();
    ext.Set("url", Json(kDataAbsentExtension));
    ext.Set("valueCode", "unknown");
    obr_code.Set("extension", Json::Array()).Push(std::move(ext));
    Warn(Cat(Loc(order.obr, 4), ": order without a code"));
  }
  dr.Set("code", obr_code);
  if (!patient_uuid_.empty()) dr.Set("subject", Reference(patient_uuid_));
  {
    std::optional<std::string> end = Time(obr.Field(8), At(order.obr, 8), TimeKind::kDateTime);
    if (!ctx.obr7.empty() && end.has_value() && *end != ctx.obr7) {
      Json period = Json::Object();
      period.Set("start", Json(ctx.obr7));
      period.Set("end", Json(*end));
      dr.Set("effectivePeriod", std::move(period));
    } else if (!ctx.obr7.empty()) {
      dr.Set("effectiveDateTime", Json(ctx.obr7));
    }
  }
  if (!ctx.issued.empty()) dr.Set("issued", Json(ctx.issued));
  if (performer_orgs.empty() && !msh_org_uuid_.empty()) performer_orgs.push_back(msh_org_uuid_);
  if (!performer_orgs.empty()) {
    Json& arr = dr.Set("performer", Json::Array());
    for (const std::string& org : performer_orgs) arr.Push(Reference(org));
  }
  if (!specimen_uuids.empty()) {
    Json& arr = dr.Set("specimen", Json::Array());
    for (const std::string& s : specimen_uuids) arr.Push(Reference(s));
  }
  if (!results.empty()) {
    Json& arr = dr.Set("result", Json::Array());
    for (const std::string& r : results) arr.Push(Reference(r));
  }
  if (!narrative.empty()) {
    std::string text;
    for (size_t i = 0; i < narrative.size(); ++i) {
      if (i > 0) text.push_back('\n');
      text += narrative[i];
    }
    Json att = Json::Object();
    att.Set("contentType", "text/plain; charset=utf-8");
    att.Set("data", Json(Base64(text)));
    dr.Set("presentedForm", Json::Array()).Push(std::move(att));
  }
  std::string dr_key = filler_number.empty()
                           ? Cat("placer|", sr_key)
                           : Cat(filler_system, "|", filler_number, "|", rec.test_code);
  Entry& dr_entry = Add("DiagnosticReport", dr_key, std::move(dr));
  if (!filler_number.empty() && !filler_system.empty()) {
    dr_entry.method = "PUT";
    dr_entry.url =
        Cat("DiagnosticReport?identifier=", fhir::SearchToken(filler_system, filler_number));
    dr_entry.record.identifier = Cat(filler_system, "|", filler_number);
  }
  dr_entry.record.patient_ref = patient_uuid_.empty() ? "" : Ref(patient_uuid_);
  dr_entry.record.status = dr_status;
  dr_entry.record.date = ctx.obr7;
  dr_entry.record.category = std::string(
      Trim(obr.Field(24).value()).empty() ? std::string_view("LAB") : Trim(obr.Field(24).value()));
  dr_entry.record.code = sr_code;
  rec.diagnostic_report_id = dr_entry.uuid;
  out_->domain.orders.push_back(std::move(rec));
  for (int other : order.other) Report(Loc(other), "segment not mapped");
  for (int t : order.timing) {
    if (m_.segment(t).name() != "TQ1") Report(Loc(t), "segment not mapped");
  }
  if (order.ctd >= 0) Report(Loc(order.ctd), "segment not mapped");
  for (int f : order.ft1) Report(Loc(f), "segment not mapped");
  for (int c : order.cti) Report(Loc(c), "segment not mapped");
}

void Converter::Finish() {
  // Provenance.
  if (o_.include_provenance) {
    Json prov = Json::Object();
    prov.Set("resourceType", "Provenance");
    Json& targets = prov.Set("target", Json::Array());
    for (const Entry& e : entries_) targets.Push(Reference(e.uuid));
    const hl7::SegmentRef msh = m_.segment(0);
    if (std::optional<std::string> t = Time(msh.Field(7), "MSH-7", TimeKind::kDateTime)) {
      prov.Set("occurredDateTime", Json(*t));
    }
    const std::string recorded = Recorded(o_.now);
    prov.Set("recorded", Json(recorded));
    Json activity = Json::Object();
    Json coding = CodingJson(
        "http://hl7.org/fhir/uv/v2mappings/CodeSystem/provenance-activity-type-v2-to-fhir",
        "v2-fhir-transformation", "");
    activity.Set("coding", Json::Array()).Push(std::move(coding));
    activity.Set("text", Json(Cat("message - ", FullText(msh.Field(9)))));
    prov.Set("activity", std::move(activity));
    Json& agents = prov.Set("agent", Json::Array());
    if (!msh_org_uuid_.empty()) {
      Json a = Json::Object();
      a.Set("type", ConceptOf("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                              "author"));
      a.Set("who", Reference(msh_org_uuid_));
      agents.Push(std::move(a));
    }
    {
      Json a = Json::Object();
      a.Set("type", ConceptOf("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                              "assembler"));
      Json who = Json::Object();
      who.Set("display", "lab-bridge");
      a.Set("who", std::move(who));
      agents.Push(std::move(a));
    }
    if (!o_.source_message_id.empty()) {
      Json ent = Json::Object();
      ent.Set("role", "source");
      Json what = Json::Object();
      Json id = Json::Object();
      id.Set("system", Json(Cat(o_.base_uri, "/sid/hl7-message")));
      id.Set("value", Json(o_.source_message_id));
      what.Set("identifier", std::move(id));
      what.Set("display", Json(Cat("HL7 v2 message ", m_.control_id())));
      ent.Set("what", std::move(what));
      prov.Set("entity", Json::Array()).Push(std::move(ent));
    }
    Entry& e = Add("Provenance", Cat(sender_, "|", m_.control_id(), "|", entries_.size()),
                   std::move(prov));
    e.record.date = recorded;
  }

  // Bundle.
  const hl7::SegmentRef msh = m_.segment(0);
  std::string out;
  out.reserve(4096 + entries_.size() * 2048);  // ~1.4 KB per resource measured
  out.append(R"({"resourceType":"Bundle")");
  {
    Json id = Json::Object();
    std::string system = SystemForHd(hl7::Hd::FromComponents(msh.Field(4).Rep(1)));
    if (system.empty() || system.rfind(o_.base_uri, 0) == 0) {
      system = Cat(o_.base_uri, "/sid/", UrlComponent(sender_), "/message");
    }
    id.Set("system", Json(system));
    if (!Trim(m_.control_id()).empty()) {
      id.Set("value", Json(Trim(m_.control_id())));
      out.append(R"(,"identifier":)");
      id.AppendTo(&out);
    }
  }
  out.append(R"(,"type":"transaction")");
  {
    absl::StatusOr<hl7::DateTime> t = hl7::ParseDateTime(Trim(msh.Field(7).Comp(1).value()));
    if (t.ok() && t->year > 0 && t->precision >= hl7::DateTime::Precision::kSecond) {
      if (std::optional<std::string> ts = FhirInstant(*t, Offset(*t))) {
        out.append(R"(,"timestamp":)");
        fhir::AppendJsonString(*ts, &out);
      }
    } else if (!Trim(msh.Field(7).value()).empty()) {
      Report("MSH-7", "message time without seconds or invalid: Bundle.timestamp omitted");
    }
  }
  out.append(R"(,"entry":[)");
  {
    fhir::JsonSink sink(&out);
    out_->domain.resources.reserve(entries_.size());
    for (size_t i = 0; i < entries_.size(); ++i) {
      Entry& e = entries_[i];
      if (i > 0) sink.Put(',');
      sink.Append(R"({"fullUrl":"urn:uuid:)");
      sink.Append(e.uuid);  // hex and dashes only
      sink.Append(R"(","resource":)");
      // Serialized once, straight into the Bundle; the stored copy is a slice.
      const size_t start = sink.size();
      sink.Value(e.resource);
      e.record.json = std::string(sink.View(start));
      sink.Append(R"(,"request":{"method":)");
      sink.String(e.method);
      sink.Append(R"(,"url":)");
      sink.String(e.url);
      if (!e.if_none_exist.empty()) {
        sink.Append(R"(,"ifNoneExist":)");
        sink.String(e.if_none_exist);
      }
      sink.Append("}}");
      out_->domain.resources.push_back(std::move(e.record));
    }
    sink.Append("]}");
  }
  out_->bundle_json = std::move(out);
}

absl::Status Converter::Run() {
  if (m_.segment_count() == 0 || m_.segment(0).name() != "MSH") {
    return hl7::Hl7Error(absl::StatusCode::kInvalidArgument, hl7::ErrorCode::kSegmentSequenceError,
                         {.segment = "MSH"}, "message does not start with MSH");
  }
  if (m_.message_code() != "ORU" || (m_.trigger_event() != "R01" && !m_.trigger_event().empty())) {
    return hl7::Hl7Error(
        absl::StatusCode::kInvalidArgument, hl7::ErrorCode::kUnsupportedMessageType,
        {.segment = "MSH", .segment_sequence = 1, .field = 9},
        Cat("not an ORU^R01 message (", m_.message_code(), "^", m_.trigger_event(), ")"));
  }
  occurrence_.resize(static_cast<size_t>(m_.segment_count()));
  {
    std::map<std::string, int, std::less<>> counts;
    for (int i = 0; i < m_.segment_count(); ++i) {
      occurrence_[static_cast<size_t>(i)] = ++counts[std::string(m_.segment(i).name())];
    }
    // One result row per OBX: the records are large, so grow them once.
    if (auto obx = counts.find("OBX"); obx != counts.end()) {
      out_->domain.results.reserve(static_cast<size_t>(obx->second));
    }
  }
  const hl7::SegmentRef msh = m_.segment(0);
  const hl7::Hd facility = hl7::Hd::FromComponents(msh.Field(4).Rep(1));
  sending_facility_ = std::string(Trim(facility.namespace_id));
  if (sending_facility_.empty()) sending_facility_ = std::string(Trim(facility.universal_id));
  sender_ = sending_facility_;
  if (sender_.empty()) sender_ = std::string(Trim(msh.Field(3).Comp(1).value()));
  if (sender_.empty()) sender_ = "unknown";
  {
    absl::StatusOr<hl7::DateTime> t = hl7::ParseDateTime(Trim(msh.Field(7).Comp(1).value()));
    if (t.ok()) msh7_offset_ = t->utc_offset_minutes;
  }

  const hl7::OruR01 oru = hl7::GroupOruR01(m_);
  bool any_obr = false;
  for (const hl7::PatientResult& pr : oru.patient_results) {
    for (const hl7::OrderObservation& o : pr.orders) any_obr = any_obr || o.obr >= 0;
  }
  if (!any_obr) {
    return hl7::Hl7Error(absl::StatusCode::kInvalidArgument, hl7::ErrorCode::kRequiredFieldMissing,
                         {.segment = "OBR"}, "ORU^R01 without any OBR segment");
  }
  msh_org_uuid_ = OrganizationFromHd(facility);
  for (int s : oru.sft) Report(Loc(s), "segment not mapped (software segment)");
  for (const hl7::PatientResult& pr : oru.patient_results) {
    patient_uuid_.clear();
    if (pr.pid >= 0) {
      MapPatient(pr.pid);
    } else {
      Warn("PATIENT_RESULT without PID: results have no subject");
    }
    if (!pr.patient_notes.empty()) {
      for (int n : pr.patient_notes) Report(Loc(n), "NTE after PID: not mapped (IG maps nothing)");
    }
    if (pr.pd1 >= 0) Report(Loc(pr.pd1), "segment not mapped");
    for (int n : pr.nk1) Report(Loc(n), "segment not mapped");
    if (pr.pv1 >= 0) Report(Loc(pr.pv1), "PV1: Encounter not created (optional, MAPPING 3)");
    if (pr.pv2 >= 0) Report(Loc(pr.pv2), "segment not mapped");
    for (const hl7::OrderObservation& order : pr.orders) MapOrder(order);
    for (int other : pr.other) Report(Loc(other), "segment not mapped");
  }
  for (int u : oru.unplaced) Report(Loc(u), "segment outside any ORU^R01 group: not mapped");
  if (oru.dsc >= 0) Report(Loc(oru.dsc), "segment not mapped");

  // Field-level report for the segments we map.
  std::set<std::string> reported;
  for (const UnmappedItem& item : out_->report.items) reported.insert(item.location);
  for (int i = 0; i < m_.segment_count(); ++i) {
    const hl7::SegmentRef seg = m_.segment(i);
    const std::optional<std::uint64_t> mapped = MappedFields(seg.name());
    if (!mapped.has_value()) continue;
    if (reported.count(Loc(i)) > 0) continue;
    for (int f = 1; f <= seg.field_count(); ++f) {
      if (f < 64 && ((*mapped >> f) & 1) != 0) continue;
      if (f == 10 && misplaced_status_.count(i) > 0) continue;
      const Element field = seg.Field(f);
      if (field.empty() || Trim(field.encoded()).empty()) continue;
      const std::string loc = Loc(i, f);
      if (reported.count(loc) > 0) continue;
      Report(loc, "field not mapped");
    }
  }
  Finish();
  return absl::OkStatus();
}

}  // namespace

std::string UnmappedReport::ToText() const {
  std::string out;
  for (const UnmappedItem& item : items) Append(&out, item.location, ": ", item.reason, "\n");
  return out;
}

std::string UnmappedReport::ToJson() const {
  Json arr = Json::Array();
  for (const UnmappedItem& item : items) {
    Json o = Json::Object();
    o.Set("location", Json(item.location));
    o.Set("reason", Json(item.reason));
    arr.Push(std::move(o));
  }
  return arr.Serialize();
}

absl::StatusOr<Conversion> ConvertOru(const hl7::Message& message, const ConvertOptions& options) {
  // Every Json of this conversion lives in the converter: it dies before the arena resets.
  fhir::JsonArena::Scope json_arena;
  Conversion out;
  Converter converter(message, options, &out);
  absl::Status status = converter.Run();
  if (!status.ok()) return status;
  for (const std::string& w : message.warnings()) out.warnings.insert(out.warnings.begin(), w);
  return out;
}

std::string SourceMessageId(const hl7::Message& message) {
  // The same components api/service/ingest.cc stores in the audit row.
  return Cat(message.Get("MSH-3").value(), "|", message.Get("MSH-4").value(), "|",
             message.control_id());
}

absl::StatusOr<Conversion> ConvertOruText(std::string_view er7, const ConvertOptions& options) {
  absl::StatusOr<hl7::Message> message = hl7::Message::Parse(er7);
  if (!message.ok()) return message.status();
  return ConvertOru(*message, options);
}

}  // namespace bridge::v2_to_fhir
