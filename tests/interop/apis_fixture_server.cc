// tests/interop/apis_fixture_server.cc
//
// A lab-bridge API server over a seeded store, for the real third-party
// clients (fhir-kit-client, curl, wrk) until `lab-bridge serve` starts the
// APIs itself. It opens DATABASE_URL, stores the guide's sample ORU
// (patient 12345, five results, potassium 6.8 HH) and, with --patients N
// --results M, M results spread over N more patients, each with a valid
// FHIR R4 Observation; then starts StartApis (HTTP_LISTEN_PORT, default 0),
// writes the bound HTTP port to --port-file (last), the gRPC port to
// --grpc-port-file, the admin token to --token-file, a results:read-only
// token to --reader-token-file and an orders:write-only one (none of the
// read roles) to --writer-token-file,
// and serves until SIGTERM/SIGINT; each SIGUSR1 stores one more ORU for
// patient 12345.
//
//   apis_fixture_server --port-file p --token-file t [--patients 1000 --results 100000]
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "api/apis.h"
#include "api/config.h"
#include "api/service/fhir_search_values.h"
#include "storage/store.h"

namespace {

using bridge::storage::FhirResourceRecord;
using bridge::storage::IngestRecord;
using bridge::storage::ResultRecord;

struct Test {
  const char* code;
  const char* loinc;
  const char* name;
  const char* value;
  const char* units;
  const char* ucum;
  const char* range;
  const char* flag;
};

constexpr Test kGuideTests[] = {
    {"WBC", "6690-2", "White Blood Cell Count", "7.5", "10*3/uL", "10*3/uL", "4.5-11.0", "N"},
    {"RBC", "789-8", "Red Blood Cell Count", "4.8", "10*6/uL", "10*6/uL", "4.0-5.5", "N"},
    {"HGB", "718-7", "Hemoglobin", "14.2", "g/dL", "g/dL", "12.0-16.0", "N"},
    {"PLT", "777-3", "Platelet Count", "250", "10*3/uL", "10*3/uL", "150-400", "N"},
    {"K", "2823-3", "Potassium", "6.8", "mEq/L", "meq/L", "3.5-5.0", "HH"},
};

std::string ObservationJson(const Test& t, const std::string& patient_ref) {
  const bool high = std::string(t.flag) == "HH";
  return absl::StrCat(
      R"({"resourceType":"Observation","status":"final","category":[{"coding":[{"system":)",
      R"("http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],)",
      R"("code":{"coding":[{"system":"http://loinc.org","code":")", t.loinc, R"(","display":")",
      t.name, R"("}],"text":")", t.name, R"("},"subject":{"reference":")", patient_ref,
      R"("},"effectiveDateTime":"2026-02-21T11:00:00Z","valueQuantity":{"value":)", t.value,
      R"(,"unit":")", t.units, R"(","system":"http://unitsofmeasure.org","code":")", t.ucum,
      R"("},"interpretation":[{"coding":[{"system":)",
      R"("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":")",
      high ? "HH" : "N", R"("}]}]})");
}

