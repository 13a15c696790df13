// Group commit writes a group of records with one statement per table
// (sql_store.cc, WriteBatch). These tests hold the committer back so that
// concurrent writers land in one group, then check that the group leaves
// exactly what writing the records one by one would: shared rows merged in
// order, a FHIR version per record, every result linked to its own message,
// resends as receipts, a record that cannot be stored failing alone, and a
// group whose set-based write fails being written again record by record
// with nothing doubled. Both backends.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

#include "storage/store.h"
#include "tests/storage/store_fixture.h"

namespace bridge::storage {
namespace {

using testing::Backend;
using testing::MakeOru;

constexpr int kWriters = 12;

class GroupWriteTest : public testing::BackendTest {
 protected:
  // Opens the store with a hook that stalls the first record 300 ms (the
  // others queue up behind it and are then committed as one group) and
  // then asks `fault` about every later step.
  void Open(std::function<absl::Status(std::string_view)> fault = nullptr) {
    StoreOptions options;
    auto first = std::make_shared<std::atomic<bool>>(true);
    options.ingest_fault_hook_for_test = [first, fault](std::string_view step) {
      if (step == "message" && first->exchange(false)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        return absl::OkStatus();
      }
      return fault ? fault(step) : absl::OkStatus();
    };
    store_ = OpenTestStore(options);
    ASSERT_NE(store_, nullptr);
  }

  // Ingests `records` from one thread each, all at once.
  std::vector<absl::StatusOr<IngestOutcome>> IngestConcurrently(
      const std::vector<IngestRecord>& records) {
    std::vector<absl::StatusOr<IngestOutcome>> outcomes(records.size(),
                                                        absl::InternalError("not run"));
    std::vector<std::thread> writers;
    for (size_t i = 0; i < records.size(); ++i) {
      writers.emplace_back([&, i] { outcomes[i] = store_->Ingest(records[i]); });
      if (i == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the first one stalls
      }
    }
    for (std::thread& t : writers) {
      t.join();
    }
    return outcomes;
  }

  int64_t Count(const std::string& table) {
    return std::stoll(db_->RunSql(absl::StrCat("SELECT COUNT(*) FROM ", table)));
  }

  int64_t VerifiedRows() {
    absl::StatusOr<int64_t> verified = store_->VerifyAuditChain();
    EXPECT_TRUE(verified.ok()) << verified.status();
    return verified.ok() ? *verified : -1;
  }

  std::unique_ptr<Store> store_;
};

// Record `i` of a group: its own control id and results, a shared patient
// whose name changes and whose sex is sent by every other record, and a
// shared Organization whose content changes.
IngestRecord SharedRecord(int i) {
  IngestRecord r = MakeOru(absl::StrCat("GRP-", i), "SHARED", 3);
  r.patient->family_name = absl::StrCat("FAMILY", i);
  r.patient->sex = i % 2 == 0 ? "" : absl::StrCat("S", i);
  FhirResourceRecord org;
  org.resource_type = "Organization";
  org.id = "the-lab";
  org.json = absl::StrCat(R"({"resourceType":"Organization","name":"lab )", i, R"("})");
  r.fhir_resources.push_back(org);
  return r;
}

TEST_P(GroupWriteTest, AGroupLeavesWhatRecordByRecordWritesWould) {
  Open();
  std::vector<IngestRecord> records;
  for (int i = 0; i < kWriters; ++i) {
    records.push_back(SharedRecord(i));
  }
  const std::vector<absl::StatusOr<IngestOutcome>> outcomes = IngestConcurrently(records);
  int last = -1;      // the record committed last
  int last_sex = -1;  // the last one that sent a sex
  std::set<int64_t> all_results;
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_TRUE(outcomes[i].ok()) << outcomes[i].status();
    const IngestOutcome& o = *outcomes[i];
    if (last < 0 || o.message_id > outcomes[last]->message_id) {
      last = i;
    }
    if (i % 2 == 1 && (last_sex < 0 || o.message_id > outcomes[last_sex]->message_id)) {
      last_sex = i;
    }
    ASSERT_EQ(o.result_ids.size(), 3u);
    for (int64_t id : o.result_ids) {
      absl::StatusOr<StoredResult> result = store_->GetResult(id);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(result->hl7_message_id, o.message_id);  // each result under its own message
      EXPECT_EQ(result->patient_id, o.patient_id.value_or(-1));
      EXPECT_EQ(result->result.filler_order_number, absl::StrCat("F-GRP-", i));
      all_results.insert(id);
    }
    EXPECT_EQ(o.patient_id, outcomes[0]->patient_id);
  }
  EXPECT_EQ(all_results.size(), 3u * kWriters);
  EXPECT_LT(store_->stats().ingest_batches, kWriters) << "the writers were not grouped";

  // The patient as the last upsert leaves it; a field a record left empty
  // keeps the earlier value.
  absl::StatusOr<StoredPatient> patient = store_->FindPatientByPmsId("SHARED");
  ASSERT_TRUE(patient.ok()) << patient.status();
  EXPECT_EQ(patient->patient.family_name, absl::StrCat("FAMILY", last));
  EXPECT_EQ(patient->patient.sex, absl::StrCat("S", last_sex));
  EXPECT_EQ(Count("patients"), 1);

