// ingest_bench: the inbound pipeline in-process, as the MLLP handler runs it
// (api/service/ingest: parse, ORU^R01 -> FHIR + lab records, ACK built,
// Store::Ingest committed before Handle returns), from 1, 4, 16 and 20 threads
// on a real SQLite file and on PostgreSQL. No sockets: this is the ceiling
// the MLLP server can reach (tests/bench/mllp_load.cc measures the wire).
//
// Messages: the synthetic ORUs of oru_generator.h (1-4 KB, 5-30 OBX, 2,000
// patients), each sent with a fresh control id (and fresh placer/filler
// numbers, so every Observation is new), i.e. no resends. Reported per
// configuration: messages/s (items_per_second), the latency of Handle
// (p50/p99/max, ms), how many records each commit carried, and how many
// answers were neither AA nor CA (must be 0; the generated ORUs ask for enhanced mode, MSH-15/16
// NE, so the answer is CA). After each configuration the audit chain is verified
// (VerifyAuditChain); a break aborts the run. Because the 2 cores are shared, CPU per message is
// reported too: this process's (cpu_us_per_msg: parse, map, ACK, the store's client side) and, on
// PostgreSQL, the test server's (pg_cpu_us_per_msg, needs BRIDGE_TEST_PG_DATA
// as exported by tests/support/pg_throwaway.sh).
//
// SQLite files go under $BRIDGE_BENCH_DIR (default: the system temp dir).
// PostgreSQL uses $BRIDGE_TEST_PG_DSN (tests/support/pg_throwaway.sh); its
// benchmarks are skipped when it is unset. Each configuration runs at least
// $BRIDGE_BENCH_MIN_TIME seconds (default 5). See docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include <pqxx/pqxx>

#include "api/service/event_bus.h"
#include "api/service/ingest.h"
#include "storage/store.h"
#include "tests/bench/oru_generator.h"

namespace {

using bridge::api::service::EventBus;
using bridge::api::service::Ingest;
using bridge::api::service::IngestOptions;
using bridge::api::service::IngestPeer;
using bridge::api::service::IngestResult;
using bridge::storage::Store;

enum class Backend { kSqlite, kPostgres };

std::filesystem::path BenchDir() {
  static const std::filesystem::path path = [] {
    const char* dir = std::getenv("BRIDGE_BENCH_DIR");
    std::filesystem::path p =
        dir != nullptr ? std::filesystem::path(dir) : std::filesystem::temp_directory_path();
    p /= absl::StrCat("lab-bridge-ingest-bench-", getpid());
    std::filesystem::create_directories(p);
    return p;
  }();
  return path;
}

std::string PgDsn() {
  const char* dsn = std::getenv("BRIDGE_TEST_PG_DSN");
  return dsn != nullptr ? dsn : "";
}

// A fresh database per configuration: a new SQLite file, or a new schema.
std::string FreshUrl(Backend backend) {
  static std::atomic<int> counter{0};
  const int n = counter++;
  if (backend == Backend::kSqlite) {
    return absl::StrCat("sqlite://", (BenchDir() / absl::StrCat("ingest-", n, ".db")).string());
  }
  const std::string schema = absl::StrCat("ingest_bench_", getpid(), "_", n);
  pqxx::connection conn(PgDsn());
  pqxx::nontransaction txn(conn);
  txn.exec(absl::StrCat("DROP SCHEMA IF EXISTS ", schema, " CASCADE; CREATE SCHEMA ", schema));
  return absl::StrCat(PgDsn(), PgDsn().find('?') == std::string::npos ? "?" : "&",
                      "options=-csearch_path%3D", schema);
}

// Generated ORUs with "{ID}" where the generator put its message id (MSH-10
// and the placer/filler/specimen numbers built from it).
const std::vector<std::string>& Templates() {
  static const std::vector<std::string> templates = [] {
    std::vector<std::string> out = bridge::bench::GenerateOruSet(2000);
    for (size_t i = 0; i < out.size(); ++i) {
      const std::string id = absl::StrCat("BENCH", i);
      std::string& m = out[i];
      std::string marked;
      for (size_t pos = 0;;) {
        const size_t hit = m.find(id, pos);
        const bool whole = hit != std::string::npos &&
                           (hit + id.size() >= m.size() ||
                            !std::isdigit(static_cast<unsigned char>(m[hit + id.size()])));
        if (hit == std::string::npos) {
          marked.append(m, pos);
          break;
        }
        marked.append(m, pos, hit - pos);
        marked.append(whole ? "{ID}" : id);
        pos = hit + id.size();
      }
      m = std::move(marked);
    }
    return out;
  }();
  return templates;
}

// CPU seconds (user + system) used so far by this process.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// CPU seconds used so far by the test PostgreSQL: its postmaster (first line
// of $BRIDGE_TEST_PG_DATA/postmaster.pid) and every process it started
// (backends, checkpointer, WAL writer). The server's share of an ingest,
// which the load on the shared cores does not blur as much as rates do.
// Other engineers' clusters on the machine are not counted. 0 when
// BRIDGE_TEST_PG_DATA is unset.
double PostgresCpuSeconds() {
  const char* data = std::getenv("BRIDGE_TEST_PG_DATA");
  if (data == nullptr) {
    return 0;
  }
  long postmaster = 0;
  if (std::FILE* f = std::fopen((std::filesystem::path(data) / "postmaster.pid").c_str(), "r")) {
    if (std::fscanf(f, "%ld", &postmaster) != 1) {
      postmaster = 0;
    }
    std::fclose(f);
  }
  if (postmaster <= 0) {
    return 0;
  }
  double total = 0;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) {
      continue;
    }
    std::FILE* f = std::fopen((entry.path() / "stat").c_str(), "r");
    if (f == nullptr) {
      continue;
    }
    long pid = 0;
    long parent = 0;
    unsigned long utime = 0;
    unsigned long stime = 0;
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
    // majflt cmajflt utime stime
    if (std::fscanf(f, "%ld (%*[^)]) %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &pid,
                    &parent, &utime, &stime) == 4 &&
        (pid == postmaster || parent == postmaster)) {
      total += static_cast<double>(utime + stime) / ticks;
    }
    std::fclose(f);
  }
  return total;
}

