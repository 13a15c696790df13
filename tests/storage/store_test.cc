// The one Store suite, run against BOTH backends: a real SQLite file and a
// real PostgreSQL server (BRIDGE_TEST_PG_DSN; a fresh schema per test).
#include "storage/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

#include "tests/storage/store_fixture.h"
#include "tests/support/test_paths.h"

namespace bridge::storage {
namespace {

using testing::Backend;
using ::testing::HasSubstr;
using testing::MakeOru;

class StoreTest : public testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Open();
  }

  void Open(StoreOptions options = {}) {
    store_.reset();
    options.clock = [this] { return now_; };
    store_ = OpenTestStore(options);
    ASSERT_NE(store_, nullptr);
  }

  IngestOutcome IngestOk(const IngestRecord& record) {
    absl::StatusOr<IngestOutcome> outcome = store_->Ingest(record);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome.ok() ? *outcome : IngestOutcome{};
  }

  int64_t Count(const std::string& table) {
    return std::stoll(db_->RunSql(absl::StrCat("SELECT COUNT(*) FROM ", table)));
  }

  int64_t VerifiedRows() {
    absl::StatusOr<int64_t> verified = store_->VerifyAuditChain();
    EXPECT_TRUE(verified.ok()) << verified.status();
    return verified.ok() ? *verified : -1;
  }

  absl::Time now_ = absl::FromUnixSeconds(1767268800);  // 2026-01-01T12:00:00Z
  std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, GetResultReadsOneRowById) {
  absl::StatusOr<IngestOutcome> outcome = store_->Ingest(MakeOru("GR1", "P-GR", 2));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->result_ids.size(), 2u);
  absl::StatusOr<StoredResult> result = store_->GetResult(outcome->result_ids[1]);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->id, outcome->result_ids[1]);
  EXPECT_EQ(result->patient_id, *outcome->patient_id);
  EXPECT_EQ(result->result.test_code, "TEST1");
  EXPECT_EQ(store_->GetResult(987654).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, ResultsKeepTheirReportAndComments) {
  IngestRecord record = MakeOru("RC1", "P-RC", 2);
  record.results[0].report_code = "CBC";
  record.results[0].report_name = "Complete Blood Count";
  record.results[0].comments = {"Hemolysed \"specimen\"", "Redraw advised\\ok", "\x01"};
  absl::StatusOr<IngestOutcome> outcome = store_->Ingest(record);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  absl::StatusOr<StoredResult> first = store_->GetResult(outcome->result_ids[0]);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->result.report_code, "CBC");
  EXPECT_EQ(first->result.report_name, "Complete Blood Count");
  EXPECT_EQ(first->result.comments, record.results[0].comments);
  absl::StatusOr<StoredResult> second = store_->GetResult(outcome->result_ids[1]);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->result.comments.empty());
  EXPECT_EQ(second->result.report_code, "");
}

TEST_P(StoreTest, SearchPatientsByPmsIdOrNamePrefixes) {
  const auto add = [&](const std::string& id, const std::string& family, const std::string& given) {
    IngestRecord record = MakeOru("SP-" + id, id, 1);
    record.patient = PatientRecord{id, "", family, given, "19800101", "F"};
    IngestOk(record);
  };
  add("12345", "Doe", "Jane");
  add("22222", "Doering", "Anna");
  add("33333", "Smith", "John");
  add("44444", "O_Brien", "Sean");
  const auto ids = [&](const std::string& text, int limit = 20) {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<StoredPatient>> found =
        store_->SearchPatients({.text = text, .limit = limit});
    EXPECT_TRUE(found.ok()) << found.status();
    if (found.ok()) {
      for (const StoredPatient& p : *found) {
        out.push_back(p.patient.pms_patient_id);
      }
    }
    return out;
  };
  EXPECT_EQ(ids("12345"), std::vector<std::string>{"12345"});
  EXPECT_EQ(ids("doe"), (std::vector<std::string>{"12345", "22222"}));  // family, given order
  EXPECT_EQ(ids("DOE"), (std::vector<std::string>{"12345", "22222"}));
  EXPECT_EQ(ids("jane doe"), std::vector<std::string>{"12345"});
  EXPECT_EQ(ids("Doe, Jane"), std::vector<std::string>{"12345"});
  EXPECT_EQ(ids("jo"), std::vector<std::string>{"33333"});
  EXPECT_EQ(ids("doe", 1), std::vector<std::string>{"12345"});
  EXPECT_TRUE(ids("1234").empty());  // ids match whole, names by prefix
  EXPECT_TRUE(ids("o%").empty());    // LIKE wildcards are literal
  EXPECT_EQ(ids("o_"), std::vector<std::string>{"44444"});
  EXPECT_EQ(store_->SearchPatients({.text = "  "}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, MigrateIsIdempotent) {
  absl::StatusOr<int> applied = store_->Migrate();
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 0);
  // Every storage/schema/NNNN_name.sql, in order.
  std::string names;
  for (const std::filesystem::path& file : bridge::testing::FilesWithSuffix(
           bridge::testing::SourceDir() / "storage" / "schema", ".sql")) {
    absl::StrAppend(&names, names.empty() ? "" : "\n", file.stem().string());
  }
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(db_->RunSql("SELECT name FROM schema_migrations ORDER BY version"), names);
  Open();  // reopening an up-to-date database applies nothing
  EXPECT_EQ(Count("schema_migrations"), std::count(names.begin(), names.end(), '\n') + 1);
}

TEST_P(StoreTest, OpenWithoutMigrateRefusesAnOldSchema) {
  store_.reset();
  db_->RunSql("DELETE FROM schema_migrations");
  StoreOptions options;
  options.database_url = db_->url();
  options.migrate_on_open = false;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(StoreTest, IngestWritesEveryTableInOneCall) {
  NewOrder order;
  order.patient = PatientRecord{"12345", "", "TEST", "PATIENT", "19800101", "F"};
  order.test_codes = {"CBC", "BMP"};
  order.placer_order_number = "PO-1";
  order.lis_endpoint = "lis-a";
  order.outbox_payload = "ORM bytes";
  absl::StatusOr<CreatedOrder> created = store_->CreateOrder(order);
  ASSERT_TRUE(created.ok()) << created.status();

  const IngestOutcome outcome = IngestOk(MakeOru("MSG-1", "12345", 3, "PO-1"));
  EXPECT_FALSE(outcome.duplicate_of.has_value());
  EXPECT_EQ(outcome.patient_id, created->patient_id);
  ASSERT_EQ(outcome.result_ids.size(), 3u);

  absl::StatusOr<StoredMessage> message = store_->GetMessage(outcome.message_id);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->direction, "inbound");
  EXPECT_EQ(message->message.message_control_id, "MSG-1");
  EXPECT_EQ(message->message.raw_message, MakeOru("MSG-1", "12345", 3, "PO-1").message.raw_message);
  EXPECT_EQ(message->message_hash.size(), 64u);
  EXPECT_EQ(message->message.ack_status, "AA");
  EXPECT_EQ(message->message.processed_at, now_);

  absl::StatusOr<StoredOrder> stored_order = store_->GetOrder(created->order_id);
  ASSERT_TRUE(stored_order.ok());
  EXPECT_EQ(stored_order->status, "resulted");
  EXPECT_EQ(stored_order->test_codes, (std::vector<std::string>{"CBC", "BMP"}));

  ResultQuery query;
  query.pms_patient_id = "12345";
  absl::StatusOr<ResultPage> page = store_->ListResults(query);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->results.size(), 3u);
  EXPECT_EQ(page->results.back().result.abnormal_flag, "HH");
  EXPECT_TRUE(page->results.back().result.critical);
  EXPECT_EQ(page->results.back().lab_order_id, created->order_id);
  EXPECT_EQ(page->results.back().hl7_message_id, outcome.message_id);

  absl::StatusOr<StoredFhirResource> report = store_->GetFhirResource("DiagnosticReport", "MSG-1");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->version, 1);
  EXPECT_EQ(report->resource.patient_reference, "Patient/12345");
  EXPECT_EQ(VerifiedRows(), 1);
}

