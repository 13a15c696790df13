// api/http/rest_api.cc
#include "api/http/rest_api.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"

#include "mapping/fhir/json.h"

namespace bridge::api::http {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// A request problem reported as FastAPI's 422 {"detail": [{loc, msg, type}]}.
struct FieldError {
  std::string where;  // "body", "query", "path"
  std::string field;
  std::string message;
};

void String(Writer& w, std::string_view text) {
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void Key(Writer& w, std::string_view text) {
  w.Key(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void OptionalString(Writer& w, std::string_view key, std::string_view value) {
  Key(w, key);
  if (value.empty()) {
    w.Null();
  } else {
    String(w, value);
  }
}

// RFC 3339 in UTC, fractional seconds only when present (as %E*S writes
// them), without absl::FormatTime or snprintf: a 100-result page formats 200
// times; FormatTime, then snprintf, were a visible share of a request.
// Writes into `out` (at least 28 bytes) and returns the length. With
// `exact_millis`, always three fraction digits, truncated (as %E3S writes
// them: FHIR's instant).
std::size_t Rfc3339Into(absl::Time t, char* out, bool exact_millis = false) {
  const std::int64_t unix_micros = absl::ToUnixMicros(t);
  std::int64_t micros = unix_micros % 1000000;
  if (micros < 0) {
    micros += 1000000;
  }
  const std::int64_t seconds = (unix_micros - micros) / 1000000;
  std::int64_t days = seconds / 86400;
  std::int64_t second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    --days;
  }
  // The proleptic Gregorian date of a day count since 1970-01-01, by the
  // 400-year era arithmetic (cctz's lookup was most of a result's cost here).
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t day_of_era = z - era * 146097;
  const std::int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const std::int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const std::int64_t month_index = (5 * day_of_year + 2) / 153;  // March = 0
  const std::int64_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
  const std::int64_t month = month_index < 10 ? month_index + 3 : month_index - 9;
  const std::int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) {  // outside RFC 3339's four digits: absl says it best
    const std::string text = absl::FormatTime(
        exact_millis ? "%Y-%m-%dT%H:%M:%E3SZ" : "%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
    const std::size_t len = std::min<std::size_t>(text.size(), 27);
    std::memcpy(out, text.data(), len);
    return len;
  }
  // Two digits at a time from a table, in 32-bit arithmetic.
  static constexpr std::array<char, 200> kTwoDigits = [] {
    std::array<char, 200> table{};
    for (int i = 0; i < 100; ++i) {
      table[2 * i] = static_cast<char>('0' + i / 10);
      table[2 * i + 1] = static_cast<char>('0' + i % 10);
    }
    return table;
  }();
  std::size_t n = 0;
  const auto two = [&](std::uint32_t value) {
    std::memcpy(out + n, &kTwoDigits[2 * value], 2);
    n += 2;
  };
  const auto seconds_of_day = static_cast<std::uint32_t>(second_of_day);
  two(static_cast<std::uint32_t>(year / 100));
  two(static_cast<std::uint32_t>(year % 100));
  out[n++] = '-';
  two(static_cast<std::uint32_t>(month));
  out[n++] = '-';
  two(static_cast<std::uint32_t>(day));
  out[n++] = 'T';
  two(seconds_of_day / 3600);
  out[n++] = ':';
  two(seconds_of_day / 60 % 60);
  out[n++] = ':';
  two(seconds_of_day % 60);
  if (exact_millis) {
    const auto millis = static_cast<std::uint32_t>(micros / 1000);
    out[n++] = '.';
    out[n++] = static_cast<char>('0' + millis / 100);
    two(millis % 100);
  } else if (micros != 0) {
    const auto fraction = static_cast<std::uint32_t>(micros);
    out[n++] = '.';
    two(fraction / 10000);
    two(fraction / 100 % 100);
    two(fraction % 100);
    while (out[n - 1] == '0') {
      --n;
    }
  }
  out[n++] = 'Z';
  return n;
}

std::string Rfc3339(absl::Time t) {
  char buffer[32];
  return std::string(buffer, Rfc3339Into(t, buffer));
}

void OptionalTime(Writer& w, std::string_view key, const std::optional<absl::Time>& t) {
  Key(w, key);
  if (t.has_value()) {
    char buffer[32];
    w.String(buffer, static_cast<rapidjson::SizeType>(Rfc3339Into(*t, buffer)));
  } else {
    w.Null();
  }
}

std::optional<std::int64_t> ParseInt(std::string_view text) {
  std::int64_t value = 0;
  if (text.empty()) {
    return std::nullopt;
  }
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// The PMS id as the guide's integer when it is one (no leading zeros, which
// a number would lose); nullopt when it must stay a string.
std::optional<std::int64_t> PmsIdAsNumber(std::string_view pms_id) {
  std::optional<std::int64_t> n = ParseInt(pms_id);
  if (n.has_value() && (pms_id[0] != '0' || pms_id == "0")) {
    return n;
  }
  return std::nullopt;
}

// The PMS id as the guide's integer when it is one, else as a string.
void PatientId(Writer& w, std::string_view pms_id) {
  Key(w, "patient_id");
  if (std::optional<std::int64_t> n = PmsIdAsNumber(pms_id); n.has_value()) {
    w.Int64(*n);
  } else if (pms_id.empty()) {
    w.Null();
  } else {
    String(w, pms_id);
  }
}

// A result as JSON, appended as text: the keys are constants that need no
// escaping, the values go through fhir::WriteJsonString (runs of plain
// characters copied at once), into room made once for the worst case, so no
// piece checks the string's capacity. A 100-result page is 2,500 values:
// rapidjson's writer, one character at a time, was a third of the request,
// and an std::string append per piece half of what was left.
void AppendResult(const service::ResultView& view, std::string* out) {
  const storage::StoredResult& r = view.result;
  const std::string_view texts[] = {view.pms_patient_id,
                                    r.result.test_code,
                                    r.result.test_name,
                                    r.result.value,
                                    r.result.value_type,
                                    r.result.units,
                                    r.result.reference_range,
                                    r.result.abnormal_flag,
                                    r.result.result_status,
                                    r.result.sending_facility,
                                    r.result.filler_order_number,
                                    r.result.placer_order_number,
                                    r.acknowledged_by,
                                    r.acknowledgement_note,
                                    r.result.report_code,
                                    r.result.report_name};
  // Keys, numbers, dates and literals take under 700 bytes.
  std::size_t room = 1024;
  for (std::string_view text : texts) {
    room += fhir::JsonStringBound(text.size());
  }
  for (const std::string& comment : r.result.comments) {
    room += fhir::JsonStringBound(comment.size()) + 1;
  }
  const std::size_t start = out->size();
  out->resize(start + room);
  char* at = out->data() + start;

  const auto raw = [&at](std::string_view piece) {
    std::memcpy(at, piece.data(), piece.size());
    at += piece.size();
  };
  const auto number = [&at](std::int64_t value) { at = std::to_chars(at, at + 20, value).ptr; };
  const auto text = [&](std::string_view key, std::string_view value) {
    raw(key);
    if (value.empty()) {
      raw("null");
    } else {
      at = fhir::WriteJsonString(value, at);
    }
  };
  const auto time = [&](std::string_view key, const std::optional<absl::Time>& t) {
    raw(key);
    if (t.has_value()) {
      *at++ = '"';
      at += Rfc3339Into(*t, at);
      *at++ = '"';
    } else {
      raw("null");
    }
  };
  raw("{\"id\":");
  number(r.id);
  // The PMS id as the guide's integer when it is one, else as a string.
  raw(",\"patient_id\":");
  const std::string& pms_id = view.pms_patient_id;
  if (std::optional<std::int64_t> n = PmsIdAsNumber(pms_id); n.has_value()) {
    number(*n);
  } else if (pms_id.empty()) {
    raw("null");
  } else {
    at = fhir::WriteJsonString(pms_id, at);
  }
  raw(",\"lab_order_id\":");
  if (r.lab_order_id.has_value()) {
    number(*r.lab_order_id);
  } else {
    raw("null");
  }
  raw(",\"test_code\":");
  at = fhir::WriteJsonString(r.result.test_code, at);
  text(",\"test_name\":", r.result.test_name);
  text(",\"value\":", r.result.value);
  text(",\"value_type\":", r.result.value_type);
  text(",\"units\":", r.result.units);
  text(",\"reference_range\":", r.result.reference_range);
  text(",\"abnormal_flag\":", r.result.abnormal_flag);
  text(",\"result_status\":", r.result.result_status);
  text(",\"sending_facility\":", r.result.sending_facility);
  text(",\"filler_order_number\":", r.result.filler_order_number);
  text(",\"placer_order_number\":", r.result.placer_order_number);
  time(",\"observation_date\":", r.result.observation_date);
  time(",\"received_at\":", r.received_at);
  raw(",\"hl7_message_id\":");
  number(r.hl7_message_id);
  raw(r.result.critical ? ",\"critical\":true" : ",\"critical\":false");
  raw(r.acknowledged_at.has_value() ? ",\"acknowledged\":true" : ",\"acknowledged\":false");
  text(",\"acknowledged_by\":", r.acknowledged_by);
  time(",\"acknowledged_at\":", r.acknowledged_at);
  text(",\"acknowledgement_note\":", r.acknowledgement_note);
  text(",\"report_code\":", r.result.report_code);
  text(",\"report_name\":", r.result.report_name);
  raw(",\"comments\":[");
  for (std::size_t i = 0; i < r.result.comments.size(); ++i) {
    if (i > 0) {
      *at++ = ',';
    }
    at = fhir::WriteJsonString(r.result.comments[i], at);
  }
  raw("]}");
  out->resize(static_cast<std::size_t>(at - out->data()));
}

// The same inside a document being written with rapidjson.
void WriteResult(Writer& w, const service::ResultView& view) {
  std::string json;
  AppendResult(view, &json);
  w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

void WriteOrderFields(Writer& w, const service::OrderView& view) {
  const storage::StoredOrder& o = view.order;
  Key(w, "id");
  w.Int64(o.id);
  PatientId(w, view.pms_patient_id);
  Key(w, "encounter_id");
  if (o.encounter_id.has_value()) {
    w.Int64(*o.encounter_id);
  } else {
    w.Null();
  }
  Key(w, "test_codes");
  w.StartArray();
  for (const std::string& code : o.test_codes) {
    String(w, code);
  }
  w.EndArray();
  OptionalString(w, "ordering_provider", o.ordering_provider);
  Key(w, "priority");
  String(w, o.priority);
  Key(w, "status");
  String(w, o.status);
  Key(w, "placer_order_number");
  String(w, o.placer_order_number);
  Key(w, "hl7_message_id");
  if (o.hl7_message_id.has_value()) {
    w.Int64(*o.hl7_message_id);
  } else {
    w.Null();
  }
  Key(w, "created_at");
  String(w, Rfc3339(o.created_at));
  OptionalTime(w, "sent_at", o.sent_at);
  OptionalTime(w, "acknowledged_at", o.acknowledged_at);
  Key(w, "attempts");
  w.Int(o.attempts);
  Key(w, "last_error");
  String(w, o.last_error);
  Key(w, "lis_endpoint");
  String(w, o.lis_endpoint);
  Key(w, "result_status");  // resulted orders: preliminary until every test is final
  String(w, o.result_status);
}

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse Unprocessable(const std::vector<FieldError>& errors) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "detail");
  w.StartArray();
  for (const FieldError& e : errors) {
    w.StartObject();
    Key(w, "loc");
    w.StartArray();
    String(w, e.where);
    String(w, e.field);
    w.EndArray();
    Key(w, "msg");
    String(w, e.message);
    Key(w, "type");
    String(w, "value_error");
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Json(422, buffer.GetString());
}

HttpResponse Unprocessable(std::string where, std::string field, std::string message) {
  return Unprocessable({FieldError{std::move(where), std::move(field), std::move(message)}});
}

// "true"/"false" and FastAPI's other spellings.
std::optional<bool> ParseBool(std::string_view text) {
  const std::string lower = absl::AsciiStrToLower(std::string(text));
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") {
    return true;
  }
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") {
    return false;
  }
  return std::nullopt;
}

// Reads limit and cursor; nullopt + *error on a bad limit.
bool ReadPaging(const HttpRequest& request, int* limit, std::string* cursor, HttpResponse* error) {
  *limit = service::kDefaultPageSize;
  if (const std::string* text = request.QueryParam("limit")) {
    std::optional<std::int64_t> n = ParseInt(*text);
    if (!n.has_value() || *n < 1 || *n > service::kMaxPageSize) {
      *error = Unprocessable("query", "limit",
                             "expected an integer 1-" + std::to_string(service::kMaxPageSize));
      return false;
    }
    *limit = static_cast<int>(*n);
  }
  if (const std::string* text = request.QueryParam("cursor")) {
    *cursor = *text;
  }
  return true;
}

// The same request with `cursor` replaced by next_cursor.
void AddNextLink(const HttpRequest& request, const std::string& next_cursor,
                 HttpResponse* response) {
  if (next_cursor.empty()) {
    return;
  }
  std::string url = request.path + "?";
  for (const auto& [key, value] : request.query) {
    if (key == "cursor") {
      continue;
    }
    url += PercentEncode(key) + "=" + PercentEncode(value) + "&";
  }
  url += "cursor=" + PercentEncode(next_cursor);
  response->headers.emplace_back("Link", "<" + url + ">; rel=\"next\"");
}

std::optional<absl::Time> ParseTimeParam(std::string_view text) {
  absl::Time t;
  std::string error;
  const std::string s(text);
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", s, &t, &error) ||
      absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", s, &t, &error) ||
      absl::ParseTime("%Y-%m-%d", s, &t, &error)) {
    return t;
  }
  return std::nullopt;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty()) {
      parts.push_back(part);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    path = path.substr(slash + 1);
  }
  return parts;
}

