#include "tests/storage/store_fixture.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace bridge::storage::testing {

std::string BackendName(Backend backend) {
  return backend == Backend::kSqlite ? "Sqlite" : "Postgres";
}

bool PostgresRequired() {
  return std::getenv("CI") != nullptr || std::getenv("BRIDGE_REQUIRE_PG") != nullptr;
}

std::optional<std::string> PostgresDsn() {
  const char* dsn = std::getenv("BRIDGE_TEST_PG_DSN");
  if (dsn == nullptr || *dsn == '\0') {
    return std::nullopt;
  }
  return std::string(dsn);
}

void BackendTest::SetUp() {
  if (GetParam() == Backend::kPostgres && !PostgresDsn().has_value()) {
    if (PostgresRequired()) {
      FAIL() << "BRIDGE_TEST_PG_DSN is not set but PostgreSQL tests are required (CI, "
                "BRIDGE_REQUIRE_PG)";
    }
    GTEST_SKIP() << "BRIDGE_TEST_PG_DSN not set (start one with tests/support/pg_throwaway.sh)";
  }
  db_ = std::make_unique<TestDatabase>(GetParam());
}

std::unique_ptr<Store> BackendTest::OpenTestStore(StoreOptions options) {
  options.database_url = db_->url();
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::string RunCommand(const std::string& command, int* exit_code) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return out;
  }
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    out.append(buffer, n);
  }
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return std::string(absl::StripAsciiWhitespace(out));
}

namespace {

std::string ShellQuote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

std::string PsqlCommand(const std::string& dsn, const std::string& sql) {
  return absl::StrCat("psql -X -q -t -A -v ON_ERROR_STOP=1 ", ShellQuote(dsn), " -c ",
                      ShellQuote(sql), " 2>&1");
}

// psql taking a lock (`lock_sql`) in a transaction held for `hold_ms`.
std::string HoldPostgresLockCommand(const std::string& dsn, const std::string& lock_sql,
                                    int hold_ms) {
  return absl::StrCat("psql -X -q -t -A -v ON_ERROR_STOP=1 ", ShellQuote(dsn), " -c ",
                      ShellQuote(absl::StrCat("BEGIN; ", lock_sql, "; SELECT pg_sleep(",
                                              hold_ms / 1000.0, "); COMMIT;")));
}

}  // namespace