  // One version per record that carried the resource; the last content wins.
  absl::StatusOr<StoredFhirResource> org = store_->GetFhirResource("Organization", "the-lab");
  ASSERT_TRUE(org.ok()) << org.status();
  EXPECT_EQ(org->version, kWriters);
  EXPECT_EQ(org->resource.json, records[last].fhir_resources.back().json);

  EXPECT_EQ(Count("hl7_messages"), kWriters);
  EXPECT_EQ(Count("lab_results"), 3 * kWriters);
  EXPECT_EQ(VerifiedRows(), kWriters);
}

TEST_P(GroupWriteTest, ResendsWithinOneGroupAreReceiptsOfTheFirst) {
  Open();
  std::vector<IngestRecord> records = {MakeOru("FIRST", "P1", 1)};
  for (int i = 0; i < 6; ++i) {
    records.push_back(MakeOru("AGAIN", "P2", 2));
  }
  const std::vector<absl::StatusOr<IngestOutcome>> outcomes = IngestConcurrently(records);
  int originals = 0;
  std::optional<int64_t> original_id;
  for (size_t i = 1; i < outcomes.size(); ++i) {
    ASSERT_TRUE(outcomes[i].ok()) << outcomes[i].status();
    if (!outcomes[i]->duplicate_of) {
      ++originals;
      original_id = outcomes[i]->message_id;
    }
    EXPECT_EQ(outcomes[i]->ack_status, "AA");
  }
  EXPECT_EQ(originals, 1);
  for (size_t i = 1; i < outcomes.size(); ++i) {
    if (outcomes[i]->duplicate_of) {
      EXPECT_EQ(outcomes[i]->duplicate_of, original_id);
      EXPECT_TRUE(outcomes[i]->result_ids.empty());
    }
  }
  EXPECT_EQ(Count("lab_results"), 1 + 2);
  EXPECT_EQ(Count("hl7_messages"), 7);
  EXPECT_EQ(VerifiedRows(), 7);
}

TEST_P(GroupWriteTest, ARecordThatCannotBeStoredFailsAloneInItsGroup) {
  Open();
  std::vector<IngestRecord> records;
  for (int i = 0; i < 8; ++i) {
    records.push_back(MakeOru(absl::StrCat("ALONE-", i), "P1", 2));
  }
  // Results without a PID, for an order that does not exist: nobody to file them under.
  records[5].patient.reset();
  records[5].resulted_placer_order_numbers = {"NO-SUCH-ORDER"};
  const std::vector<absl::StatusOr<IngestOutcome>> outcomes = IngestConcurrently(records);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    if (i == 5) {
      EXPECT_EQ(outcomes[i].status().code(), absl::StatusCode::kInvalidArgument);
    } else {
      EXPECT_TRUE(outcomes[i].ok()) << i << ": " << outcomes[i].status();
    }
  }
  EXPECT_EQ(Count("hl7_messages"), 7);
  EXPECT_EQ(Count("lab_results"), 7 * 2);
  EXPECT_EQ(VerifiedRows(), 7);
}

TEST_P(GroupWriteTest, AGroupWhoseWriteFailsIsWrittenAgainRecordByRecord) {
  // The group's "results" step fails once, after its audit rows, patient,
  // orders and FHIR rows were written: all of that must be undone before
  // the records are written one by one.
  auto messages = std::make_shared<std::atomic<int>>(0);
  auto failed = std::make_shared<std::atomic<bool>>(false);
  Open([messages, failed](std::string_view step) {
    if (step == "message") {
      ++*messages;
    }
    if (step == "results" && *messages > 1 && !failed->exchange(true)) {
      return absl::UnavailableError("injected");
    }
    return absl::OkStatus();
  });
  std::vector<IngestRecord> records;
  for (int i = 0; i < kWriters; ++i) {
    records.push_back(SharedRecord(i));
  }
  const std::vector<absl::StatusOr<IngestOutcome>> outcomes = IngestConcurrently(records);
  EXPECT_TRUE(failed->load()) << "the fault was never injected";
  for (const absl::StatusOr<IngestOutcome>& o : outcomes) {
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->result_ids.size(), 3u);
  }
  EXPECT_EQ(Count("hl7_messages"), kWriters);
  EXPECT_EQ(Count("lab_results"), 3 * kWriters);
  EXPECT_EQ(Count("patients"), 1);
  absl::StatusOr<StoredFhirResource> org = store_->GetFhirResource("Organization", "the-lab");
  ASSERT_TRUE(org.ok()) << org.status();
  EXPECT_EQ(org->version, kWriters);
  EXPECT_EQ(VerifiedRows(), kWriters);
}

INSTANTIATE_TEST_SUITE_P(Backends, GroupWriteTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return testing::BackendName(info.param);
                         });

}  // namespace
}  // namespace bridge::storage