HttpResponse MethodNotAllowed(std::string_view allow) {
  HttpResponse r = JsonError(405, "method not allowed");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

}  // namespace

std::string FormatRfc3339(absl::Time t) { return Rfc3339(t); }

std::string FormatFhirInstant(absl::Time t) {
  char buffer[32];
  return std::string(buffer, Rfc3339Into(t, buffer, /*exact_millis=*/true));
}
std::optional<absl::Time> ParseDateParam(std::string_view text) { return ParseTimeParam(text); }

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

HttpResponse JsonError(int http_status, std::string_view message) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "detail");
  String(w, message);
  w.EndObject();
  HttpResponse r = Json(http_status, buffer.GetString());
  if (http_status == 401) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lab-bridge\"");
  }
  return r;
}

HttpResponse ToHttpResponse(const absl::Status& status) {
  const int code = HttpStatusFor(status);
  // 5xx details may name internals (SQL, hosts): keep them out of the body.
  if (code == 500) {
    return JsonError(code, "internal error");
  }
  return JsonError(code, std::string(status.message()));
}

std::string_view BearerToken(const HttpRequest& request) {
  std::string_view header = request.Header("authorization");
  constexpr std::string_view kBearer = "bearer ";
  if (header.size() <= kBearer.size() ||
      absl::AsciiStrToLower(std::string(header.substr(0, kBearer.size()))) != kBearer) {
    return {};
  }
  std::string_view token = header.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && token.back() == ' ') {
    token.remove_suffix(1);
  }
  return token;
}

