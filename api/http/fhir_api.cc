// api/http/fhir_api.cc
#include "api/http/fhir_api.h"

#include <rapidjson/document.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"

#include "api/http/rest_api.h"
#include "api/service/fhir_search_values.h"
#include "mapping/fhir_to_v2/orm_builder.h"

namespace bridge::api::http {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::array<const char*, 7> kReadTypes = {
    "Patient",  "DiagnosticReport", "Observation", "ServiceRequest",
    "Specimen", "Practitioner",     "Organization"};

struct SearchParam {
  const char* name;
  const char* type;  // CapabilityStatement searchParam.type
};

// The search parameters each searchable type answers; the
// CapabilityStatement lists exactly these (and _count, _include).
const std::vector<SearchParam>* SearchParams(std::string_view type) {
  static const std::vector<SearchParam> kResults = {
      {"patient", "reference"}, {"subject", "reference"}, {"code", "token"},       {"date", "date"},
      {"category", "token"},    {"status", "token"},      {"_lastUpdated", "date"}};
  static const std::vector<SearchParam> kServiceRequest = {
      {"patient", "reference"}, {"subject", "reference"}, {"code", "token"},       {"date", "date"},
      {"status", "token"},      {"identifier", "token"},  {"_lastUpdated", "date"}};
  static const std::vector<SearchParam> kPatient = {
      {"identifier", "token"}, {"name", "string"}, {"birthdate", "date"}, {"_lastUpdated", "date"}};
  if (type == "Observation" || type == "DiagnosticReport") {
    return &kResults;
  }
  if (type == "ServiceRequest") {
    return &kServiceRequest;
  }
  if (type == "Patient") {
    return &kPatient;
  }
  return nullptr;
}

bool Supports(std::string_view type, std::string_view param) {
  const std::vector<SearchParam>* params = SearchParams(type);
  if (params == nullptr) {
    return false;
  }
  for (const SearchParam& p : *params) {
    if (param == p.name) {
      return true;
    }
  }
  return false;
}

bool IsOneOf(const std::string& type, const auto& types) {
  for (const char* t : types) {
    if (type == t) {
      return true;
    }
  }
  return false;
}

void Str(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string HttpDate(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone());
}

HttpResponse Fhir(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::string(kFhirJson) + "; charset=utf-8";
  r.body = std::move(body);
  return r;
}

// Forwards a stored resource's SAX events to a writer, except its top-level
// resourceType, id and meta (the caller writes those) and the outer braces.
// Numbers go through as written: a Document would turn 0.60 into 0.6, and a
// decimal's trailing zeros are its precision in FHIR.
class MembersExceptIdAndMeta
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, MembersExceptIdAndMeta> {
 public:
  explicit MembersExceptIdAndMeta(Writer& w) : w_(w) {}

  bool Null() {
    return Scalar([this] { return w_.Null(); });
  }
  bool Bool(bool b) {
    return Scalar([&] { return w_.Bool(b); });
  }
  bool Int(int i) {
    return Scalar([&] { return w_.Int(i); });
  }
  bool Uint(unsigned u) {
    return Scalar([&] { return w_.Uint(u); });
  }
  bool Int64(std::int64_t i) {
    return Scalar([&] { return w_.Int64(i); });
  }
  bool Uint64(std::uint64_t u) {
    return Scalar([&] { return w_.Uint64(u); });
  }
  bool Double(double d) {
    return Scalar([&] { return w_.Double(d); });
  }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    return Scalar([&] { return w_.RawValue(text, length, rapidjson::kNumberType); });
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return Scalar([&] { return w_.String(text, length); });
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    if (depth_ == 1) {
      const std::string_view name(text, length);
      skipping_ = name == "resourceType" || name == "id" || name == "meta";
    }
    return skipping_ || w_.Key(text, length);
  }
  bool StartObject() {
    return Open([this] { return w_.StartObject(); });
  }
  bool EndObject(rapidjson::SizeType) {
    return Close([this] { return w_.EndObject(); });
  }
  bool StartArray() {
    return depth_ > 0 && Open([this] { return w_.StartArray(); });  // a resource is an object
  }
  bool EndArray(rapidjson::SizeType) {
    return Close([this] { return w_.EndArray(); });
  }

 private:
  template <typename F>
  bool Scalar(F write) {
    if (depth_ == 0) {
      return false;  // a resource is an object
    }
    if (skipping_) {
      skipping_ = depth_ > 1;  // a skipped top-level member ends with its value
      return true;
    }
    return write();
  }
  template <typename F>
  bool Open(F write) {
    ++depth_;
    return depth_ == 1 || skipping_ || write();
  }
  template <typename F>
  bool Close(F write) {
    --depth_;
    if (depth_ == 0) {
      return true;
    }
    if (skipping_) {
      skipping_ = depth_ > 1;
      return true;
    }
    return write();
  }

  Writer& w_;
  int depth_ = 0;
  bool skipping_ = false;
};

// Whether `needle` occurs in `text` (glibc's memmem: std::string::find went
// through memchr once per '"' of the resource).
bool Contains(std::string_view text, std::string_view needle) {
  return ::memmem(text.data(), text.size(), needle.data(), needle.size()) != nullptr;
}

// Writes `json`, a complete JSON value, as the writer's next value: what
// Writer::RawValue does, with one memcpy instead of its copy a character at
// a time (a search Bundle is 40 KB of stored resources).
void RawJson(Writer& w, rapidjson::StringBuffer& buffer, std::string_view json,
             rapidjson::Type type) {
  w.RawValue(json.data(), 0, type);  // the comma before it, counted as a value
  std::memcpy(buffer.Push(json.size()), json.data(), json.size());
}

