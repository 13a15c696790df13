#include "api/config.h"

#include <stdlib.h>

#include <charconv>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace bridge::api {
namespace {

absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

absl::Status Bad(std::string_view name, std::string_view problem, std::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat(Sv(name), ": ", Sv(problem), ", got \"", Sv(value), "\""));
}

// Reads an integer variable in [min, max] into *out (left unchanged if unset).
absl::Status ReadInt(const EnvLookup& env, std::string_view name, long long min, long long max,
                     std::string_view expected, long long* out) {
  std::optional<std::string> value = env(name);
  if (!value.has_value() || value->empty()) return absl::OkStatus();
  long long parsed = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), parsed);
  if (ec != std::errc() || end != value->data() + value->size() || parsed < min || parsed > max) {
    return Bad(name, expected, *value);
  }
  *out = parsed;
  return absl::OkStatus();
}

template <typename T>
absl::Status ReadIntAs(const EnvLookup& env, std::string_view name, long long min, long long max,
                       std::string_view expected, T* out) {
  long long value = static_cast<long long>(*out);
  absl::Status s = ReadInt(env, name, min, max, expected, &value);
  if (s.ok()) *out = static_cast<T>(value);
  return s;
}

absl::Status ReadSeconds(const EnvLookup& env, std::string_view name,
                         std::chrono::milliseconds* out) {
  long long seconds = std::chrono::duration_cast<std::chrono::seconds>(*out).count();
  absl::Status s = ReadInt(env, name, 1, 86400, "expected whole seconds 1-86400", &seconds);
  if (s.ok()) *out = std::chrono::seconds(seconds);
  return s;
}

void ReadString(const EnvLookup& env, std::string_view name, std::string* out) {
  std::optional<std::string> value = env(name);
  if (value.has_value() && !value->empty()) *out = *value;
}

absl::Status ReadBool(const EnvLookup& env, std::string_view name, bool* out) {
  std::optional<std::string> value = env(name);
  if (!value.has_value() || value->empty()) return absl::OkStatus();
  if (*value == "true" || *value == "1" || *value == "yes") {
    *out = true;
  } else if (*value == "false" || *value == "0" || *value == "no") {
    *out = false;
  } else {
    return Bad(name, "expected true or false", *value);
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(Sv(text), ',', absl::SkipWhitespace())) {
    std::string trimmed(item);
    while (!trimmed.empty() && trimmed.front() == ' ') trimmed.erase(trimmed.begin());
    while (!trimmed.empty() && trimmed.back() == ' ') trimmed.pop_back();
    if (!trimmed.empty()) items.push_back(trimmed);
  }
  return items;
}

// HL7 HD namespace ids go into MSH and PID-3: no delimiters, no spaces.
absl::Status CheckHl7Name(std::string_view name, const std::string& value) {
  if (value.empty() || value.size() > 20) return Bad(name, "expected 1-20 characters", value);
  for (char c : value) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
      return Bad(name, "expected letters, digits, '_', '-' or '.'", value);
    }
  }
  return absl::OkStatus();
}

}  // namespace

