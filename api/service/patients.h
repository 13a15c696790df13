// api/service/patients.h
//
// Patients: finding a patient by PMS id or name, for the dashboard's patient
// search (GET /api/patients?q=). Names come from the PID segments lab-bridge
// has received (and orders placed with demographics); the PMS id is the
// external key, as in Results and Orders.
//
//   Patients patients(store);
//   absl::StatusOr<std::vector<PatientView>> found = patients.Search("doe jan", 20);
//
// Errors: kInvalidArgument for an empty query, more than 5 words, over 100
// characters, or a limit outside 1..100; kUnavailable when the store is.
// A patient without a PMS id (known only by the lab's identifiers) is not
// returned: nothing else in the APIs can name it.
//
// Thread-safe; blocks on storage.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "storage/store.h"

namespace bridge::api::service {

struct PatientView {
  std::string pms_patient_id;
  std::string family_name;
  std::string given_name;
  std::string birth_date;  // YYYY[MM[DD]] as in PID-7
  std::string sex;
};

class Patients {
 public:
  explicit Patients(storage::Store& store) : store_(store) {}
  Patients(const Patients&) = delete;
  Patients& operator=(const Patients&) = delete;

  absl::StatusOr<std::vector<PatientView>> Search(const std::string& text, int limit) const;

 private:
  storage::Store& store_;
};

}  // namespace bridge::api::service