// The stored resource (no id) with resourceType, id and meta (versionId,
// lastUpdated) first.
std::string WithIdAndMeta(const storage::StoredFhirResource& stored) {
  const auto write_id_and_meta = [&stored](Writer& w) {
    w.Key("id");
    Str(w, stored.resource.id);
    w.Key("meta");
    w.StartObject();
    w.Key("versionId");
    Str(w, std::to_string(stored.version));
    w.Key("lastUpdated");
    Str(w, FormatFhirInstant(stored.last_updated));
    w.EndObject();
  };
  const std::string& json = stored.resource.json;
  const std::string type_member = "{\"resourceType\":\"" + stored.resource.resource_type + "\"";
  // What the mapping stores: resourceType first, no id or meta. The id and
  // meta then go in after resourceType as text; parsing and rewriting every
  // resource was a third of a search's CPU.
  if (json.size() > type_member.size() && json.compare(0, type_member.size(), type_member) == 0 &&
      (json[type_member.size()] == ',' || json[type_member.size()] == '}') &&
      !Contains(json, "\"id\"") && !Contains(json, "\"meta\"")) {
    rapidjson::StringBuffer head;
    Writer w(head);
    w.StartObject();
    write_id_and_meta(w);
    w.EndObject();
    // {"id":...,"meta":{...}} without its braces
    const std::string_view id_and_meta(head.GetString() + 1, head.GetSize() - 2);
    std::string out;
    out.reserve(json.size() + id_and_meta.size() + 1);
    out.append(type_member).append(",").append(id_and_meta).append(json, type_member.size());
    return out;
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("resourceType");
  Str(w, stored.resource.resource_type);
  write_id_and_meta(w);
  MembersExceptIdAndMeta members(w);
  rapidjson::Reader reader;
  rapidjson::StringStream in(json.c_str());
  if (!reader.Parse<rapidjson::kParseNumbersAsStringsFlag>(in, members)) {
    // Not JSON (never written by lab-bridge): answer with the id and meta only.
    buffer.Clear();
    Writer bare(buffer);
    bare.StartObject();
    bare.Key("resourceType");
    Str(bare, stored.resource.resource_type);
    write_id_and_meta(bare);
    bare.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize());
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    if (slash != 0) {
      parts.push_back(path.substr(0, slash));
    }
    if (slash == std::string_view::npos) {
      break;
    }
    path = path.substr(slash + 1);
  }
  return parts;
}

const char* PriorityCode(const std::string& v2) {
  if (v2 == "S") {
    return "stat";
  }
  if (v2 == "A") {
    return "asap";
  }
  return "routine";
}

const char* OrderStatusCode(const storage::StoredOrder& order) {
  const std::string& status = order.status;
  if (status == "cancelled") {
    return "revoked";
  }
  if (status == "resulted") {
    // Partly or preliminarily resulted: still active until every test is final.
    return order.result_status == "preliminary" ? "active" : "completed";
  }
  if (status == "failed" || status == "rejected") {
    return "entered-in-error";
  }
  return "active";
}