bool WaitForPostgres() {
  // After a crash test's `pg_ctl stop -m immediate` + start, recovery may
  // still refuse connections for a moment.
  for (int attempt = 0; attempt < 600; ++attempt) {
    int rc = 0;
    RunCommand(PsqlCommand(*PostgresDsn(), "SELECT 1"), &rc);
    if (rc == 0) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string SqliteByHand() { return STORAGE_SQLITE_BY_HAND; }

TestDatabase::TestDatabase(Backend backend) : backend_(backend) {
  if (backend == Backend::kSqlite) {
    sqlite_path_ = (dir_.path() / "lab-bridge.db").string();
    url_ = absl::StrCat("sqlite://", sqlite_path_);
    return;
  }
  std::random_device random;
  schema_ = absl::StrCat("t_", random(), "_", random());
  const std::string dsn = *PostgresDsn();
  EXPECT_TRUE(WaitForPostgres());
  int rc = 0;
  std::string out = RunCommand(PsqlCommand(dsn, absl::StrCat("CREATE SCHEMA ", schema_)), &rc);
  EXPECT_EQ(rc, 0) << out;
  url_ = absl::StrCat(dsn, dsn.find('?') == std::string::npos ? "?" : "&",
                      "options=-csearch_path%3D", schema_, "&application_name=", schema_);
}

TestDatabase::~TestDatabase() {
  if (!schema_.empty()) {
    int rc = 0;
    RunCommand(PsqlCommand(*PostgresDsn(), absl::StrCat("DROP SCHEMA ", schema_, " CASCADE")), &rc);
  }
}

int TestDatabase::KillConnections() const {
  int rc = 0;
  std::string out = RunCommand(
      PsqlCommand(*PostgresDsn(),
                  absl::StrCat("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE application_name = '",
                               schema_, "'")),
      &rc);
  EXPECT_EQ(rc, 0) << out;
  return rc == 0 ? std::stoi(out) : -1;
}

std::string TestDatabase::RunSql(const std::string& sql) const {
  int rc = 0;
  std::string out;
  if (backend_ == Backend::kSqlite) {
    out = RunCommand(
        absl::StrCat(SqliteByHand(), " ", ShellQuote(sqlite_path_), " ", ShellQuote(sql), " 2>&1"),
        &rc);
  } else {
    out = RunCommand(PsqlCommand(url_, sql), &rc);
  }
  EXPECT_EQ(rc, 0) << sql << "\n" << out;
  return out;
}

std::string TestDatabase::HoldWriteLockCommand(int hold_ms) const {
  if (backend_ == Backend::kSqlite) {
    return absl::StrCat(SqliteByHand(), " ", ShellQuote(sqlite_path_), " ",
                        ShellQuote("BEGIN IMMEDIATE; SELECT 'locked'"), " ", hold_ms);
  }
  return HoldPostgresLockCommand(url_, "LOCK TABLE hl7_messages IN EXCLUSIVE MODE; SELECT 'locked'",
                                 hold_ms);
}

std::string TestDatabase::HoldTableAgainstReadersCommand(const std::string& table,
                                                         int hold_ms) const {
  return HoldPostgresLockCommand(
      url_, absl::StrCat("LOCK TABLE ", table, " IN ACCESS EXCLUSIVE MODE"), hold_ms);
}

IngestRecord MakeOru(const std::string& control_id, const std::string& pms_id, int results,
                     const std::string& placer_order_number) {
  IngestRecord record;
  InboundMessage& m = record.message;
  m.message_type = "ORU";
  m.trigger_event = "R01";
  m.message_control_id = control_id;
  m.sending_application = "LIS";
  m.sending_facility = "LAB";
  m.receiving_application = "LAB_BRIDGE";
  m.receiving_facility = "MPS_PMS";
  m.version = "2.5.1";
  m.raw_message =
      absl::StrCat("MSH|^~\\&|LIS|LAB|LAB_BRIDGE|MPS_PMS|20260101120000||ORU^R01|", control_id,
                   "|P|2.5.1\rPID|1||", pms_id, "^^^MPS_PMS^MR||TEST^PATIENT||19800101|F\rOBR|1|",
                   placer_order_number, "|F-", control_id, "|CBC\r");
  for (int i = 0; i < results; ++i) {
    absl::StrAppend(&m.raw_message, "OBX|", i + 1, "|NM|TEST", i, "^Test ", i, "||", 10 + i,
                    "|mg/dL|1-20|", i == 0 ? "HH" : "N", "|||F\r");
  }
  m.ack_status = "AA";
  m.ack_message = absl::StrCat("MSH|^~\\&|LAB_BRIDGE|MPS_PMS|LIS|LAB|20260101120001||ACK^R01|A",
                               control_id, "|P|2.5.1\rMSA|AA|", control_id, "\r");
  m.source_ip = "127.0.0.1";
  record.patient = PatientRecord{pms_id, "", "TEST", "PATIENT", "19800101", "F"};
  if (!placer_order_number.empty()) {
    record.resulted_placer_order_numbers.push_back(placer_order_number);
  }
  for (int i = 0; i < results; ++i) {
    ResultRecord r;
    r.test_code = absl::StrCat("TEST", i);
    r.test_name = absl::StrCat("Test ", i);
    r.value = std::to_string(10 + i);
    r.value_type = "NM";
    r.units = "mg/dL";
    r.reference_range = "1-20";
    r.abnormal_flag = i == 0 ? "HH" : "N";
    r.result_status = "F";
    r.observation_sub_id = std::to_string(i + 1);
    r.sending_facility = "LAB";
    r.filler_order_number = absl::StrCat("F-", control_id);
    r.placer_order_number = placer_order_number;
    r.observation_date = absl::FromUnixSeconds(1767268800 + i);
    r.critical = i == 0;
    record.results.push_back(r);
    FhirResourceRecord f;
    f.resource_type = "Observation";
    f.id = absl::StrCat(control_id, "-", i);
    f.patient_reference = absl::StrCat("Patient/", pms_id);
    f.code = r.test_code;
    f.date = "2026-01-01T12:00:00Z";
    f.status = "final";
    f.category = "laboratory";
    f.json = absl::StrCat(R"({"resourceType":"Observation","id":")", f.id, R"("})");
    record.fhir_resources.push_back(f);
  }
  FhirResourceRecord report;
  report.resource_type = "DiagnosticReport";
  report.id = control_id;
  report.patient_reference = absl::StrCat("Patient/", pms_id);
  report.code = "CBC";
  report.date = "2026-01-01T12:00:00Z";
  report.status = "final";
  report.category = "LAB";
  report.json = absl::StrCat(R"({"resourceType":"DiagnosticReport","id":")", control_id, R"("})");
  record.fhir_resources.push_back(report);
  return record;
}

}  // namespace bridge::storage::testing
