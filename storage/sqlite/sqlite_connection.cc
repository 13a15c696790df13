#include "storage/sqlite/sqlite_connection.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include <sqlite3.h>

namespace bridge::storage::sqlite {
namespace {

using internal::Param;
using internal::Row;

// Retryable: the database is busy, the disk is full or failing. Everything
// else is a fault in the statement or the file.
absl::Status FromSqlite(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xff;
  std::string message = absl::StrCat("sqlite ", absl::string_view(what.data(), what.size()), ": ",
                                     db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc), " (",
                                     sqlite3_errstr(rc), ")");
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(message);
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(message);
      }
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

class SqliteConnection final : public internal::Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : statements_) {
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db_);
  }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;
  SqliteConnection(SqliteConnection&&) = delete;
  SqliteConnection& operator=(SqliteConnection&&) = delete;

  internal::Dialect dialect() const override { return internal::Dialect::kSqlite; }

  absl::StatusOr<std::vector<Row>> Query(const std::string& sql,
                                         const std::vector<Param>& params) override {
    absl::StatusOr<sqlite3_stmt*> prepared = Prepare(sql);
    if (!prepared.ok()) {
      return prepared.status();
    }
    sqlite3_stmt* stmt = *prepared;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    const std::vector<int>& numbers = prepared_numbers_[stmt];
    for (size_t index = 1; index < numbers.size(); ++index) {
      const size_t i = static_cast<size_t>(numbers[index] - 1);
      if (i >= params.size()) {
        return absl::InternalError(absl::StrCat("sqlite: no value for $", numbers[index]));
      }
      const Param& p = params[i];
      const int bind_index = static_cast<int>(index);
      int rc = SQLITE_OK;
      switch (p.kind) {
        case Param::Kind::kNull:
          rc = sqlite3_bind_null(stmt, bind_index);
          break;
        case Param::Kind::kInt:
          rc = sqlite3_bind_int64(stmt, bind_index, p.int_value);
          break;
        case Param::Kind::kText:
          rc = sqlite3_bind_text(stmt, bind_index, p.text.data(), static_cast<int>(p.text.size()),
                                 SQLITE_TRANSIENT);
          break;
        case Param::Kind::kBlob:
          rc = sqlite3_bind_blob(stmt, bind_index, p.text.data(), static_cast<int>(p.text.size()),
                                 SQLITE_TRANSIENT);
          break;
      }
      if (rc != SQLITE_OK) {
        return FromSqlite(db_, rc, "bind");
      }
    }
    std::vector<Row> rows;
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) {
        break;
      }
      if (rc != SQLITE_ROW) {
        absl::Status status = FromSqlite(db_, rc, "step");
        sqlite3_reset(stmt);
        return status;
      }
      const int columns = sqlite3_column_count(stmt);
      Row row(columns);
      for (int c = 0; c < columns; ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
          continue;
        }
        const void* data = sqlite3_column_blob(stmt, c);
        const int size = sqlite3_column_bytes(stmt, c);
        row[c] = std::string(static_cast<const char*>(data), static_cast<size_t>(size));
      }
      rows.push_back(std::move(row));
    }
    sqlite3_reset(stmt);
    return rows;
  }

  // In-process: a loop of prepared statements costs no round trips.
  absl::StatusOr<std::vector<Row>> QueryBatch(const std::vector<Statement>& statements) override {
    std::vector<Row> rows;
    for (const Statement& statement : statements) {
      absl::StatusOr<std::vector<Row>> result = Query(statement.sql, statement.params);
      if (!result.ok()) {
        return result.status();
      }
      rows = *std::move(result);
    }
    return rows;
  }

  absl::Status ExecScript(const std::string& sql) override {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
      absl::Status status = FromSqlite(db_, rc, "exec");
      sqlite3_free(error);
      return status;
    }
    return absl::OkStatus();
  }

  absl::Status Begin() override { return Simple("BEGIN IMMEDIATE"); }
  absl::Status Commit() override { return Simple("COMMIT"); }
  absl::StatusOr<std::vector<Row>> BeginWith(const std::vector<Statement>& statements) override {
    if (absl::Status s = Begin(); !s.ok()) {
      return s;
    }
    return QueryBatch(statements);
  }
  absl::Status CommitWith(const std::vector<Statement>& statements) override {
    if (absl::Status s = QueryBatch(statements).status(); !s.ok()) {
      return s;
    }
    return Commit();
  }
  void Rollback() override {
    if (sqlite3_get_autocommit(db_) == 0) {
      (void)Simple("ROLLBACK");
    }
  }

 private:
  absl::Status Simple(const std::string& sql) {
    absl::StatusOr<std::vector<Row>> rows = Query(sql, {});
    return rows.status();
  }

  absl::StatusOr<sqlite3_stmt*> Prepare(const std::string& sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) {
      return it->second;
    }
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      return FromSqlite(db_, rc, "prepare");
    }
    statements_.emplace(sql, stmt);
    // Binding by position is much cheaper than sqlite3_bind_parameter_index
    // per value; remember which $N each position stands for.
    std::vector<int>& numbers = prepared_numbers_[stmt];
    const int count = sqlite3_bind_parameter_count(stmt);
    numbers.assign(static_cast<size_t>(count) + 1, 0);
    for (int index = 1; index <= count; ++index) {
      const char* name = sqlite3_bind_parameter_name(stmt, index);
      numbers[static_cast<size_t>(index)] = name != nullptr ? std::atoi(name + 1) : index;
    }
    return stmt;
  }

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
  std::unordered_map<sqlite3_stmt*, std::vector<int>> prepared_numbers_;  // position -> N of $N
};

}  // namespace

absl::StatusOr<std::unique_ptr<internal::Connection>> OpenSqlite(const std::string& path,
                                                                 absl::Duration busy_timeout) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("sqlite: cannot create folder ", parent.string(), ": ", ec.message()));
    }
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("sqlite: cannot open ", path, ": ", sqlite3_errstr(rc)));
    sqlite3_close_v2(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(busy_timeout)));
  auto connection = std::make_unique<SqliteConnection>(db);
  // WAL lets readers run beside the writer; FULL fsyncs the WAL on every
  // commit, so a commit that returned survives power loss. A 64 MiB page
  // cache and memory-mapped reads keep index pages out of pread() copies
  // (profiled: they were the largest cost of an ingest).
  absl::Status status = connection->ExecScript(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; "
      "PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;");
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("sqlite: cannot configure ", path, ": ", status.message()));
  }
  return connection;
}

}  // namespace bridge::storage::sqlite