// A ServiceRequest for an order placed through lab-bridge ("order-<id>").
std::string OrderAsServiceRequest(const service::OrderView& view, const std::string& authority) {
  const storage::StoredOrder& o = view.order;
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("resourceType");
  w.String("ServiceRequest");
  w.Key("id");
  Str(w, "order-" + std::to_string(o.id));
  w.Key("meta");
  w.StartObject();
  w.Key("versionId");
  w.String("1");
  w.Key("lastUpdated");
  Str(w, FormatFhirInstant(o.created_at));
  w.EndObject();
  w.Key("identifier");
  w.StartArray();
  w.StartObject();
  w.Key("type");
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  w.StartObject();
  w.Key("system");
  w.String("http://terminology.hl7.org/CodeSystem/v2-0203");
  w.Key("code");
  w.String("PLAC");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.Key("system");
  Str(w, "urn:lab-bridge:placer:" + authority);
  w.Key("value");
  Str(w, o.placer_order_number);
  w.EndObject();
  w.EndArray();
  w.Key("status");
  w.String(OrderStatusCode(o));
  w.Key("intent");
  w.String("order");
  w.Key("priority");
  w.String(PriorityCode(o.priority));
  w.Key("code");
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  for (const std::string& code : o.test_codes) {
    w.StartObject();
    w.Key("system");
    Str(w, "urn:lab-bridge:test-code:" + authority);
    w.Key("code");
    Str(w, code);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.Key("subject");
  w.StartObject();
  w.Key("identifier");
  w.StartObject();
  w.Key("system");
  Str(w, "urn:lab-bridge:patient:" + authority);
  w.Key("value");
  Str(w, view.pms_patient_id);
  w.EndObject();
  w.EndObject();
  w.Key("authoredOn");
  Str(w, absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", o.created_at, absl::UTCTimeZone()));
  if (!o.ordering_provider.empty()) {
    w.Key("requester");
    w.StartObject();
    w.Key("display");
    Str(w, o.ordering_provider);
    w.EndObject();
  }
  w.EndObject();
  return buffer.GetString();
}

// FHIR date search prefixes -> the store's lexical [from, to).
bool ApplyDate(const std::string& value, std::string* from, std::string* to) {
  std::string prefix = value.size() > 2 ? value.substr(0, 2) : "";
  std::string date = value;
  if (prefix == "ge" || prefix == "gt" || prefix == "le" || prefix == "lt" || prefix == "eq") {
    date = value.substr(2);
  } else {
    prefix = "eq";
  }
  if (date.size() < 4 || !std::isdigit(static_cast<unsigned char>(date[0]))) {
    return false;
  }
  // Every stored value that starts with `date` sorts below date + "\x7f".
  const std::string after = date + "\x7f";
  const auto raise = [](std::string* bound, const std::string& v) {
    if (bound->empty() || v > *bound) {
      *bound = v;
    }
  };
  const auto lower = [](std::string* bound, const std::string& v) {
    if (bound->empty() || v < *bound) {
      *bound = v;
    }
  };
  if (prefix == "ge") {
    raise(from, date);
  }
  if (prefix == "gt") {
    raise(from, after);
  }
  if (prefix == "le") {
    lower(to, after);
  }
  if (prefix == "lt") {
    lower(to, date);
  }
  if (prefix == "eq") {
    raise(from, date);
    lower(to, after);
  }
  return true;
}

// A FHIR date or dateTime as the range of instants it names at its
// precision: "2026" is the whole year, "2026-11-28T06:10Z" that minute
// (UTC when no zone is given). nullopt when it is not one.
std::optional<std::pair<absl::Time, absl::Time>> InstantRange(std::string_view text) {
  const auto digits = [&](std::size_t at, std::size_t n, int* out) {
    if (at + n > text.size()) {
      return false;
    }
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
        return false;
      }
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  int year = 0;
  int month = 1;
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!digits(0, 4, &year)) {
    return std::nullopt;
  }
  if (text.size() == 4) {
    return std::make_pair(absl::FromCivil(absl::CivilYear(year), absl::UTCTimeZone()),
                          absl::FromCivil(absl::CivilYear(year + 1), absl::UTCTimeZone()));
  }
  if (text[4] != '-' || !digits(5, 2, &month) || month < 1 || month > 12) {
    return std::nullopt;
  }
  const absl::CivilMonth civil_month(year, month);
  if (text.size() == 7) {
    return std::make_pair(absl::FromCivil(civil_month, absl::UTCTimeZone()),
                          absl::FromCivil(civil_month + 1, absl::UTCTimeZone()));
  }
  if (text[7] != '-' || !digits(8, 2, &day) || day < 1 ||
      absl::CivilDay(year, month, day).month() != month) {
    return std::nullopt;
  }
  const absl::CivilDay civil_day(year, month, day);
  if (text.size() == 10) {
    return std::make_pair(absl::FromCivil(civil_day, absl::UTCTimeZone()),
                          absl::FromCivil(civil_day + 1, absl::UTCTimeZone()));
  }
  if (text[10] != 'T' || !digits(11, 2, &hour) || hour > 23 || text.size() < 16 ||
      text[13] != ':' || !digits(14, 2, &minute) || minute > 59) {
    return std::nullopt;
  }
  std::size_t at = 16;
  absl::Duration precision = absl::Minutes(1);
  absl::Duration fraction;
  if (at < text.size() && text[at] == ':') {
    if (!digits(at + 1, 2, &second) || second > 59) {
      return std::nullopt;
    }
    at += 3;
    precision = absl::Seconds(1);
    if (at < text.size() && text[at] == '.') {
      ++at;
      const std::size_t start = at;
      while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) &&
             at - start < 6) {
        precision /= 10;
        fraction += precision * (text[at] - '0');
        ++at;
      }
      if (at == start) {
        return std::nullopt;
      }
      while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) {
        ++at;  // beyond microseconds: the store keeps no finer time
      }
    }
  }
  absl::Duration offset;
  if (at < text.size()) {
    const std::string_view zone = text.substr(at);
    int zone_hours = 0;
    int zone_minutes = 0;
    if (zone == "Z") {
      // UTC
    } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
               digits(at + 1, 2, &zone_hours) && digits(at + 4, 2, &zone_minutes) &&
               zone_hours <= 14 && zone_minutes <= 59) {
      offset = absl::Hours(zone_hours) + absl::Minutes(zone_minutes);
      if (zone[0] == '-') {
        offset = -offset;
      }
    } else {
      return std::nullopt;
    }
  }
  const absl::Time start =
      absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                      absl::UTCTimeZone()) +
      fraction - offset;
  return std::make_pair(start, start + precision);
}

// _lastUpdated=[prefix]instant -> the store's [from, to).
bool ApplyInstant(const std::string& value, std::optional<absl::Time>* from,
                  std::optional<absl::Time>* to) {
  std::string prefix = "eq";
  std::string_view text = value;
  if (value.size() > 2 && std::isalpha(static_cast<unsigned char>(value[0]))) {
    prefix = value.substr(0, 2);
    text = text.substr(2);
  }
  const std::optional<std::pair<absl::Time, absl::Time>> range = InstantRange(text);
  if (!range.has_value()) {
    return false;
  }
  const auto raise = [](std::optional<absl::Time>* bound, absl::Time t) {
    if (!bound->has_value() || t > **bound) {
      *bound = t;
    }
  };
  const auto lower = [](std::optional<absl::Time>* bound, absl::Time t) {
    if (!bound->has_value() || t < **bound) {
      *bound = t;
    }
  };
  if (prefix == "eq") {
    raise(from, range->first);
    lower(to, range->second);
  } else if (prefix == "ge") {
    raise(from, range->first);
  } else if (prefix == "gt") {
    raise(from, range->second);
  } else if (prefix == "le") {
    lower(to, range->second);
  } else if (prefix == "lt") {
    lower(to, range->first);
  } else {
    return false;
  }
  return true;
}

// identifier=[system]|value, |value (no system), system| (any value), value.
storage::FhirValueCondition IdentifierCondition(const std::string& value) {
  storage::FhirValueCondition c;
  c.name = "identifier";
  const std::size_t bar = value.find('|');
  if (bar == std::string::npos) {
    c.value = value;
  } else {
    c.system = value.substr(0, bar);
    c.value = value.substr(bar + 1);
  }
  return c;
}

