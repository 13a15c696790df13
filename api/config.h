// Config: everything `lab-bridge serve` is told, parsed once at start from
// environment variables (the original guide's names and defaults), validated,
// and composed from each module's own options. Nothing reads the
// environment after LoadConfig.
//
//   absl::StatusOr<Config> config = LoadConfig(EnvironmentLookup());
//   if (!config.ok()) { print config.status().message(); exit 1; }  // names the variable
//   log(DescribeConfig(*config));  // one line, secrets masked
//
// Variables (default):
//   MLLP_LISTEN_HOST (0.0.0.0)  MLLP_LISTEN_PORT (2575)  MAX_MESSAGE_SIZE (1048576)
//   MLLP_TLS_CERT, MLLP_TLS_KEY, MLLP_TLS_CLIENT_CA (TLS off), MLLP_TLS_ALLOWED_PEERS
//   (comma-separated subjects/SANs), MLLP_IO_THREADS (2), MLLP_MAX_CONNECTIONS (512),
//   MLLP_MAX_CONNECTIONS_PER_PEER (32), MLLP_IDLE_TIMEOUT_SECONDS (600),
//   MLLP_FRAME_TIMEOUT_SECONDS (30), MLLP_WRITE_TIMEOUT_SECONDS (30)
//   DATABASE_URL (sqlite://./var/lab-bridge.db)
//   SENDING_APPLICATION (PMS_LAB)  SENDING_FACILITY (MPS_PMS, also the PID-3
//   assigning authority of PMS patient ids)
//   AUDIT_LOG_ENABLED (true)  AUDIT_RETENTION_DAYS (2555)
//   ACK_TIMEOUT_SECONDS (30)  RETRY_MAX_ATTEMPTS (3)
//   HTTP_LISTEN_HOST (0.0.0.0)  HTTP_LISTEN_PORT (8080)  GRPC_LISTEN_PORT (50051)
//   GRPC_TLS_CERT, GRPC_TLS_KEY (plaintext), GRPC_TLS_CLIENT_CA (no client certificates)
//   LIS_ENDPOINTS_FILE (config/lis_endpoints.json; missing at the default path = no LIS yet)
//   ORDER_OVERDUE_SECONDS (86400: an order with no result this long after it was placed
//   is listed by status=overdue)
//   CRITICAL_FLAGS (HH,LL,AA: OBX-8 flags that make a result critical)
//   WORKER_THREADS (20: frames in mapping and storage at once)  LOG_LEVEL (info)
//   API_TOKENS_FILE (./var/api_tokens.json: bearer-token hashes and roles)
//   METRICS_REQUIRE_TOKEN (false)  ACCESS_AUDIT_FILE (./var/access_audit.jsonl)
//   HTTP_MAX_BODY_BYTES (1048576)  HTTP_REQUEST_TIMEOUT_SECONDS (30)
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "mllp/options.h"
#include "storage/store.h"

namespace bridge::api {

struct IdentityOptions {
  std::string sending_application = "PMS_LAB";  // our MSH-3
  std::string sending_facility = "MPS_PMS";     // our MSH-4 and PID-3 assigning authority
};

struct Config {
  mllp::ServerOptions mllp;
  storage::StoreOptions store;
  IdentityOptions identity;
  bool audit_log_enabled = true;  // AUDIT_LOG_ENABLED: only true is accepted
  int audit_retention_days = 2555;
  int ack_timeout_seconds = 30;
  int retry_max_attempts = 3;
  std::string http_listen_host = "0.0.0.0";
  int http_port = 8080;
  int grpc_port = 50051;
  std::string grpc_tls_cert_file;  // PEM; with grpc_tls_key_file, gRPC is TLS-only
  std::string grpc_tls_key_file;
  std::string grpc_tls_client_ca_file;  // PEM CA bundle: clients must present a certificate
  std::string lis_endpoints_file = "config/lis_endpoints.json";
  bool lis_endpoints_file_set = false;  // LIS_ENDPOINTS_FILE was given: the file must exist
  int order_overdue_seconds = 86400;
  std::vector<std::string> critical_flags = {"HH", "LL", "AA"};
  // Each worker blocks while its record waits for the group commit, so this
  // bounds how many records share one: as many as a typical set of sending
  // connections (at 20 connections, 4 workers gave half the throughput).
  int worker_threads = 20;
  // Threads that run API (HTTP and gRPC) calls. Separate from worker_threads:
  // an API call mostly holds a read connection and a core, so more threads
  // than both only queue and switch (20 gave 20-40% fewer requests/s than 4).
  int api_worker_threads = 4;
  std::string log_level = "info";
  // APIs (api/apis.h).
  std::string api_tokens_file = "./var/api_tokens.json";
  bool metrics_require_token = false;
  std::string access_audit_file = "./var/access_audit.jsonl";
  int http_max_body_bytes = 1048576;
  int http_request_timeout_seconds = 30;
};

// Returns the value of an environment variable, or nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment.
EnvLookup EnvironmentLookup();

// Reads and validates every variable above. InvalidArgument naming the
// variable and the problem for a bad value (e.g. "MLLP_LISTEN_PORT: expected
// a port number 0-65535, got \"x\"", or a TLS key without a certificate).
absl::StatusOr<Config> LoadConfig(const EnvLookup& env);

// One line with the effective configuration, the database password masked.
std::string DescribeConfig(const Config& config);

}  // namespace bridge::api
