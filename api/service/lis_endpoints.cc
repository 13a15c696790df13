// api/service/lis_endpoints.cc
#include "api/service/lis_endpoints.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <utility>

namespace bridge::api::service {
namespace {

using Value = rapidjson::Value;

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Errors name the file and the place: "lis.json: endpoints[1].port: ...".
class Checker {
 public:
  explicit Checker(std::string source) : source_(std::move(source)) {}

  absl::Status Error(const std::string& where, const std::string& problem) const {
    return absl::InvalidArgumentError(source_ + ": " + where + ": " + problem);
  }

 private:
  std::string source_;
};

std::string TypeName(const Value& v) {
  if (v.IsNull()) {
    return "null";
  }
  if (v.IsBool()) {
    return "a boolean";
  }
  if (v.IsNumber()) {
    return "a number";
  }
  if (v.IsString()) {
    return "a string";
  }
  if (v.IsArray()) {
    return "an array";
  }
  return "an object";
}

// HL7 names go into MSH-5/6 and OBR-4: no delimiters, no control characters.
bool IsHl7Safe(std::string_view text) {
  for (char c : text) {
    if (c == '|' || c == '^' || c == '~' || c == '\\' || c == '&' ||
        static_cast<unsigned char>(c) < 0x20) {
      return false;
    }
  }
  return true;
}

bool IsEndpointId(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

absl::Status ReadString(const Checker& check, const Value& obj, const char* key,
                        const std::string& where, bool required, std::string* out) {
  if (!obj.HasMember(key)) {
    return required ? check.Error(where + "." + key, "required") : absl::OkStatus();
  }
  const Value& v = obj[key];
  if (!v.IsString()) {
    return check.Error(where + "." + key, "expected a string, got " + TypeName(v));
  }
  *out = std::string(v.GetString(), v.GetStringLength());
  if (required && out->empty()) {
    return check.Error(where + "." + key, "must not be empty");
  }
  return absl::OkStatus();
}

absl::Status ReadInt(const Checker& check, const Value& obj, const char* key,
                     const std::string& where, long long min, long long max, long long* out) {
  if (!obj.HasMember(key)) {
    return absl::OkStatus();
  }
  const Value& v = obj[key];
  if (!v.IsInt64() || v.GetInt64() < min || v.GetInt64() > max) {
    std::string got = v.IsNumber() || v.IsString() ? "" : TypeName(v);
    if (v.IsInt64()) {
      got = std::to_string(v.GetInt64());
    } else if (v.IsString()) {
      got = Quote(v.GetString());
    } else if (v.IsNumber()) {
      got = "a non-integer number";
    }
    return check.Error(where + "." + key, "expected an integer " + std::to_string(min) + "-" +
                                              std::to_string(max) + ", got " + got);
  }
  *out = v.GetInt64();
  return absl::OkStatus();
}

absl::Status CheckReadable(const Checker& check, const std::string& where,
                           const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return check.Error(where, "cannot read " + Quote(path) + ": " + std::strerror(errno));
  }
  return absl::OkStatus();
}

absl::Status ReadTls(const Checker& check, const Value& tls, const std::string& where,
                     mllp::ClientTlsOptions* out) {
  if (!tls.IsObject()) {
    return check.Error(where, "expected an object, got " + TypeName(tls));
  }
  static const std::set<std::string> kKeys = {"ca_file", "cert_file", "key_file", "server_name",
                                              "enabled"};
  for (auto it = tls.MemberBegin(); it != tls.MemberEnd(); ++it) {
    if (kKeys.count(it->name.GetString()) == 0) {
      return check.Error(where, "unknown field " + Quote(it->name.GetString()));
    }
  }
  out->enabled = true;
  if (tls.HasMember("enabled")) {
    if (!tls["enabled"].IsBool()) {
      return check.Error(where + ".enabled", "expected true or false");
    }
    out->enabled = tls["enabled"].GetBool();
  }
  for (auto [key, field] :
       {std::pair{"ca_file", &out->ca_file}, std::pair{"cert_file", &out->cert_file},
        std::pair{"key_file", &out->key_file}, std::pair{"server_name", &out->server_name}}) {
    if (absl::Status s = ReadString(check, tls, key, where, false, field); !s.ok()) {
      return s;
    }
  }
  if (out->cert_file.empty() != out->key_file.empty()) {
    return check.Error(where, "set both cert_file and key_file (mutual TLS) or neither");
  }
  for (auto [key, path] :
       {std::pair{"ca_file", out->ca_file}, std::pair{"cert_file", out->cert_file},
        std::pair{"key_file", out->key_file}}) {
    if (!path.empty()) {
      if (absl::Status s = CheckReadable(check, where + "." + key, path); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ReadEndpoint(const Checker& check, const Value& e, const std::string& where,
                          const LisEndpointDefaults& defaults, LisEndpoint* out) {
  if (!e.IsObject()) {
    return check.Error(where, "expected an object, got " + TypeName(e));
  }
  static const std::set<std::string> kKeys = {"id",
                                              "host",
                                              "port",
                                              "receiving_application",
                                              "receiving_facility",
                                              "default",
                                              "test_codes",
                                              "message_type",
                                              "version",
                                              "processing_id",
                                              "ack_mode",
                                              "time_zone",
                                              "coding_system",
                                              "test_code_map",
                                              "results_application",
                                              "results_facility",
                                              "unit_map",
                                              "code_systems",
                                              "default_code_system",
                                              "client_certificate_names",
                                              "tls",
                                              "connect_timeout_seconds",
                                              "ack_timeout_seconds",
                                              "retry_max_attempts",
                                              "backoff_initial_ms",
                                              "backoff_max_ms",
                                              "description"};
  for (auto it = e.MemberBegin(); it != e.MemberEnd(); ++it) {
    if (kKeys.count(it->name.GetString()) == 0) {
      return check.Error(where, "unknown field " + Quote(it->name.GetString()));
    }
  }
  LisEndpoint ep;
  ep.ack_timeout = defaults.ack_timeout;
  ep.max_attempts = defaults.max_attempts;
  if (absl::Status s = ReadString(check, e, "id", where, true, &ep.id); !s.ok()) {
    return s;
  }
  if (!IsEndpointId(ep.id)) {
    return check.Error(where + ".id",
                       "expected 1-64 letters, digits, '_', '-' or '.', got " + Quote(ep.id));
  }
  if (absl::Status s = ReadString(check, e, "host", where, true, &ep.host); !s.ok()) {
    return s;
  }
  if (!e.HasMember("port")) {
    return check.Error(where + ".port", "required");
  }
  long long port = 0;
  if (absl::Status s = ReadInt(check, e, "port", where, 1, 65535, &port); !s.ok()) {
    return s;
  }
  ep.port = static_cast<std::uint16_t>(port);
  for (auto [key, field] : {std::pair{"receiving_application", &ep.receiving_application},
                            std::pair{"receiving_facility", &ep.receiving_facility}}) {
    if (absl::Status s = ReadString(check, e, key, where, true, field); !s.ok()) {
      return s;
    }
    if (!IsHl7Safe(*field)) {
      return check.Error(where + "." + key, "must not contain HL7 delimiters (| ^ ~ \\ &)");
    }
  }
  if (e.HasMember("default")) {
    if (!e["default"].IsBool()) {
      return check.Error(where + ".default", "expected true or false");
    }
    ep.is_default = e["default"].GetBool();
  }
  if (e.HasMember("test_codes")) {
    const Value& codes = e["test_codes"];
    if (!codes.IsArray()) {
      return check.Error(where + ".test_codes", "expected an array of test codes");
    }
    for (const Value& c : codes.GetArray()) {
      if (!c.IsString() || c.GetStringLength() == 0) {
        return check.Error(where + ".test_codes", "each test code must be a non-empty string");
      }
      ep.test_codes.emplace_back(c.GetString(), c.GetStringLength());
    }
  }
  if (!ep.is_default && ep.test_codes.empty()) {
    return check.Error(where, "needs test_codes (the tests it serves) or \"default\": true");
  }
  std::string message_type = "ORM^O01";
  if (absl::Status s = ReadString(check, e, "message_type", where, false, &message_type); !s.ok()) {
    return s;
  }
  if (message_type == "ORM^O01") {
    ep.flavor = fhir_to_v2::OrmOptions::Flavor::kOrmO01;
  } else if (message_type == "OML^O21") {
    ep.flavor = fhir_to_v2::OrmOptions::Flavor::kOmlO21;
  } else {
    return check.Error(where + ".message_type",
                       "expected \"ORM^O01\" or \"OML^O21\", got " + Quote(message_type));
  }
  if (absl::Status s = ReadString(check, e, "version", where, false, &ep.version); !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadString(check, e, "processing_id", where, false, &ep.processing_id);
      !s.ok()) {
    return s;
  }
  if (ep.processing_id != "P" && ep.processing_id != "T" && ep.processing_id != "D") {
    return check.Error(where + ".processing_id",
                       "expected \"P\", \"T\" or \"D\", got " + Quote(ep.processing_id));
  }
  std::string ack_mode = "original";
  if (absl::Status s = ReadString(check, e, "ack_mode", where, false, &ack_mode); !s.ok()) {
    return s;
  }
  if (ack_mode != "original" && ack_mode != "enhanced") {
    return check.Error(where + ".ack_mode",
                       "expected \"original\" or \"enhanced\", got " + Quote(ack_mode));
  }
  ep.enhanced_ack = ack_mode == "enhanced";
  if (absl::Status s = ReadString(check, e, "time_zone", where, false, &ep.time_zone_name);
      !s.ok()) {
    return s;
  }
  if (!absl::LoadTimeZone(ep.time_zone_name, &ep.time_zone)) {
    return check.Error(where + ".time_zone", "unknown IANA time zone " + Quote(ep.time_zone_name));
  }
  if (absl::Status s = ReadString(check, e, "coding_system", where, false, &ep.coding_system);
      !s.ok()) {
    return s;
  }
  if (!IsHl7Safe(ep.coding_system)) {
    return check.Error(where + ".coding_system", "must not contain HL7 delimiters");
  }
  if (e.HasMember("test_code_map")) {
    const Value& map = e["test_code_map"];
    if (!map.IsObject()) {
      return check.Error(where + ".test_code_map", "expected an object {\"OUR\": \"THEIRS\"}");
    }
    for (auto it = map.MemberBegin(); it != map.MemberEnd(); ++it) {
      if (!it->value.IsString() || it->value.GetStringLength() == 0 ||
          !IsHl7Safe(it->value.GetString())) {
        return check.Error(where + ".test_code_map." + it->name.GetString(),
                           "expected a non-empty code without HL7 delimiters");
      }
      ep.test_code_map[it->name.GetString()] = it->value.GetString();
    }
  }
  ep.results_application = ep.receiving_application;
  ep.results_facility = ep.receiving_facility;
  for (auto [key, field] : {std::pair{"results_application", &ep.results_application},
                            std::pair{"results_facility", &ep.results_facility},
                            std::pair{"default_code_system", &ep.default_code_system}}) {
    if (absl::Status s = ReadString(check, e, key, where, false, field); !s.ok()) {
      return s;
    }
  }
  for (auto [key, map] :
       {std::pair{"unit_map", &ep.unit_map}, std::pair{"code_systems", &ep.code_systems}}) {
    if (!e.HasMember(key)) {
      continue;
    }
    const Value& object = e[key];
    if (!object.IsObject()) {
      return check.Error(where + "." + key, "expected an object {\"THEIRS\": \"...\"}");
    }
    for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
      if (it->name.GetStringLength() == 0 || !it->value.IsString() ||
          it->value.GetStringLength() == 0) {
        return check.Error(where + "." + key + "." + it->name.GetString(),
                           "expected a non-empty name and a non-empty string");
      }
      (*map)[it->name.GetString()] = it->value.GetString();
    }
  }
  if (e.HasMember("client_certificate_names")) {
    const Value& names = e["client_certificate_names"];
    if (!names.IsArray() || names.Empty()) {
      return check.Error(where + ".client_certificate_names",
                         "expected a non-empty array of certificate subjects or names");
    }
    for (const Value& n : names.GetArray()) {
      if (!n.IsString() || n.GetStringLength() == 0) {
        return check.Error(where + ".client_certificate_names",
                           "each name must be a non-empty string");
      }
      ep.client_certificate_names.emplace_back(n.GetString(), n.GetStringLength());
    }
  }
  if (e.HasMember("tls")) {
    if (absl::Status s = ReadTls(check, e["tls"], where + ".tls", &ep.tls); !s.ok()) {
      return s;
    }
  }
  long long value = ep.connect_timeout.count() / 1000;
  if (absl::Status s = ReadInt(check, e, "connect_timeout_seconds", where, 1, 600, &value);
      !s.ok()) {
    return s;
  }
  ep.connect_timeout = std::chrono::seconds(value);
  value = ep.ack_timeout.count() / 1000;
  if (absl::Status s = ReadInt(check, e, "ack_timeout_seconds", where, 1, 3600, &value); !s.ok()) {
    return s;
  }
  ep.ack_timeout = std::chrono::seconds(value);
  value = ep.max_attempts;
  if (absl::Status s = ReadInt(check, e, "retry_max_attempts", where, 1, 1000, &value); !s.ok()) {
    return s;
  }
  ep.max_attempts = static_cast<int>(value);
  value = ep.backoff_initial.count();
  if (absl::Status s = ReadInt(check, e, "backoff_initial_ms", where, 1, 3600000, &value);
      !s.ok()) {
    return s;
  }
  ep.backoff_initial = std::chrono::milliseconds(value);
  value = ep.backoff_max.count();
  if (absl::Status s = ReadInt(check, e, "backoff_max_ms", where, 1, 86400000, &value); !s.ok()) {
    return s;
  }
  ep.backoff_max = std::chrono::milliseconds(value);
  if (ep.backoff_max < ep.backoff_initial) {
    return check.Error(where + ".backoff_max_ms", "must not be below backoff_initial_ms");
  }

  // The builder decides what a LIS can be sent (e.g. OML^O21 needs 2.5+):
  // ask it now rather than failing every order later.
  fhir_to_v2::OrderRequest probe;
  probe.patient_id = "1";
  fhir_to_v2::TestCode probe_code;
  probe_code.code = "X";
  probe_code.system = ep.coding_system;
  probe.test_codes.push_back(probe_code);
  probe.placer_order_number = "PROBE";
  fhir_to_v2::OrmOptions probe_options;
  probe_options.control_id = "PROBE";
  probe_options.receiving_application = ep.receiving_application;
  probe_options.receiving_facility = ep.receiving_facility;
  probe_options.version = ep.version;
  probe_options.processing_id = ep.processing_id;
  probe_options.flavor = ep.flavor;
  if (absl::StatusOr<std::string> built = fhir_to_v2::BuildOrm(probe, probe_options); !built.ok()) {
    return check.Error(where, "cannot build " + message_type + " version " + ep.version + ": " +
                                  std::string(built.status().message()));
  }
  *out = std::move(ep);
  return absl::OkStatus();
}

}  // namespace

const LisEndpoint* LisEndpoints::Find(std::string_view id) const {
  for (const LisEndpoint& e : endpoints) {
    if (e.id == id) {
      return &e;
    }
  }
  return nullptr;
}

std::vector<std::string> LisEndpoints::ids() const {
  std::vector<std::string> out;
  for (const LisEndpoint& e : endpoints) {
    out.push_back(e.id);
  }
  return out;
}

const LisEndpoint* LisEndpoints::FindResultsSender(std::string_view application,
                                                   std::string_view facility) const {
  for (const LisEndpoint& e : endpoints) {
    if (e.results_application == application && e.results_facility == facility) {
      return &e;
    }
  }
  return nullptr;
}

absl::Status LisEndpoints::AuthorizeSender(
    std::string_view application, std::string_view facility, std::string_view certificate_subject,
    const std::vector<std::string>& certificate_names) const {
  const auto carries = [&](const LisEndpoint& e) {
    return mllp::CertificateIsNamed(certificate_subject, certificate_names,
                                    e.client_certificate_names);
  };
  const LisEndpoint* named = FindResultsSender(application, facility);
  const LisEndpoint* owner = nullptr;  // a laboratory the certificate belongs to
  for (const LisEndpoint& e : endpoints) {
    if (carries(e)) {
      owner = &e;
      break;
    }
  }
  if (named != nullptr && !named->client_certificate_names.empty() && !carries(*named)) {
    return absl::PermissionDeniedError(
        "MSH-3/MSH-4 name laboratory " + named->id +
        ", which sends only with its own client certificates (client_certificate_names)");
  }
  if (owner != nullptr && (named == nullptr || !carries(*named))) {
    return absl::PermissionDeniedError("this client certificate belongs to laboratory " +
                                       owner->id + ", which may send only as itself (MSH-3/MSH-4)");
  }
  return absl::OkStatus();
}

std::optional<v2_to_fhir::SenderSettings> LisEndpoints::SenderSettingsFor(
    std::string_view application, std::string_view facility) const {
  const LisEndpoint* e = FindResultsSender(application, facility);
  if (e == nullptr) {
    return std::nullopt;
  }
  v2_to_fhir::SenderSettings settings;
  settings.time_zone = e->time_zone;
  settings.unit_map = e->unit_map;
  settings.code_systems = e->code_systems;
  settings.default_code_system = e->default_code_system;
  return settings;
}

absl::StatusOr<std::string> LisEndpoints::Route(const std::vector<std::string>& test_codes) const {
  const LisEndpoint* fallback = nullptr;
  for (const LisEndpoint& e : endpoints) {
    if (e.is_default) {
      fallback = &e;
    }
  }
  std::string chosen;
  std::string chosen_for;
  for (const std::string& code : test_codes) {
    const LisEndpoint* taker = nullptr;
    for (const LisEndpoint& e : endpoints) {
      for (const std::string& c : e.test_codes) {
        if (c == code) {
          taker = &e;
        }
      }
    }
    if (taker == nullptr) {
      taker = fallback;
    }
    if (taker == nullptr) {
      return absl::NotFoundError(endpoints.empty()
                                     ? "no LIS endpoint is configured"
                                     : "no LIS endpoint takes test " + Quote(code) +
                                           " (none lists it and none is \"default\": true)");
    }
    if (chosen.empty()) {
      chosen = taker->id;
      chosen_for = code;
    } else if (chosen != taker->id) {
      return absl::InvalidArgumentError("test_codes: " + chosen_for + " goes to LIS " + chosen +
                                        " and " + code + " to LIS " + taker->id +
                                        "; place one order per laboratory");
    }
  }
  if (chosen.empty()) {
    return absl::InvalidArgumentError("test_codes: at least one test code is required");
  }
  return chosen;
}

absl::StatusOr<LisEndpoints> ParseLisEndpoints(std::string_view json, const std::string& source,
                                               const LisEndpointDefaults& defaults) {
  const Checker check(source);
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(source + ": not valid JSON at offset " +
                                      std::to_string(doc.GetErrorOffset()) + ": " +
                                      rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) {
    return check.Error("top level",
                       "expected an object {\"endpoints\": [...]}, got " + TypeName(doc));
  }
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string key = it->name.GetString();
    if (key != "endpoints" && key != "description") {
      return check.Error("top level", "unknown field " + Quote(key));
    }
  }
  if (!doc.HasMember("endpoints") || !doc["endpoints"].IsArray()) {
    return check.Error("endpoints", "required: an array with one entry per LIS");
  }
  LisEndpoints out;
  out.source = source;
  std::set<std::string> ids;
  std::map<std::string, std::string> claimed;  // test code -> endpoint id
  std::string default_id;
  int index = 0;
  for (const Value& e : doc["endpoints"].GetArray()) {
    const std::string where = "endpoints[" + std::to_string(index++) + "]";
    LisEndpoint ep;
    if (absl::Status s = ReadEndpoint(check, e, where, defaults, &ep); !s.ok()) {
      return s;
    }
    if (!ids.insert(ep.id).second) {
      return check.Error(where + ".id", "duplicate endpoint id " + Quote(ep.id));
    }
    if (ep.is_default) {
      if (!default_id.empty()) {
        return check.Error(where + ".default", "both " + Quote(default_id) + " and " +
                                                   Quote(ep.id) +
                                                   " are the default; at most one may be");
      }
      default_id = ep.id;
    }
    for (const std::string& code : ep.test_codes) {
      auto [it, inserted] = claimed.emplace(code, ep.id);
      if (!inserted) {
        return check.Error(where + ".test_codes", "test " + Quote(code) + " is listed by both " +
                                                      Quote(it->second) + " and " + Quote(ep.id));
      }
    }
    out.endpoints.push_back(std::move(ep));
  }
  return out;
}

absl::StatusOr<LisEndpoints> LoadLisEndpoints(const std::string& path,
                                              const LisEndpointDefaults& defaults,
                                              bool missing_is_empty) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    if (error == ENOENT && missing_is_empty) {
      LisEndpoints none;
      none.source = path;
      return none;
    }
    if (error == ENOENT) {
      return absl::NotFoundError(path + ": no such file");
    }
    return absl::InvalidArgumentError(path + ": cannot read: " + std::strerror(error));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseLisEndpoints(text, path, defaults);
}

}  // namespace bridge::api::service