// The PMS id a stored Patient carries, "" when it has none: the value of
// the identifier issued by our assigning authority. The v2 mapping writes
// PID-3 of that authority with `assigner.display` = the authority (system
// <base>/sid/<authority>); the Patients of orders and AuditEvents here use
// the system urn:lab-bridge:patient:<authority>.
std::string PmsPatientId(const std::string& patient_json, const std::string& authority) {
  rapidjson::Document doc;
  doc.Parse(patient_json.c_str(), patient_json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("identifier") ||
      !doc["identifier"].IsArray()) {
    return "";
  }
  const std::string our_system = "urn:lab-bridge:patient:" + authority;
  const std::string sid_suffix = "/sid/" + authority;
  for (const rapidjson::Value& id : doc["identifier"].GetArray()) {
    if (!id.IsObject() || !id.HasMember("value") || !id["value"].IsString()) {
      continue;
    }
    const std::string system =
        id.HasMember("system") && id["system"].IsString() ? id["system"].GetString() : "";
    const bool by_system =
        system == our_system ||
        (system.size() > sid_suffix.size() &&
         system.compare(system.size() - sid_suffix.size(), sid_suffix.size(), sid_suffix) == 0);
    const bool by_assigner = id.HasMember("assigner") && id["assigner"].IsObject() &&
                             id["assigner"].HasMember("display") &&
                             id["assigner"]["display"].IsString() &&
                             authority == id["assigner"]["display"].GetString();
    if (by_system || by_assigner) {
      return id["value"].GetString();
    }
  }
  return "";
}

std::string BaseUrl(const HttpRequest& request) {
  std::string host(request.Header("host"));
  if (host.empty()) {
    host = "localhost";
  }
  return "http://" + host + "/fhir";
}

}  // namespace

HttpResponse FhirError(int http_status, std::string_view issue_code, std::string_view message) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("resourceType");
  w.String("OperationOutcome");
  w.Key("issue");
  w.StartArray();
  w.StartObject();
  w.Key("severity");
  w.String(http_status >= 500 ? "fatal" : "error");
  w.Key("code");
  Str(w, issue_code);
  w.Key("diagnostics");
  Str(w, message);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  HttpResponse r = Fhir(http_status, buffer.GetString());
  if (http_status == 401) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lab-bridge\"");
  }
  return r;
}

HttpResponse ToOperationOutcome(const absl::Status& status) {
  const int code = HttpStatusFor(status);
  std::string_view issue = "exception";
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      issue = "invalid";
      break;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      issue = "security";
      break;
    case absl::StatusCode::kNotFound:
      issue = "not-found";
      break;
    case absl::StatusCode::kAlreadyExists:
      issue = "duplicate";
      break;
    case absl::StatusCode::kFailedPrecondition:
      issue = "business-rule";
      break;
    case absl::StatusCode::kUnimplemented:
      issue = "not-supported";
      break;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      issue = "transient";
      break;
    default:
      break;
  }
  if (code == 500) {
    return FhirError(500, issue, "internal error");
  }
  return FhirError(code, issue, std::string(status.message()));
}

HttpResponse FhirApi::Handle(const HttpRequest& request) {
  service::Principal who{"-", 0};
  std::vector<std::string> patients;
  HttpResponse response = Dispatch(request, &who, &patients);
  const std::vector<std::string_view> parts = Split(request.path);
  const bool metadata = parts.size() == 2 && parts[1] == "metadata";
  if (audit_ != nullptr && !metadata) {
    // The audit names patients by PMS id, as the REST and gRPC paths do, so
    // one query by PMS id finds every protocol's accesses to that patient.
    // Orders already give PMS ids; resources give "Patient/<id>" references.
    std::sort(patients.begin(), patients.end());
    patients.erase(std::unique(patients.begin(), patients.end()), patients.end());
    for (std::string& p : patients) {
      if (p.rfind("Patient/", 0) == 0) {
        p = AuditPatientId(p.substr(8));
      }
    }
    std::sort(patients.begin(), patients.end());
    patients.erase(std::unique(patients.begin(), patients.end()), patients.end());
    if (!patients.empty() && patients.front().empty()) {
      patients.erase(patients.begin());
    }
    service::AccessEvent event;
    event.time = absl::Now();
    event.who = who.name;
    event.protocol = "fhir";
    event.action = request.method == "POST" ? "create" : "read";
    event.what = request.method + " " + request.path;
    event.patients = std::move(patients);
    event.outcome = response.status;
    event.source = request.peer_address;
    if (absl::Status s = audit_->Record(event); !s.ok()) {
      return FhirError(503, "transient", "access audit unavailable");
    }
  }
  return response;
}

std::string FhirApi::AuditPatientId(const std::string& fhir_patient_id) {
  absl::StatusOr<storage::StoredFhirResource> patient =
      store_.GetFhirResource("Patient", fhir_patient_id);
  if (!patient.ok()) {
    // Not stored (a reference to a Patient lab-bridge never received), or
    // the store failed: the audit still says which reference was touched.
    return fhir_patient_id;
  }
  const std::string pms_id = PmsPatientId(patient->resource.json, authority_);
  return pms_id.empty() ? fhir_patient_id : pms_id;
}

