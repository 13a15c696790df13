// api/service/access_audit.h
//
// AccessAudit: the record of who read or changed patient data through the
// APIs (HIPAA 164.312(b)), one JSON object per line in an append-only file
// (ACCESS_AUDIT_FILE, mode 0600), flushed before the answer leaves:
//
//   {"time":"2026-02-21T12:00:01.5Z","who":"pms-backend","protocol":"rest",
//    "action":"read","what":"GET /api/lab-results","patients":["12345"],
//    "outcome":200,"source":"10.0.0.7"}
//
// Refused calls (401/403) are recorded too, with who = the token's name when
// known, else "-". No result values, names or bodies are written.
//
//   absl::StatusOr<std::unique_ptr<AccessAudit>> audit = AccessAudit::Open(path);
//   (*audit)->Record(event);
//   absl::StatusOr<std::vector<AccessEvent>> rows = (*audit)->Query("12345", 100);
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bridge::api::service {

struct AccessEvent {
  absl::Time time;
  std::string who;                    // token name, or "-" when unauthenticated
  std::string protocol;               // "rest", "fhir", "grpc"
  std::string action;                 // "read", "create", "update"
  std::string what;                   // "GET /api/lab-results" (path, no query values)
  std::vector<std::string> patients;  // PMS ids whose data was returned or changed
  int outcome = 0;                    // HTTP status (or gRPC code)
  std::string source;                 // peer address
};

class AccessAudit {
 public:
  // Opens (creating, mode 0600) `path` for appending. Unavailable when it
  // cannot be opened.
  static absl::StatusOr<std::unique_ptr<AccessAudit>> Open(const std::string& path);
  ~AccessAudit();
  AccessAudit(const AccessAudit&) = delete;
  AccessAudit& operator=(const AccessAudit&) = delete;

  // Appends and flushes one event. Unavailable when the write fails.
  absl::Status Record(const AccessEvent& event);

  // The newest `limit` events, newest first; only those naming
  // `pms_patient_id` when it is not empty.
  absl::StatusOr<std::vector<AccessEvent>> Query(const std::string& pms_patient_id,
                                                 int limit) const;

  std::uint64_t recorded() const;

 private:
  AccessAudit(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

  const std::string path_;
  mutable std::mutex mu_;
  std::FILE* file_;
  std::uint64_t recorded_ = 0;
};

// One event as its JSON line (no newline) and back.
std::string AccessEventToJson(const AccessEvent& event);
absl::StatusOr<AccessEvent> AccessEventFromJson(const std::string& line);

}  // namespace bridge::api::service
