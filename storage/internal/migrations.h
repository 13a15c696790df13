// storage/internal/migrations.h (private to storage/)
//
// The numbered schema migrations (storage/schema/NNNN_name.sql), embedded in
// the binary at build time, with the per-backend spelling of the few types
// that differ.
#pragma once

#include <string>
#include <vector>

#include "storage/internal/connection.h"

namespace bridge::storage::internal {

struct Migration {
  int version = 0;   // NNNN
  std::string name;  // "0001_initial"
  std::string sql;   // already specialised for the dialect
};

// Every migration, in version order.
std::vector<Migration> Migrations(Dialect dialect);

}  // namespace bridge::storage::internal
