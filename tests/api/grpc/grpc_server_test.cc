// tests/api/grpc/grpc_server_test.cc: the gRPC edge's error table, the
// refusal of unusable TLS files, WatchResults woken by the event bus, the
// roles every read RPC needs, the access audit's patient ids, and Health
// (with /readyz) while PostgreSQL cannot be reached. The RPCs themselves,
// TLS included, are exercised by @grpc/grpc-js in tests/interop.
#include "api/grpc/grpc_server.h"

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "api/apis.h"
#include "api/config.h"
#include "api/service/event_bus.h"
#include "api/service/ingest.h"
#include "labbridge/v1/labbridge.grpc.pb.h"
#include "storage/store.h"
#include "tests/api/http/http_test_client.h"
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
class WatchResultsTest : public storage::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = OpenTestStore();
    ASSERT_NE(store_, nullptr);
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

// A loopback TCP proxy in front of PostgreSQL that the test can cut: every
// connection through it is closed and new ones are refused, which is what
// lab-bridge sees when its database host goes away, without stopping the
// shared throwaway cluster under the other tests.
class CuttableProxy {
 public:
  CuttableProxy(std::string upstream_host, int upstream_port)
      : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {}
  ~CuttableProxy() { Cut(); }

  // Listens on 127.0.0.1:`port` (0: any); returns the port, 0 on failure.
  int Open(int port = 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      return 0;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      listener_ = fd;
    }
    acceptor_ = std::thread([this, fd] { Accept(fd); });
    return ntohs(addr.sin_port);
  }

  // Closes the listener and every proxied connection.
  void Cut() {
    std::vector<std::thread> pumps;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (listener_ >= 0) {
        ::shutdown(listener_, SHUT_RDWR);
        ::close(listener_);
        listener_ = -1;
      }
      for (const int fd : sockets_) {
        ::shutdown(fd, SHUT_RDWR);
      }
      pumps.swap(pumps_);
    }
    if (acceptor_.joinable()) {
      acceptor_.join();
    }
    for (std::thread& t : pumps) {
      t.join();
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (const int fd : sockets_) {
      ::close(fd);
    }
    sockets_.clear();
  }

 private:
  void Accept(int listener) {
    for (;;) {
      const int client = ::accept(listener, nullptr, nullptr);
      if (client < 0) {
        return;  // closed by Cut
      }
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
      ::inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(server);
        ::close(client);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(client);
      sockets_.push_back(server);
      pumps_.emplace_back([client, server] { Pump(client, server); });
      pumps_.emplace_back([client, server] { Pump(server, client); });
    }
  }

  static void Pump(int from, int to) {
    char buffer[16384];
    for (;;) {
      const ssize_t n = ::recv(from, buffer, sizeof buffer, 0);
      if (n <= 0 || ::send(to, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
        ::shutdown(from, SHUT_RDWR);
        ::shutdown(to, SHUT_RDWR);
        return;
      }
    }
  }

  const std::string upstream_host_;
  const int upstream_port_;
  std::mutex mu_;
  int listener_ = -1;
  std::thread acceptor_;
  std::vector<int> sockets_;
  std::vector<std::thread> pumps_;
};

// grpc.health.v1.Health/Check for the whole server, through the generic
// stub (the health proto's C++ code is not public): 1 SERVING, 2
// NOT_SERVING, -1 when the call itself failed.
int HealthStatus(int grpc_port) {
  std::shared_ptr<::grpc::Channel> channel = ::grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(grpc_port), ::grpc::InsecureChannelCredentials());
  ::grpc::GenericStub stub(channel);
  ::grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  const ::grpc::Slice nothing(std::string{});  // HealthCheckRequest{service: ""}
  ::grpc::ByteBuffer request(&nothing, 1);
  ::grpc::ByteBuffer response;
  std::promise<::grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", ::grpc::StubOptions(), &request,
                 &response, [&done](::grpc::Status status) { done.set_value(status); });
  if (!done.get_future().get().ok()) {
    return -1;
  }
  std::vector<::grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return -1;
  }
  std::string bytes;
  for (const ::grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  // HealthCheckResponse{status = 1}: tag 0x08, then the varint (0 is omitted).
  if (bytes.empty()) {
    return 0;
  }
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : -1;
}

