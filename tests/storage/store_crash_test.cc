// Durability under abuse, on real processes and real files: a writer killed
// with SIGKILL, a PostgreSQL server stopped with `pg_ctl stop -m immediate`
// mid-load, two processes claiming from one outbox, and SQLite on a full
// disk. These run serially (RUN_SERIAL): they stop the shared test server.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "storage/store.h"
#include "tests/storage/store_fixture.h"

namespace bridge::storage {
namespace {

using testing::Backend;
using testing::TestDatabase;

// A child process running storage_test_child, its stdout collected by a thread.
class Child {
 public:
  Child(const std::string& mode, const std::string& url, const std::string& name) {
    int fds[2];
    if (pipe(fds) != 0) {
      ADD_FAILURE() << "pipe";
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      execl(STORAGE_TEST_CHILD, STORAGE_TEST_CHILD, mode.c_str(), url.c_str(), name.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
      char buffer[4096];
      std::string partial;
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        partial.append(buffer, static_cast<size_t>(n));
        size_t newline;
        while ((newline = partial.find('\n')) != std::string::npos) {
          int64_t value = 0;
          if (absl::SimpleAtoi(partial.substr(0, newline), &value)) {
            std::lock_guard<std::mutex> lock(mu_);
            lines_.push_back(value);
          }
          partial.erase(0, newline + 1);
        }
      }
      close(fd);
    });
  }

  ~Child() {
    if (pid_ > 0 && !reaped_) {
      Kill();
    }
  }

  size_t Reported() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_.size();
  }

  // Waits until at least `n` lines were reported; false on timeout.
  bool WaitForReports(size_t n, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Reported() < n) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // SIGKILL, reap, drain stdout; returns every value it reported.
  std::vector<int64_t> Kill() {
    kill(pid_, SIGKILL);
    return Wait();
  }

  // Reaps the child; kills it (and fails the test) if it runs past `limit`.
  std::vector<int64_t> Wait(int* exit_code = nullptr,
                            std::chrono::seconds limit = std::chrono::seconds(300)) {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "child " << pid_ << " still running after " << limit.count() << " s";
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    reaped_ = true;
    if (exit_code != nullptr) {
      *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (reader_.joinable()) {
      reader_.join();
    }
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::vector<int64_t> lines_;
};

bool RequirePostgres() {
  if (testing::PostgresDsn()) {
    return true;
  }
  if (testing::PostgresRequired()) {
    ADD_FAILURE() << "BRIDGE_TEST_PG_DSN is unset but CI/BRIDGE_REQUIRE_PG requires PostgreSQL";
  }
  return false;
}

std::unique_ptr<Store> OpenOrDie(const std::string& url) {
  StoreOptions options;
  options.database_url = url;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// Every reported id is present, no record is partial, the chain verifies.
void ExpectEverythingReportedSurvived(const TestDatabase& db,
                                      const std::map<std::string, std::vector<int64_t>>& reported) {
  std::unique_ptr<Store> store = OpenOrDie(db.url());
  ASSERT_NE(store, nullptr);
  size_t total = 0;
  for (const auto& [prefix, ids] : reported) {
    for (int64_t id : ids) {
      absl::StatusOr<std::vector<StoredMessage>> rows =
          store->FindMessagesByControlId("LIS", "LAB", absl::StrCat(prefix, "-", id));
      ASSERT_TRUE(rows.ok()) << rows.status();
      EXPECT_FALSE(rows->empty()) << "acknowledged but lost: " << prefix << "-" << id;
      ++total;
    }
  }
  EXPECT_GT(total, 0u);
  const int64_t originals =
      std::stoll(db.RunSql("SELECT COUNT(*) FROM hl7_messages WHERE duplicate_of IS NULL"));
  EXPECT_EQ(std::stoll(db.RunSql("SELECT COUNT(*) FROM lab_results")), originals * 3)
      << "a record was committed partially";
  EXPECT_EQ(std::stoll(db.RunSql("SELECT COUNT(*) FROM fhir_resources")), originals * 4);
  absl::StatusOr<int64_t> verified = store->VerifyAuditChain();
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(*verified, std::stoll(db.RunSql("SELECT COUNT(*) FROM hl7_messages")));
}

TEST(StoreCrashTest, SqliteWriterKilledAtRandomLosesNothingItReported) {
  TestDatabase db(Backend::kSqlite);
  OpenOrDie(db.url());  // migrate once up front
  std::mt19937 random(std::random_device{}());
  std::map<std::string, std::vector<int64_t>> reported;
  for (int round = 0; round < 6; ++round) {
    const std::string prefix = absl::StrCat("K", round);
    Child child("ingest", db.url(), prefix);
    ASSERT_TRUE(child.WaitForReports(1, std::chrono::seconds(30)));
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 400));
    reported[prefix] = child.Kill();
  }
  ExpectEverythingReportedSurvived(db, reported);
}

TEST(StoreCrashTest, PostgresImmediateStopMidLoadLosesNothingReported) {
  if (!RequirePostgres()) {
    GTEST_SKIP() << "BRIDGE_TEST_PG_DSN unset";
  }
  const char* ctl = std::getenv("BRIDGE_TEST_PG_CTL");
  ASSERT_NE(ctl, nullptr) << "BRIDGE_TEST_PG_CTL unset (tests/support/pg_throwaway.sh sets it)";
  auto db = std::make_unique<TestDatabase>(Backend::kPostgres);
  OpenOrDie(db->url());
  std::map<std::string, std::vector<int64_t>> reported;
  {
    Child child("ingest", db->url(), "PG");
    ASSERT_TRUE(child.WaitForReports(30, std::chrono::seconds(60)));
    ASSERT_EQ(std::system(absl::StrCat(ctl, " stop -m immediate >/dev/null 2>&1").c_str()), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const size_t before = child.Reported();
    ASSERT_EQ(std::system(absl::StrCat(ctl, " start >/dev/null 2>&1").c_str()), 0);
    ASSERT_TRUE(testing::WaitForPostgres()) << "PostgreSQL did not come back";
    // The writer reconnects by itself and carries on.
    EXPECT_TRUE(child.WaitForReports(before + 30, std::chrono::seconds(60)));
    reported["PG"] = child.Kill();
  }
  {
    // And a writer killed mid-transaction leaves no partial record either.
    Child child("ingest", db->url(), "PGK");
    ASSERT_TRUE(child.WaitForReports(20, std::chrono::seconds(60)));
    reported["PGK"] = child.Kill();
  }
  ExpectEverythingReportedSurvived(*db, reported);
}

class OutboxClaimTest : public ::testing::TestWithParam<Backend> {};

TEST_P(OutboxClaimTest, TwoProcessesNeverClaimTheSameRow) {
  if (GetParam() == Backend::kPostgres && !RequirePostgres()) {
    GTEST_SKIP() << "BRIDGE_TEST_PG_DSN unset";
  }
  constexpr int kRows = 3000;
  TestDatabase db(GetParam());
  OpenOrDie(db.url());
  db.RunSql(absl::StrCat(
      "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ", kRows,
      ") INSERT INTO outbox (order_id, endpoint, payload, state, attempts, next_attempt_at, "
      "created_at, updated_at) SELECT x, 'lis', '', 'pending', 0, 0, 0, 0 FROM g"));
  Child a("claim", db.url(), "A");
  Child b("claim", db.url(), "B");
  int code_a = 0;
  int code_b = 0;
  std::vector<int64_t> ids_a = a.Wait(&code_a);
  std::vector<int64_t> ids_b = b.Wait(&code_b);
  EXPECT_EQ(code_a, 0);
  EXPECT_EQ(code_b, 0);
  std::set<int64_t> all(ids_a.begin(), ids_a.end());
  for (int64_t id : ids_b) {
    EXPECT_TRUE(all.insert(id).second) << "outbox row " << id << " claimed twice";
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kRows));
  EXPECT_EQ(ids_a.size() + ids_b.size(), static_cast<size_t>(kRows));
  EXPECT_GT(ids_a.size(), 0u);
  EXPECT_GT(ids_b.size(), 0u);
  EXPECT_EQ(db.RunSql("SELECT COUNT(*) FROM outbox WHERE state = 'done'"), std::to_string(kRows));
}

INSTANTIATE_TEST_SUITE_P(Backends, OutboxClaimTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return testing::BackendName(info.param);
                         });