EnvLookup EnvironmentLookup() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<Config> LoadConfig(const EnvLookup& env) {
  Config c;
  std::vector<absl::Status> checks;
  ReadString(env, "MLLP_LISTEN_HOST", &c.mllp.listen_host);
  checks.push_back(
      ReadIntAs(env, "MLLP_LISTEN_PORT", 0, 65535, "expected a port number 0-65535", &c.mllp.port));
  checks.push_back(ReadIntAs(env, "MAX_MESSAGE_SIZE", 1024, 64ll << 20,
                             "expected a size in bytes from 1024 to 67108864",
                             &c.mllp.max_frame_bytes));
  checks.push_back(ReadIntAs(env, "MLLP_IO_THREADS", 1, 64, "expected 1-64", &c.mllp.io_threads));
  checks.push_back(ReadIntAs(env, "MLLP_MAX_CONNECTIONS", 1, 100000, "expected 1-100000",
                             &c.mllp.max_connections));
  checks.push_back(ReadIntAs(env, "MLLP_MAX_CONNECTIONS_PER_PEER", 1, 100000, "expected 1-100000",
                             &c.mllp.max_connections_per_peer));
  checks.push_back(ReadSeconds(env, "MLLP_IDLE_TIMEOUT_SECONDS", &c.mllp.idle_timeout));
  checks.push_back(ReadSeconds(env, "MLLP_FRAME_TIMEOUT_SECONDS", &c.mllp.frame_read_timeout));
  checks.push_back(ReadSeconds(env, "MLLP_WRITE_TIMEOUT_SECONDS", &c.mllp.write_timeout));
  ReadString(env, "MLLP_TLS_CERT", &c.mllp.tls.cert_file);
  ReadString(env, "MLLP_TLS_KEY", &c.mllp.tls.key_file);
  ReadString(env, "MLLP_TLS_CLIENT_CA", &c.mllp.tls.client_ca_file);
  if (std::optional<std::string> peers = env("MLLP_TLS_ALLOWED_PEERS"); peers.has_value()) {
    c.mllp.tls.allowed_peers = SplitList(*peers);
  }
  ReadString(env, "DATABASE_URL", &c.store.database_url);
  checks.push_back(ReadIntAs(env, "DATABASE_READ_CONNECTIONS", 1, 64, "expected 1-64",
                             &c.store.read_connections));
  ReadString(env, "SENDING_APPLICATION", &c.identity.sending_application);
  ReadString(env, "SENDING_FACILITY", &c.identity.sending_facility);
  checks.push_back(CheckHl7Name("SENDING_APPLICATION", c.identity.sending_application));
  checks.push_back(CheckHl7Name("SENDING_FACILITY", c.identity.sending_facility));
  checks.push_back(ReadBool(env, "AUDIT_LOG_ENABLED", &c.audit_log_enabled));
  if (!c.audit_log_enabled) {
    // Storing the message is how lab-bridge knows it may acknowledge it, and
    // HIPAA 164.312(b) wants the trail: there is nothing to switch off.
    checks.push_back(Bad("AUDIT_LOG_ENABLED",
                         "the audit trail cannot be turned off (every message is stored before "
                         "its ACK); set it to true or leave it unset",
                         "false"));
  }
  checks.push_back(ReadIntAs(env, "AUDIT_RETENTION_DAYS", 1, 36500, "expected days 1-36500",
                             &c.audit_retention_days));
  checks.push_back(ReadIntAs(env, "ACK_TIMEOUT_SECONDS", 1, 3600, "expected seconds 1-3600",
                             &c.ack_timeout_seconds));
  checks.push_back(
      ReadIntAs(env, "RETRY_MAX_ATTEMPTS", 1, 1000,
                "expected 1-1000 (sends of one message, the first included)",
                &c.retry_max_attempts));
  ReadString(env, "HTTP_LISTEN_HOST", &c.http_listen_host);
  checks.push_back(
      ReadIntAs(env, "HTTP_LISTEN_PORT", 0, 65535, "expected a port number 0-65535", &c.http_port));
  checks.push_back(
      ReadIntAs(env, "GRPC_LISTEN_PORT", 0, 65535, "expected a port number 0-65535", &c.grpc_port));
  ReadString(env, "GRPC_TLS_CERT", &c.grpc_tls_cert_file);
  ReadString(env, "GRPC_TLS_KEY", &c.grpc_tls_key_file);
  ReadString(env, "GRPC_TLS_CLIENT_CA", &c.grpc_tls_client_ca_file);
  ReadString(env, "LIS_ENDPOINTS_FILE", &c.lis_endpoints_file);
  c.lis_endpoints_file_set = env("LIS_ENDPOINTS_FILE").value_or("") != "";
  checks.push_back(ReadIntAs(env, "ORDER_OVERDUE_SECONDS", 1, 366ll * 86400,
                             "expected seconds 1-31622400", &c.order_overdue_seconds));
  if (std::optional<std::string> flags = env("CRITICAL_FLAGS"); flags.has_value()) {
    c.critical_flags = SplitList(*flags);
  }
  checks.push_back(ReadIntAs(env, "WORKER_THREADS", 1, 256, "expected 1-256", &c.worker_threads));
  checks.push_back(
      ReadIntAs(env, "API_WORKER_THREADS", 1, 256, "expected 1-256", &c.api_worker_threads));
  ReadString(env, "API_TOKENS_FILE", &c.api_tokens_file);
  checks.push_back(ReadBool(env, "METRICS_REQUIRE_TOKEN", &c.metrics_require_token));
  ReadString(env, "ACCESS_AUDIT_FILE", &c.access_audit_file);
  checks.push_back(ReadIntAs(env, "HTTP_MAX_BODY_BYTES", 1024, 1 << 30, "expected bytes 1024-2^30",
                             &c.http_max_body_bytes));
  checks.push_back(ReadIntAs(env, "HTTP_REQUEST_TIMEOUT_SECONDS", 1, 3600,
                             "expected seconds 1-3600", &c.http_request_timeout_seconds));
  ReadString(env, "LOG_LEVEL", &c.log_level);
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warning" &&
      c.log_level != "error") {
    checks.push_back(Bad("LOG_LEVEL", "expected debug, info, warning or error", c.log_level));
  }
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  if (c.mllp.tls.cert_file.empty() != c.mllp.tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "MLLP_TLS_CERT and MLLP_TLS_KEY: set both (TLS) or neither (plain TCP)");
  }
  if (!c.mllp.tls.client_ca_file.empty() && !c.mllp.tls.enabled()) {
    return absl::InvalidArgumentError(
        "MLLP_TLS_CLIENT_CA: client certificates need TLS; set MLLP_TLS_CERT and MLLP_TLS_KEY");
  }
  if (c.grpc_tls_cert_file.empty() != c.grpc_tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "GRPC_TLS_CERT and GRPC_TLS_KEY: set both (TLS) or neither (plaintext)");
  }
  if (!c.grpc_tls_client_ca_file.empty() && c.grpc_tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "GRPC_TLS_CLIENT_CA: client certificates need TLS; set GRPC_TLS_CERT and GRPC_TLS_KEY");
  }
  if (!c.mllp.tls.allowed_peers.empty() && c.mllp.tls.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "MLLP_TLS_ALLOWED_PEERS: an allow-list needs client certificates; set MLLP_TLS_CLIENT_CA");
  }
  return c;
}