TEST_P(StoreTest, ResultedOrderIsPreliminaryUntilEveryTestIsFinal) {
  NewOrder order;
  order.patient = PatientRecord{"12345", "", "TEST", "PATIENT", "19800101", "F"};
  order.test_codes = {"CBC", "BMP"};
  order.placer_order_number = "PO-7";
  order.lis_endpoint = "lis-a";
  order.outbox_payload = "ORM bytes";
  absl::StatusOr<CreatedOrder> created = store_->CreateOrder(order);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(store_->GetOrder(created->order_id)->result_status, "");

  // The lab answers test by test, echoing our codes in OBR-4.
  auto answer = [&](const std::string& control_id, const std::string& report_code,
                    const std::string& status) {
    IngestRecord record = MakeOru(control_id, "12345", 2, "PO-7");
    for (ResultRecord& r : record.results) {
      r.report_code = report_code;
      r.result_status = status;
    }
    IngestOk(record);
    absl::StatusOr<StoredOrder> stored = store_->GetOrder(created->order_id);
    EXPECT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->status, "resulted");
    OrderQuery by_patient;
    by_patient.patient_id = created->patient_id;
    absl::StatusOr<OrderPage> listed = store_->ListOrders(by_patient);
    EXPECT_TRUE(listed.ok() && listed->orders.size() == 1u);
    EXPECT_EQ(listed->orders[0].result_status, stored->result_status);
    return stored->result_status;
  };
  EXPECT_EQ(answer("PR-1", "CBC", "P"), "preliminary");
  EXPECT_EQ(answer("PR-2", "CBC", "F"), "preliminary");  // BMP has not answered
  EXPECT_EQ(answer("PR-3", "BMP", "F"), "final");
  EXPECT_EQ(answer("PR-4", "BMP", "C"), "final");  // a correction is final too

  // A lab reporting under codes of its own is judged by its statuses alone.
  order.placer_order_number = "PO-8";
  absl::StatusOr<CreatedOrder> other = store_->CreateOrder(order);
  ASSERT_TRUE(other.ok()) << other.status();
  IngestRecord record = MakeOru("PR-5", "12345", 2, "PO-8");
  for (ResultRecord& r : record.results) r.report_code = "58410-2";
  IngestOk(record);
  EXPECT_EQ(store_->GetOrder(other->order_id)->result_status, "final");
}

TEST_P(StoreTest, EveryColumnOfTheGuidesTablesReadsBackAsWritten) {
  IngestRecord record = MakeOru("COLS-1", "4711", 2, "");
  record.message.source_ip = "192.0.2.17";
  record.message.peer_certificate_subject = "CN=lis-a,O=Reference Lab";
  record.patient->other_identifiers = "A-99^^^LAB^MR~B-7^^^HOSP^PI";
  record.results[0].value_type = "SN";
  record.results[0].observation_sub_id = "1.a";
  record.results[1].value_type = "ST";
  record.results[1].observation_sub_id = "";
  const IngestOutcome outcome = IngestOk(record);

  absl::StatusOr<StoredMessage> message = store_->GetMessage(outcome.message_id);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->message.source_ip, "192.0.2.17");
  EXPECT_EQ(message->message.peer_certificate_subject, "CN=lis-a,O=Reference Lab");
  ASSERT_TRUE(outcome.patient_id.has_value());
  absl::StatusOr<StoredPatient> patient = store_->GetPatient(*outcome.patient_id);
  ASSERT_TRUE(patient.ok()) << patient.status();
  EXPECT_EQ(patient->patient.other_identifiers, "A-99^^^LAB^MR~B-7^^^HOSP^PI");
  ResultQuery query;
  query.pms_patient_id = "4711";
  absl::StatusOr<ResultPage> page = store_->ListResults(query);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->results.size(), 2u);  // newest first
  EXPECT_EQ(page->results[1].result.value_type, "SN");
  EXPECT_EQ(page->results[1].result.observation_sub_id, "1.a");
  EXPECT_EQ(page->results[0].result.value_type, "ST");
  EXPECT_EQ(page->results[0].result.observation_sub_id, "");

  NewOrder order;
  order.patient_id = *outcome.patient_id;
  order.encounter_id = 880021;
  order.test_codes = {"CBC"};
  order.placer_order_number = "PO-COLS";
  order.lis_endpoint = "lis-a";
  order.outbox_payload = "ORM bytes";
  absl::StatusOr<CreatedOrder> created = store_->CreateOrder(order);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(store_->GetOrder(created->order_id)->encounter_id, 880021);
  order.placer_order_number = "PO-COLS-2";
  order.encounter_id.reset();
  created = store_->CreateOrder(order);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(store_->GetOrder(created->order_id)->encounter_id.has_value());
}

TEST_P(StoreTest, SqliteFileIsInWalMode) {
  if (GetParam() != Backend::kSqlite) {
    GTEST_SKIP() << "journal_mode is SQLite's";
  }
  IngestOk(MakeOru("DURABLE-1", "1", 1));
  // journal_mode is a property of the file: the store put it in WAL, which
  // group commit and the background checkpoint rely on.
  EXPECT_EQ(db_->RunSql("PRAGMA journal_mode"), "wal");
}

// What the committing connection reports, not what was configured: the
// store sets synchronous=FULL (SQLite) and synchronous_commit=on
// (PostgreSQL) itself, over whatever the session would otherwise get.
// (Debian's SQLite would default to FULL as well; the SQLite half guards
// against the store asking for less, such as NORMAL, or leaving WAL.)
TEST_P(StoreTest, CommitsWaitForTheDisk) {
  if (GetParam() == Backend::kSqlite) {
    absl::StatusOr<std::string> durability = store_->Durability();
    ASSERT_TRUE(durability.ok()) << durability.status();
    EXPECT_EQ(*durability, "sqlite journal_mode=wal synchronous=full");
    return;
  }
  // A session that would commit asynchronously, unless the store says otherwise.
  StoreOptions options;
  options.database_url =
      absl::StrReplaceAll(db_->url(), {{"options=-c", "options=-csynchronous_commit%3Doff%20-c"}});
  ASSERT_NE(options.database_url, db_->url());
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::string> durability = (*store)->Durability();
  ASSERT_TRUE(durability.ok()) << durability.status();
  EXPECT_EQ(*durability, "postgresql synchronous_commit=on fsync=on");
}

