// FromServiceRequest: FHIR R4 ServiceRequest (+ Patient, Practitioner) ->
// OrderRequest. Every JSON access is type-checked first (RapidJSON asserts
// on misuse).
#include <string>

#include "rapidjson/document.h"

#include "mapping/fhir/text.h"
#include "mapping/fhir_to_v2/orm_builder.h"

namespace bridge::fhir_to_v2 {
namespace {

using fhir::text::Cat;
using rapidjson::Value;

const Value* Member(const Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

// The string member `name` with surrounding spaces removed ("" when absent
// or not a string).
std::string Str(const Value& v, const char* name) {
  const Value* m = Member(v, name);
  if (m == nullptr || !m->IsString()) return "";
  return std::string(fhir::text::Trim(std::string_view(m->GetString(), m->GetStringLength())));
}

const Value* Array(const Value& v, const char* name) {
  const Value* m = Member(v, name);
  return m != nullptr && m->IsArray() ? m : nullptr;
}

// The resource a reference string points at: "#id" (contained), a Bundle
// entry's fullUrl, or "Type/id" matched against entries' type and id.
const Value* Resolve(const Value& root, const Value& resource, const std::string& ref) {
  if (ref.empty()) return nullptr;
  if (ref[0] == '#') {
    if (const Value* contained = Array(resource, "contained")) {
      for (const Value& c : contained->GetArray()) {
        if (Str(c, "id") == ref.substr(1)) return &c;
      }
    }
    return nullptr;
  }
  if (const Value* entries = Array(root, "entry")) {
    for (const Value& e : entries->GetArray()) {
      const Value* r = Member(e, "resource");
      if (r == nullptr || !r->IsObject()) continue;
      if (Str(e, "fullUrl") == ref) return r;
      if (Cat(Str(*r, "resourceType"), "/", Str(*r, "id")) == ref) return r;
    }
  }
  return nullptr;
}

const Value* Referenced(const Value& root, const Value& resource, const char* field) {
  const Value* ref = Member(resource, field);
  if (ref == nullptr) return nullptr;
  return Resolve(root, resource, Str(*ref, "reference"));
}

bool HasTypeCode(const Value& identifier, std::string_view code) {
  const Value* type = Member(identifier, "type");
  if (type == nullptr) return false;
  if (const Value* codings = Array(*type, "coding")) {
    for (const Value& c : codings->GetArray()) {
      if (Str(c, "code") == code) return true;
    }
  }
  return false;
}

std::string V2System(const std::string& uri, const ServiceRequestOptions& options) {
  for (const auto& [from, to] : options.code_systems) {
    if (from == uri) return to;
  }
  if (uri == "http://loinc.org") return "LN";
  if (uri == "http://snomed.info/sct") return "SCT";
  return "L";
}

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(Cat("ServiceRequest: ", what));
}

}  // namespace

absl::StatusOr<OrderRequest> FromServiceRequest(std::string_view json,
                                                const ServiceRequestOptions& options) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return Bad("input is not a JSON object");
  const Value* sr = nullptr;
  const std::string type = Str(doc, "resourceType");
  if (type == "ServiceRequest") {
    sr = &doc;
  } else if (type == "Bundle") {
    if (const Value* entries = Array(doc, "entry")) {
      for (const Value& e : entries->GetArray()) {
        const Value* r = Member(e, "resource");
        if (r != nullptr && Str(*r, "resourceType") == "ServiceRequest") {
          if (sr != nullptr) return Bad("the Bundle holds more than one ServiceRequest");
          sr = r;
        }
      }
    }
  }
  if (sr == nullptr) return Bad("no ServiceRequest found");

  OrderRequest order;
  const std::string status = Str(*sr, "status");
  if (status == "active" || status.empty() || status == "draft") {
    order.order_control = "NW";
  } else if (status == "revoked" || status == "entered-in-error") {
    order.order_control = "CA";
  } else {
    return Bad(Cat("status ", status, " does not send an order"));
  }
  const std::string priority = Str(*sr, "priority");
  if (priority.empty() || priority == "routine") {
    order.priority = "R";
  } else if (priority == "stat") {
    order.priority = "S";
  } else if (priority == "asap" || priority == "urgent") {
    order.priority = "A";  // table 0485 has no "urgent": round up (MAPPING 9.5)
  } else {
    return Bad(Cat("unknown priority ", priority));
  }
  if (const Value* ids = Array(*sr, "identifier")) {
    for (const Value& id : ids->GetArray()) {
      if (HasTypeCode(id, "PLAC") && order.placer_order_number.empty()) {
        order.placer_order_number = Str(id, "value");
      }
      if (HasTypeCode(id, "FILL") && order.filler_order_number.empty()) {
        order.filler_order_number = Str(id, "value");
      }
    }
    if (order.placer_order_number.empty() && ids->Size() > 0) {
      order.placer_order_number = Str((*ids)[0], "value");
    }
  }
  if (order.placer_order_number.empty()) order.placer_order_number = Str(*sr, "id");
  if (order.placer_order_number.empty()) return Bad("no placer identifier (or id)");

