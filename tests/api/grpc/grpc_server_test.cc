// tests/api/grpc/grpc_server_test.cc: the gRPC edge's error table and the
// refusal of unusable TLS files. The RPCs themselves, TLS included, are
// exercised by @grpc/grpc-js in tests/interop.
#include "api/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "gtest/gtest.h"

#include "api/apis.h"
#include "api/config.h"
#include "storage/store.h"
#include "tests/support/test_paths.h"

namespace bridge::api::grpc_api {
namespace {

TEST(ToGrpcStatusTest, OneTableForEveryCode) {
  const std::pair<absl::Status, ::grpc::StatusCode> cases[] = {
      {absl::OkStatus(), ::grpc::StatusCode::OK},
      {absl::InvalidArgumentError("x"), ::grpc::StatusCode::INVALID_ARGUMENT},
      {absl::UnauthenticatedError("x"), ::grpc::StatusCode::UNAUTHENTICATED},
      {absl::PermissionDeniedError("x"), ::grpc::StatusCode::PERMISSION_DENIED},
      {absl::NotFoundError("x"), ::grpc::StatusCode::NOT_FOUND},
      {absl::AlreadyExistsError("x"), ::grpc::StatusCode::ALREADY_EXISTS},
      {absl::FailedPreconditionError("x"), ::grpc::StatusCode::FAILED_PRECONDITION},
      {absl::UnimplementedError("x"), ::grpc::StatusCode::UNIMPLEMENTED},
      {absl::UnavailableError("x"), ::grpc::StatusCode::UNAVAILABLE},
      {absl::DeadlineExceededError("x"), ::grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::InternalError("x"), ::grpc::StatusCode::INTERNAL},
  };
  for (const auto& [status, code] : cases) {
    EXPECT_EQ(ToGrpcStatus(status).error_code(), code) << status;
  }
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("no such order")).error_message(), "no such order");
  // Internal details (SQL, hosts) never leave the process.
  EXPECT_EQ(ToGrpcStatus(absl::InternalError("SELECT secret")).error_message(), "internal error");
}

// GRPC_TLS_*: a file that cannot serve stops the start, naming its variable.
class GrpcTlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir_.path().string();
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2";
    for (const std::string& command : {"openssl req -x509 " + ec + " -subj /CN=test-ca -keyout " +
                                           d + "/ca.key -out " + d + "/ca.crt",
                                       "openssl req -x509 " + ec + " -subj /CN=localhost -keyout " +
                                           d + "/server.key -out " + d + "/server.crt",
                                       "openssl req -x509 " + ec + " -subj /CN=other -keyout " + d +
                                           "/other.key -out " + d + "/other.crt"}) {
      ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
    }
    std::ofstream(dir_.path() / "garbage.pem") << "not a certificate\n";
    storage::StoreOptions store_options;
    store_options.database_url = "sqlite://" + (dir_.path() / "lb.db").string();
    absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::OpenStore(store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  absl::Status Start(const std::string& cert, const std::string& key, const std::string& ca) {
    Config config;
    config.http_listen_host = "127.0.0.1";
    config.http_port = 0;
    config.grpc_port = 0;
    config.api_tokens_file = (dir_.path() / "tokens.json").string();
    config.access_audit_file = (dir_.path() / "access.jsonl").string();
    const auto path = [&](const std::string& name) {
      return name.empty() ? "" : (dir_.path() / name).string();
    };
    config.grpc_tls_cert_file = path(cert);
    config.grpc_tls_key_file = path(key);
    config.grpc_tls_client_ca_file = path(ca);
    absl::StatusOr<std::unique_ptr<Apis>> apis = StartApis(config, *store_, nullptr, {});
    if (!apis.ok()) {
      return apis.status();
    }
    (*apis)->Stop();
    return absl::OkStatus();
  }

  bridge::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(GrpcTlsFilesTest, ABadFileIsRefusedByItsVariable) {
  const struct {
    const char* cert;
    const char* key;
    const char* ca;
    const char* named;
  } cases[] = {
      {"missing.crt", "server.key", "", "GRPC_TLS_CERT"},
      {"garbage.pem", "server.key", "", "GRPC_TLS_CERT"},
      {"server.crt", "missing.key", "", "GRPC_TLS_KEY"},
      {"server.crt", "garbage.pem", "", "GRPC_TLS_KEY"},
      {"server.crt", "server.crt", "", "GRPC_TLS_KEY"},  // a certificate is no key
      {"server.crt", "other.key", "", "GRPC_TLS_KEY"},   // not this certificate's key
      {"server.crt", "server.key", "garbage.pem", "GRPC_TLS_CLIENT_CA"},
      {"server.crt", "server.key", "missing-ca.crt", "GRPC_TLS_CLIENT_CA"},
      {"server.crt", "", "", "GRPC_TLS_KEY"},
      {"", "", "ca.crt", "GRPC_TLS_CLIENT_CA"},
  };
  for (const auto& c : cases) {
    const absl::Status status = Start(c.cert, c.key, c.ca);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.cert << " " << c.key;
    EXPECT_NE(std::string(status.message()).find(c.named), std::string::npos)
        << c.cert << " " << c.key << " " << c.ca << ": " << status;
  }
  EXPECT_TRUE(Start("server.crt", "server.key", "").ok());
  EXPECT_TRUE(Start("server.crt", "server.key", "ca.crt").ok());
}

}  // namespace
}  // namespace bridge::api::grpc_api
