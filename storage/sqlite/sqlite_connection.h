// storage/sqlite/sqlite_connection.h (private to storage/)
//
// The SQLite backend of internal::Connection: one database file in WAL mode
// with synchronous=FULL, statements prepared once and cached.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "storage/internal/connection.h"

namespace bridge::storage::sqlite {

// Opens (creating the file and its folder) `path`. kUnavailable when the file
// cannot be opened or configured.
absl::StatusOr<std::unique_ptr<internal::Connection>> OpenSqlite(const std::string& path,
                                                                 absl::Duration busy_timeout);

}  // namespace bridge::storage::sqlite