struct Run {
  std::unique_ptr<Store> store;
  std::unique_ptr<EventBus> bus;
  std::unique_ptr<Ingest> ingest;
  std::unique_ptr<std::barrier<>> done;
  std::mutex mu;
  std::vector<double> latencies_ms;
  int64_t not_aa = 0;
  double cpu_start = 0;
  double pg_cpu_start = 0;
};

std::unique_ptr<Run> g_run;
std::atomic<int64_t> g_sequence{0};

void SetUp(const benchmark::State& state, Backend backend) {
  if (backend == Backend::kPostgres && PgDsn().empty()) {
    return;
  }
  (void)Templates();
  g_run = std::make_unique<Run>();
  bridge::storage::StoreOptions options;
  options.database_url = FreshUrl(backend);
  absl::StatusOr<std::unique_ptr<Store>> store = bridge::storage::OpenStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "ingest_bench: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  g_run->store = *std::move(store);
  g_run->bus = std::make_unique<EventBus>();
  IngestOptions ingest_options;
  // A logger whose lines go nowhere: the formatting cost stays in.
  ingest_options.logger = std::make_shared<spdlog::logger>(
      "ingest_bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  ingest_options.logger->set_level(spdlog::level::info);
  g_run->ingest = std::make_unique<Ingest>(*g_run->store, *g_run->bus, ingest_options);
  g_run->done = std::make_unique<std::barrier<>>(state.threads());
}

void SetUpSqlite(const benchmark::State& state) { SetUp(state, Backend::kSqlite); }
void SetUpPostgres(const benchmark::State& state) { SetUp(state, Backend::kPostgres); }

void TearDown(const benchmark::State&) {
  if (g_run == nullptr) {
    return;
  }
  absl::StatusOr<int64_t> verified = g_run->store->VerifyAuditChain();
  if (!verified.ok()) {
    std::fprintf(stderr, "ingest_bench: audit chain does not verify: %s\n",
                 verified.status().ToString().c_str());
    std::abort();
  }
  g_run.reset();
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) {
    return 0;
  }
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[index];
}