std::string DescribeConfig(const Config& c) {
  return absl::StrCat(
      "mllp=", c.mllp.listen_host, ":", c.mllp.port,
      c.mllp.tls.enabled() ? (c.mllp.tls.client_ca_file.empty() ? " tls" : " mtls") : " plain",
      " max_message_size=", c.mllp.max_frame_bytes,
      " database=", storage::MaskDatabaseUrl(c.store.database_url),
      " sending=", c.identity.sending_application, "/", c.identity.sending_facility,
      " audit_log=", c.audit_log_enabled ? "on" : "off", " retention_days=", c.audit_retention_days,
      " ack_timeout_s=", c.ack_timeout_seconds, " retry_max=", c.retry_max_attempts,
      " http=", c.http_listen_host, ":", c.http_port, " grpc=", c.grpc_port,
      c.grpc_tls_cert_file.empty() ? " plain"
                                   : (c.grpc_tls_client_ca_file.empty() ? " tls" : " mtls"),
      " lis_endpoints=", c.lis_endpoints_file, " order_overdue_s=", c.order_overdue_seconds,
      " critical_flags=", absl::StrJoin(c.critical_flags, ","), " workers=", c.worker_threads,
      " log_level=", c.log_level, " api_tokens=", c.api_tokens_file,
      " metrics_token=", c.metrics_require_token ? "required" : "off",
      " access_audit=", c.access_audit_file, " http_max_body=", c.http_max_body_bytes,
      " http_timeout_s=", c.http_request_timeout_seconds,
      " read_connections=", c.store.read_connections, " api_workers=", c.api_worker_threads);
}

}  // namespace bridge::api