// The queries behind the APIs walk their indexes, whatever the table size:
// the plans are asked for with sequential scans made as costly as the
// planner allows, so a missing index shows up even on an empty table.
TEST_P(StoreTest, ApiQueriesUseTheirIndexes) {
  IngestOk(MakeOru("PLAN-1", "P1", 3));
  struct Case {
    std::string query;
    std::string index;
  };
  const std::vector<Case> cases = {
      {"SELECT id FROM lab_results WHERE patient_id = 1 AND id < 99 ORDER BY id DESC LIMIT 101",
       "lab_results_patient"},
      {"SELECT id FROM lab_results WHERE critical = 1 AND acknowledged_at IS NULL "
       "ORDER BY id DESC LIMIT 101",
       "lab_results_critical_open"},
      {"SELECT id FROM lab_results WHERE lab_order_id IN (1, 2) ORDER BY lab_order_id, id",
       "lab_results_order"},
      {"SELECT id FROM lab_orders WHERE patient_id = 1 ORDER BY id DESC LIMIT 101",
       "lab_orders_patient"},
      {"SELECT id FROM lab_orders WHERE status = 'pending' ORDER BY id DESC LIMIT 101",
       "lab_orders_status"},
      {"SELECT id FROM patients WHERE pms_patient_id = 'P1'", "patients_pms_patient_id"},
      {"SELECT id FROM hl7_messages WHERE sending_application = 'LIS' AND "
       "sending_facility = 'LAB' AND message_control_id = 'PLAN-1'",
       "hl7_messages_control_id"},
      {"SELECT id FROM hl7_messages WHERE processed_at >= 0 AND processed_at < 99 "
       "ORDER BY processed_at, id LIMIT 101",
       "hl7_messages_processed_at"},
      {"SELECT id FROM fhir_resources WHERE resource_type = 'Observation' AND "
       "patient_reference = 'Patient/P1' ORDER BY id LIMIT 51",
       "fhir_resources_patient"},
      {"SELECT id FROM fhir_resources WHERE resource_type = 'Observation' AND "
       "code = 'TEST1' ORDER BY id LIMIT 51",
       "fhir_resources_code"},
      {"SELECT id FROM fhir_resources WHERE resource_type = 'Observation' AND "
       "last_updated >= 0 ORDER BY last_updated, id LIMIT 51",
       "fhir_resources_last_updated"},
      {"SELECT resource_id FROM fhir_search_values WHERE resource_type = 'Observation' AND "
       "name = 'code' AND value = 'x'",
       "fhir_search_values_lookup"},
      {"SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= 99 "
       "ORDER BY next_attempt_at, id LIMIT 10",
       "outbox_due"},
  };
  for (const Case& c : cases) {
    const std::string plan =
        GetParam() == Backend::kSqlite
            ? db_->RunSql("EXPLAIN QUERY PLAN " + c.query)
            : db_->RunSql("SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN " +
                          c.query);
    EXPECT_NE(plan.find(c.index), std::string::npos) << c.query << "\n" << plan;
  }
}