TEST(StoreDiskFullTest, SqliteOnAFullDiskFailsRetryablyAndRecovers) {
  if (geteuid() != 0) {
    // The test command runs as root (it installs packages); a run that is
    // required to be complete must not pass without this test.
    if (std::getenv("CI") != nullptr || std::getenv("BRIDGE_REQUIRE_PG") != nullptr) {
      FAIL() << "mounting a small tmpfs needs root, and CI/BRIDGE_REQUIRE_PG requires this test";
    }
    GTEST_SKIP() << "mounting a small tmpfs needs root";
  }
  bridge::testing::TempDir dir;
  const std::filesystem::path mnt = dir.path() / "mnt";
  std::filesystem::create_directories(mnt);
  ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m"), 0) << std::strerror(errno);
  const std::filesystem::path filler = mnt / "filler";
  {
    std::ofstream out(filler, std::ios::binary);
    out << std::string(1 << 20, 'x');
  }
  const std::string path = (mnt / "lab-bridge.db").string();
  {
    std::unique_ptr<Store> store = OpenOrDie(absl::StrCat("sqlite://", path));
    ASSERT_NE(store, nullptr);
    absl::Status failure;
    int written = 0;
    for (int i = 0; i < 500 && failure.ok(); ++i) {
      IngestRecord record = testing::MakeOru(absl::StrCat("FULL-", i), "P1", 3);
      record.message.raw_message += std::string(64 * 1024, 'z');
      absl::StatusOr<IngestOutcome> outcome = store->Ingest(record);
      if (outcome.ok()) {
        ++written;
      } else {
        failure = outcome.status();
      }
    }
    EXPECT_EQ(failure.code(), absl::StatusCode::kUnavailable) << failure;
    EXPECT_THAT(failure.message(), ::testing::HasSubstr("full")) << failure;
    EXPECT_GT(written, 0);
    // The process is up, the store still answers and the file is intact.
    absl::StatusOr<int64_t> verified = store->VerifyAuditChain();
    ASSERT_TRUE(verified.ok()) << verified.status();
    EXPECT_EQ(*verified, written);
    int rc = 0;
    EXPECT_EQ(
        testing::RunCommand(
            absl::StrCat(testing::SqliteByHand(), " ", path, " 'PRAGMA integrity_check'"), &rc),
        "ok");
    // Space comes back: writes succeed again.
    std::filesystem::remove(filler);
    absl::StatusOr<IngestOutcome> after = store->Ingest(testing::MakeOru("AFTER", "P1", 3));
    EXPECT_TRUE(after.ok()) << after.status();
    verified = store->VerifyAuditChain();
    ASSERT_TRUE(verified.ok()) << verified.status();
    EXPECT_EQ(*verified, written + 1);
  }
  umount2(mnt.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace bridge::storage