  // code -> one test: the catalog coding first, LOINC as the alternate.
  const Value* code = Member(*sr, "code");
  if (code == nullptr || !code->IsObject()) return Bad("code is missing");
  TestCode test;
  const Value* codings = Array(*code, "coding");
  const Value* primary = nullptr;
  const Value* loinc = nullptr;
  if (codings != nullptr) {
    for (const Value& c : codings->GetArray()) {
      if (!c.IsObject() || Str(c, "code").empty()) continue;
      const std::string system = Str(c, "system");
      if (system == "http://loinc.org") {
        if (loinc == nullptr) loinc = &c;
      } else if (primary == nullptr &&
                 (options.catalog_system.empty() || system == options.catalog_system)) {
        primary = &c;
      }
    }
  }
  if (primary == nullptr) std::swap(primary, loinc);
  if (primary == nullptr) return Bad("code has no coding with a code");
  test.code = Str(*primary, "code");
  test.display = Str(*primary, "display");
  if (test.display.empty()) test.display = Str(*code, "text");
  test.system = V2System(Str(*primary, "system"), options);
  if (loinc != nullptr) {
    test.alternate_code = Str(*loinc, "code");
    test.alternate_display = Str(*loinc, "display");
    test.alternate_system = "LN";
  }
  order.test_codes.push_back(std::move(test));

  // Patient: contained, in the Bundle, or only an identifier on the reference.
  const Value* patient = Referenced(doc, *sr, "subject");
  const Value* subject = Member(*sr, "subject");
  const Value* identifiers = patient != nullptr ? Array(*patient, "identifier") : nullptr;
  if (identifiers != nullptr) {
    for (const Value& id : identifiers->GetArray()) {
      const std::string system = Str(id, "system");
      if (!options.patient_system.empty() ? system == options.patient_system
                                          : HasTypeCode(id, "MR")) {
        order.patient_id = Str(id, "value");
        break;
      }
    }
    if (order.patient_id.empty() && options.patient_system.empty() && identifiers->Size() > 0) {
      order.patient_id = Str((*identifiers)[0], "value");
    }
  } else if (subject != nullptr) {
    if (const Value* id = Member(*subject, "identifier")) order.patient_id = Str(*id, "value");
  }
  if (order.patient_id.empty()) return Bad("no patient identifier found");
  if (patient != nullptr) {
    PatientDemographics d;
    if (const Value* names = Array(*patient, "name"); names != nullptr && names->Size() > 0) {
      const Value& n = (*names)[0];
      d.family_name = Str(n, "family");
      if (const Value* given = Array(n, "given")) {
        if (given->Size() > 0 && (*given)[0].IsString()) d.given_name = (*given)[0].GetString();
        if (given->Size() > 1 && (*given)[1].IsString()) d.middle_name = (*given)[1].GetString();
      }
    }
    d.birth_date = Str(*patient, "birthDate");
    d.sex = Str(*patient, "gender");
    if (const Value* telecoms = Array(*patient, "telecom")) {
      for (const Value& t : telecoms->GetArray()) {
        if (Str(t, "system") == "phone") {
          d.phone = Str(t, "value");
          break;
        }
      }
    }
    order.demographics = d;
  }

  if (const Value* practitioner = Referenced(doc, *sr, "requester")) {
    if (const Value* ids = Array(*practitioner, "identifier")) {
      for (const Value& id : ids->GetArray()) {
        const std::string system = Str(id, "system");
        order.ordering_provider.id = Str(id, "value");
        if (system == "http://hl7.org/fhir/sid/us-npi") {
          order.ordering_provider.id_type = "NPI";
          break;
        }
      }
    }
    if (const Value* names = Array(*practitioner, "name"); names != nullptr && names->Size() > 0) {
      const Value& n = (*names)[0];
      order.ordering_provider.family_name = Str(n, "family");
      if (const Value* given = Array(n, "given")) {
        if (given->Size() > 0 && (*given)[0].IsString()) {
          order.ordering_provider.given_name = (*given)[0].GetString();
        }
      }
    }
  }
  if (const Value* encounter = Member(*sr, "encounter")) {
    const std::string ref = Str(*encounter, "reference");
    const size_t slash = ref.rfind('/');
    if (ref.rfind("Encounter/", 0) == 0 && slash != std::string::npos) {
      order.encounter_id = ref.substr(slash + 1);
    } else if (const Value* id = Member(*encounter, "identifier")) {
      order.encounter_id = Str(*id, "value");
    }
  }
  if (const Value* notes = Array(*sr, "note")) {
    for (const Value& n : notes->GetArray()) {
      const std::string text = Str(n, "text");
      if (text.empty()) continue;
      if (!order.note.empty()) order.note += "\n";
      order.note += text;
    }
  }
  return order;
}

}  // namespace bridge::fhir_to_v2