absl::StatusOr<service::Principal> Authorize(service::TokenRegistry& tokens,
                                             const HttpRequest& request, service::Role role,
                                             service::Principal* authenticated) {
  const std::string_view token = BearerToken(request);
  if (token.empty()) {
    return absl::UnauthenticatedError("missing bearer token");
  }
  absl::StatusOr<service::Principal> who = tokens.Authenticate(token);
  if (!who.ok()) {
    return who.status();
  }
  if (authenticated != nullptr) {
    *authenticated = *who;
  }
  if (!who->Has(role)) {
    return absl::PermissionDeniedError("token \"" + who->name + "\" lacks the role " +
                                       service::RoleName(role));
  }
  return who;
}

HttpResponse RestApi::Handle(const HttpRequest& request) {
  const std::vector<std::string_view> parts = SplitPath(request.path);
  const std::string& method = request.method;
  const bool get = method == "GET" || method == "HEAD";

  if (parts.size() == 1 && parts[0] == "healthz") {
    if (!get) {
      return MethodNotAllowed("GET, HEAD");
    }
    return Json(200, "{\"status\":\"ok\"}");
  }
  if (parts.size() == 1 && parts[0] == "readyz") {
    if (!get) {
      return MethodNotAllowed("GET, HEAD");
    }
    absl::Status ready = ready_();
    if (!ready.ok()) {
      return JsonError(503, "not ready: " + std::string(ready.message()));
    }
    return Json(200, "{\"status\":\"ready\"}");
  }
  if (parts.size() == 1 && parts[0] == "metrics") {
    if (!get) {
      return MethodNotAllowed("GET, HEAD");
    }
    if (options_.metrics_require_token) {
      absl::StatusOr<service::Principal> who =
          Authorize(tokens_, request, service::Role::kAuditRead);
      if (!who.ok()) {
        return ToHttpResponse(who.status());
      }
    }
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_();
    return r;
  }

  if (parts.size() < 2 || parts[0] != "api") {
    return JsonError(404, "no such path: " + request.path);
  }
  service::Principal who{"-", 0};
  Patients patients;
  HttpResponse response = Dispatch(request, &who, &patients);
  if (audit_ != nullptr) {
    std::sort(patients.begin(), patients.end());
    patients.erase(std::unique(patients.begin(), patients.end()), patients.end());
    if (!patients.empty() && patients.front().empty()) {
      patients.erase(patients.begin());
    }
    service::AccessEvent event;
    event.time = absl::Now();
    event.who = who.name;
    event.protocol = "rest";
    event.action = method == "POST" ? (parts.size() == 2 ? "create" : "update") : "read";
    event.what = method + " " + request.path;
    event.patients = std::move(patients);
    event.outcome = response.status;
    event.source = request.peer_address;
    if (absl::Status s = audit_->Record(event); !s.ok()) {
      return JsonError(503, "access audit unavailable");
    }
  }
  return response;
}

