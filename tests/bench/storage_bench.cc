// storage_bench: durable ingest throughput of the Store (an ORU^R01 with 10
// results: audit row, patient upsert, 10 lab_results, 11 FHIR resources,
// committed before Ingest returns), with 1 and 16 concurrent writers, with
// and without group commit, on SQLite and PostgreSQL; beside it the raw rate
// of single-row commits on the same disk/server (the fsync ceiling).
//
// SQLite files go under $BRIDGE_BENCH_DIR (default: the system temp dir).
// PostgreSQL uses $BRIDGE_TEST_PG_DSN (tests/support/pg_throwaway.sh); its
// benchmarks are skipped when it is unset. See docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include <pqxx/pqxx>
#include <sqlite3.h>

#include "storage/store.h"
#include "tests/storage/store_fixture.h"

namespace {

using bridge::storage::OpenStore;
using bridge::storage::Store;
using bridge::storage::StoreOptions;

enum class Backend { kSqlite, kPostgres };

std::filesystem::path BenchDir() {
  const char* dir = std::getenv("BRIDGE_BENCH_DIR");
  std::filesystem::path path =
      dir != nullptr ? std::filesystem::path(dir) : std::filesystem::temp_directory_path();
  path /= absl::StrCat("lab-bridge-bench-", getpid());
  std::filesystem::create_directories(path);
  return path;
}

std::string PgDsn() {
  const char* dsn = std::getenv("BRIDGE_TEST_PG_DSN");
  return dsn != nullptr ? dsn : "";
}

// A fresh database for one benchmark: a new SQLite file, or a new schema.
std::string FreshUrl(Backend backend) {
  static std::atomic<int> counter{0};
  const int n = counter++;
  if (backend == Backend::kSqlite) {
    return absl::StrCat("sqlite://", (BenchDir() / absl::StrCat("bench-", n, ".db")).string());
  }
  const std::string schema = absl::StrCat("bench_", getpid(), "_", n);
  pqxx::connection conn(PgDsn());
  pqxx::nontransaction txn(conn);
  txn.exec(absl::StrCat("DROP SCHEMA IF EXISTS ", schema, " CASCADE; CREATE SCHEMA ", schema));
  return absl::StrCat(PgDsn(), PgDsn().find('?') == std::string::npos ? "?" : "&",
                      "options=-csearch_path%3D", schema);
}

// ----- durable ingest through the Store -----

std::unique_ptr<Store> g_store;
std::atomic<int64_t> g_sequence{0};

void SetUpStore(Backend backend, bool group_commit) {
  StoreOptions options;
  options.database_url = FreshUrl(backend);
  options.group_commit = group_commit;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "storage_bench: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  g_store = *std::move(store);
}

void BM_Ingest(benchmark::State& state, Backend backend) {
  if (backend == Backend::kPostgres && PgDsn().empty()) {
    state.SkipWithError("BRIDGE_TEST_PG_DSN unset");
    return;
  }
  int64_t failures = 0;
  // Building the record (~2 us) is inside the timing; it is noise next to a commit.
  for (auto _ : state) {
    const int64_t n = g_sequence++;
    const bridge::storage::IngestRecord record =
        bridge::storage::testing::MakeOru(absl::StrCat("B", n), absl::StrCat("P", n % 500), 10);
    if (!g_store->Ingest(record).ok()) {
      ++failures;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["failures"] = static_cast<double>(failures);
  if (state.thread_index() == 0) {
    const bridge::storage::StoreStats stats = g_store->stats();
    state.counters["records_per_commit"] =
        stats.ingest_batches > 0
            ? static_cast<double>(stats.ingest_records) / static_cast<double>(stats.ingest_batches)
            : 0.0;
  }
}

void SetUpSqliteGroup(const benchmark::State&) { SetUpStore(Backend::kSqlite, true); }
void SetUpSqliteSingle(const benchmark::State&) { SetUpStore(Backend::kSqlite, false); }
void SetUpPgGroup(const benchmark::State&) {
  if (!PgDsn().empty()) SetUpStore(Backend::kPostgres, true);
}
void SetUpPgSingle(const benchmark::State&) {
  if (!PgDsn().empty()) SetUpStore(Backend::kPostgres, false);
}
void TearDownStore(const benchmark::State&) { g_store.reset(); }

// ----- raw single-row commits (the disk's / server's fsync ceiling) -----

void BM_SqliteSingleRowCommit(benchmark::State& state) {
  const std::string path = (BenchDir() / absl::StrCat("raw-", g_sequence++, ".db")).string();
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
               "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES ('row')", -1, &insert, nullptr);
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_step(insert);
    sqlite3_reset(insert);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  state.SetItemsProcessed(state.iterations());
  sqlite3_finalize(insert);
  sqlite3_close(db);
}

void BM_PostgresSingleRowCommit(benchmark::State& state) {
  if (PgDsn().empty()) {
    state.SkipWithError("BRIDGE_TEST_PG_DSN unset");
    return;
  }
  pqxx::connection conn(PgDsn());
  for (auto _ : state) {
    pqxx::work txn(conn);
    txn.exec("INSERT INTO public.raw_commits (v) VALUES ('row')");
    txn.commit();
  }
  state.SetItemsProcessed(state.iterations());
}

void SetUpRawPg(const benchmark::State&) {
  if (PgDsn().empty()) {
    return;
  }
  pqxx::connection conn(PgDsn());
  pqxx::nontransaction txn(conn);
  txn.exec(
      "DROP TABLE IF EXISTS public.raw_commits; "
      "CREATE TABLE public.raw_commits (id BIGSERIAL PRIMARY KEY, v TEXT)");
}

void RegisterAll() {
  struct Config {
    const char* name;
    Backend backend;
    void (*setup)(const benchmark::State&);
  };
  const Config configs[] = {
      {"Ingest/sqlite/group_commit", Backend::kSqlite, SetUpSqliteGroup},
      {"Ingest/sqlite/commit_per_record", Backend::kSqlite, SetUpSqliteSingle},
      {"Ingest/postgres/group_commit", Backend::kPostgres, SetUpPgGroup},
      {"Ingest/postgres/commit_per_record", Backend::kPostgres, SetUpPgSingle},
  };
  for (const Config& c : configs) {
    benchmark::RegisterBenchmark(c.name, BM_Ingest, c.backend)
        ->Setup(c.setup)
        ->Teardown(TearDownStore)
        ->Threads(1)
        ->Threads(16)
        ->MinTime(3.0)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("RawCommit/sqlite/single_row", BM_SqliteSingleRowCommit)
      ->MinTime(3.0)
      ->UseRealTime();
  benchmark::RegisterBenchmark("RawCommit/postgres/single_row", BM_PostgresSingleRowCommit)
      ->Setup(SetUpRawPg)
      ->Threads(1)
      ->Threads(8)
      ->MinTime(3.0)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  RegisterAll();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::filesystem::remove_all(BenchDir());
  return 0;
}