// Polls `probe` until it returns `want` or 10 s pass; returns the last value.
template <typename Probe>
auto Eventually(Probe probe, decltype(probe()) want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto got = probe();
  while (got != want && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    got = probe();
  }
  return got;
}

// /readyz is 503 (a JSON body) and gRPC Health NOT_SERVING while PostgreSQL
// cannot be reached, and both recover once it can; /healthz stays 200.
TEST(DatabaseOutageTest, ReadyzAndHealthFollowThePostgresConnection) {
  if (!storage::testing::PostgresDsn().has_value()) {
    if (storage::testing::PostgresRequired()) {
      FAIL() << "BRIDGE_TEST_PG_DSN is not set but PostgreSQL tests are required";
    }
    GTEST_SKIP() << "BRIDGE_TEST_PG_DSN not set";
  }
  storage::testing::TestDatabase db(storage::testing::Backend::kPostgres);
  // postgresql://user@HOST:PORT/db...: the store goes through the proxy.
  std::string url = db.url();
  const std::size_t at = url.find('@');
  const std::size_t colon = url.find(':', at == std::string::npos ? 0 : at);
  const std::size_t slash = url.find('/', colon == std::string::npos ? 0 : colon);
  if (url.rfind("postgres", 0) != 0 || at == std::string::npos || colon == std::string::npos ||
      slash == std::string::npos) {
    GTEST_SKIP() << "BRIDGE_TEST_PG_DSN is not a postgresql://user@host:port/db URL";
  }
  const std::string host = url.substr(at + 1, colon - at - 1);
  const int upstream_port = std::stoi(url.substr(colon + 1, slash - colon - 1));
  CuttableProxy proxy(host == "localhost" ? "127.0.0.1" : host, upstream_port);
  const int port = proxy.Open();
  ASSERT_NE(port, 0);
  url = url.substr(0, at + 1) + "127.0.0.1:" + std::to_string(port) + url.substr(slash);

  storage::StoreOptions store_options;
  store_options.database_url = url;
  absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::OpenStore(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  bridge::testing::TempDir dir;
  Config config;
  config.http_listen_host = "127.0.0.1";
  config.http_port = 0;
  config.grpc_port = 0;
  config.api_tokens_file = (dir.path() / "tokens.json").string();
  config.access_audit_file = (dir.path() / "access.jsonl").string();
  absl::StatusOr<std::unique_ptr<Apis>> apis = StartApis(config, **store, nullptr, {});
  ASSERT_TRUE(apis.ok()) << apis.status();
  const std::uint16_t http_port = (*apis)->http_port();
  const int grpc_port = (*apis)->grpc_port();
  const auto readyz = [&] { return testing::Fetch(http_port, "GET", "/readyz").status; };
  const auto health = [&] { return HealthStatus(grpc_port); };

  EXPECT_EQ(readyz(), 200);
  EXPECT_EQ(Eventually(health, 1), 1);

  proxy.Cut();
  EXPECT_EQ(Eventually(readyz, 503), 503);
  testing::HttpResult r = testing::Fetch(http_port, "GET", "/readyz");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_NE(r.body.find("\"detail\""), std::string::npos) << r.body;
  EXPECT_EQ(Eventually(health, 2), 2);  // the prober looks every second
  EXPECT_EQ(testing::Fetch(http_port, "GET", "/healthz").status, 200);

  ASSERT_EQ(proxy.Open(port), port);
  EXPECT_EQ(Eventually(readyz, 200), 200);
  EXPECT_EQ(Eventually(health, 1), 1);
  (*apis)->Stop();
}

}  // namespace
}  // namespace bridge::api::grpc_api
