#include "api/service/retention.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"

#include "tests/storage/store_fixture.h"

namespace bridge::api::service {
namespace {

using storage::testing::Backend;

const absl::Time kDay0 = absl::FromUnixSeconds(1767268800);  // 2026-01-01T12:00:00Z

class RetentionJobTest : public storage::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    storage::StoreOptions options;
    options.clock = [this] { return absl::FromUnixSeconds(store_now_.load()); };
    store_ = OpenTestStore(options);
    ASSERT_NE(store_, nullptr);
    // One message a day for ten days.
    for (int day = 0; day < 10; ++day) {
      store_now_ = absl::ToUnixSeconds(kDay0 + absl::Hours(24 * day));
      absl::StatusOr<storage::IngestOutcome> outcome =
          store_->Ingest(storage::testing::MakeOru(absl::StrCat("RJ-", day), "P1", 1));
      ASSERT_TRUE(outcome.ok()) << outcome.status();
    }
  }

  int64_t AuditRows() { return std::stoll(db_->RunSql("SELECT count(*) FROM hl7_messages")); }

  std::atomic<int64_t> store_now_{0};
  std::unique_ptr<storage::Store> store_;
};

TEST_P(RetentionJobTest, PurgesOnlyWhatIsOlderThanTheRetentionAndTheChainStillVerifies) {
  // "Now" is day 12; keeping 5 days purges days 0..6 (processed before day 7).
  RetentionJob job(*store_, {.retention = absl::Hours(24 * 5),
                             .clock = [] { return kDay0 + absl::Hours(24 * 12); }});
  absl::StatusOr<int64_t> purged = job.RunOnce();
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 7);
  EXPECT_EQ(AuditRows(), 3);
  absl::StatusOr<int64_t> verified = store_->VerifyAuditChain();
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(*verified, 3);
  // Running again finds nothing more (another replica's run does the same).
  EXPECT_EQ(*job.RunOnce(), 0);
}

TEST_P(RetentionJobTest, TheDefaultSevenYearsKeepsEverythingRecent) {
  RetentionJob job(*store_, {.clock = [] { return kDay0 + absl::Hours(24 * 30); }});
  EXPECT_EQ(*job.RunOnce(), 0);
  EXPECT_EQ(AuditRows(), 10);
}

TEST_P(RetentionJobTest, StartPurgesAtOnceAndStopEndsTheJob) {
  RetentionJob job(*store_, {.retention = absl::Hours(24), .interval = absl::Hours(1), .clock = [] {
                               return kDay0 + absl::Hours(24 * 100);
                             }});
  job.Start();
  // The first run happens at start, not after one interval.
  for (int i = 0; i < 600 && AuditRows() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(AuditRows(), 0);
  job.Stop();  // returns although the next run is an hour away
  job.Stop();  // idempotent
}

INSTANTIATE_TEST_SUITE_P(Backends, RetentionJobTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return storage::testing::BackendName(info.param);
                         });

}  // namespace
}  // namespace bridge::api::service