HttpResponse FhirApi::Dispatch(const HttpRequest& request, service::Principal* who,
                               std::vector<std::string>* patients) {
  const std::vector<std::string_view> parts = Split(request.path);
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  if (parts.size() < 2) {
    return FhirError(404, "not-found", "no such path: " + request.path);
  }
  const std::string type(parts[1]);

  if (parts.size() == 2 && type == "metadata") {
    if (!get) {
      return FhirError(405, "not-supported", "method not allowed");
    }
    std::string body =
        R"({"resourceType":"CapabilityStatement","status":"active","date":"2026-11-28",)"
        R"("kind":"instance","software":{"name":"lab-bridge"},)"
        R"("implementation":{"description":"lab-bridge FHIR R4 facade"},)"
        R"("fhirVersion":"4.0.1","format":["application/fhir+json"],"rest":[{"mode":"server",)"
        // No security.service code: the restful-security-service codes
        // (OAuth, SMART-on-FHIR, Basic, ...) all name schemes this server
        // does not run. Its tokens are opaque bearer tokens it issues itself.
        R"("security":{"description":"Opaque bearer tokens issued by the operator with )"
        R"(`lab-bridge token create` (no OAuth, no SMART), sent as )"
        R"('Authorization: Bearer <token>'. Roles: results:read (read, vread, search), )"
        R"(orders:write (create ServiceRequest), audit:read (AuditEvent). )"
        R"(401 without a valid token, 403 without the role."},"resource":[)";
    bool first = true;
    for (const char* t : kReadTypes) {
      if (!first) {
        body += ",";
      }
      first = false;
      body +=
          std::string(R"({"type":")") + t + R"(","interaction":[{"code":"read"},{"code":"vread"})";
      const std::string name(t);
      if (const std::vector<SearchParam>* params = SearchParams(name); params != nullptr) {
        body += R"(,{"code":"search-type"})";
        if (name == "ServiceRequest") {
          body += R"(,{"code":"create"})";
        }
        body += name == "DiagnosticReport"
                    ? R"(],"searchInclude":["DiagnosticReport:result"],"searchParam":[)"
                    : R"(],"searchParam":[)";
        for (std::size_t i = 0; i < params->size(); ++i) {
          body += std::string(i == 0 ? "" : ",") + R"({"name":")" + (*params)[i].name +
                  R"(","type":")" + (*params)[i].type + R"("})";
        }
        body += "]}";
      } else {
        body += "]}";
      }
    }
    // The access audit, searchable only (SearchAuditEvents).
    body += R"(,{"type":"AuditEvent","interaction":[{"code":"search-type"}],"searchParam":[)"
            R"({"name":"patient","type":"reference"},{"name":"entity-id","type":"token"}]})";
    body += "]}]}";
    return Fhir(200, std::move(body));
  }

  if (type == "AuditEvent" && parts.size() == 2) {
    if (!get) {
      return FhirError(405, "not-supported", "method not allowed");
    }
    absl::StatusOr<service::Principal> authorized =
        Authorize(tokens_, request, service::Role::kAuditRead, who);
    if (!authorized.ok()) {
      return ToOperationOutcome(authorized.status());
    }
    return SearchAuditEvents(request);
  }
  const bool read_route = parts.size() == 3 || (parts.size() == 5 && parts[3] == "_history");
  if (!IsOneOf(type, kReadTypes) || (parts.size() != 2 && !read_route)) {
    return FhirError(404, "not-found", "no such path: " + request.path);
  }
  std::optional<service::Role> role;
  if (get) {
    role = service::Role::kResultsRead;
  }
  if (post && parts.size() == 2 && type == "ServiceRequest") {
    role = service::Role::kOrdersWrite;
  }
  if (parts.size() == 2 && get && SearchParams(type) == nullptr) {
    return FhirError(400, "not-supported", "search is not supported for " + type);
  }
  if (!role.has_value()) {
    HttpResponse r = FhirError(405, "not-supported", "method not allowed");
    r.headers.emplace_back(
        "Allow", parts.size() == 2 && type == "ServiceRequest" ? "GET, HEAD, POST" : "GET, HEAD");
    return r;
  }
  absl::StatusOr<service::Principal> authorized = Authorize(tokens_, request, *role, who);
  if (!authorized.ok()) {
    return ToOperationOutcome(authorized.status());
  }

  if (post) {
    return CreateServiceRequest(request, patients);
  }
  if (parts.size() == 2) {
    return Search(request, type, patients);
  }
  return Read(type, std::string(parts[2]), parts.size() == 5 ? std::string(parts[4]) : "",
              patients);
}

HttpResponse FhirApi::Read(const std::string& type, const std::string& id, const std::string& vid,
                           std::vector<std::string>* patients) {
  if (type == "ServiceRequest" && id.rfind("order-", 0) == 0) {
    std::int64_t order_id = 0;
    const std::string digits = id.substr(6);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), order_id);
    if (ec != std::errc() || end != digits.data() + digits.size() || (!vid.empty() && vid != "1")) {
      return FhirError(404, "not-found", type + "/" + id + " not found");
    }
    absl::StatusOr<service::OrderView> order = orders_.Get(order_id);
    if (!order.ok()) {
      return ToOperationOutcome(order.status());
    }
    patients->push_back(order->pms_patient_id);
    HttpResponse r = Fhir(200, OrderAsServiceRequest(*order, authority_));
    r.headers.emplace_back("ETag", "W/\"1\"");
    r.headers.emplace_back("Last-Modified", HttpDate(order->order.created_at));
    return r;
  }
  absl::StatusOr<storage::StoredFhirResource> stored = store_.GetFhirResource(type, id);
  if (!stored.ok()) {
    return ToOperationOutcome(stored.status());
  }
  if (!vid.empty() && vid != std::to_string(stored->version)) {
    return FhirError(404, "not-found",
                     type + "/" + id + "/_history/" + vid + " is not kept (only the current)");
  }
  patients->push_back(stored->resource.patient_reference);
  HttpResponse r = Fhir(200, WithIdAndMeta(*stored));
  r.headers.emplace_back("ETag", "W/\"" + std::to_string(stored->version) + "\"");
  r.headers.emplace_back("Last-Modified", HttpDate(stored->last_updated));
  return r;
}

