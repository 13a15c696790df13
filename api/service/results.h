// api/service/results.h
//
// Results: the read and acknowledge use cases for lab results, shared by the
// REST paths, the FHIR facade and gRPC so they can never disagree. PMS
// patient ids (PID-3 with our assigning authority) are the external key;
// results carry it back so callers never see internal row ids of patients.
//
//   Results results(store);
//   absl::StatusOr<ResultList> page = results.List({.pms_patient_id = "12345"});
//   absl::Status s = results.Acknowledge(42, "dr.smith", "called patient");
//
// Errors: kInvalidArgument for a bad filter (limit out of 1..1000),
// kNotFound / kAlreadyExists from Acknowledge, kUnavailable when the store is.
// An unknown patient is an empty list, not an error (the PMS knows patients
// lab-bridge has never seen).
//
// Thread-safe; every call blocks on storage (call from a worker thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "storage/store.h"

namespace bridge::api::service {

inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

struct ResultFilter {
  std::string pms_patient_id;  // "" = every patient
  bool abnormal_only = false;
  std::optional<bool> critical;
  std::optional<bool> acknowledged;
  std::optional<absl::Time> observed_from;  // inclusive
  std::optional<absl::Time> observed_to;    // exclusive
  std::string test_code;
  int limit = kDefaultPageSize;
  std::string cursor;  // opaque, from the previous page
};

// A stored result with its patient's PMS id ("" when the patient has none).
struct ResultView {
  storage::StoredResult result;
  std::string pms_patient_id;
};

struct ResultList {
  std::vector<ResultView> results;
  std::string next_cursor;  // "" on the last page
};

class Results {
 public:
  explicit Results(storage::Store& store) : store_(store) {}
  Results(const Results&) = delete;
  Results& operator=(const Results&) = delete;

  absl::StatusOr<ResultList> List(const ResultFilter& filter) const;

  // One result. kNotFound when there is no such id.
  absl::StatusOr<ResultView> Get(std::int64_t result_id) const;

  // Critical results, unacknowledged first by default (the alert queue).
  absl::StatusOr<ResultList> ListCritical(std::optional<bool> acknowledged, int limit,
                                          const std::string& cursor) const;

  // The results linked to an order (lab_order_id), newest first.
  absl::StatusOr<std::vector<ResultView>> ForOrder(const storage::StoredOrder& order) const;

  absl::Status Acknowledge(std::int64_t result_id, const std::string& who, absl::Time when,
                           const std::string& note) const;

  // Every result with id > `after_id` (all patients when `pms_patient_id`
  // is empty; criticals only when asked), oldest first: what a watcher that
  // last saw `after_id` has missed. Result ids grow with every insert.
  absl::StatusOr<std::vector<ResultView>> After(const std::string& pms_patient_id,
                                                bool critical_only, std::int64_t after_id) const;

  // The PMS id of an internal patient id ("" when it has none).
  absl::StatusOr<std::string> PmsIdOf(std::int64_t patient_id) const;

 private:
  storage::Store& store_;
};

// Validates a page size from a request (kInvalidArgument outside 1..kMaxPageSize).
absl::Status CheckLimit(int limit);

}  // namespace bridge::api::service
