#include "storage/store.h"

#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "storage/internal/sql_store.h"
#include "storage/postgres/postgres_connection.h"
#include "storage/sqlite/sqlite_connection.h"

namespace bridge::storage {

std::string MaskDatabaseUrl(std::string_view url) {
  std::string out(url);
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find_first_of("/?", start);
    const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // libpq also accepts password=... among the query parameters.
  for (size_t pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    const size_t value = pos + 9;
    const size_t end = out.find('&', value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  const std::string& url = options.database_url;
  std::function<absl::StatusOr<std::unique_ptr<internal::Connection>>()> open;
  if (absl::StartsWith(url, "sqlite://")) {
    const std::string path = url.substr(9);
    if (path.empty()) {
      return absl::InvalidArgumentError(
          "DATABASE_URL: sqlite:// needs a file path (sqlite:///abs/file.db or "
          "sqlite://./relative.db)");
    }
    open = [path, &options] { return sqlite::OpenSqlite(path, options.lock_timeout); };
  } else if (absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://")) {
    open = [&url, &options] { return postgres::OpenPostgres(url, options.lock_timeout); };
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("DATABASE_URL: unsupported '", MaskDatabaseUrl(url),
                     "'; expected sqlite://PATH or postgresql://user:pass@host:port/db"));
  }
  absl::StatusOr<std::unique_ptr<internal::Connection>> writer = open();
  if (!writer.ok()) {
    return writer.status();
  }
  std::vector<std::unique_ptr<internal::Connection>> readers;
  for (int i = 0; i < options.read_connections; ++i) {
    absl::StatusOr<std::unique_ptr<internal::Connection>> reader = open();
    if (!reader.ok()) {
      return reader.status();
    }
    readers.push_back(*std::move(reader));
  }
  return internal::MakeSqlStore(*std::move(writer), std::move(readers), options);
}

}  // namespace bridge::storage