HttpResponse FhirApi::Search(const HttpRequest& request, const std::string& type,
                             std::vector<std::string>* patients) {
  const bool strict =
      absl::AsciiStrToLower(std::string(request.Header("prefer"))).find("handling=strict") !=
      std::string::npos;
  storage::FhirQuery query;
  query.resource_type = type;
  query.limit = 50;
  bool include_results = false;
  std::string self;
  std::optional<storage::FhirValueCondition> birthdate;
  // Orders placed here (ServiceRequest/order-N) live in lab_orders, not among
  // the stored resources; an identifier search names them by placer number.
  std::optional<storage::FhirValueCondition> placer;
  bool filters_beyond_identifier = false;
  for (const auto& [name, value] : request.query) {
    bool used = true;
    if (name.rfind('_', 0) != 0 && !Supports(type, name)) {
      used = false;
      if (strict) {
        return FhirError(400, "not-supported", "unsupported search parameter: " + name);
      }
    } else if (name == "patient" || name == "subject") {
      query.patient_reference = value.find('/') == std::string::npos ? "Patient/" + value : value;
      filters_beyond_identifier = true;
    } else if (name == "code") {
      query.code = value;
      filters_beyond_identifier = true;
    } else if (name == "status") {
      query.status = value;
    } else if (name == "category") {
      query.category = value;
    } else if (name == "date") {
      if (!ApplyDate(value, &query.date_from, &query.date_to)) {
        return FhirError(400, "invalid",
                         "date: expected [ge|gt|le|lt|eq]YYYY[-MM[-DD[Thh:mm...]]]");
      }
      filters_beyond_identifier = true;
    } else if (name == "_lastUpdated" && Supports(type, name)) {
      if (!ApplyInstant(value, &query.last_updated_from, &query.last_updated_to)) {
        return FhirError(400, "invalid",
                         "_lastUpdated: expected [ge|gt|le|lt|eq]YYYY[-MM[-DD[Thh:mm[:ss[.s]]"
                         "(Z|+hh:mm)]]]");
      }
      filters_beyond_identifier = true;
    } else if (name == "identifier") {
      if (value.empty() || value == "|") {
        return FhirError(400, "invalid", "identifier: expected [system]|value or value");
      }
      query.value_conditions.push_back(IdentifierCondition(value));
      placer = query.value_conditions.back();
    } else if (name == "name") {
      storage::FhirValueCondition c;
      c.name = "name";
      c.match = storage::FhirValueCondition::Match::kPrefix;
      c.value = service::NormalizeNameForSearch(value);
      if (c.value.empty()) {
        return FhirError(400, "invalid", "name: expected the start of a name");
      }
      query.value_conditions.push_back(std::move(c));
    } else if (name == "birthdate") {
      if (!birthdate.has_value()) {
        birthdate.emplace();
        birthdate->name = "birthdate";
        birthdate->match = storage::FhirValueCondition::Match::kRange;
      }
      if (!ApplyDate(value, &birthdate->from, &birthdate->to)) {
        return FhirError(400, "invalid", "birthdate: expected [ge|gt|le|lt|eq]YYYY[-MM[-DD]]");
      }
    } else if (name == "_count") {
      int count = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), count);
      if (ec != std::errc() || end != value.data() + value.size() || count < 1 || count > 1000) {
        return FhirError(400, "invalid", "_count: expected 1-1000");
      }
      query.limit = count;
    } else if (name == "_include") {
      if (type != "DiagnosticReport" || value != "DiagnosticReport:result") {
        return FhirError(400, "not-supported",
                         "_include: only DiagnosticReport:result is supported");
      }
      include_results = true;
    } else if (name == "_cursor") {
      query.cursor = value;
      continue;  // not part of self
    } else if (name == "_lastUpdated") {
      used = false;  // not for this type (AuditEvent has its own search)
      if (strict) {
        return FhirError(400, "not-supported", "unsupported search parameter: " + name);
      }
    } else {
      used = false;
      if (strict) {
        return FhirError(400, "not-supported", "unsupported search parameter: " + name);
      }
    }
    if (used) {
      self += (self.empty() ? "" : "&") + PercentEncode(name) + "=" + PercentEncode(value);
    }
  }
  if (birthdate.has_value()) {
    query.value_conditions.push_back(*std::move(birthdate));
  }
  absl::StatusOr<storage::FhirPage> page = store_.SearchFhirResources(query);
  if (!page.ok()) {
    return ToOperationOutcome(page.status());
  }
  std::vector<service::OrderView> orders;
  if (type == "ServiceRequest" && placer.has_value() && !filters_beyond_identifier &&
      query.cursor.empty() && !placer->value.empty() &&
      (!placer->system.has_value() || *placer->system == "urn:lab-bridge:placer:" + authority_)) {
    absl::StatusOr<storage::StoredOrder> found = store_.FindOrderByPlacerNumber(placer->value);
    if (!found.ok() && !absl::IsNotFound(found.status())) {
      return ToOperationOutcome(found.status());
    }
    if (found.ok()) {
      absl::StatusOr<service::OrderView> view = orders_.Get(found->id);
      if (!view.ok()) {
        return ToOperationOutcome(view.status());
      }
      if (query.status.empty() || query.status == OrderStatusCode(view->order)) {
        orders.push_back(*std::move(view));
      }
    }
  }

  const std::string base = BaseUrl(request);
  // Sized for the page up front, so the Bundle is not moved as it grows.
  std::size_t estimate = 1024;
  for (const auto& resource : page->resources) {
    estimate += resource.resource.json.size() + 256;
  }
  rapidjson::StringBuffer buffer(nullptr, estimate + 1024 * orders.size());
  Writer w(buffer);
  w.StartObject();
  w.Key("resourceType");
  w.String("Bundle");
  w.Key("type");
  w.String("searchset");
  // The total of this page's matches when it is the only page; the store
  // does not count further pages, so `total` is omitted when there is a next.
  if (page->next_cursor.empty() && query.cursor.empty()) {
    w.Key("total");
    w.Uint64(page->resources.size() + orders.size());
  }
  w.Key("link");
  w.StartArray();
  w.StartObject();
  w.Key("relation");
  w.String("self");
  w.Key("url");
  Str(w, base + "/" + type + (self.empty() ? "" : "?" + self));
  w.EndObject();
  if (!page->next_cursor.empty()) {
    w.StartObject();
    w.Key("relation");
    w.String("next");
    w.Key("url");
    Str(w, base + "/" + type + "?" + (self.empty() ? "" : self + "&") +
               "_cursor=" + PercentEncode(page->next_cursor));
    w.EndObject();
  }
  w.EndArray();
  w.Key("entry");
  w.StartArray();
  for (const service::OrderView& order : orders) {
    patients->push_back(order.pms_patient_id);
    w.StartObject();
    w.Key("fullUrl");
    Str(w, base + "/ServiceRequest/order-" + std::to_string(order.order.id));
    w.Key("resource");
    const std::string json = OrderAsServiceRequest(order, authority_);
    RawJson(w, buffer, json, rapidjson::kObjectType);
    w.Key("search");
    w.StartObject();
    w.Key("mode");
    w.String("match");
    w.EndObject();
    w.EndObject();
  }
  for (const storage::StoredFhirResource& stored : page->resources) {
    patients->push_back(stored.resource.patient_reference);
    w.StartObject();
    w.Key("fullUrl");
    Str(w, base + "/" + type + "/" + stored.resource.id);
    w.Key("resource");
    const std::string json = WithIdAndMeta(stored);
    RawJson(w, buffer, json, rapidjson::kObjectType);
    w.Key("search");
    w.StartObject();
    w.Key("mode");
    w.String("match");
    w.EndObject();
    w.EndObject();
  }
  // _include=DiagnosticReport:result: each report's Observations, once.
  std::set<std::string> included;
  for (const storage::StoredFhirResource& stored :
       include_results ? page->resources : std::vector<storage::StoredFhirResource>{}) {
    rapidjson::Document report;
    report.Parse(stored.resource.json.c_str(), stored.resource.json.size());
    if (report.HasParseError() || !report.IsObject() || !report.HasMember("result") ||
        !report["result"].IsArray()) {
      continue;
    }
    for (const rapidjson::Value& ref : report["result"].GetArray()) {
      if (!ref.IsObject() || !ref.HasMember("reference") || !ref["reference"].IsString()) {
        continue;
      }
      std::string id = ref["reference"].GetString();
      for (const char* prefix : {"Observation/", "urn:uuid:"}) {
        if (id.rfind(prefix, 0) == 0) {
          id = id.substr(std::string(prefix).size());
        }
      }
      if (!included.insert(id).second) {
        continue;
      }
      absl::StatusOr<storage::StoredFhirResource> obs = store_.GetFhirResource("Observation", id);
      if (absl::IsNotFound(obs.status())) {
        continue;
      }
      if (!obs.ok()) {
        return ToOperationOutcome(obs.status());
      }
      w.StartObject();
      w.Key("fullUrl");
      Str(w, base + "/Observation/" + id);
      w.Key("resource");
      const std::string json = WithIdAndMeta(*obs);
      RawJson(w, buffer, json, rapidjson::kObjectType);
      w.Key("search");
      w.StartObject();
      w.Key("mode");
      w.String("include");
      w.EndObject();
      w.EndObject();
    }
  }
  w.EndArray();
  w.EndObject();
  return Fhir(200, std::string(buffer.GetString(), buffer.GetSize()));
}