TEST_P(StoreTest, AWriteLockHeldTooLongIsRetryable) {
  StoreOptions options;
  options.lock_timeout = absl::Milliseconds(300);
  Open(options);
  IngestOk(MakeOru("LOCK-0", "5", 1));  // schema and connections ready
  // Another process holds the write lock for 2 s; it says "locked" once it
  // has it.
  FILE* holder = popen(db_->HoldWriteLockCommand(2000).c_str(), "r");
  ASSERT_NE(holder, nullptr);
  if (GetParam() == Backend::kSqlite) {
    char line[64] = {};
    ASSERT_NE(fgets(line, sizeof line, holder), nullptr);
    EXPECT_EQ(std::string(line).substr(0, 6), "locked");
  } else {
    // psql prints when it is done: ask the server whether the lock is held.
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (db_->RunSql("SELECT count(*) FROM pg_locks WHERE relation = "
                       "'hl7_messages'::regclass AND mode = 'ExclusiveLock' AND granted") != "1") {
      ASSERT_LT(absl::Now(), deadline) << "the lock holder never got the lock";
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  const absl::Time started = absl::Now();
  absl::StatusOr<IngestOutcome> blocked = store_->Ingest(MakeOru("LOCK-1", "5", 1));
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kUnavailable) << blocked.status();
  EXPECT_LT(absl::Now() - started, absl::Milliseconds(1900));  // the timeout, not the holder
  char rest[256];
  while (fgets(rest, sizeof rest, holder) != nullptr) {
    // psql prints its results when the holder is done; read them to the end.
  }
  EXPECT_EQ(pclose(holder), 0);
  // Nothing of it was stored, and the same record goes through afterwards.
  EXPECT_EQ(Count("hl7_messages"), 1);
  IngestOk(MakeOru("LOCK-1", "5", 1));
  EXPECT_EQ(Count("hl7_messages"), 2);
}

// Queries are served by a pool of read connections: one stuck behind a
// lock does not hold up the others. (PostgreSQL: SQLite readers in WAL mode
// never wait for a lock, so there is nothing to hold them up.)
TEST_P(StoreTest, AQueryWaitingOnALockDoesNotHoldUpOtherQueries) {
  if (GetParam() != Backend::kPostgres) {
    GTEST_SKIP() << "SQLite readers in WAL mode never wait for a lock";
  }
  IngestOk(MakeOru("READ-1", "7", 2));
  FILE* holder = popen(db_->HoldTableAgainstReadersCommand("lab_results", 2000).c_str(), "r");
  ASSERT_NE(holder, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (db_->RunSql("SELECT count(*) FROM pg_locks WHERE relation = "
                     "'lab_results'::regclass AND mode = 'AccessExclusiveLock' AND granted") !=
         "1") {
    ASSERT_LT(absl::Now(), deadline) << "the lock holder never got the lock";
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::atomic<bool> results_read{false};
  std::thread stuck([&] {
    ResultQuery query;
    query.pms_patient_id = "7";
    absl::StatusOr<ResultPage> page = store_->ListResults(query);
    EXPECT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page.ok() ? page->results.size() : 0u, 2u);
    results_read = true;
  });
  absl::SleepFor(absl::Milliseconds(300));  // the results query is waiting on the lock now
  absl::StatusOr<MessagePage> messages = store_->ListMessages(MessageQuery{});
  ASSERT_TRUE(messages.ok()) << messages.status();
  EXPECT_EQ(messages->messages.size(), 1u);
  absl::StatusOr<StoredPatient> patient = store_->FindPatientByPmsId("7");
  EXPECT_TRUE(patient.ok()) << patient.status();
  EXPECT_FALSE(results_read) << "the lock was not in the way: the test proves nothing";
  stuck.join();
  EXPECT_TRUE(results_read);
  char rest[256];
  while (fgets(rest, sizeof rest, holder) != nullptr) {
  }
  EXPECT_EQ(pclose(holder), 0);
}

// Many threads querying while another writes: every query answers, with
// committed data only (a result page is whole records), on every size of
// the read pool, and with none (queries then share the writer's connection).
TEST_P(StoreTest, ConcurrentQueriesSeeWholeCommittedRecords) {
  for (const int readers : {0, 1, 3}) {
    StoreOptions options;
    options.read_connections = readers;
    Open(options);
    const std::string pms_id = absl::StrCat("RP", readers);
    std::atomic<bool> writing{true};
    std::thread writer([&] {
      for (int i = 0; i < 30; ++i) {
        IngestOk(MakeOru(absl::StrCat("RPOOL-", readers, "-", i), pms_id, 4));
      }
      writing = false;
    });
    std::vector<std::thread> queries;
    std::atomic<int> answered{0};
    for (int q = 0; q < 6; ++q) {
      queries.emplace_back([&] {
        while (writing) {
          ResultQuery query;
          query.pms_patient_id = pms_id;
          query.limit = 500;
          absl::StatusOr<ResultPage> page = store_->ListResults(query);
          if (absl::IsNotFound(page.status())) {
            continue;  // the patient's first record is not committed yet
          }
          ASSERT_TRUE(page.ok()) << page.status();
          EXPECT_EQ(page->results.size() % 4, 0u) << "a record seen half committed";
          ++answered;
        }
      });
    }
    writer.join();
    for (std::thread& t : queries) {
      t.join();
    }
    EXPECT_GT(answered.load(), 0) << readers;
    ResultQuery all;
    all.pms_patient_id = pms_id;
    all.limit = 500;
    absl::StatusOr<ResultPage> page = store_->ListResults(all);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->results.size(), 120u) << readers;
  }
}

TEST_P(StoreTest, RawBytesAreKeptExactly) {
  IngestRecord record = MakeOru("BIN-1", "1", 1);
  record.message.raw_message = std::string("MSH|\0\x01\xff\xfe\r\n", 11);
  record.message.ack_message = std::string("\x0b\x1c\r\0", 4);
  const IngestOutcome outcome = IngestOk(record);
  absl::StatusOr<StoredMessage> message = store_->GetMessage(outcome.message_id);
  ASSERT_TRUE(message.ok());
  EXPECT_EQ(message->message.raw_message, record.message.raw_message);
  EXPECT_EQ(message->message.ack_message, record.message.ack_message);
  EXPECT_EQ(VerifiedRows(), 1);
}

TEST_P(StoreTest, NonUtf8HeaderFieldsDoNotStopAMessageFromBeingStored) {
  // A Latin-1 sender: MSH-4 "Müller" with 0xFC, and a NUL in a text field.
  IngestRecord record = MakeOru("LATIN-1", "P1", 1);
  record.message.sending_facility = "M\xFCller";
  record.message.raw_message += "NTE|1||M\xFCller\r";
  record.message.error_detail = std::string("a\0b", 3);
  record.results[0].test_name =
      "Gl\xFC"
      "cose";
  const IngestOutcome first = IngestOk(record);
  absl::StatusOr<StoredMessage> stored = store_->GetMessage(first.message_id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->message.sending_facility, "M\xEF\xBF\xBDller");  // U+FFFD
  EXPECT_EQ(stored->message.error_detail,
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(stored->message.raw_message, record.message.raw_message);  // bytes untouched
  const IngestOutcome again = IngestOk(record);
  EXPECT_EQ(again.duplicate_of, first.message_id);
  EXPECT_EQ(VerifiedRows(), 2);
}

TEST_P(StoreTest, ResendIsAReceiptWithTheOriginalAck) {
  const IngestOutcome first = IngestOk(MakeOru("DUP-1", "7", 2));
  IngestRecord resend = MakeOru("DUP-1", "7", 2);
  resend.message.ack_message = "a different ACK the caller prepared";
  const IngestOutcome second = IngestOk(resend);
  ASSERT_TRUE(second.duplicate_of.has_value());
  EXPECT_EQ(*second.duplicate_of, first.message_id);
  EXPECT_NE(second.message_id, first.message_id);
  EXPECT_EQ(second.ack_message, MakeOru("DUP-1", "7", 2).message.ack_message);
  EXPECT_TRUE(second.result_ids.empty());
  EXPECT_EQ(Count("lab_results"), 2);
  EXPECT_EQ(Count("hl7_messages"), 2);
  EXPECT_EQ(std::stoll(db_->RunSql("SELECT version FROM fhir_resources WHERE "
                                   "resource_type = 'DiagnosticReport'")),
            1);

  absl::StatusOr<std::vector<StoredMessage>> rows =
      store_->FindMessagesByControlId("LIS", "LAB", "DUP-1");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->at(1).duplicate_of, first.message_id);
  EXPECT_EQ(VerifiedRows(), 2);
}

TEST_P(StoreTest, ReusedControlIdWithNewContentIsANewFlaggedMessage) {
  IngestOk(MakeOru("REUSE-1", "7", 2));
  IngestRecord other = MakeOru("REUSE-1", "7", 3);  // different bytes
  const IngestOutcome outcome = IngestOk(other);
  EXPECT_FALSE(outcome.duplicate_of.has_value());
  EXPECT_TRUE(outcome.control_id_reused);
  EXPECT_EQ(outcome.result_ids.size(), 3u);
  EXPECT_EQ(Count("lab_results"), 5);
  // Corrected results replace the FHIR resources with a new version.
  absl::StatusOr<StoredFhirResource> report =
      store_->GetFhirResource("DiagnosticReport", "REUSE-1");
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->version, 2);
  // The first content sent again is still recognised as a resend.
  const IngestOutcome again = IngestOk(MakeOru("REUSE-1", "7", 2));
  EXPECT_TRUE(again.duplicate_of.has_value());
}

TEST_P(StoreTest, AFailureBetweenWritesLeavesNoPartialRows) {
  for (const std::string step : {"message", "patient", "orders", "results", "fhir"}) {
    SCOPED_TRACE(step);
    StoreOptions options;
    options.ingest_fault_hook_for_test = [step](std::string_view at) {
      return at == step ? absl::UnavailableError("injected") : absl::OkStatus();
    };
    Open(options);
    absl::StatusOr<IngestOutcome> outcome = store_->Ingest(MakeOru("ATOM-" + step, "9", 4));
    EXPECT_EQ(outcome.status().code(), absl::StatusCode::kUnavailable);
    for (const char* table :
         {"hl7_messages", "patients", "lab_results", "fhir_resources", "lab_orders"}) {
      EXPECT_EQ(Count(table), 0) << table;
    }
  }
  Open();
  IngestOk(MakeOru("ATOM-after", "9", 4));
  EXPECT_EQ(VerifiedRows(), 1);
}

TEST_P(StoreTest, AFailureAfterTheOrderLinkLeavesTheOrderAsItWas) {
  for (const std::string step : {"orders", "results", "fhir"}) {
    SCOPED_TRACE(step);
    Open();
    NewOrder order;
    order.patient = PatientRecord{"9", "", "TEST", "PATIENT", "19800101", "F"};
    order.test_codes = {"CBC"};
    order.placer_order_number = "PO-ATOM-" + step;
    order.lis_endpoint = "lis-a";
    order.outbox_payload = "ORM bytes";
    absl::StatusOr<CreatedOrder> created = store_->CreateOrder(order);
    ASSERT_TRUE(created.ok()) << created.status();
    StoreOptions options;
    options.ingest_fault_hook_for_test = [step](std::string_view at) {
      return at == step ? absl::UnavailableError("injected") : absl::OkStatus();
    };
    Open(options);
    absl::StatusOr<IngestOutcome> outcome =
        store_->Ingest(MakeOru("ATOM-LINK-" + step, "9", 2, order.placer_order_number));
    EXPECT_EQ(outcome.status().code(), absl::StatusCode::kUnavailable);
    absl::StatusOr<StoredOrder> after = store_->GetOrder(created->order_id);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ(after->status, "pending");
    EXPECT_EQ(Count("lab_results"), 0);
    EXPECT_EQ(Count("hl7_messages"), 0);
  }
}

