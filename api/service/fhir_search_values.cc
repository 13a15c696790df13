// api/service/fhir_search_values.cc
#include "api/service/fhir_search_values.h"

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "absl/strings/ascii.h"

namespace bridge::api::service {
namespace {

std::string Text(const rapidjson::Value& v) {
  return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
}

void AddIdentifiers(const rapidjson::Value& resource, std::vector<storage::FhirSearchValue>* out) {
  const auto it = resource.FindMember("identifier");
  if (it == resource.MemberEnd() || !it->value.IsArray()) {
    return;
  }
  for (const rapidjson::Value& id : it->value.GetArray()) {
    if (!id.IsObject() || !id.HasMember("value")) {
      continue;
    }
    const std::string value = Text(id["value"]);
    if (value.empty()) {
      continue;
    }
    out->push_back({"identifier", id.HasMember("system") ? Text(id["system"]) : "", value});
  }
}

void AddName(const std::string& part, std::vector<storage::FhirSearchValue>* out) {
  std::string normalized = NormalizeNameForSearch(part);
  if (normalized.empty()) {
    return;
  }
  for (const storage::FhirSearchValue& v : *out) {
    if (v.name == "name" && v.value == normalized) {
      return;
    }
  }
  out->push_back({"name", "", std::move(normalized)});
}

void AddNames(const rapidjson::Value& resource, std::vector<storage::FhirSearchValue>* out) {
  const auto it = resource.FindMember("name");
  if (it == resource.MemberEnd() || !it->value.IsArray()) {
    return;
  }
  for (const rapidjson::Value& name : it->value.GetArray()) {
    if (!name.IsObject()) {
      continue;
    }
    for (const char* field : {"family", "text"}) {
      if (name.HasMember(field)) {
        AddName(Text(name[field]), out);
      }
    }
    for (const char* field : {"given", "prefix", "suffix"}) {
      if (name.HasMember(field) && name[field].IsArray()) {
        for (const rapidjson::Value& part : name[field].GetArray()) {
          AddName(Text(part), out);
        }
      }
    }
  }
}

}  // namespace

std::string NormalizeNameForSearch(std::string_view name) {
  std::string out(absl::StripAsciiWhitespace(absl::string_view(name.data(), name.size())));
  absl::AsciiStrToLower(&out);
  return out;
}

std::vector<storage::FhirSearchValue> FhirSearchValues(std::string_view resource_type,
                                                       std::string_view json) {
  std::vector<storage::FhirSearchValue> out;
  if (resource_type != "Patient" && resource_type != "ServiceRequest") {
    return out;
  }
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return out;
  }
  AddIdentifiers(doc, &out);
  if (resource_type == "Patient") {
    AddNames(doc, &out);
    if (doc.HasMember("birthDate")) {
      if (std::string birth = Text(doc["birthDate"]); !birth.empty()) {
        out.push_back({"birthdate", "", std::move(birth)});
      }
    }
  }
  return out;
}

}  // namespace bridge::api::service
