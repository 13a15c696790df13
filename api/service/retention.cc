#include "api/service/retention.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

namespace bridge::api::service {

absl::StatusOr<int64_t> RetentionJob::RunOnce() {
  const absl::Time cutoff = options_.clock() - options_.retention;
  absl::StatusOr<int64_t> purged = store_.PurgeAuditOlderThan(cutoff);
  if (options_.logger) {
    if (purged.ok()) {
      if (*purged > 0) {
        options_.logger->info("event=retention_purge rows={} cutoff={}", *purged,
                              absl::FormatTime(absl::RFC3339_sec, cutoff, absl::UTCTimeZone()));
      }
    } else {
      // Storage messages name tables and rows, never message content.
      options_.logger->error(
          "event=retention_failed error=\"{}\"",
          std::string(purged.status().message().data(), purged.status().message().size()));
    }
  }
  return purged;
}

void RetentionJob::Start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      RunOnce().IgnoreError();  // logged; the next run tries again
      lock.lock();
      wake_.wait_for(lock, absl::ToChronoNanoseconds(options_.interval),
                     [this] { return stopping_; });
    }
  });
}

void RetentionJob::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace bridge::api::service