TEST_P(StoreTest, InvalidRecordsAreRejectedBeforeWriting) {
  IngestRecord no_patient = MakeOru("BAD-1", "1", 2);
  no_patient.patient.reset();
  EXPECT_EQ(store_->Ingest(no_patient).status().code(), absl::StatusCode::kInvalidArgument);
  IngestRecord no_code = MakeOru("BAD-2", "1", 2);
  no_code.results[0].test_code.clear();
  EXPECT_EQ(store_->Ingest(no_code).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Count("hl7_messages"), 0);
}

TEST_P(StoreTest, GroupCommitKeepsEachWritersOutcome) {
  constexpr int kWriters = 16;
  constexpr int kEach = 15;
  std::atomic<int> ok{0};
  std::atomic<int> rejected{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        IngestRecord record = MakeOru(absl::StrCat("GC-", w, "-", i), absl::StrCat("P", w), 2);
        if (i == 7) {
          // Fails inside the transaction (no patient, results present):
          // only this record is rolled back, not its batch.
          record.patient.reset();
          record.resulted_placer_order_numbers.clear();
          record.results[0].test_code = "X";
        }
        absl::StatusOr<IngestOutcome> outcome = store_->Ingest(record);
        (outcome.ok() ? ok : rejected)++;
      }
    });
  }
  for (std::thread& t : writers) {
    t.join();
  }
  EXPECT_EQ(rejected.load(), kWriters);
  EXPECT_EQ(ok.load(), kWriters * (kEach - 1));
  EXPECT_EQ(Count("hl7_messages"), kWriters * (kEach - 1));
  EXPECT_EQ(Count("lab_results"), kWriters * (kEach - 1) * 2);
  EXPECT_EQ(VerifiedRows(), kWriters * (kEach - 1));
}

TEST_P(StoreTest, ConcurrentWritersShareCommits) {
  // The first record is held up inside its transaction, so the other
  // writers queue up behind it and must then be committed together.
  StoreOptions options;
  auto first = std::make_shared<std::atomic<bool>>(true);
  options.ingest_fault_hook_for_test = [first](std::string_view step) {
    if (step == "message" && first->exchange(false)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return absl::OkStatus();
  };
  Open(options);
  std::vector<std::thread> writers;
  for (int w = 0; w < 16; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 4; ++i) {
        EXPECT_TRUE(store_->Ingest(MakeOru(absl::StrCat("S-", w, "-", i), "P", 10)).ok());
      }
    });
  }
  for (std::thread& t : writers) {
    t.join();
  }
  const StoreStats stats = store_->stats();
  EXPECT_EQ(stats.ingest_records, 64);
  EXPECT_EQ(stats.ingest_failures, 0);
  EXPECT_LE(stats.ingest_batches, 64 - 15) << "concurrent records were not grouped";
  EXPECT_EQ(VerifiedRows(), 64);
}

TEST_P(StoreTest, ADuplicateCheckReadsOnlyTheKeysOfItsGroup) {
  // Each group looks up its (application, facility, MSH-10) keys among the
  // stored messages. PostgreSQL planned the OR of those keys that this once
  // was as a walk over every earlier message of the sender whenever its
  // statistics lagged behind the table (here: autovacuum off, as between two
  // of its runs): correct, but each group's cost grew with the table. The
  // table's row counters tell the two apart: probes of new keys read nothing,
  // the walk read some 550,000 rows for these 2,000 messages.
  if (GetParam() != Backend::kPostgres) {
    GTEST_SKIP() << "PostgreSQL's planner (SQLite probes each OR term by its index)";
  }
  constexpr int kWriters = 16;
  constexpr int kPerWriter = 125;
  auto store_from_writers = [&](const std::string& prefix) {
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; i < kPerWriter; ++i) {
          EXPECT_TRUE(store_->Ingest(MakeOru(absl::StrCat(prefix, w, "-", i), "P", 1)).ok());
        }
      });
    }
    for (std::thread& t : writers) {
      t.join();
    }
  };
  // A backend's counters reach the statistics views when it exits.
  auto close_store = [&] {
    store_.reset();
    for (int i = 0; i < 100; ++i) {
      if (db_->RunSql("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = "
                      "current_setting('application_name') AND pid <> pg_backend_pid()") == "0") {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  const std::string rows_read =
      "SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) FROM pg_stat_user_tables "
      "WHERE schemaname = current_schema() AND relname = 'hl7_messages'";

  db_->RunSql("ALTER TABLE hl7_messages SET (autovacuum_enabled = false)");
  store_from_writers("EARLIER-");
  ASSERT_TRUE(close_store());
  const int64_t before = std::stoll(db_->RunSql(rows_read));
  Open();
  store_from_writers("NEW-");
  const StoreStats stats = store_->stats();
  ASSERT_EQ(stats.ingest_records, kWriters * kPerWriter);
  ASSERT_LT(stats.ingest_batches, stats.ingest_records) << "no group of several records formed";
  ASSERT_TRUE(close_store());
  const int64_t read = std::stoll(db_->RunSql(rows_read)) - before;
  EXPECT_LT(read, kWriters * kPerWriter)
      << "hl7_messages rows read while storing " << kWriters * kPerWriter << " new messages in "
      << stats.ingest_batches << " groups, " << kWriters * kPerWriter << " already stored";
}

TEST_P(StoreTest, WithoutGroupCommitEveryRecordIsItsOwnTransaction) {
  StoreOptions options;
  options.group_commit = false;
  Open(options);
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(store_->Ingest(MakeOru(absl::StrCat("N-", w, "-", i), "P", 2)).ok());
      }
    });
  }
  for (std::thread& t : writers) {
    t.join();
  }
  EXPECT_EQ(store_->stats().ingest_batches, 20);
}

TEST_P(StoreTest, LostConnectionIsReestablishedOnTheNextCall) {
  if (GetParam() != Backend::kPostgres) {
    GTEST_SKIP() << "an embedded SQLite file has no connection to lose";
  }
  IngestOk(MakeOru("C-1", "P1", 1));
  ASSERT_TRUE(store_->GetMessage(1).ok());
  // The server ends every session of the store (the writer and each
  // reader), as a restart or failover would. Nothing had been written yet
  // when the next call finds out, so it reconnects and carries on.
  EXPECT_EQ(db_->KillConnections(), 1 + StoreOptions{}.read_connections);
  IngestOk(MakeOru("C-2", "P1", 1));
  absl::StatusOr<StoredMessage> message = store_->GetMessage(2);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->message.message_control_id, "C-2");
  EXPECT_EQ(VerifiedRows(), 2);
}

