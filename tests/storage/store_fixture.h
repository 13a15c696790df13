// tests/storage/store_fixture.h
//
// The shared vocabulary of the storage tests: a fresh database per test on
// either backend (a SQLite file in a TempDir, or a new schema in the
// PostgreSQL named by BRIDGE_TEST_PG_DSN), raw SQL "by hand" through the
// backend's own CLI (sqlite3 / psql), and sample records.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "storage/store.h"
#include "tests/support/test_paths.h"

namespace bridge::storage::testing {

enum class Backend { kSqlite, kPostgres };

std::string BackendName(Backend backend);

// gtest prints the parameter with this (test names read "... Sqlite").
inline void PrintTo(Backend backend, std::ostream* os) { *os << BackendName(backend); }

// True when PostgreSQL tests must fail rather than skip without a server
// (the CI or BRIDGE_REQUIRE_PG environment variable is set).
bool PostgresRequired();

// The PostgreSQL DSN for tests, or nullopt when BRIDGE_TEST_PG_DSN is unset.
std::optional<std::string> PostgresDsn();

// Waits up to 60 s until the test PostgreSQL accepts connections.
bool WaitForPostgres();

// One isolated database for one test; dropped by the destructor.
class TestDatabase {
 public:
  // REQUIRES: for kPostgres, PostgresDsn() is set.
  explicit TestDatabase(Backend backend);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  Backend backend() const { return backend_; }
  const std::string& url() const { return url_; }
  const std::string& sqlite_path() const { return sqlite_path_; }

  // Runs `sql` outside the Store (sqlite3 or psql CLI) and returns its
  // trimmed stdout; fails the test on a non-zero exit.
  std::string RunSql(const std::string& sql) const;

  // A shell command that takes the write lock the Store's ingest needs (a
  // SQLite RESERVED lock, printing "locked" once it has it; an EXCLUSIVE lock
  // on hl7_messages), holds it for `hold_ms` and lets go.
  std::string HoldWriteLockCommand(int hold_ms) const;
  // PostgreSQL only: a shell command that holds an ACCESS EXCLUSIVE lock on
  // `table` for `hold_ms` (even readers wait for it) and lets go.
  std::string HoldTableAgainstReadersCommand(const std::string& table, int hold_ms) const;

  // PostgreSQL only: terminates the server side of every connection this
  // test's stores hold (they share an application_name); returns how many.
  int KillConnections() const;

 private:
  Backend backend_;
  bridge::testing::TempDir dir_;
  std::string schema_;
  std::string url_;
  std::string sqlite_path_;
};

// The base of a test run once per backend (parameterized on Backend): each
// case gets a fresh database in db_. A PostgreSQL case skips when no server
// is configured, or fails where PostgreSQL is required (CI). A derived
// SetUp() calls BackendTest::SetUp() first and returns if IsSkipped() or
// HasFatalFailure().
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override;
  // A Store on db_ with `options` (its database_url set here); nullptr, with
  // the test failed, when it cannot be opened.
  std::unique_ptr<Store> OpenTestStore(StoreOptions options = {});

  std::unique_ptr<TestDatabase> db_;
};

// Path of the sqlite_by_hand tool (raw SQL on a SQLite file).
std::string SqliteByHand();

// Runs a shell command, returns its stdout; *exit_code gets the exit status.
std::string RunCommand(const std::string& command, int* exit_code);

// A synthetic ORU^R01 ingest record: one patient (PID-3 `pms_id`),
// `results` OBX rows (the first flagged HH and critical), one Observation
// per result and a DiagnosticReport. No real PHI.
IngestRecord MakeOru(const std::string& control_id, const std::string& pms_id, int results,
                     const std::string& placer_order_number = "");

}  // namespace bridge::storage::testing
