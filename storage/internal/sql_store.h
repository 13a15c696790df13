// storage/internal/sql_store.h (private to storage/)
//
// SqlStore implements Store once, over internal::Connection, for both
// backends: the audit chain, idempotency, group commit, queries, outbox and
// retention live here; sqlite/ and postgres/ only run SQL.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"

#include "storage/internal/connection.h"
#include "storage/store.h"

namespace bridge::storage::internal {

// Takes ownership of `connection` (all writes) and `read_connections`
// (queries, each on whichever of them is free; may be empty, then queries
// share `connection`), migrates when options.migrate_on_open and starts the
// group-commit thread.
absl::StatusOr<std::unique_ptr<Store>> MakeSqlStore(
    std::unique_ptr<Connection> connection,
    std::vector<std::unique_ptr<Connection>> read_connections, const StoreOptions& options);

}  // namespace bridge::storage::internal
