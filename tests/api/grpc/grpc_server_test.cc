// tests/api/grpc/grpc_server_test.cc: the gRPC edge's error table and the
// refusal of unusable TLS files. The RPCs themselves, TLS included, are
// exercised by @grpc/grpc-js in tests/interop.
#include "api/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "api/apis.h"
#include "api/config.h"
#include "api/service/event_bus.h"
#include "api/service/ingest.h"
#include "labbridge/v1/labbridge.grpc.pb.h"
#include "storage/store.h"
#include "tests/storage/store_fixture.h"
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

// WatchResults is woken by the event bus: with the store poll an hour apart,
// results stored (and published) while a client watches still reach it, and
// a reconnect from the last position still replays from the store.
class WatchResultsTest : public ::testing::TestWithParam<storage::testing::Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == storage::testing::Backend::kPostgres &&
        !storage::testing::PostgresDsn().has_value()) {
      if (storage::testing::PostgresRequired()) {
        FAIL() << "BRIDGE_TEST_PG_DSN is not set but PostgreSQL tests are required";
      }
      GTEST_SKIP() << "BRIDGE_TEST_PG_DSN not set";
    }
    db_ = std::make_unique<storage::testing::TestDatabase>(GetParam());
    storage::StoreOptions store_options;
    store_options.database_url = db_->url();
    absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::OpenStore(store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ingest_ = std::make_unique<service::Ingest>(*store_, bus_, service::IngestOptions{});
    Config config;
    config.http_listen_host = "127.0.0.1";
    config.http_port = 0;
    config.grpc_port = 0;
    config.api_tokens_file = (dir_.path() / "tokens.json").string();
    config.access_audit_file = (dir_.path() / "access.jsonl").string();
    ApisOptions options;
    options.watch_poll_interval = absl::Hours(1);  // only the bus can wake a watcher in time
    absl::StatusOr<std::unique_ptr<Apis>> apis = StartApis(config, *store_, &bus_, options);
    ASSERT_TRUE(apis.ok()) << apis.status();
    apis_ = *std::move(apis);
    stub_ = ::labbridge::v1::LabBridge::NewStub(::grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(apis_->grpc_port()), ::grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (apis_) {
      apis_->Stop();
    }
  }

  void StoreOru(const std::string& control_id) {
    std::string oru = bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() /
                                                     "tests/fixtures/hl7/guide_sample_oru.hl7");
    const std::size_t at = oru.find("MSG001");
    ASSERT_NE(at, std::string::npos);
    oru.replace(at, 6, control_id);
    ASSERT_TRUE(ingest_->Handle(oru, service::IngestPeer{}).stored);
  }

  // Reads `count` events of one stream opened after `position`; fewer when
  // the deadline comes first.
  std::vector<::labbridge::v1::ResultEvent> Watch(std::int64_t position, int count,
                                                  const std::function<void()>& then) {
    ::grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + apis_->initial_admin_token());
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    ::labbridge::v1::WatchResultsRequest request;
    request.set_patient_id("12345");
    request.set_after_result_id(position);
    std::unique_ptr<::grpc::ClientReader<::labbridge::v1::ResultEvent>> reader =
        stub_->WatchResults(&context, request);
    std::vector<::labbridge::v1::ResultEvent> events;
    ::labbridge::v1::ResultEvent event;
    bool called = false;
    while (static_cast<int>(events.size()) < count && reader->Read(&event)) {
      events.push_back(event);
      if (!called && static_cast<int>(events.size()) == count / 2) {
        called = true;
        then();
      }
    }
    context.TryCancel();
    return events;
  }

  bridge::testing::TempDir dir_;
  std::unique_ptr<storage::testing::TestDatabase> db_;
  std::unique_ptr<storage::Store> store_;
  service::EventBus bus_;
  std::unique_ptr<service::Ingest> ingest_;
  std::unique_ptr<Apis> apis_;
  std::unique_ptr<::labbridge::v1::LabBridge::Stub> stub_;
};

TEST_P(WatchResultsTest, ResultsStoredWhileWatchingArriveThroughTheEventBus) {
  StoreOru("W1");
  // The five stored results are replayed; the five stored while the stream
  // is open arrive although the next store poll is an hour away.
  std::vector<::labbridge::v1::ResultEvent> events = Watch(0, 10, [&] { StoreOru("W2"); });
  ASSERT_EQ(events.size(), 10u);
  for (std::size_t i = 1; i < events.size(); ++i) {
    EXPECT_GT(events[i].position(), events[i - 1].position());
  }
  // Reconnecting from a position replays exactly what followed it.
  const std::vector<::labbridge::v1::ResultEvent> resumed = Watch(events[6].position(), 3, [] {});
  ASSERT_EQ(resumed.size(), 3u);
  EXPECT_EQ(resumed[0].position(), events[7].position());
  EXPECT_EQ(resumed[2].position(), events[9].position());
}

// Roles and the access audit on the gRPC edge.
class GrpcAccessTest : public WatchResultsTest {
 protected:
  std::string TokenWith(const std::string& name, service::Role role) {
    absl::StatusOr<std::string> token =
        apis_->tokens().Create(name, static_cast<std::uint32_t>(role), absl::Now());
    EXPECT_TRUE(token.ok()) << token.status();
    return token.value_or("");
  }

  // Runs one unary RPC with `token` and returns its status code.
  template <typename Request, typename Response, typename Method>
  ::grpc::StatusCode Call(Method method, const Request& request, const std::string& token) {
    ::grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    Response response;
    return ((*stub_).*method)(&context, request, &response).error_code();
  }