HttpResponse RestApi::Dispatch(const HttpRequest& request, service::Principal* principal,
                               Patients* patients) {
  const std::vector<std::string_view> parts = SplitPath(request.path);
  const std::string& method = request.method;
  const bool get = method == "GET" || method == "HEAD";
  const bool post = method == "POST";

  // Which role the route needs, decided before any work is done.
  std::optional<service::Role> role;
  std::string allow;
  if (parts[1] == "lab-orders") {
    if (parts.size() == 2) {
      allow = "GET, HEAD, POST";
      if (get) {
        role = service::Role::kResultsRead;
      }
      if (post) {
        role = service::Role::kOrdersWrite;
      }
    } else if (parts.size() == 3) {
      allow = "GET, HEAD";
      if (get) {
        role = service::Role::kResultsRead;
      }
    } else if (parts.size() == 4 && parts[3] == "cancel") {
      allow = "POST";
      if (post) {
        role = service::Role::kOrdersWrite;
      }
    }
  } else if (parts[1] == "lab-results") {
    if (parts.size() == 2 || parts.size() == 3) {
      allow = "GET, HEAD";
      if (get) {
        role = service::Role::kResultsRead;
      }
    } else if (parts.size() == 4 && parts[3] == "acknowledge") {
      allow = "POST";
      if (post) {
        role = service::Role::kCriticalsAck;
      }
    }
  } else if (parts[1] == "access-audit" && parts.size() == 2) {
    allow = "GET, HEAD";
    if (get) {
      role = service::Role::kAuditRead;
    }
  } else if (parts[1] == "patients" && parts.size() == 2 && options_.patients != nullptr) {
    allow = "GET, HEAD";
    if (get) {
      role = service::Role::kResultsRead;
    }
  } else if (parts[1] == "events" && parts.size() == 2 && options_.events != nullptr) {
    allow = "GET";
    if (method == "GET") {
      role = service::Role::kResultsRead;
    }
  } else if (parts[1] == "events" && parts.size() == 3 && parts[2] == "ticket" &&
             options_.events != nullptr) {
    allow = "POST";
    if (post) {
      role = service::Role::kResultsRead;
    }
  }
  if (allow.empty()) {
    return JsonError(404, "no such path: " + request.path);
  }
  if (!role.has_value()) {
    return MethodNotAllowed(allow);
  }
  const std::string* ticket = request.QueryParam("ticket");
  if (parts[1] == "events" && parts.size() == 2 && ticket != nullptr &&
      BearerToken(request).empty()) {
    // EventSource cannot send headers: a single-use ticket stands in.
    absl::StatusOr<EventFeed::Grant> grant = options_.events->RedeemTicket(*ticket);
    if (!grant.ok()) {
      return ToHttpResponse(grant.status());
    }
    *principal = grant->principal;
    if (!grant->principal.Has(*role)) {
      return ToHttpResponse(absl::PermissionDeniedError(
          "token \"" + grant->principal.name + "\" lacks the role " + service::RoleName(*role)));
    }
    return OpenEventStream(request, grant->token);
  }
  absl::StatusOr<service::Principal> who = Authorize(tokens_, request, *role, principal);
  if (!who.ok()) {
    return ToHttpResponse(who.status());
  }
  if (parts[1] == "access-audit") {
    return ListAccessAudit(request);
  }
  if (parts[1] == "patients") {
    return SearchPatients(request, patients);
  }
  if (parts[1] == "events") {
    if (parts.size() == 3) {
      return IssueEventTicket(request, *who);
    }
    return OpenEventStream(request, std::string(BearerToken(request)));
  }

  std::optional<std::int64_t> id;
  if (parts.size() >= 3 && !(parts[1] == "lab-results" && parts[2] == "critical")) {
    id = ParseInt(parts[2]);
    if (!id.has_value() || *id <= 0) {
      return Unprocessable("path", parts[1] == "lab-orders" ? "order_id" : "result_id",
                           "expected a positive integer");
    }
  }
  if (parts[1] == "lab-orders") {
    if (parts.size() == 2) {
      return post ? CreateOrder(request, patients) : ListOrders(request, patients);
    }
    if (parts.size() == 3) {
      return GetOrder(*id, patients);
    }
    return CancelOrder(*id, patients);
  }
  if (parts.size() == 2) {
    return ListResults(request, false, patients);
  }
  if (parts.size() == 3 && parts[2] == "critical") {
    return ListResults(request, true, patients);
  }
  if (parts.size() == 3) {
    return GetResult(*id, patients);
  }
  std::string pms_patient_id;
  if (absl::StatusOr<service::ResultView> r = results_.Get(*id); r.ok()) {
    pms_patient_id = r->pms_patient_id;
    patients->push_back(r->pms_patient_id);
  }
  HttpResponse acknowledged = Acknowledge(request, *id, *who);
  if (acknowledged.status == 200 && options_.events != nullptr) {
    options_.events->PublishAcknowledged(*id, pms_patient_id);
  }
  return acknowledged;
}

