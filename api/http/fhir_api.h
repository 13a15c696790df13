// api/http/fhir_api.h
//
// FhirApi: the FHIR R4 facade under /fhir (application/fhir+json) over the
// stored FHIR resources and the Orders use case. Every error, unknown path,
// unsupported parameter (under `Prefer: handling=strict`) and 405 is an
// OperationOutcome with the right HTTP status (FhirError / ToOperationOutcome).
//
//   GET  /fhir/metadata                      CapabilityStatement (no token)
//   GET  /fhir/{type}/{id}[/_history/{vid}]  read (ETag, Last-Modified, meta)  results:read
//   GET  /fhir/{type}?...                    searchset Bundle, total, self/next  results:read
//        Observation: patient subject code date category status _lastUpdated _count
//        DiagnosticReport: the same, and _include=DiagnosticReport:result
//        ServiceRequest: patient subject code date status identifier _lastUpdated _count
//                        (identifier also finds orders placed here, ServiceRequest/order-N)
//        Patient: identifier name birthdate _lastUpdated _count
//   GET  /fhir/AuditEvent?patient=&_count=   the access audit as AuditEvents  audit:read
//   POST /fhir/ServiceRequest                a ServiceRequest (or a Bundle with
//                                            its Patient) -> the same order as
//                                            POST /api/lab-orders      orders:write
//
// Types read: Patient, DiagnosticReport, Observation, ServiceRequest,
// Specimen, Practitioner, Organization. Only the current version of a
// resource is kept, so /_history/{vid} answers that version or 404.
//
// Thread-safe; Handle blocks on storage.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

#include "api/http/server.h"
#include "api/service/access_audit.h"
#include "api/service/auth.h"
#include "api/service/orders.h"
#include "storage/store.h"

namespace bridge::api::http {

inline constexpr char kFhirJson[] = "application/fhir+json";

// An OperationOutcome response: HTTP status, issue code (`not-found`,
// `invalid`, `security`, `not-supported`, `processing`, `exception`, ...).
HttpResponse FhirError(int http_status, std::string_view issue_code, std::string_view message);
// The one translation of a Status into an OperationOutcome (STYLE.md 3.3).
HttpResponse ToOperationOutcome(const absl::Status& status);

class FhirApi {
 public:
  // `patient_authority`: SENDING_FACILITY, the PMS ids' assigning authority.
  FhirApi(storage::Store& store, service::Orders& orders, service::TokenRegistry& tokens,
          service::AccessAudit* audit, std::string patient_authority)
      : store_(store),
        orders_(orders),
        tokens_(tokens),
        audit_(audit),
        authority_(std::move(patient_authority)) {}
  FhirApi(const FhirApi&) = delete;
  FhirApi& operator=(const FhirApi&) = delete;

  // REQUIRES: request.path starts with "/fhir".
  HttpResponse Handle(const HttpRequest& request);

 private:
  HttpResponse Dispatch(const HttpRequest& request, service::Principal* who,
                        std::vector<std::string>* patients);
  HttpResponse Read(const std::string& type, const std::string& id, const std::string& vid,
                    std::vector<std::string>* patients);
  HttpResponse Search(const HttpRequest& request, const std::string& type,
                      std::vector<std::string>* patients);
  HttpResponse SearchAuditEvents(const HttpRequest& request);
  HttpResponse CreateServiceRequest(const HttpRequest& request, std::vector<std::string>* patients);
  // How the access audit names a Patient read through the facade: its PMS
  // id when the stored Patient has one, else the FHIR id. Reads the store.
  std::string AuditPatientId(const std::string& fhir_patient_id);

  storage::Store& store_;
  service::Orders& orders_;
  service::TokenRegistry& tokens_;
  service::AccessAudit* audit_;
  const std::string authority_;
};

}  // namespace bridge::api::http