// The access audit (api/service/access_audit.h) as FHIR AuditEvents.
HttpResponse FhirApi::SearchAuditEvents(const HttpRequest& request) {
  if (audit_ == nullptr) {
    return FhirError(501, "not-supported", "access audit is not configured");
  }
  int count = 50;
  std::string patient;
  for (const auto& [name, value] : request.query) {
    if (name == "_count") {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), count);
      if (ec != std::errc() || end != value.data() + value.size() || count < 1 || count > 1000) {
        return FhirError(400, "invalid", "_count: expected 1-1000");
      }
    } else if (name == "patient" || name == "entity-id") {
      patient = value.rfind("Patient/", 0) == 0 ? value.substr(8) : value;
    } else {
      return FhirError(400, "not-supported", "unsupported search parameter: " + name);
    }
  }
  if (!patient.empty()) {
    // The audit names patients by PMS id; a client may name the Patient by
    // its FHIR id (a UUID for those stored from ORUs).
    patient = AuditPatientId(patient);
  }
  absl::StatusOr<std::vector<service::AccessEvent>> events = audit_->Query(patient, count);
  if (!events.ok()) {
    return ToOperationOutcome(events.status());
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("resourceType");
  w.String("Bundle");
  w.Key("type");
  w.String("searchset");
  w.Key("entry");
  w.StartArray();
  for (const service::AccessEvent& e : *events) {
    w.StartObject();
    w.Key("resource");
    w.StartObject();
    w.Key("resourceType");
    w.String("AuditEvent");
    w.Key("type");
    w.StartObject();
    w.Key("system");
    w.String("http://terminology.hl7.org/CodeSystem/audit-event-type");
    w.Key("code");
    w.String("rest");
    w.Key("display");
    w.String("RESTful Operation");
    w.EndObject();
    w.Key("action");
    w.String(e.action == "create" ? "C" : e.action == "update" ? "U" : "R");
    w.Key("recorded");
    Str(w, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", e.time, absl::UTCTimeZone()));
    w.Key("outcome");
    // 0 success, 4 minor failure (refused/not found), 8 serious (server error).
    const bool ok = e.protocol == "grpc" ? e.outcome == 0 : e.outcome < 400;
    const bool serious =
        e.protocol == "grpc" ? (e.outcome == 13 || e.outcome == 14) : e.outcome >= 500;
    w.String(ok ? "0" : serious ? "8" : "4");
    w.Key("outcomeDesc");
    Str(w, e.protocol + " " + std::to_string(e.outcome));
    w.Key("agent");
    w.StartArray();
    w.StartObject();
    w.Key("who");
    w.StartObject();
    w.Key("display");
    Str(w, e.who);
    w.EndObject();
    w.Key("requestor");
    w.Bool(true);
    if (!e.source.empty()) {
      w.Key("network");
      w.StartObject();
      w.Key("address");
      Str(w, e.source);
      w.Key("type");
      w.String("2");
      w.EndObject();
    }
    w.EndObject();
    w.EndArray();
    w.Key("source");
    w.StartObject();
    w.Key("observer");
    w.StartObject();
    w.Key("display");
    w.String("lab-bridge");
    w.EndObject();
    w.EndObject();
    w.Key("entity");
    w.StartArray();
    w.StartObject();
    w.Key("description");
    Str(w, e.what);
    w.EndObject();
    for (const std::string& p : e.patients) {
      w.StartObject();
      w.Key("what");
      w.StartObject();
      w.Key("identifier");
      w.StartObject();
      w.Key("system");
      Str(w, "urn:lab-bridge:patient:" + authority_);
      w.Key("value");
      Str(w, p);
      w.EndObject();
      w.EndObject();
      w.Key("type");
      w.StartObject();
      w.Key("system");
      w.String("http://terminology.hl7.org/CodeSystem/audit-entity-type");
      w.Key("code");
      w.String("1");
      w.Key("display");
      w.String("Person");
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.Key("search");
    w.StartObject();
    w.Key("mode");
    w.String("match");
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Fhir(200, buffer.GetString());
}

HttpResponse FhirApi::CreateServiceRequest(const HttpRequest& request,
                                           std::vector<std::string>* patients) {
  // A new ServiceRequest has no id or placer identifier yet (lab-bridge
  // assigns the placer number); the mapping wants one, so give it a
  // stand-in, whether it comes bare or inside a (transaction) Bundle.
  std::string body = request.body;
  {
    rapidjson::Document doc;
    doc.Parse(body.c_str(), body.size());
    const auto is_a = [](const rapidjson::Value& v, std::string_view type) {
      return v.IsObject() && v.HasMember("resourceType") && v["resourceType"].IsString() &&
             std::string_view(v["resourceType"].GetString()) == type;
    };
    std::vector<rapidjson::Value*> service_requests;
    if (!doc.HasParseError() && is_a(doc, "ServiceRequest")) {
      service_requests.push_back(&doc);
    } else if (!doc.HasParseError() && is_a(doc, "Bundle") && doc.HasMember("entry") &&
               doc["entry"].IsArray()) {
      for (rapidjson::Value& entry : doc["entry"].GetArray()) {
        if (entry.IsObject() && entry.HasMember("resource") &&
            is_a(entry["resource"], "ServiceRequest")) {
          service_requests.push_back(&entry["resource"]);
        }
      }
    }
    // More than one ServiceRequest is the mapping's error to report.
    if (service_requests.size() == 1 && !service_requests[0]->HasMember("id") &&
        !service_requests[0]->HasMember("identifier")) {
      service_requests[0]->AddMember("id", "new", doc.GetAllocator());
      rapidjson::StringBuffer buffer;
      Writer w(buffer);
      doc.Accept(w);
      body = buffer.GetString();
    }
  }
  absl::StatusOr<fhir_to_v2::OrderRequest> parsed = fhir_to_v2::FromServiceRequest(body);
  if (!parsed.ok()) {
    return FhirError(422, "invalid", std::string(parsed.status().message()));
  }
  if (parsed->order_control != "NW") {
    return FhirError(422, "business-rule", "only a new (active) ServiceRequest can be created");
  }
  service::OrderInput input;
  input.pms_patient_id = parsed->patient_id;
  for (const fhir_to_v2::TestCode& code : parsed->test_codes) {
    input.test_codes.push_back(code.code);
    input.test_names.push_back(code.display);
  }
  input.ordering_provider = parsed->ordering_provider.family_name;
  if (!parsed->ordering_provider.given_name.empty()) {
    input.ordering_provider = parsed->ordering_provider.given_name + " " + input.ordering_provider;
  }
  input.priority = parsed->priority;
  if (!parsed->encounter_id.empty()) {
    std::int64_t encounter = 0;
    const std::string& e = parsed->encounter_id;
    const auto [end, ec] = std::from_chars(e.data(), e.data() + e.size(), encounter);
    if (ec == std::errc() && end == e.data() + e.size()) {
      input.encounter_id = encounter;
    }
  }
  if (parsed->demographics.has_value()) {
    storage::PatientRecord patient;
    patient.family_name = parsed->demographics->family_name;
    patient.given_name = parsed->demographics->given_name;
    patient.birth_date = parsed->demographics->birth_date;
    patient.sex = parsed->demographics->sex;
    input.demographics = patient;
  }
  patients->push_back(input.pms_patient_id);
  absl::StatusOr<service::OrderView> order = orders_.Create(input);
  if (!order.ok()) {
    if (absl::IsInvalidArgument(order.status())) {
      return FhirError(422, "invalid", std::string(order.status().message()));
    }
    return ToOperationOutcome(order.status());
  }
  HttpResponse r = Fhir(201, OrderAsServiceRequest(*order, authority_));
  const std::string id = "order-" + std::to_string(order->order.id);
  r.headers.emplace_back("Location", BaseUrl(request) + "/ServiceRequest/" + id + "/_history/1");
  r.headers.emplace_back("ETag", "W/\"1\"");
  return r;
}

}  // namespace bridge::api::http
