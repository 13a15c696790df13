#include "storage/sqlite/sqlite_connection.h"

#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>
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

// WAL pages after a commit at which the background checkpoint starts (SQLite's
// own autocheckpoint default), and at which the committing thread checkpoints
// itself because the background one has fallen behind (bounds the WAL file).
constexpr int kCheckpointPages = 1000;
constexpr int kForcedCheckpointPages = 16000;

// Copies the WAL back into the database file on its own thread and its own
// connection. SQLite's autocheckpoint runs inside the COMMIT of the writer
// that crossed the threshold: the copy and the database file's fsync then
// delayed that commit, and every ACK waiting on it, by milliseconds to tens
// of milliseconds (profiled: 9% of the committer's time on tmpfs, more on a
// disk). PASSIVE checkpoints never block the writer or readers; a crash in
// the middle is harmless (the WAL still holds every committed page).
class Checkpointer {
 public:
  Checkpointer(std::string path, absl::Duration busy_timeout)
      : path_(std::move(path)), busy_timeout_(busy_timeout) {}
  ~Checkpointer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;
  Checkpointer(Checkpointer&&) = delete;
  Checkpointer& operator=(Checkpointer&&) = delete;

  // Never blocks; the thread starts with the first request (a connection
  // that only reads never starts one).
  void Request() {
    std::lock_guard<std::mutex> lock(mu_);
    requested_ = true;
    if (!thread_.joinable()) {
      thread_ = std::thread([this] { Loop(); });
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
            SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr) != SQLITE_OK) {
      // The committing thread's forced checkpoint still bounds the WAL.
      sqlite3_close_v2(db);
      return;
    }
    sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(busy_timeout_)));
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return requested_ || stopping_; });
      if (stopping_) {
        break;
      }
      requested_ = false;
      lock.unlock();
      // Errors (disk full, I/O) are left for the next request: the data
      // is safe in the WAL either way.
      (void)sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      lock.lock();
    }
    lock.unlock();
    sqlite3_close_v2(db);
  }

  const std::string path_;
  const absl::Duration busy_timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

class SqliteConnection final : public internal::Connection {
 public:
  SqliteConnection(sqlite3* db, const std::string& path, absl::Duration busy_timeout)
      : db_(db), checkpointer_(path, busy_timeout) {
    // Replaces SQLite's autocheckpoint (which is itself a WAL hook).
    sqlite3_wal_hook(db_, &SqliteConnection::AfterCommit, this);
  }
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
    // Values are bound SQLITE_STATIC (not copied): `params` outlives every
    // step below, and the bindings are cleared before returning.
    struct Unbind {
      sqlite3_stmt* stmt;
      ~Unbind() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } unbind{stmt};
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
                                 SQLITE_STATIC);
          break;
        case Param::Kind::kBlob:
          rc = sqlite3_bind_blob(stmt, bind_index, p.text.data(), static_cast<int>(p.text.size()),
                                 SQLITE_STATIC);
          break;
      }
      if (rc != SQLITE_OK) {
        return FromSqlite(db_, rc, "bind");
      }
    }
    std::vector<Row> rows;
    const int columns = sqlite3_column_count(stmt);
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) {
        break;
      }
      if (rc != SQLITE_ROW) {
        return FromSqlite(db_, rc, "step");
      }
      Row row(columns);
      for (int c = 0; c < columns; ++c) {
        // One column lookup, then the value's own accessors: each
        // sqlite3_column_* call checks the statement again, three calls a
        // column were a fifth of a result page. (The value is "unprotected":
        // fine, this connection is only ever used by one thread at a time.)
        sqlite3_value* value = sqlite3_column_value(stmt, c);
        const int type = sqlite3_value_type(value);
        if (type == SQLITE_NULL) {
          continue;
        }
        if (type == SQLITE_INTEGER) {
          // Formatted here: asking SQLite for the text converts the value
          // inside the statement first (a tenth of a result page's time).
          char digits[24];
          const auto formatted =
              std::to_chars(digits, digits + sizeof digits, sqlite3_value_int64(value));
          row[c].emplace(digits, formatted.ptr);
          continue;
        }
        const void* data = sqlite3_value_blob(value);
        const int size = sqlite3_value_bytes(value);
        row[c].emplace(static_cast<const char*>(data), static_cast<size_t>(size));
      }
      rows.push_back(std::move(row));
    }
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

  // Called by SQLite after each commit with the WAL's size in pages.
  static int AfterCommit(void* self, sqlite3* db, const char* name, int pages) {
    if (pages >= kForcedCheckpointPages) {
      (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (pages >= kCheckpointPages) {
      static_cast<SqliteConnection*>(self)->checkpointer_.Request();
    }
    return SQLITE_OK;
  }

  sqlite3* db_;
  Checkpointer checkpointer_;  // destroyed (joined) before db_ is closed
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
  // SQLite's memory statistics take a process-wide mutex around every
  // allocation it makes (profiled: 3% of the committer's time, a lock and an
  // unlock per B-tree cell). Nothing here reads them. sqlite3_config only
  // works before SQLite initialises; if something else opened a database
  // first, the statistics simply stay on.
  static std::once_flag no_memory_statistics;
  std::call_once(no_memory_statistics, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
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
  auto connection = std::make_unique<SqliteConnection>(db, path, busy_timeout);
  // WAL lets readers run beside the writer; FULL fsyncs the WAL on every
  // commit, so a commit that returned survives power loss. Memory-mapped
  // reads keep index pages out of pread() copies (profiled: they were the
  // largest cost of an ingest). The page cache holds a group commit's dirty
  // pages: 16 MiB measured best; at 64 MiB SQLite's walk of the cache's hash
  // table on every COMMIT (pcache1TruncateUnsafe) cost more than it saved.
  absl::Status status = connection->ExecScript(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; "
      "PRAGMA cache_size=-16384; PRAGMA mmap_size=268435456;");
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("sqlite: cannot configure ", path, ": ", status.message()));
  }
  return connection;
}

}  // namespace bridge::storage::sqlite
