#include "api/service/patients.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace bridge::api::service {

absl::StatusOr<std::vector<PatientView>> Patients::Search(const std::string& text,
                                                          int limit) const {
  constexpr int kMaxLimit = 100;
  constexpr std::size_t kMaxText = 100;
  if (limit < 1 || limit > kMaxLimit) {
    return absl::InvalidArgumentError("limit: expected 1 to 100");
  }
  if (text.size() > kMaxText) {
    return absl::InvalidArgumentError("q: at most 100 characters");
  }
  const std::vector<absl::string_view> words =
      absl::StrSplit(text, absl::ByAnyChar(" ,\t"), absl::SkipEmpty());
  if (words.empty()) {
    return absl::InvalidArgumentError("q: enter a PMS patient id or a name");
  }
  if (words.size() > 5) {
    return absl::InvalidArgumentError("q: at most 5 words");
  }
  absl::StatusOr<std::vector<storage::StoredPatient>> found =
      store_.SearchPatients({.text = text, .limit = limit});
  if (!found.ok()) {
    return found.status();
  }
  std::vector<PatientView> out;
  for (storage::StoredPatient& p : *found) {
    if (p.patient.pms_patient_id.empty()) {
      continue;
    }
    out.push_back(PatientView{std::move(p.patient.pms_patient_id), std::move(p.patient.family_name),
                              std::move(p.patient.given_name), std::move(p.patient.birth_date),
                              std::move(p.patient.sex)});
  }
  return out;
}

}  // namespace bridge::api::service
