#include "storage/postgres/postgres_connection.h"

#include <cctype>
#include <exception>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include <pqxx/pqxx>

#include "storage/store.h"

namespace bridge::storage::postgres {
namespace {

using internal::Param;
using internal::Row;

constexpr unsigned kByteaOid = 17;

std::string OneLine(std::string_view text) {
  std::string line =
      absl::StrReplaceAll(absl::string_view(text.data(), text.size()), {{"\r", " "}, {"\n", " "}});
  while (!line.empty() && line.back() == ' ') {
    line.pop_back();
  }
  return line;
}

// SQLSTATE classes a retry can cure: connection exceptions (08), insufficient
// resources (53), operator intervention / shutdown (57), serialization and
// deadlock (40), lock_not_available (55P03), query_canceled (57014 is in 57).
bool RetryableSqlState(const std::string& state) {
  return state.rfind("08", 0) == 0 || state.rfind("53", 0) == 0 || state.rfind("57", 0) == 0 ||
         state.rfind("40", 0) == 0 || state == "55P03";
}

absl::Status FromPqxx(const std::exception& e, std::string_view what) {
  const std::string message = absl::StrCat(
      "postgresql ", absl::string_view(what.data(), what.size()), ": ", OneLine(e.what()));
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return absl::UnavailableError(message);
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string state = sql->sqlstate();
    if (state == "23505") {
      return absl::AlreadyExistsError(message);
    }
    if (RetryableSqlState(state)) {
      return absl::UnavailableError(message);
    }
    if (state.rfind("22", 0) == 0 || state.rfind("23", 0) == 0) {
      return absl::InvalidArgumentError(message);
    }
    return absl::InternalError(message);
  }
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

class PostgresConnection final : public internal::Connection {
 public:
  PostgresConnection(std::string url, absl::Duration lock_timeout)
      : url_(std::move(url)), lock_timeout_(lock_timeout) {}
  ~PostgresConnection() override = default;
  PostgresConnection(const PostgresConnection&) = delete;
  PostgresConnection& operator=(const PostgresConnection&) = delete;
  PostgresConnection(PostgresConnection&&) = delete;
  PostgresConnection& operator=(PostgresConnection&&) = delete;

  absl::Status Connect() {
    try {
      conn_.reset();
      statements_.clear();
      auto conn = std::make_unique<pqxx::connection>(url_);
      // Never let libpqxx silently reconnect: a reconnect in the middle of
      // a transaction would run the rest of it in autocommit mode.
      // (Deprecated in 6.x, but reactivation itself still exists there.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
      pqxx::nontransaction setup(*conn);
      setup.exec(absl::StrCat("SET synchronous_commit = on; SET lock_timeout = ",
                              absl::ToInt64Milliseconds(lock_timeout_),
                              "; SET client_min_messages = warning"));
      setup.commit();
      conn_ = std::move(conn);
      return absl::OkStatus();
    } catch (const std::exception& e) {
      conn_.reset();
      return absl::UnavailableError(absl::StrCat("postgresql: cannot connect to ",
                                                 MaskDatabaseUrl(url_), ": ", OneLine(e.what())));
    }
  }

  internal::Dialect dialect() const override { return internal::Dialect::kPostgres; }

  absl::StatusOr<std::vector<Row>> Query(const std::string& sql,
                                         const std::vector<Param>& params) override {
    if (absl::Status s = EnsureConnected(); !s.ok()) {
      return s;
    }
    // Text-format parameters; bytea as its hex input form. Text is passed
    // in place (`params` outlives the call): bulk writes send arrays of
    // hundreds of kilobytes.
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      switch (p.kind) {
        case Param::Kind::kNull:
          continue;
        case Param::Kind::kInt:
          storage[i] = std::to_string(p.int_value);
          values[i] = storage[i].c_str();
          break;
        case Param::Kind::kText:
          values[i] = p.text.c_str();
          break;
        case Param::Kind::kBlob:
          storage[i] = absl::StrCat("\\x", absl::BytesToHexString(p.text));
          values[i] = storage[i].c_str();
          break;
      }
    }
    try {
      std::string name;
      auto it = statements_.find(sql);
      if (it == statements_.end()) {
        name = absl::StrCat("s", statements_.size());
        conn_->prepare(name, sql);
        statements_.emplace(sql, name);
      } else {
        name = it->second;
      }
      pqxx::nontransaction txn(*conn_);
      return ToRows(txn.exec_prepared(name, pqxx::prepare::make_dynamic_params(values)));
    } catch (const std::exception& e) {
      return Fail(e, "query");
    }
  }

  // One round trip: the statements go as one simple-protocol string with
  // their parameters inlined as literals quoted by libpq (PQescapeStringConn
  // / bytea escaping), so no value can change the statement's shape.
  absl::StatusOr<std::vector<Row>> QueryBatch(const std::vector<Statement>& statements) override {
    if (absl::Status s = EnsureConnected(); !s.ok()) {
      return s;
    }
    try {
      std::string script;
      for (const Statement& statement : statements) {
        AppendInlined(statement, script);
        script += ";\n";
      }
      pqxx::nontransaction txn(*conn_);
      return ToRows(txn.exec(script));
    } catch (const std::exception& e) {
      return Fail(e, "batch");
    }
  }

