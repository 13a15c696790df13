// api/service/results.cc
#include "api/service/results.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

namespace bridge::api::service {
namespace {

// Fills pms_patient_id for every row, one patient lookup per distinct id.
absl::StatusOr<ResultList> Decorate(storage::Store& store, storage::ResultPage page,
                                    const std::string& known_pms_id) {
  ResultList out;
  out.next_cursor = std::move(page.next_cursor);
  out.results.reserve(page.results.size());
  std::map<std::int64_t, std::string> pms_ids;
  for (storage::StoredResult& row : page.results) {
    const std::string* pms = &known_pms_id;
    if (pms->empty()) {
      auto it = pms_ids.find(row.patient_id);
      if (it == pms_ids.end()) {
        absl::StatusOr<storage::StoredPatient> patient = store.GetPatient(row.patient_id);
        if (!patient.ok() && !absl::IsNotFound(patient.status())) {
          return patient.status();
        }
        it = pms_ids.emplace(row.patient_id, patient.ok() ? patient->patient.pms_patient_id : "")
                 .first;
      }
      pms = &it->second;
    }
    // Built in place: a result is some twenty strings, moved once, not twice.
    out.results.emplace_back(std::move(row), *pms);
  }
  return out;
}

}  // namespace

absl::Status CheckLimit(int limit) {
  if (limit < 1 || limit > kMaxPageSize) {
    return absl::InvalidArgumentError("limit: expected 1-" + std::to_string(kMaxPageSize) +
                                      ", got " + std::to_string(limit));
  }
  return absl::OkStatus();
}

absl::StatusOr<ResultList> Results::List(const ResultFilter& filter) const {
  if (absl::Status s = CheckLimit(filter.limit); !s.ok()) {
    return s;
  }
  storage::ResultQuery query;
  query.pms_patient_id = filter.pms_patient_id;
  query.abnormal_only = filter.abnormal_only;
  query.critical = filter.critical;
  query.acknowledged = filter.acknowledged;
  query.observed_from = filter.observed_from;
  query.observed_to = filter.observed_to;
  query.test_code = filter.test_code;
  query.limit = filter.limit;
  query.cursor = filter.cursor;
  absl::StatusOr<storage::ResultPage> page = store_.ListResults(query);
  if (!page.ok()) {
    if (absl::IsNotFound(page.status()) && !filter.pms_patient_id.empty()) {
      return ResultList{};  // a patient we never received results for
    }
    return page.status();
  }
  return Decorate(store_, *std::move(page), filter.pms_patient_id);
}

absl::StatusOr<ResultView> Results::Get(std::int64_t result_id) const {
  absl::StatusOr<storage::StoredResult> result = store_.GetResult(result_id);
  if (!result.ok()) {
    return result.status();
  }
  absl::StatusOr<std::string> pms = PmsIdOf(result->patient_id);
  if (!pms.ok()) {
    return pms.status();
  }
  return ResultView{*std::move(result), *std::move(pms)};
}

absl::StatusOr<ResultList> Results::ListCritical(std::optional<bool> acknowledged, int limit,
                                                 const std::string& cursor) const {
  ResultFilter filter;
  filter.critical = true;
  filter.acknowledged = acknowledged;
  filter.limit = limit;
  filter.cursor = cursor;
  return List(filter);
}

absl::StatusOr<std::vector<ResultView>> Results::ForOrder(const storage::StoredOrder& order) const {
  // The store has no lab_order_id filter: walk the patient's results.
  std::vector<ResultView> out;
  storage::ResultQuery query;
  query.patient_id = order.patient_id;
  query.limit = kMaxPageSize;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<storage::ResultPage> page = store_.ListResults(query);
    if (!page.ok()) {
      return page.status();
    }
    storage::ResultPage linked;
    for (storage::StoredResult& row : page->results) {
      if (row.lab_order_id == order.id) {
        linked.results.push_back(std::move(row));
      }
    }
    absl::StatusOr<ResultList> decorated = Decorate(store_, std::move(linked), "");
    if (!decorated.ok()) {
      return decorated.status();
    }
    for (ResultView& view : decorated->results) {
      out.push_back(std::move(view));
    }
    if (page->next_cursor.empty()) {
      break;
    }
    query.cursor = page->next_cursor;
  }
  return out;
}

absl::StatusOr<std::vector<ResultView>> Results::After(const std::string& pms_patient_id,
                                                       bool critical_only,
                                                       std::int64_t after_id) const {
  ResultFilter filter;
  filter.pms_patient_id = pms_patient_id;
  if (critical_only) {
    filter.critical = true;
  }
  filter.limit = kMaxPageSize;
  std::vector<ResultView> newer;  // newest first while paging
  for (;;) {
    absl::StatusOr<ResultList> page = List(filter);
    if (!page.ok()) {
      return page.status();
    }
    bool reached = false;
    for (ResultView& view : page->results) {
      if (view.result.id <= after_id) {
        reached = true;
        break;
      }
      newer.push_back(std::move(view));
    }
    if (reached || page->next_cursor.empty()) {
      break;
    }
    filter.cursor = page->next_cursor;
  }
  std::reverse(newer.begin(), newer.end());
  return newer;
}

absl::Status Results::Acknowledge(std::int64_t result_id, const std::string& who, absl::Time when,
                                  const std::string& note) const {
  if (who.empty()) {
    return absl::InvalidArgumentError("acknowledged_by: required");
  }
  return store_.AcknowledgeResult(result_id, who, when, note);
}

absl::StatusOr<std::string> Results::PmsIdOf(std::int64_t patient_id) const {
  absl::StatusOr<storage::StoredPatient> patient = store_.GetPatient(patient_id);
  if (!patient.ok()) {
    if (absl::IsNotFound(patient.status())) {
      return std::string();
    }
    return patient.status();
  }
  return patient->patient.pms_patient_id;
}

}  // namespace bridge::api::service
