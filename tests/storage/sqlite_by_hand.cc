// sqlite_by_hand PATH SQL [HOLD_MS]: runs SQL on a SQLite file outside the
// Store and prints each result row with columns joined by '|', like
// `sqlite3 -batch`. The tests use it to tamper with rows "by hand" without
// needing the sqlite3 CLI package on the machine. With HOLD_MS it then waits
// that long before closing, so a `BEGIN IMMEDIATE` holds the write lock.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <sqlite3.h>

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s PATH SQL [HOLD_MS]\n", argv[0]);
    return 64;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "open: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  sqlite3_busy_timeout(db, 10000);
  const char* tail = argv[2];
  while (tail != nullptr && *tail != '\0') {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, tail, -1, &stmt, &tail) != SQLITE_OK) {
      std::fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(db));
      return 1;
    }
    if (stmt == nullptr) {
      break;  // trailing whitespace
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        const unsigned char* text = sqlite3_column_text(stmt, c);
        std::printf("%s%s", c > 0 ? "|" : "",
                    text != nullptr ? reinterpret_cast<const char*>(text) : "");
      }
      std::printf("\n");
    }
    if (rc != SQLITE_DONE) {
      std::fprintf(stderr, "step: %s\n", sqlite3_errmsg(db));
      return 1;
    }
    sqlite3_finalize(stmt);
  }
  if (argc == 4) {
    std::fflush(stdout);
    usleep(static_cast<useconds_t>(std::atoi(argv[3])) * 1000);
  }
  sqlite3_close(db);
  return 0;
}