TEST_P(StoreTest, ResultFiltersAndStableCursorPaging) {
  for (int i = 0; i < 5; ++i) {
    IngestOk(MakeOru(absl::StrCat("Q-", i), "P1", 3));
  }
  IngestOk(MakeOru("Q-other", "P2", 3));

  ResultQuery query;
  query.pms_patient_id = "P1";
  query.limit = 4;
  std::vector<int64_t> seen;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<ResultPage> page = store_->ListResults(query);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const StoredResult& r : page->results) {
      seen.push_back(r.id);
    }
    if (pages == 0) {
      IngestOk(MakeOru("Q-late", "P1", 3));  // must not shift later pages
    }
    if (page->next_cursor.empty()) {
      break;
    }
    query.cursor = page->next_cursor;
  }
  ASSERT_EQ(seen.size(), 15u);
  EXPECT_TRUE(std::is_sorted(seen.rbegin(), seen.rend()));
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 15u);

  ResultQuery critical;
  critical.pms_patient_id = "P1";
  critical.critical = true;
  critical.acknowledged = false;
  absl::StatusOr<ResultPage> open = store_->ListResults(critical);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->results.size(), 6u);
  ASSERT_TRUE(store_->AcknowledgeResult(open->results[0].id, "dr.who", now_, "called").ok());
  EXPECT_EQ(store_->AcknowledgeResult(open->results[0].id, "dr.x", now_, "").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->AcknowledgeResult(999999, "dr.x", now_, "").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ListResults(critical)->results.size(), 5u);
  critical.acknowledged = true;
  absl::StatusOr<ResultPage> acked = store_->ListResults(critical);
  ASSERT_EQ(acked->results.size(), 1u);
  EXPECT_EQ(acked->results[0].acknowledged_by, "dr.who");
  EXPECT_EQ(acked->results[0].acknowledgement_note, "called");

  ResultQuery abnormal;
  abnormal.abnormal_only = true;
  EXPECT_EQ(store_->ListResults(abnormal)->results.size(), 7u);
  ResultQuery by_code;
  by_code.test_code = "TEST2";
  by_code.observed_from = absl::FromUnixSeconds(1767268802);
  by_code.observed_to = absl::FromUnixSeconds(1767268803);
  EXPECT_EQ(store_->ListResults(by_code)->results.size(), 7u);
  by_code.observed_to = absl::FromUnixSeconds(1767268802);
  EXPECT_EQ(store_->ListResults(by_code)->results.size(), 0u);

  ResultQuery unknown;
  unknown.pms_patient_id = "nobody";
  EXPECT_EQ(store_->ListResults(unknown).status().code(), absl::StatusCode::kNotFound);
  ResultQuery bad_cursor;
  bad_cursor.cursor = "not-a-cursor";
  EXPECT_EQ(store_->ListResults(bad_cursor).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, MessagesByTimeAndControlId) {
  for (int i = 0; i < 5; ++i) {
    now_ = absl::FromUnixSeconds(1767268800 + i * 60);
    IngestOk(MakeOru(absl::StrCat("T-", i), "P1", 1));
  }
  MessageQuery query;
  query.processed_from = absl::FromUnixSeconds(1767268800 + 60);
  query.processed_to = absl::FromUnixSeconds(1767268800 + 240);
  query.limit = 2;
  absl::StatusOr<MessagePage> page = store_->ListMessages(query);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->messages.size(), 2u);
  EXPECT_EQ(page->messages[0].message.message_control_id, "T-1");
  query.cursor = page->next_cursor;
  page = store_->ListMessages(query);
  ASSERT_EQ(page->messages.size(), 1u);
  EXPECT_EQ(page->messages[0].message.message_control_id, "T-3");
  EXPECT_TRUE(page->next_cursor.empty());
  EXPECT_EQ(store_->GetMessage(12345).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, OrdersAndOutboxLifecycle) {
  NewOrder order;
  order.patient = PatientRecord{"P9", "", "TEST", "PATIENT", "", ""};
  order.test_codes = {"CBC"};
  order.lis_endpoint = "lis-a";
  order.outbox_payload = "ORM-1";
  order.placer_order_number = "PO-A";
  absl::StatusOr<CreatedOrder> a = store_->CreateOrder(order);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(store_->CreateOrder(order).status().code(), absl::StatusCode::kAlreadyExists);
  order.placer_order_number = "PO-B";
  order.outbox_payload = "ORM-2";
  absl::StatusOr<CreatedOrder> b = store_->CreateOrder(order);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->patient_id, b->patient_id);

  OrderQuery by_patient;
  by_patient.patient_id = a->patient_id;
  EXPECT_EQ(store_->ListOrders(by_patient)->orders.size(), 2u);
  OrderQuery pending;
  pending.status = "pending";
  EXPECT_EQ(store_->ListOrders(pending)->orders.size(), 2u);

  absl::StatusOr<std::vector<OutboxItem>> claimed =
      store_->ClaimOutbox("w1", absl::Seconds(30), 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 2u);
  EXPECT_EQ(claimed->at(0).payload, "ORM-1");
  EXPECT_TRUE(store_->ClaimOutbox("w2", absl::Seconds(30), 10)->empty());  // leased

  ASSERT_TRUE(store_->CompleteOutbox(claimed->at(0).id, "w1").ok());
  ASSERT_TRUE(store_->UpdateOrderStatus(a->order_id, "sent", now_).ok());
  EXPECT_EQ(store_->GetOrder(a->order_id)->status, "sent");
  EXPECT_EQ(store_->GetOrder(a->order_id)->sent_at, now_);
  EXPECT_EQ(store_->UpdateOrderStatus(a->order_id, "bogus", now_).code(),
            absl::StatusCode::kInvalidArgument);
  // Statuses without a timestamp column (PostgreSQL once refused these).
  ASSERT_TRUE(store_->UpdateOrderStatus(b->order_id, "cancelled", now_).ok());
  EXPECT_EQ(store_->GetOrder(b->order_id)->status, "cancelled");
  ASSERT_TRUE(store_->UpdateOrderStatus(b->order_id, "pending", now_).ok());
  EXPECT_EQ(store_->UpdateOrderStatus(999999, "failed", now_).code(), absl::StatusCode::kNotFound);

  // Retry: due again only at next_attempt_at.
  ASSERT_TRUE(
      store_->RetryOutbox(claimed->at(1).id, "w1", now_ + absl::Minutes(1), "timeout").ok());
  EXPECT_TRUE(store_->ClaimOutbox("w2", absl::Seconds(30), 10)->empty());
  now_ += absl::Minutes(2);
  absl::StatusOr<std::vector<OutboxItem>> retried =
      store_->ClaimOutbox("w2", absl::Seconds(30), 10);
  ASSERT_EQ(retried->size(), 1u);
  EXPECT_EQ(retried->at(0).attempts, 1);
  EXPECT_EQ(store_->GetOrder(b->order_id)->last_error, "timeout");

  // A lease that expires (claimer died) lets another claimer take the row;
  // the old claimer can no longer complete it.
  now_ += absl::Minutes(1);
  absl::StatusOr<std::vector<OutboxItem>> stolen = store_->ClaimOutbox("w3", absl::Seconds(30), 10);
  ASSERT_EQ(stolen->size(), 1u);
  EXPECT_EQ(store_->CompleteOutbox(stolen->at(0).id, "w2").code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->FailOutbox(stolen->at(0).id, "w3", "rejected twice").ok());
  now_ += absl::Hours(1);
  EXPECT_TRUE(store_->ClaimOutbox("w4", absl::Seconds(30), 10)->empty());
  EXPECT_EQ(db_->RunSql("SELECT state FROM outbox ORDER BY id"), "done\nfailed");
}

