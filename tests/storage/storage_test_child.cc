// storage_test_child: the writer/claimer process the crash and concurrency
// tests start, kill and restart. It prints a line on stdout ONLY after the
// store reported the write committed, so everything it printed must survive.
//
//   storage_test_child ingest URL PREFIX   ingest PREFIX-0, PREFIX-1, ... forever,
//                                          printing each index once committed
//   storage_test_child claim URL CLAIMER   claim+complete outbox rows until none
//                                          are left, printing each claimed id
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"

#include "storage/store.h"
#include "tests/storage/store_fixture.h"

namespace {

using bridge::storage::OpenStore;
using bridge::storage::Store;
using bridge::storage::StoreOptions;

// Retries only what may succeed later (kUnavailable), for at most 120 s;
// anything else ends the process with exit code 3.
std::unique_ptr<Store> OpenWithRetry(const std::string& url) {
  StoreOptions options;
  options.database_url = url;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
    if (store.ok()) {
      return *std::move(store);
    }
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    if (!absl::IsUnavailable(store.status()) || attempt >= 1200) {
      std::exit(3);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int Ingest(const std::string& url, const std::string& prefix) {
  std::unique_ptr<Store> store = OpenWithRetry(url);
  for (long i = 0;; ++i) {
    const auto record = bridge::storage::testing::MakeOru(absl::StrCat(prefix, "-", i), "CRASH", 3);
    for (;;) {
      absl::StatusOr<bridge::storage::IngestOutcome> outcome = store->Ingest(record);
      if (outcome.ok()) {
        break;
      }
      if (!absl::IsUnavailable(outcome.status())) {
        std::fprintf(stderr, "ingest: fatal %s\n", outcome.status().ToString().c_str());
        return 2;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // retry the same record
    }
    std::printf("%ld\n", i);
    std::fflush(stdout);
  }
}

int Claim(const std::string& url, const std::string& claimer) {
  std::unique_ptr<Store> store = OpenWithRetry(url);
  int empty_rounds = 0;
  while (empty_rounds < 5) {
    absl::StatusOr<std::vector<bridge::storage::OutboxItem>> items =
        store->ClaimOutbox(claimer, absl::Minutes(10), 7);
    if (!items.ok()) {
      std::fprintf(stderr, "claim: %s\n", items.status().ToString().c_str());
      if (!absl::IsUnavailable(items.status())) {
        return 2;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (items->empty()) {
      ++empty_rounds;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    empty_rounds = 0;
    for (const auto& item : *items) {
      std::printf("%lld\n", static_cast<long long>(item.id));
      if (absl::Status s = store->CompleteOutbox(item.id, claimer); !s.ok()) {
        std::fprintf(stderr, "complete: %s\n", s.ToString().c_str());
        return 2;
      }
    }
    std::fflush(stdout);
    // Stands in for sending the order, so that claimers overlap in time.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s ingest|claim URL NAME\n", argv[0]);
    return 64;
  }
  const std::string mode = argv[1];
  if (mode == "ingest") {
    return Ingest(argv[2], argv[3]);
  }
  if (mode == "claim") {
    return Claim(argv[2], argv[3]);
  }
  return 64;
}