  absl::Status ExecScript(const std::string& sql) override {
    if (absl::Status s = EnsureConnected(); !s.ok()) {
      return s;
    }
    try {
      pqxx::nontransaction txn(*conn_);
      txn.exec(sql);
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return Fail(e, "exec");
    }
  }

  absl::Status Begin() override {
    in_transaction_ = false;
    if (absl::Status s = ExecScript("BEGIN"); !s.ok()) {
      return s;
    }
    in_transaction_ = true;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Row>> BeginWith(const std::vector<Statement>& statements) override {
    in_transaction_ = false;
    if (absl::Status s = EnsureConnected(); !s.ok()) {
      return s;
    }
    in_transaction_ = true;
    try {
      std::string script = "BEGIN;\n";
      for (const Statement& statement : statements) {
        AppendInlined(statement, script);
        script += ";\n";
      }
      pqxx::nontransaction txn(*conn_);
      return ToRows(txn.exec(script));
    } catch (const std::exception& e) {
      return Fail(e, "begin");
    }
  }

  absl::Status CommitWith(const std::vector<Statement>& statements) override {
    absl::Status status;
    try {
      std::string script;
      for (const Statement& statement : statements) {
        AppendInlined(statement, script);
        script += ";\n";
      }
      script += "COMMIT";
      pqxx::nontransaction txn(*conn_);
      txn.exec(script);
    } catch (const std::exception& e) {
      status = Fail(e, "commit");
    }
    if (!status.ok() && conn_ == nullptr) {
      in_transaction_ = false;
      return absl::UnavailableError(absl::StrCat("commit outcome unknown: ", status.message()));
    }
    if (status.ok()) {
      in_transaction_ = false;
    }
    return status;
  }

  absl::Status Commit() override {
    absl::Status s = ExecScript("COMMIT");
    in_transaction_ = false;
    if (!s.ok() && conn_ == nullptr) {
      // The connection died during COMMIT: the outcome is unknown. Report it
      // as retryable; an idempotent resend is then recognised as a duplicate.
      return absl::UnavailableError(absl::StrCat("commit outcome unknown: ", s.message()));
    }
    return s;
  }

  void Rollback() override {
    if (conn_ != nullptr) {
      (void)ExecScript("ROLLBACK");
    }
    in_transaction_ = false;
  }

 private:
  static std::vector<Row> ToRows(const pqxx::result& result) {
    std::vector<Row> rows;
    rows.reserve(result.size());
    for (const pqxx::row& r : result) {
      Row row(r.size());
      for (pqxx::row::size_type c = 0; c < r.size(); ++c) {
        const pqxx::field f = r[c];
        if (f.is_null()) {
          continue;
        }
        if (f.type() == kByteaOid) {
          row[c] = pqxx::binarystring(f).str();
        } else {
          row[c] = std::string(f.c_str(), f.size());
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  // Replaces each $N of `statement.sql` with the quoted literal of param N.
  // Our SQL templates contain no '$' other than placeholders.
  void AppendInlined(const Statement& statement, std::string& out) {
    const std::string& sql = statement.sql;
    for (size_t i = 0; i < sql.size(); ++i) {
      if (sql[i] != '$' || i + 1 >= sql.size() ||
          !std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
        out += sql[i];
        continue;
      }
      size_t end = i + 1;
      size_t number = 0;
      while (end < sql.size() && std::isdigit(static_cast<unsigned char>(sql[end]))) {
        number = number * 10 + static_cast<size_t>(sql[end] - '0');
        ++end;
      }
      i = end - 1;
      if (number == 0 || number > statement.params.size()) {
        throw pqxx::usage_error("storage: placeholder without a value");
      }
      const Param& p = statement.params[number - 1];
      switch (p.kind) {
        case Param::Kind::kNull:
          out += "NULL";
          break;
        case Param::Kind::kInt:
          out += std::to_string(p.int_value);
          break;
        case Param::Kind::kText:
          out += conn_->quote(p.text);
          break;
        case Param::Kind::kBlob:
          out += conn_->quote_raw(reinterpret_cast<const unsigned char*>(p.text.data()),
                                  p.text.size());
          break;
      }
    }
  }

  absl::Status EnsureConnected() {
    if (conn_ != nullptr) {
      return absl::OkStatus();
    }
    if (in_transaction_) {
      // Reconnecting now would silently drop the transaction's earlier writes.
      return absl::UnavailableError("postgresql: connection lost inside a transaction");
    }
    return Connect();
  }

  absl::Status Fail(const std::exception& e, std::string_view what) {
    absl::Status status = FromPqxx(e, what);
    bool alive = false;
    try {
      alive = conn_ != nullptr && conn_->is_open();
    } catch (const std::exception&) {
      alive = false;
    }
    if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr || !alive) {
      conn_.reset();  // reconnect on the next call outside a transaction
      statements_.clear();
      status = absl::UnavailableError(status.message());
    }
    return status;
  }

  const std::string url_;
  const absl::Duration lock_timeout_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unordered_map<std::string, std::string> statements_;  // sql -> prepared name
  bool in_transaction_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<internal::Connection>> OpenPostgres(const std::string& url,
                                                                   absl::Duration lock_timeout) {
  auto connection = std::make_unique<PostgresConnection>(url, lock_timeout);
  if (absl::Status s = connection->Connect(); !s.ok()) {
    return s;
  }
  return connection;
}

}  // namespace bridge::storage::postgres