TEST_P(StoreTest, FhirSearchByColumns) {
  IngestOk(MakeOru("F-1", "P1", 3));
  IngestOk(MakeOru("F-2", "P2", 2));
  FhirQuery query;
  query.resource_type = "Observation";
  query.patient_reference = "Patient/P1";
  absl::StatusOr<FhirPage> page = store_->SearchFhirResources(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->resources.size(), 3u);
  query.code = "TEST1";
  EXPECT_EQ(store_->SearchFhirResources(query)->resources.size(), 1u);
  FhirQuery all;
  all.resource_type = "Observation";
  all.limit = 2;
  all.date_from = "2026-01-01";
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<FhirPage> p = store_->SearchFhirResources(all);
    ASSERT_TRUE(p.ok());
    for (const StoredFhirResource& r : p->resources) {
      ids.insert(r.resource.id);
    }
    if (p->next_cursor.empty()) {
      break;
    }
    all.cursor = p->next_cursor;
  }
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(store_->GetFhirResource("Observation", "nope").status().code(),
            absl::StatusCode::kNotFound);
}

// Patient identifier/name/birthdate: several values per resource, replaced
// by each new version; _lastUpdated on the row's own time.
TEST_P(StoreTest, FhirSearchBySearchValuesAndLastUpdated) {
  const auto patient = [](const std::string& id, std::vector<FhirSearchValue> values) {
    FhirResourceRecord r;
    r.resource_type = "Patient";
    r.id = id;
    r.json = R"({"resourceType":"Patient"})";
    r.patient_reference = "Patient/" + id;
    r.search_values = std::move(values);
    return r;
  };
  IngestRecord first = MakeOru("V-1", "P1", 1);
  first.fhir_resources.push_back(patient("pa", {{"identifier", "urn:pms", "12345"},
                                                {"identifier", "", "A-7"},
                                                {"name", "", "doe"},
                                                {"name", "", "jane"},
                                                {"birthdate", "", "1990-03-15"}}));
  first.fhir_resources.push_back(patient("pb", {{"identifier", "urn:pms", "777"},
                                                {"name", "", "doenitz"},
                                                {"name", "", "o_brien%"},
                                                {"birthdate", "", "1985"}}));
  IngestOk(first);
  const auto ids = [&](std::vector<FhirValueCondition> conditions) {
    FhirQuery query;
    query.resource_type = "Patient";
    query.value_conditions = std::move(conditions);
    absl::StatusOr<FhirPage> page = store_->SearchFhirResources(query);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> out;
    for (const StoredFhirResource& r :
         page.ok() ? page->resources : std::vector<StoredFhirResource>{}) {
      out.push_back(r.resource.id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  const auto token = [](const std::string& value, std::optional<std::string> system = {}) {
    FhirValueCondition c;
    c.name = "identifier";
    c.value = value;
    c.system = std::move(system);
    return c;
  };
  const auto name = [](const std::string& prefix) {
    FhirValueCondition c;
    c.name = "name";
    c.match = FhirValueCondition::Match::kPrefix;
    c.value = prefix;
    return c;
  };
  const auto born = [](const std::string& from, const std::string& to) {
    FhirValueCondition c;
    c.name = "birthdate";
    c.match = FhirValueCondition::Match::kRange;
    c.from = from;
    c.to = to;
    return c;
  };
  EXPECT_EQ(ids({token("12345")}), V{"pa"});
  EXPECT_EQ(ids({token("12345", "urn:pms")}), V{"pa"});
  EXPECT_EQ(ids({token("12345", "urn:other")}), V{});
  EXPECT_EQ(ids({token("A-7", "")}), V{"pa"});  // |A-7: no system
  EXPECT_EQ(ids({token("12345", "")}), V{});
  EXPECT_EQ(ids({token("1234")}), V{});                     // tokens match whole
  EXPECT_EQ(ids({token("", "urn:pms")}), (V{"pa", "pb"}));  // system|: any value
  EXPECT_EQ(ids({name("doe")}), (V{"pa", "pb"}));
  EXPECT_EQ(ids({name("doen")}), V{"pb"});
  EXPECT_EQ(ids({name("ja")}), V{"pa"});
  EXPECT_EQ(ids({name("o_b")}), V{"pb"});
  EXPECT_EQ(ids({name("o%")}), V{});  // LIKE wildcards are literal
  EXPECT_EQ(ids({name("o_brien%")}), V{"pb"});
  EXPECT_EQ(ids({born("1990", "1991")}), V{"pa"});
  EXPECT_EQ(ids({born("", "1990")}), V{"pb"});
  // Every condition must hold.
  EXPECT_EQ(ids({name("doe"), token("777")}), V{"pb"});

  // A new version replaces the values: the old name no longer matches.
  now_ += absl::Hours(1);
  IngestRecord second = MakeOru("V-2", "P1", 1);
  second.fhir_resources.push_back(
      patient("pa", {{"identifier", "urn:pms", "12345"}, {"name", "", "smith"}}));
  IngestOk(second);
  EXPECT_EQ(ids({name("ja")}), V{});
  EXPECT_EQ(ids({name("smi")}), V{"pa"});
  EXPECT_EQ(ids({token("A-7")}), V{});

  FhirQuery changed;
  changed.resource_type = "Patient";
  changed.last_updated_from = now_;
  absl::StatusOr<FhirPage> page = store_->SearchFhirResources(changed);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->resources.size(), 1u);
  EXPECT_EQ(page->resources[0].resource.id, "pa");
  changed.last_updated_from.reset();
  changed.last_updated_to = now_;
  page = store_->SearchFhirResources(changed);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->resources.size(), 1u);
  EXPECT_EQ(page->resources[0].resource.id, "pb");
}

TEST_P(StoreTest, CountOpenWorkAndDatabaseErrors) {
  IngestOk(MakeOru("W-1", "P1", 3));  // one HH result: critical
  IngestRecord critical = MakeOru("W-2", "P2", 1);
  critical.results[0].critical = true;
  const IngestOutcome second = IngestOk(critical);
  NewOrder order;
  order.patient = PatientRecord{"P9", "", "TEST", "PATIENT", "", ""};
  order.test_codes = {"CBC"};
  order.lis_endpoint = "lis-a";
  order.outbox_payload = "ORM-1";
  order.placer_order_number = "PO-W";
  ASSERT_TRUE(store_->CreateOrder(order).ok());
  absl::StatusOr<OpenWork> work = store_->CountOpenWork();
  ASSERT_TRUE(work.ok()) << work.status();
  const int64_t criticals = std::stoll(db_->RunSql(
      "SELECT COUNT(*) FROM lab_results WHERE critical = 1 AND acknowledged_at IS NULL"));
  EXPECT_GE(criticals, 1);
  EXPECT_EQ(work->open_critical_results, criticals);
  EXPECT_EQ(work->outbox_pending, 1);
  ASSERT_TRUE(store_->AcknowledgeResult(second.result_ids[0], "dr", now_, "").ok());
  EXPECT_EQ(store_->CountOpenWork()->open_critical_results, criticals - 1);

  // A write the database refuses counts as a database error; a caller's bad
  // input does not.
  EXPECT_EQ(store_->stats().database_errors, 0);
  EXPECT_EQ(store_->GetOrder(424242).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->stats().database_errors, 0);
  StoreOptions failing;
  failing.ingest_fault_hook_for_test = [](std::string_view step) {
    return step == "results" ? absl::UnavailableError("disk full") : absl::OkStatus();
  };
  Open(failing);
  EXPECT_EQ(store_->Ingest(MakeOru("W-3", "P3", 1)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->stats().database_errors, 1);
}

TEST_P(StoreTest, EditedRowIsNamedByVerify) {
  for (int i = 0; i < 5; ++i) {
    IngestOk(MakeOru(absl::StrCat("E-", i), "P1", 1));
  }
  EXPECT_EQ(VerifiedRows(), 5);
  db_->RunSql("UPDATE hl7_messages SET ack_status = 'AE' WHERE id = 3");
  absl::StatusOr<int64_t> verified = store_->VerifyAuditChain();
  EXPECT_EQ(verified.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("row 3 does not verify"));
}

TEST_P(StoreTest, EditedRawBytesAreNamedByVerify) {
  for (int i = 0; i < 3; ++i) {
    IngestOk(MakeOru(absl::StrCat("R-", i), "P1", 1));
  }
  const std::string tamper = GetParam() == Backend::kSqlite
                                 ? "UPDATE hl7_messages SET raw_message = X'4D5348' WHERE id = 2"
                                 : "UPDATE hl7_messages SET raw_message = '\\x4d5348' WHERE id = 2";
  db_->RunSql(tamper);
  absl::StatusOr<int64_t> verified = store_->VerifyAuditChain();
  EXPECT_EQ(verified.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("row 2 does not verify"));
}

TEST_P(StoreTest, DeletedRowIsNamedByVerify) {
  for (int i = 0; i < 5; ++i) {
    IngestOk(MakeOru(absl::StrCat("D-", i), "P1", 1));
  }
  db_->RunSql("DELETE FROM hl7_messages WHERE id = 2");
  absl::StatusOr<int64_t> verified = store_->VerifyAuditChain();
  EXPECT_EQ(verified.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("row 2 is missing"));
}

TEST_P(StoreTest, DeletedNewestRowIsNamedByVerify) {
  for (int i = 0; i < 3; ++i) {
    IngestOk(MakeOru(absl::StrCat("L-", i), "P1", 1));
  }
  db_->RunSql("DELETE FROM hl7_messages WHERE id = 3");
  absl::StatusOr<int64_t> verified = store_->VerifyAuditChain();
  EXPECT_EQ(verified.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("row 3 is missing"));
}

TEST_P(StoreTest, RetentionPurgeKeepsTheChainVerifiable) {
  for (int i = 0; i < 10; ++i) {
    now_ = absl::FromUnixSeconds(1767268800) + absl::Hours(24 * i);
    IngestOk(MakeOru(absl::StrCat("RET-", i), "P1", 1));
  }
  absl::StatusOr<int64_t> purged =
      store_->PurgeAuditOlderThan(absl::FromUnixSeconds(1767268800) + absl::Hours(24 * 4));
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 4);
  EXPECT_EQ(Count("hl7_messages"), 6);
  EXPECT_EQ(VerifiedRows(), 6);
  EXPECT_EQ(*store_->PurgeAuditOlderThan(absl::FromUnixSeconds(1767268800)), 0);
  // Writing continues the chain after a purge.
  IngestOk(MakeOru("RET-new", "P1", 1));
  EXPECT_EQ(VerifiedRows(), 7);
  // Deleting the first kept row by hand is still detected.
  db_->RunSql("DELETE FROM hl7_messages WHERE id = 5");
  EXPECT_THAT(store_->VerifyAuditChain().status().message(), HasSubstr("row 5 is missing"));
}

TEST_P(StoreTest, OutboundMessagesJoinTheChain) {
  NewOrder order;
  order.patient_id = 1;
  order.test_codes = {"CBC"};
  order.lis_endpoint = "lis-a";
  order.placer_order_number = "PO-OUT";
  absl::StatusOr<CreatedOrder> created = store_->CreateOrder(order);
  ASSERT_TRUE(created.ok());
  InboundMessage orm;
  orm.message_type = "ORM";
  orm.trigger_event = "O01";
  orm.message_control_id = "ORM-1";
  orm.raw_message = "MSH|^~\\&|LAB_BRIDGE|MPS_PMS|LIS|LAB|||ORM^O01|ORM-1|P|2.5.1\r";
  absl::StatusOr<int64_t> id = store_->RecordOutbound(orm, created->order_id);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(store_->GetMessage(*id)->direction, "outbound");
  EXPECT_EQ(store_->GetOrder(created->order_id)->hl7_message_id, *id);
  IngestOk(MakeOru("AFTER-ORM", "P1", 1));
  EXPECT_EQ(VerifiedRows(), 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return testing::BackendName(info.param);
                         });

// ----- opening -----

TEST(OpenStoreTest, UnknownSchemeIsInvalidArgument) {
  StoreOptions options;
  options.database_url = "mysql://root:secret@localhost/db";
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), ::testing::Not(HasSubstr("secret")));
}

