// storage/internal/connection.h (private to storage/)
//
// The narrow SQL seam between the shared store logic (sql_store.cc) and the
// two backends. SQL text uses $1..$N placeholders on both backends. A
// Connection is NOT thread-safe: SqlStore serialises access with its mutex.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace bridge::storage::internal {

enum class Dialect { kSqlite, kPostgres };

// `text` as valid UTF-8 without NUL: each invalid byte and each NUL becomes
// U+FFFD. PostgreSQL rejects such text outright (SQLite would keep it), so
// every text column goes through this on both backends: a header field in
// Latin-1 must not stop a message from being stored. Raw bytes are BLOBs
// and are never altered.
// Length of the prefix of `text` that is plain ASCII without NUL, checked 8
// bytes at a time (nearly every stored text is all of it).
inline size_t PlainAsciiPrefix(std::string_view text) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t x;
    std::memcpy(&x, text.data() + i, 8);
    // A byte >= 0x80, or a zero byte (the classic "has zero byte" test).
    if (((x | ((x - kOnes) & ~x)) & kHigh) != 0) {
      break;
    }
  }
  while (i < text.size() && static_cast<unsigned char>(text[i]) - 1u < 0x7Fu) {
    ++i;
  }
  return i;
}

inline std::string ValidUtf8(std::string_view text) {
  size_t i = PlainAsciiPrefix(text);
  if (i == text.size()) {
    return std::string(text);
  }
  std::string out;
  out.reserve(text.size());
  out.append(text.substr(0, i));
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  while (i < n) {
    const unsigned char c = p[i];
    size_t length = 0;
    if (c >= 0x01 && c < 0x80) {
      length = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
    }
    bool valid = length > 0 && i + length <= n;
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (p[i + k] & 0xC0) == 0x80;
    }
    if (valid && length == 3) {  // no overlongs, no surrogates
      valid = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] >= 0xA0);
    }
    if (valid && length == 4) {  // no overlongs, nothing past U+10FFFF
      valid = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] >= 0x90);
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

// A bound parameter value.
struct Param {
  enum class Kind { kNull, kInt, kText, kBlob };
  Kind kind = Kind::kNull;
  int64_t int_value = 0;
  std::string text;  // kText and kBlob

  static Param Null() { return Param{}; }
  static Param Int(int64_t v) { return Param{Kind::kInt, v, {}}; }
  // Empty text is stored as NULL (see store.h).
  static Param Text(const std::string& v) {
    return v.empty() ? Param{} : Param{Kind::kText, 0, ValidUtf8(v)};
  }
  static Param Blob(std::string v) { return Param{Kind::kBlob, 0, std::move(v)}; }
  static Param OptInt(const std::optional<int64_t>& v) { return v ? Int(*v) : Null(); }
};

// One result row; a column is nullopt for SQL NULL. Integers come back as
// decimal text, blobs as their raw bytes.
using Row = std::vector<std::optional<std::string>>;

class Connection {
 public:
  virtual ~Connection() = default;

  virtual Dialect dialect() const = 0;

  // Runs one statement with parameters and returns its rows (possibly none).
  virtual absl::StatusOr<std::vector<Row>> Query(const std::string& sql,
                                                 const std::vector<Param>& params) = 0;

  // Runs `statements` in order, in as few round trips as the backend allows
  // (PostgreSQL: one), and returns the rows of the last one. Stops at the
  // first failing statement. Meant for use inside a transaction.
  struct Statement {
    std::string sql;
    std::vector<Param> params;
  };
  virtual absl::StatusOr<std::vector<Row>> QueryBatch(const std::vector<Statement>& statements) = 0;

  // Runs a script of statements without parameters (migrations).
  virtual absl::Status ExecScript(const std::string& sql) = 0;

  // Write transactions: SQLite takes the write lock at Begin (IMMEDIATE).
  // After any error inside a transaction the caller must Rollback().
  virtual absl::Status Begin() = 0;
  // Begin() followed by QueryBatch(statements), in one round trip where the
  // backend allows it.
  virtual absl::StatusOr<std::vector<Row>> BeginWith(const std::vector<Statement>& statements) = 0;
  // QueryBatch(statements) followed by Commit(), in one round trip where the
  // backend allows it. A failing statement leaves the transaction open.
  virtual absl::Status CommitWith(const std::vector<Statement>& statements) = 0;
  virtual absl::Status Commit() = 0;
  virtual void Rollback() = 0;
};

}  // namespace bridge::storage::internal
