// storage/postgres/postgres_connection.h (private to storage/)
//
// The PostgreSQL backend of internal::Connection over libpqxx 6.x. libpqxx
// exceptions are caught in postgres_connection.cc and become Statuses there;
// nothing outside that file sees pqxx. A lost connection is reported as
// kUnavailable and re-established on the next call outside a transaction.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "storage/internal/connection.h"

namespace bridge::storage::postgres {

// Connects to `url` (a libpq URI). kUnavailable (password masked) when the
// server cannot be reached.
absl::StatusOr<std::unique_ptr<internal::Connection>> OpenPostgres(const std::string& url,
                                                                   absl::Duration lock_timeout);

}  // namespace bridge::storage::postgres