IngestRecord Oru(const std::string& control_id, const std::string& pms_id,
                 const std::vector<const Test*>& tests) {
  IngestRecord r;
  r.message.message_type = "ORU";
  r.message.trigger_event = "R01";
  r.message.message_control_id = control_id;
  r.message.sending_application = "LAB_LIS";
  r.message.sending_facility = "REFERENCE_LAB";
  r.message.receiving_application = "PMS_LAB";
  r.message.receiving_facility = "MPS_PMS";
  r.message.version = "2.5.1";
  r.message.raw_message = "MSH|^~\\&|LAB_LIS|REFERENCE_LAB|PMS_LAB|MPS_PMS|||ORU^R01|" + control_id;
  r.message.ack_status = "AA";
  r.patient = bridge::storage::PatientRecord{pms_id, "", "Doe", "Jane", "19900315", "F"};
  const std::string patient_ref = "Patient/" + pms_id;
  FhirResourceRecord patient;
  patient.resource_type = "Patient";
  patient.id = pms_id;
  patient.json = absl::StrCat(
      R"({"resourceType":"Patient","identifier":[{"type":{"coding":[{"system":)",
      R"("http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":)",
      R"("urn:lab-bridge:patient:MPS_PMS","value":")", pms_id,
      R"("}],"name":[{"family":"Doe","given":["Jane"]}],"gender":"female","birthDate":"1990-03-15"})");
  patient.patient_reference = patient_ref;
  patient.search_values = bridge::api::service::FhirSearchValues("Patient", patient.json);
  r.fhir_resources.push_back(patient);
  int n = 0;
  for (const Test* t : tests) {
    ResultRecord result;
    result.test_code = t->code;
    result.test_name = t->name;
    result.value = t->value;
    result.value_type = "NM";
    result.units = t->units;
    result.reference_range = t->range;
    result.abnormal_flag = t->flag;
    result.result_status = "F";
    result.sending_facility = "REFERENCE_LAB";
    result.filler_order_number = "FIL-" + control_id;
    result.placer_order_number = "ORD-" + control_id;
    result.observation_date = absl::FromUnixSeconds(1771671600);
    result.critical = std::string(t->flag) == "HH";
    r.results.push_back(result);
    FhirResourceRecord obs;
    obs.resource_type = "Observation";
    obs.id = absl::StrCat(control_id, "-", ++n);
    obs.json = ObservationJson(*t, patient_ref);
    obs.patient_reference = patient_ref;
    obs.code = absl::StrCat("http://loinc.org|", t->loinc);
    obs.date = "2026-02-21T11:00:00Z";
    obs.status = "final";
    obs.category = "laboratory";
    r.fhir_resources.push_back(obs);
  }
  FhirResourceRecord report;
  report.resource_type = "DiagnosticReport";
  report.id = control_id + "-report";
  report.patient_reference = patient_ref;
  report.code = "http://loinc.org|58410-2";
  report.date = "2026-02-21T11:00:00Z";
  report.status = "final";
  report.category = "LAB";
  std::string refs;
  for (int i = 1; i <= n; ++i) {
    absl::StrAppend(&refs, i > 1 ? "," : "", R"({"reference":"Observation/)", control_id, "-", i,
                    R"("})");
  }
  report.json = absl::StrCat(
      R"({"resourceType":"DiagnosticReport","status":"final","category":[{"coding":[{"system":)",
      R"("http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB"}]}],"code":{"coding":[{)",
      R"("system":"http://loinc.org","code":"58410-2","display":"CBC panel"}]},"subject":{)",
      R"("reference":")", patient_ref, R"("},"effectiveDateTime":"2026-02-21T11:00:00Z",)",
      R"("result":[)", refs, "]}");
  r.fhir_resources.push_back(report);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string port_file, grpc_port_file, token_file, reader_token_file, writer_token_file;
  long patients = 0, results = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port-file") {
      port_file = argv[i + 1];
    }
    if (flag == "--token-file") {
      token_file = argv[i + 1];
    }
    if (flag == "--grpc-port-file") {
      grpc_port_file = argv[i + 1];
    }
    if (flag == "--reader-token-file") {
      reader_token_file = argv[i + 1];
    }
    if (flag == "--writer-token-file") {
      writer_token_file = argv[i + 1];
    }
    if (flag == "--patients") {
      patients = std::atol(argv[i + 1]);
    }
    if (flag == "--results") {
      results = std::atol(argv[i + 1]);
    }
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  bridge::api::TuneAllocatorForServing();  // as serve does
  absl::StatusOr<bridge::api::Config> config =
      bridge::api::LoadConfig(bridge::api::EnvironmentLookup());
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  if (std::getenv("HTTP_LISTEN_PORT") == nullptr) {
    config->http_port = 0;
  }
  if (std::getenv("GRPC_LISTEN_PORT") == nullptr) {
    config->grpc_port = 0;
  }
  absl::StatusOr<std::unique_ptr<bridge::storage::Store>> store =
      bridge::storage::OpenStore(config->store);
  if (!store.ok()) {
    std::cerr << store.status().message() << "\n";
    return 1;
  }
  std::vector<const Test*> guide;
  for (const Test& t : kGuideTests) {
    guide.push_back(&t);
  }
  absl::StatusOr<bridge::storage::IngestOutcome> sample =
      (*store)->Ingest(Oru("MSG001", "12345", guide));
  if (!sample.ok()) {
    std::cerr << sample.status().message() << "\n";
    return 1;
  }
  // `results` more results over `patients` patients, five per message.
  for (long m = 0; patients > 0 && m * 5 < results; ++m) {
    const std::string pms = std::to_string(100000 + m % patients);
    absl::StatusOr<bridge::storage::IngestOutcome> seeded =
        (*store)->Ingest(Oru(absl::StrCat("SEED", m), pms, guide));
    if (!seeded.ok()) {
      std::cerr << seeded.status().message() << "\n";
      return 1;
    }
  }
  absl::StatusOr<std::unique_ptr<bridge::api::Apis>> apis =
      bridge::api::StartApis(*config, **store, nullptr, {});
  if (!apis.ok()) {
    std::cerr << apis.status().message() << "\n";
    return 1;
  }
  if (!token_file.empty() && !(*apis)->initial_admin_token().empty()) {
    std::ofstream(token_file) << (*apis)->initial_admin_token() << "\n";
  }
  if (!reader_token_file.empty()) {
    absl::StatusOr<std::string> reader = (*apis)->tokens().Create(
        "reader", static_cast<std::uint32_t>(bridge::api::service::Role::kResultsRead),
        absl::Now());
    if (reader.ok()) {
      std::ofstream(reader_token_file) << *reader << "\n";
    }
  }
  if (!writer_token_file.empty()) {
    absl::StatusOr<std::string> writer = (*apis)->tokens().Create(
        "writer", static_cast<std::uint32_t>(bridge::api::service::Role::kOrdersWrite),
        absl::Now());
    if (writer.ok()) {
      std::ofstream(writer_token_file) << *writer << "\n";
    }
  }
  if (!grpc_port_file.empty()) {
    std::ofstream(grpc_port_file) << (*apis)->grpc_port() << "\n";
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << (*apis)->http_port() << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  // SIGUSR1: one more ORU for patient 12345 (five results), as if it had
  // just arrived, for the WatchResults test.
  for (int next = 2;; ++next) {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal != SIGUSR1) {
      break;
    }
    absl::StatusOr<bridge::storage::IngestOutcome> more =
        (*store)->Ingest(Oru(absl::StrCat("MSG00", next), "12345", guide));
    if (!more.ok()) {
      std::cerr << more.status().message() << "\n";
    }
  }
  (*apis)->Stop();
  return 0;
}