TEST(OpenStoreTest, UnreachablePostgresIsOneLineWithoutPassword) {
  StoreOptions options;
  options.database_url = "postgresql://bridge:s3cret@127.0.0.1:1/labbridge?connect_timeout=2";
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr("bridge:***@127.0.0.1:1"));
  EXPECT_THAT(store.status().message(), ::testing::Not(HasSubstr("s3cret")));
  EXPECT_EQ(std::string(store.status().message()).find('\n'), std::string::npos);
}

TEST(OpenStoreTest, RelativeSqliteUrlCreatesItsFolder) {
  bridge::testing::TempDir dir;
  const std::filesystem::path old = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  {
    StoreOptions options;  // the default URL: sqlite://./var/lab-bridge.db
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "var" / "lab-bridge.db"));
  std::filesystem::current_path(old);
}

TEST(OpenStoreTest, UnopenableSqliteIsUnavailable) {
  StoreOptions options;
  options.database_url = "sqlite:///proc/no/such/dir/x.db";
  EXPECT_EQ(OpenStore(options).status().code(), absl::StatusCode::kUnavailable);
}

TEST(MaskDatabaseUrlTest, HidesPasswords) {
  EXPECT_EQ(MaskDatabaseUrl("postgresql://u:p@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(MaskDatabaseUrl("postgresql://u@h/db?password=x&sslmode=require"),
            "postgresql://u@h/db?password=***&sslmode=require");
  EXPECT_EQ(MaskDatabaseUrl("sqlite:///var/x.db"), "sqlite:///var/x.db");
}

}  // namespace
}  // namespace bridge::storage
