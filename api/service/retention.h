// api/service/retention.h
//
// The audit retention job (HIPAA keeps 6 years; AUDIT_RETENTION_DAYS,
// default 2555 = 7 years): audit rows processed more than `retention` ago
// are purged by this job, never by hand, so the hash chain stays verifiable
// from the first kept row (Store::PurgeAuditOlderThan moves its anchor).
//
//   RetentionJob job(store, {.retention = absl::Hours(24 * 2555), .logger = logger});
//   job.Start();   // purges now, then every `interval`
//   ...
//   job.Stop();    // waits for a purge in progress
//
// With several replicas on one PostgreSQL each runs the job; a purge is one
// transaction and a second replica's run finds nothing left to purge.
//
// Thread-safety: Start/Stop from one thread; RunOnce from any thread.
#pragma once

#include <spdlog/logger.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "storage/store.h"

namespace bridge::api::service {

struct RetentionOptions {
  absl::Duration retention = absl::Hours(24 * 2555);
  absl::Duration interval = absl::Hours(1);
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  std::shared_ptr<spdlog::logger> logger = nullptr;  // optional: one line per purge or failure
};

class RetentionJob {
 public:
  RetentionJob(storage::Store& store, RetentionOptions options)
      : store_(store), options_(std::move(options)) {}
  ~RetentionJob() { Stop(); }
  RetentionJob(const RetentionJob&) = delete;
  RetentionJob& operator=(const RetentionJob&) = delete;

  // Purges what is older than now - retention; returns the rows purged.
  absl::StatusOr<int64_t> RunOnce();

  void Start();
  void Stop();

 private:
  storage::Store& store_;
  const RetentionOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bridge::api::service
