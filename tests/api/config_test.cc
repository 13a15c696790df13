#include "api/config.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace bridge::api {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ConfigTest, DefaultsAreTheGuides) {
  absl::StatusOr<Config> c = LoadConfig(FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mllp.listen_host, "0.0.0.0");
  EXPECT_EQ(c->mllp.port, 2575);
  EXPECT_EQ(c->mllp.max_frame_bytes, 1048576u);
  EXPECT_EQ(c->store.database_url, "sqlite://./var/lab-bridge.db");
  EXPECT_EQ(c->store.read_connections, 4);
  EXPECT_EQ(c->worker_threads, 20);
  EXPECT_EQ(c->api_worker_threads, 4);
  EXPECT_EQ(c->identity.sending_application, "PMS_LAB");
  EXPECT_EQ(c->identity.sending_facility, "MPS_PMS");
  EXPECT_EQ(c->audit_retention_days, 2555);
  EXPECT_EQ(c->ack_timeout_seconds, 30);
  EXPECT_EQ(c->retry_max_attempts, 3);
  EXPECT_EQ(c->http_port, 8080);
  EXPECT_EQ(c->grpc_port, 50051);
  EXPECT_FALSE(c->mllp.tls.enabled());
}

TEST(ConfigTest, ReadsEveryVariable) {
  absl::StatusOr<Config> c = LoadConfig(FakeEnv({{"MLLP_LISTEN_HOST", "127.0.0.1"},
                                                 {"MLLP_LISTEN_PORT", "12575"},
                                                 {"MAX_MESSAGE_SIZE", "2048"},
                                                 {"DATABASE_URL", "postgresql://u:secret@h:5/db"},
                                                 {"DATABASE_READ_CONNECTIONS", "12"},
                                                 {"API_WORKER_THREADS", "6"},
                                                 {"SENDING_FACILITY", "CLINIC_2"},
                                                 {"AUDIT_LOG_ENABLED", "yes"},
                                                 {"MLLP_TLS_CERT", "s.crt"},
                                                 {"MLLP_TLS_KEY", "s.key"},
                                                 {"MLLP_TLS_CLIENT_CA", "ca.crt"},
                                                 {"MLLP_TLS_ALLOWED_PEERS", "CN=lis-a, lis-b"},
                                                 {"CRITICAL_FLAGS", "HH,LL,AA,>"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mllp.port, 12575);
  EXPECT_EQ(c->mllp.max_frame_bytes, 2048u);
  EXPECT_EQ(c->identity.sending_facility, "CLINIC_2");
  EXPECT_EQ(c->store.read_connections, 12);
  EXPECT_EQ(c->api_worker_threads, 6);
  EXPECT_TRUE(c->audit_log_enabled);
  EXPECT_EQ(c->mllp.tls.allowed_peers, (std::vector<std::string>{"CN=lis-a", "lis-b"}));
  EXPECT_EQ(c->critical_flags.size(), 4u);
  const std::string line = DescribeConfig(*c);
  EXPECT_EQ(line.find("secret"), std::string::npos) << line;
  EXPECT_NE(line.find("mtls"), std::string::npos) << line;
}

TEST(ConfigTest, ApiVariables) {
  absl::StatusOr<Config> d = LoadConfig(FakeEnv({}));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->api_tokens_file, "./var/api_tokens.json");
  EXPECT_FALSE(d->metrics_require_token);
  EXPECT_EQ(d->access_audit_file, "./var/access_audit.jsonl");
  EXPECT_EQ(d->http_max_body_bytes, 1048576);
  EXPECT_EQ(d->http_request_timeout_seconds, 30);
  absl::StatusOr<Config> c = LoadConfig(FakeEnv({{"API_TOKENS_FILE", "/etc/lb/tokens.json"},
                                                 {"METRICS_REQUIRE_TOKEN", "true"},
                                                 {"ACCESS_AUDIT_FILE", "/var/log/lb.jsonl"},
                                                 {"HTTP_MAX_BODY_BYTES", "4096"},
                                                 {"HTTP_REQUEST_TIMEOUT_SECONDS", "5"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->api_tokens_file, "/etc/lb/tokens.json");
  EXPECT_TRUE(c->metrics_require_token);
  EXPECT_EQ(c->access_audit_file, "/var/log/lb.jsonl");
  EXPECT_EQ(c->http_max_body_bytes, 4096);
  EXPECT_EQ(c->http_request_timeout_seconds, 5);
  EXPECT_TRUE(d->grpc_tls_cert_file.empty());
  EXPECT_NE(DescribeConfig(*d).find("grpc=50051 plain"), std::string::npos);
  absl::StatusOr<Config> tls = LoadConfig(FakeEnv({{"GRPC_TLS_CERT", "/etc/lb/grpc.crt"},
                                                   {"GRPC_TLS_KEY", "/etc/lb/grpc.key"},
                                                   {"GRPC_TLS_CLIENT_CA", "/etc/lb/pms-ca.crt"}}));
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->grpc_tls_cert_file, "/etc/lb/grpc.crt");
  EXPECT_EQ(tls->grpc_tls_key_file, "/etc/lb/grpc.key");
  EXPECT_EQ(tls->grpc_tls_client_ca_file, "/etc/lb/pms-ca.crt");
  EXPECT_NE(DescribeConfig(*tls).find("grpc=50051 mtls"), std::string::npos);
}

TEST(ConfigTest, ABadValueNamesTheVariable) {
  struct Case {
    std::map<std::string, std::string> env;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {{{"MLLP_LISTEN_PORT", "x"}}, "MLLP_LISTEN_PORT"},
           {{{"MLLP_LISTEN_PORT", "70000"}}, "MLLP_LISTEN_PORT"},
           {{{"MAX_MESSAGE_SIZE", "-1"}}, "MAX_MESSAGE_SIZE"},
           {{{"AUDIT_LOG_ENABLED", "maybe"}}, "AUDIT_LOG_ENABLED"},
           {{{"DATABASE_READ_CONNECTIONS", "0"}}, "DATABASE_READ_CONNECTIONS"},
           {{{"DATABASE_READ_CONNECTIONS", "65"}}, "DATABASE_READ_CONNECTIONS"},
           {{{"API_WORKER_THREADS", "0"}}, "API_WORKER_THREADS"},
           {{{"AUDIT_LOG_ENABLED", "false"}},
            "AUDIT_LOG_ENABLED: the audit trail cannot be turned off"},
           {{{"AUDIT_RETENTION_DAYS", "0"}}, "AUDIT_RETENTION_DAYS"},
           {{{"SENDING_FACILITY", "A|B"}}, "SENDING_FACILITY"},
           {{{"ACK_TIMEOUT_SECONDS", "10s"}}, "ACK_TIMEOUT_SECONDS"},
           {{{"LOG_LEVEL", "loud"}}, "LOG_LEVEL"},
           {{{"MLLP_TLS_CERT", "a.crt"}}, "MLLP_TLS_KEY"},
           {{{"MLLP_TLS_CLIENT_CA", "ca.crt"}}, "MLLP_TLS_CLIENT_CA"},
           {{{"GRPC_TLS_CERT", "a.crt"}}, "GRPC_TLS_KEY"},
           {{{"GRPC_TLS_KEY", "a.key"}}, "GRPC_TLS_CERT"},
           {{{"GRPC_TLS_CLIENT_CA", "ca.crt"}}, "GRPC_TLS_CLIENT_CA"},
           {{{"METRICS_REQUIRE_TOKEN", "sometimes"}}, "METRICS_REQUIRE_TOKEN"},
           {{{"HTTP_MAX_BODY_BYTES", "10"}}, "HTTP_MAX_BODY_BYTES"},
           {{{"HTTP_REQUEST_TIMEOUT_SECONDS", "0"}}, "HTTP_REQUEST_TIMEOUT_SECONDS"},
       }) {
    absl::StatusOr<Config> config = LoadConfig(FakeEnv(c.env));
    ASSERT_FALSE(config.ok()) << c.expected;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(config.status().message()).find(c.expected), std::string::npos)
        << config.status();
  }
}

}  // namespace
}  // namespace bridge::api