void BM_Ingest(benchmark::State& state, Backend backend) {
  if (g_run == nullptr) {
    state.SkipWithError("BRIDGE_TEST_PG_DSN unset");
    return;
  }
  const std::vector<std::string>& templates = Templates();
  IngestPeer peer;
  peer.source_ip = "127.0.0.1";
  if (state.thread_index() == 0) {
    g_run->cpu_start = ProcessCpuSeconds();
    g_run->pg_cpu_start = backend == Backend::kPostgres ? PostgresCpuSeconds() : 0;
  }
  std::vector<double> latencies;
  latencies.reserve(1 << 16);
  int64_t not_aa = 0;
  for (auto _ : state) {
    const int64_t n = g_sequence++;
    const std::string message = absl::StrReplaceAll(
        templates[static_cast<size_t>(n) % templates.size()], {{"{ID}", absl::StrCat("I", n)}});
    const auto started = std::chrono::steady_clock::now();
    IngestResult result = g_run->ingest->Handle(message, peer);
    latencies.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count());
    if ((result.ack_code != "AA" && result.ack_code != "CA") || !result.stored) {
      if (not_aa++ == 0 && state.thread_index() == 0) {
        std::fprintf(stderr, "ingest_bench: %s answered %s: %s\n", result.control_id.c_str(),
                     result.ack_code.c_str(), result.error.c_str());
      }
    }
  }
  state.SetItemsProcessed(state.iterations());
  {
    std::lock_guard<std::mutex> lock(g_run->mu);
    g_run->latencies_ms.insert(g_run->latencies_ms.end(), latencies.begin(), latencies.end());
    g_run->not_aa += not_aa;
  }
  g_run->done->arrive_and_wait();
  if (state.thread_index() == 0) {
    const double messages = static_cast<double>(std::max<size_t>(1, g_run->latencies_ms.size()));
    state.counters["cpu_us_per_msg"] = (ProcessCpuSeconds() - g_run->cpu_start) * 1e6 / messages;
    if (backend == Backend::kPostgres) {
      state.counters["pg_cpu_us_per_msg"] =
          (PostgresCpuSeconds() - g_run->pg_cpu_start) * 1e6 / messages;
    }
    std::vector<double>& all = g_run->latencies_ms;
    std::sort(all.begin(), all.end());
    state.counters["p50_ms"] = Percentile(all, 0.50);
    state.counters["p99_ms"] = Percentile(all, 0.99);
    state.counters["max_ms"] = all.empty() ? 0 : all.back();
    state.counters["not_accepted"] = static_cast<double>(g_run->not_aa);
    const bridge::storage::StoreStats stats = g_run->store->stats();
    state.counters["records_per_commit"] =
        stats.ingest_batches > 0
            ? static_cast<double>(stats.ingest_records) / static_cast<double>(stats.ingest_batches)
            : 0.0;
  }
}

// Seconds per configuration ($BRIDGE_BENCH_MIN_TIME, default 5).
double MinTime() {
  const char* text = std::getenv("BRIDGE_BENCH_MIN_TIME");
  return text != nullptr && std::atof(text) > 0 ? std::atof(text) : 5.0;
}

// Messages per thread instead of a minimum time ($BRIDGE_BENCH_ITERATIONS):
// the same amount of work in every run, for comparing CPU per message.
int64_t Iterations() {
  const char* text = std::getenv("BRIDGE_BENCH_ITERATIONS");
  return text != nullptr ? std::atoll(text) : 0;
}

void RegisterAll() {
  struct Config {
    const char* name;
    Backend backend;
    void (*setup)(const benchmark::State&);
  };
  const Config configs[] = {{"Ingest/sqlite", Backend::kSqlite, SetUpSqlite},
                            {"Ingest/postgres", Backend::kPostgres, SetUpPostgres}};
  for (const Config& c : configs) {
    benchmark::internal::Benchmark* benchmark =
        benchmark::RegisterBenchmark(c.name, BM_Ingest, c.backend)
            ->Setup(c.setup)
            ->Teardown(TearDown)
            ->Threads(1)
            ->Threads(4)
            ->Threads(16)
            ->Threads(20)  // what `serve` runs with its default WORKER_THREADS=20
            ->UseRealTime();
    if (Iterations() > 0) {
      benchmark->Iterations(Iterations());
    } else {
      benchmark->MinTime(MinTime());
    }
  }
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