HttpResponse RestApi::ListOrders(const HttpRequest& request, Patients* patients) {
  int limit = 0;
  std::string cursor;
  HttpResponse error;
  if (!ReadPaging(request, &limit, &cursor, &error)) {
    return error;
  }
  const std::string* patient = request.QueryParam("patient_id");
  const std::string* status = request.QueryParam("status");
  if (status != nullptr && !status->empty() && !service::IsOrderStatus(*status)) {
    return Unprocessable("query", "status",
                         "expected pending, sent, acknowledged, resulted, failed, rejected, "
                         "cancelled or overdue");
  }
  absl::StatusOr<service::OrderList> list =
      orders_.List(patient ? *patient : "", status ? *status : "", limit, cursor);
  if (!list.ok()) {
    return ToHttpResponse(list.status());
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartArray();
  for (const service::OrderView& view : list->orders) {
    patients->push_back(view.pms_patient_id);
    w.StartObject();
    WriteOrderFields(w, view);
    w.EndObject();
  }
  w.EndArray();
  HttpResponse r = Json(200, buffer.GetString());
  AddNextLink(request, list->next_cursor, &r);
  return r;
}

HttpResponse RestApi::CreateOrder(const HttpRequest& request, Patients* patients) {
  const std::string_view type = request.Header("content-type");
  if (!type.empty() && absl::AsciiStrToLower(std::string(type)).find("json") == std::string::npos) {
    return JsonError(415, "expected Content-Type: application/json");
  }
  rapidjson::Document body;
  body.Parse(request.body.c_str(), request.body.size());
  if (body.HasParseError()) {
    return Unprocessable("body", "", "body is not valid JSON");
  }
  if (!body.IsObject()) {
    return Unprocessable("body", "", "expected a JSON object");
  }

  service::OrderInput input;
  std::vector<FieldError> errors;
  if (!body.HasMember("patient_id") || body["patient_id"].IsNull()) {
    errors.push_back({"body", "patient_id", "field required"});
  } else if (body["patient_id"].IsInt64() && body["patient_id"].GetInt64() >= 0) {
    input.pms_patient_id = std::to_string(body["patient_id"].GetInt64());
  } else if (body["patient_id"].IsString() && body["patient_id"].GetStringLength() > 0) {
    input.pms_patient_id = body["patient_id"].GetString();
  } else {
    errors.push_back({"body", "patient_id", "expected a PMS patient id (integer or string)"});
  }
  if (body.HasMember("encounter_id") && !body["encounter_id"].IsNull()) {
    if (body["encounter_id"].IsInt64()) {
      input.encounter_id = body["encounter_id"].GetInt64();
    } else {
      errors.push_back({"body", "encounter_id", "expected an integer"});
    }
  }
  if (!body.HasMember("test_codes")) {
    errors.push_back({"body", "test_codes", "field required"});
  } else if (!body["test_codes"].IsArray() || body["test_codes"].Empty()) {
    errors.push_back({"body", "test_codes", "expected a non-empty list of test codes"});
  } else {
    for (const rapidjson::Value& code : body["test_codes"].GetArray()) {
      if (!code.IsString() || code.GetStringLength() == 0) {
        errors.push_back({"body", "test_codes", "each test code must be a non-empty string"});
        break;
      }
      input.test_codes.emplace_back(code.GetString(), code.GetStringLength());
    }
  }
  if (!body.HasMember("ordering_provider") || body["ordering_provider"].IsNull()) {
    errors.push_back({"body", "ordering_provider", "field required"});
  } else if (!body["ordering_provider"].IsString()) {
    errors.push_back({"body", "ordering_provider", "expected a string"});
  } else {
    input.ordering_provider = body["ordering_provider"].GetString();
  }
  if (body.HasMember("priority") && !body["priority"].IsNull()) {
    if (!body["priority"].IsString()) {
      errors.push_back({"body", "priority", "expected R, S or A"});
    } else {
      input.priority = body["priority"].GetString();
      if (input.priority != "R" && input.priority != "S" && input.priority != "A") {
        errors.push_back({"body", "priority", "expected R, S or A"});
      }
    }
  }
  if (!errors.empty()) {
    return Unprocessable(errors);
  }
  patients->push_back(input.pms_patient_id);

  absl::StatusOr<service::OrderView> order = orders_.Create(input);
  if (!order.ok()) {
    if (absl::IsInvalidArgument(order.status())) {
      // The builder names the field ("test_codes: ..."): still a body problem.
      const std::string message(order.status().message());
      const std::size_t colon = message.find(':');
      return Unprocessable("body", colon == std::string::npos ? "" : message.substr(0, colon),
                           message);
    }
    return ToHttpResponse(order.status());
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  WriteOrderFields(w, *order);
  w.EndObject();
  HttpResponse r = Json(201, buffer.GetString());
  r.headers.emplace_back("Location", "/api/lab-orders/" + std::to_string(order->order.id));
  if (options_.events != nullptr) {
    options_.events->PublishOrder(order->order.id, order->pms_patient_id, order->order.status);
  }
  return r;
}

HttpResponse RestApi::GetOrder(std::int64_t id, Patients* patients) {
  absl::StatusOr<service::OrderView> order = orders_.Get(id);
  if (!order.ok()) {
    return ToHttpResponse(order.status());
  }
  patients->push_back(order->pms_patient_id);
  absl::StatusOr<std::vector<service::ResultView>> linked = results_.ForOrder(order->order);
  if (!linked.ok()) {
    return ToHttpResponse(linked.status());
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  WriteOrderFields(w, *order);
  Key(w, "results");
  w.StartArray();
  for (const service::ResultView& view : *linked) {
    WriteResult(w, view);
  }
  w.EndArray();
  w.EndObject();
  return Json(200, buffer.GetString());
}

HttpResponse RestApi::CancelOrder(std::int64_t id, Patients* patients) {
  absl::StatusOr<service::OrderView> order = orders_.Cancel(id);
  if (!order.ok()) {
    return ToHttpResponse(order.status());
  }
  patients->push_back(order->pms_patient_id);
  if (options_.events != nullptr) {
    options_.events->PublishOrder(order->order.id, order->pms_patient_id, order->order.status);
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  WriteOrderFields(w, *order);
  w.EndObject();
  return Json(200, buffer.GetString());
}

HttpResponse RestApi::ListResults(const HttpRequest& request, bool critical_only,
                                  Patients* patients) {
  service::ResultFilter filter;
  HttpResponse error;
  if (!ReadPaging(request, &filter.limit, &filter.cursor, &error)) {
    return error;
  }
  const auto read_bool = [&](const char* name, std::optional<bool>* out) -> bool {
    if (const std::string* text = request.QueryParam(name)) {
      *out = ParseBool(*text);
      if (!out->has_value()) {
        error = Unprocessable("query", name, "expected true or false");
        return false;
      }
    }
    return true;
  };
  std::optional<bool> abnormal;
  if (!read_bool("abnormal_only", &abnormal) || !read_bool("critical", &filter.critical) ||
      !read_bool("acknowledged", &filter.acknowledged)) {
    return error;
  }
  filter.abnormal_only = abnormal.value_or(false);
  if (critical_only) {
    filter.critical = true;
    // The guide's alert feed: unacknowledged unless asked otherwise.
    if (request.QueryParam("acknowledged") == nullptr) {
      filter.acknowledged = false;
    }
  }
  if (const std::string* patient = request.QueryParam("patient_id")) {
    filter.pms_patient_id = *patient;
  }
  if (const std::string* code = request.QueryParam("test_code")) {
    filter.test_code = *code;
  }
  for (const char* name : {"from", "to"}) {
    if (const std::string* text = request.QueryParam(name)) {
      std::optional<absl::Time> t = ParseTimeParam(*text);
      if (!t.has_value()) {
        return Unprocessable("query", name, "expected YYYY-MM-DD or an RFC 3339 date-time");
      }
      (std::string_view(name) == "from" ? filter.observed_from : filter.observed_to) = t;
    }
  }
  absl::StatusOr<service::ResultList> list = results_.List(filter);
  if (!list.ok()) {
    return ToHttpResponse(list.status());
  }
  // Sized for the page up front (a result is about 520 bytes of JSON):
  // growing it by halves moved the whole page again a dozen times.
  std::string body;
  body.reserve(256 + 640 * list->results.size());
  body.push_back('[');
  for (const service::ResultView& view : list->results) {
    if (patients->empty() || patients->back() != view.pms_patient_id) {
      patients->push_back(view.pms_patient_id);
    }
    if (body.size() > 1) {
      body.push_back(',');
    }
    AppendResult(view, &body);
  }
  body.push_back(']');
  HttpResponse r = Json(200, std::move(body));
  AddNextLink(request, list->next_cursor, &r);
  return r;
}

HttpResponse RestApi::GetResult(std::int64_t id, Patients* patients) {
  absl::StatusOr<service::ResultView> result = results_.Get(id);
  if (!result.ok()) {
    return ToHttpResponse(result.status());
  }
  patients->push_back(result->pms_patient_id);
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  WriteResult(w, *result);
  return Json(200, buffer.GetString());
}

HttpResponse RestApi::Acknowledge(const HttpRequest& request, std::int64_t id,
                                  const service::Principal& who) {
  std::string acknowledged_by = who.name;
  std::string note;
  if (!request.body.empty()) {
    rapidjson::Document body;
    body.Parse(request.body.c_str(), request.body.size());
    if (body.HasParseError() || !body.IsObject()) {
      return Unprocessable("body", "", "expected a JSON object");
    }
    if (body.HasMember("acknowledged_by") && !body["acknowledged_by"].IsNull()) {
      if (!body["acknowledged_by"].IsString() || body["acknowledged_by"].GetStringLength() == 0) {
        return Unprocessable("body", "acknowledged_by", "expected a non-empty string");
      }
      acknowledged_by = body["acknowledged_by"].GetString();
    }
    if (body.HasMember("note") && !body["note"].IsNull()) {
      if (!body["note"].IsString()) {
        return Unprocessable("body", "note", "expected a string");
      }
      note = body["note"].GetString();
    }
  }
  const absl::Time now = absl::Now();
  if (absl::Status s = results_.Acknowledge(id, acknowledged_by, now, note); !s.ok()) {
    return ToHttpResponse(s);
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "id");
  w.Int64(id);
  Key(w, "acknowledged");
  w.Bool(true);
  Key(w, "acknowledged_by");
  String(w, acknowledged_by);
  Key(w, "acknowledged_at");
  String(w, Rfc3339(now));
  OptionalString(w, "acknowledgement_note", note);
  w.EndObject();
  return Json(200, buffer.GetString());
}

HttpResponse RestApi::ListAccessAudit(const HttpRequest& request) {
  int limit = 0;
  std::string cursor;
  HttpResponse error;
  if (!ReadPaging(request, &limit, &cursor, &error)) {
    return error;
  }
  if (audit_ == nullptr) {
    return JsonError(501, "access audit is not configured");
  }
  const std::string* patient = request.QueryParam("patient_id");
  absl::StatusOr<std::vector<service::AccessEvent>> events =
      audit_->Query(patient ? *patient : "", limit);
  if (!events.ok()) {
    return ToHttpResponse(events.status());
  }
  std::string body = "[";
  for (std::size_t i = 0; i < events->size(); ++i) {
    if (i > 0) {
      body += ",";
    }
    body += service::AccessEventToJson((*events)[i]);
  }
  body += "]";
  return Json(200, std::move(body));
}

HttpResponse RestApi::SearchPatients(const HttpRequest& request, Patients* patients) {
  const std::string* text = request.QueryParam("q");
  if (text == nullptr) {
    return Unprocessable("query", "q", "field required: a PMS patient id or a name");
  }
  int limit = 20;
  if (const std::string* limit_text = request.QueryParam("limit")) {
    std::optional<std::int64_t> n = ParseInt(*limit_text);
    if (!n.has_value() || *n < 1 || *n > 100) {
      return Unprocessable("query", "limit", "expected an integer from 1 to 100");
    }
    limit = static_cast<int>(*n);
  }
  absl::StatusOr<std::vector<service::PatientView>> found = options_.patients->Search(*text, limit);
  if (!found.ok()) {
    if (absl::IsInvalidArgument(found.status())) {
      const std::string message(found.status().message());
      return Unprocessable("query", "q", message.substr(message.find(':') + 2));
    }
    return ToHttpResponse(found.status());
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartArray();
  for (const service::PatientView& p : *found) {
    patients->push_back(p.pms_patient_id);
    w.StartObject();
    PatientId(w, p.pms_patient_id);
    OptionalString(w, "family_name", p.family_name);
    OptionalString(w, "given_name", p.given_name);
    OptionalString(w, "birth_date", p.birth_date);
    OptionalString(w, "sex", p.sex);
    w.EndObject();
  }
  w.EndArray();
  return Json(200, buffer.GetString());
}

HttpResponse RestApi::IssueEventTicket(const HttpRequest& request, const service::Principal& who) {
  absl::StatusOr<std::string> ticket = options_.events->IssueTicket(who, BearerToken(request));
  if (!ticket.ok()) {
    return ToHttpResponse(ticket.status());
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "ticket");
  String(w, *ticket);
  Key(w, "expires_in");
  w.Int64(static_cast<std::int64_t>(absl::ToInt64Seconds(options_.events->ticket_lifetime())));
  w.EndObject();
  HttpResponse r = Json(201, buffer.GetString());
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse RestApi::OpenEventStream(const HttpRequest& request, const std::string& token) {
  std::int64_t last_event_id = 0;
  std::string_view last = request.Header("last-event-id");
  const std::string* last_param = request.QueryParam("last_event_id");
  if (last.empty() && last_param != nullptr) {
    last = *last_param;
  }
  if (!last.empty()) {
    std::optional<std::int64_t> n = ParseInt(last);
    if (!n.has_value() || *n < 0) {
      return Unprocessable("query", "last_event_id", "expected a result id (integer >= 0)");
    }
    last_event_id = *n;
  }
  service::TokenRegistry& tokens = tokens_;
  absl::StatusOr<std::shared_ptr<ResponseStream>> stream = options_.events->Open(
      last_event_id, [&tokens, token] { return tokens.Authenticate(token).ok(); });
  if (!stream.ok()) {
    return ToHttpResponse(stream.status());
  }
  HttpResponse r;
  r.content_type = "text/event-stream; charset=utf-8";
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Accel-Buffering", "no");  // reverse proxies: do not buffer
  r.stream = *std::move(stream);
  return r;
}

}  // namespace bridge::api::http