  ::grpc::StatusCode Watch(const std::string& token, int* events) {
    ::grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ::labbridge::v1::WatchResultsRequest request;
    std::unique_ptr<::grpc::ClientReader<::labbridge::v1::ResultEvent>> reader =
        stub_->WatchResults(&context, request);
    ::labbridge::v1::ResultEvent event;
    *events = 0;
    while (reader->Read(&event)) {
      ++*events;
    }
    return reader->Finish().error_code();
  }
};

TEST_P(GrpcAccessTest, ReadRpcsAndWatchResultsNeedResultsRead) {
  StoreOru("R1");
  namespace pb = ::labbridge::v1;
  using Stub = pb::LabBridge::Stub;
  const std::string writer = TokenWith("writer", service::Role::kOrdersWrite);
  const std::string reader = TokenWith("reader", service::Role::kResultsRead);
  constexpr auto kDenied = ::grpc::StatusCode::PERMISSION_DENIED;
  for (const std::string& token : {writer, std::string("lb_wrong")}) {
    SCOPED_TRACE(token == writer ? "orders:write only" : "a wrong token");
    const ::grpc::StatusCode refused =
        token == writer ? kDenied : ::grpc::StatusCode::UNAUTHENTICATED;
    pb::GetOrderRequest get_order;
    get_order.set_id(1);
    EXPECT_EQ((Call<pb::GetOrderRequest, pb::GetOrderResponse>(&Stub::GetOrder, get_order, token)),
              refused);
    EXPECT_EQ((Call<pb::ListOrdersRequest, pb::ListOrdersResponse>(&Stub::ListOrders, {}, token)),
              refused);
    pb::ListResultsRequest list_results;
    list_results.set_patient_id("12345");
    EXPECT_EQ((Call<pb::ListResultsRequest, pb::ListResultsResponse>(&Stub::ListResults,
                                                                     list_results, token)),
              refused);
    pb::GetResultRequest get_result;
    get_result.set_id(1);
    EXPECT_EQ((Call<pb::GetResultRequest, pb::Result>(&Stub::GetResult, get_result, token)),
              refused);
    EXPECT_EQ((Call<pb::ListCriticalResultsRequest, pb::ListResultsResponse>(
                  &Stub::ListCriticalResults, {}, token)),
              refused);
    int events = -1;
    EXPECT_EQ(Watch(token, &events), refused);
    EXPECT_EQ(events, 0);
  }
  // The audit trail needs audit:read, which neither has.
  for (const std::string& token : {writer, reader}) {
    pb::GetMessageRequest get_message;
    get_message.set_id(1);
    EXPECT_EQ((Call<pb::GetMessageRequest, pb::HL7Message>(&Stub::GetMessage, get_message, token)),
              kDenied);
    EXPECT_EQ(
        (Call<pb::ListMessagesRequest, pb::ListMessagesResponse>(&Stub::ListMessages, {}, token)),
        kDenied);
  }
  // The reader is let through where it should be.
  pb::ListResultsRequest mine;
  mine.set_patient_id("12345");
  EXPECT_EQ(
      (Call<pb::ListResultsRequest, pb::ListResultsResponse>(&Stub::ListResults, mine, reader)),
      ::grpc::StatusCode::OK);
}

// gRPC accesses name the patient by PMS id over what real ingest stores
// (FHIR ids are UUIDs there), like REST and FHIR, so one audit query finds
// all of them.
TEST_P(GrpcAccessTest, AccessesAreAuditedByPmsPatientId) {
  StoreOru("A1");
  namespace pb = ::labbridge::v1;
  using Stub = pb::LabBridge::Stub;
  const std::string admin = apis_->initial_admin_token();
  pb::ListResultsRequest list;
  list.set_patient_id("12345");
  ASSERT_EQ(
      (Call<pb::ListResultsRequest, pb::ListResultsResponse>(&Stub::ListResults, list, admin)),
      ::grpc::StatusCode::OK);
  ASSERT_EQ((Call<pb::ListCriticalResultsRequest, pb::ListResultsResponse>(
                &Stub::ListCriticalResults, {}, admin)),
            ::grpc::StatusCode::OK);
  absl::StatusOr<std::vector<service::AccessEvent>> events =
      apis_->access_audit().Query("12345", 10);
  ASSERT_TRUE(events.ok()) << events.status();
  std::set<std::string> whats;
  for (const service::AccessEvent& e : *events) {
    EXPECT_EQ(e.protocol, "grpc");
    EXPECT_EQ(e.outcome, 0);
    whats.insert(e.what);
  }
  EXPECT_EQ(whats, (std::set<std::string>{"/labbridge.v1.LabBridge/ListResults",
                                          "/labbridge.v1.LabBridge/ListCriticalResults"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, GrpcAccessTest,
                         ::testing::Values(storage::testing::Backend::kSqlite,
                                           storage::testing::Backend::kPostgres),
                         [](const ::testing::TestParamInfo<storage::testing::Backend>& info) {
                           return info.param == storage::testing::Backend::kSqlite ? "Sqlite"
                                                                                   : "Postgres";
                         });

INSTANTIATE_TEST_SUITE_P(Backends, WatchResultsTest,
                         ::testing::Values(storage::testing::Backend::kSqlite,
                                           storage::testing::Backend::kPostgres),
                         [](const ::testing::TestParamInfo<storage::testing::Backend>& info) {
                           return info.param == storage::testing::Backend::kSqlite ? "Sqlite"
                                                                                   : "Postgres";
                         });

}  // namespace
}  // namespace bridge::api::grpc_api
