// tests/api/http/server_test.cc: the HttpServer's own limits, with handlers
// written for the test (no routes, no storage).
#include "api/http/server.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

#include "tests/api/http/http_test_client.h"

namespace bridge::api::http {
namespace {

using testing::HttpTestClient;

HttpResponse Error(int status, std::string_view message, std::string_view) {
  return {status, "application/json", "{\"detail\":\"" + std::string(message) + "\"}", {}, nullptr};
}

TEST(HttpServerTest, SlowHandlerIs503AfterRequestTimeoutAndTheConnectionStaysUsable) {
  HttpServerOptions options;
  options.listen_host = "127.0.0.1";
  options.port = 0;
  options.request_timeout = absl::Milliseconds(100);
  std::atomic<int> calls{0};
  auto server = HttpServer::Start(
      options,
      [&](const HttpRequest& r) {
        ++calls;
        if (r.path == "/slow") {
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        return HttpResponse{200, "text/plain", "done", {}, nullptr};
      },
      Error);
  ASSERT_TRUE(server.ok()) << server.status();
  HttpTestClient client((*server)->port());
  auto r = client.Send("GET", "/slow");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"detail":"request timed out"})");
  r = client.Send("GET", "/fast");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "done");
  EXPECT_EQ((*server)->stats().request_timeouts.load(), 1u);
  (*server)->Stop();
}

TEST(HttpServerTest, RequestFieldsReachTheHandler) {
  HttpServerOptions options;
  options.listen_host = "127.0.0.1";
  options.port = 0;
  HttpRequest seen;
  auto server = HttpServer::Start(
      options,
      [&](const HttpRequest& r) {
        seen = r;
        return HttpResponse{201, "application/json", "{}", {{"X-Test", "1"}}, nullptr};
      },
      Error);
  ASSERT_TRUE(server.ok());
  HttpTestClient client((*server)->port());
  auto r = client.Send("POST", "/a%20b?x=1&y=two+words", {{"X-Custom", "v"}}, "payload");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.Header("x-test"), "1");
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.path, "/a b");
  EXPECT_EQ(seen.raw_query, "x=1&y=two+words");
  ASSERT_NE(seen.QueryParam("y"), nullptr);
  EXPECT_EQ(*seen.QueryParam("y"), "two words");
  EXPECT_EQ(seen.Header("x-custom"), "v");
  EXPECT_EQ(seen.body, "payload");
  EXPECT_EQ(seen.peer_address, "127.0.0.1");
}

TEST(HttpServerTest, ConnectionsOverTheLimitAreRefusedWith503) {
  HttpServerOptions options;
  options.listen_host = "127.0.0.1";
  options.port = 0;
  options.max_connections = 1;
  auto server = HttpServer::Start(
      options,
      [](const HttpRequest&) {
        return HttpResponse{200, "text/plain", "ok", {}, nullptr};
      },
      Error);
  ASSERT_TRUE(server.ok());
  HttpTestClient first((*server)->port());
  ASSERT_EQ(first.Send("GET", "/").status, 200);  // holds the one connection (keep-alive)
  HttpTestClient second((*server)->port());
  auto r = second.Send("GET", "/");
  EXPECT_EQ(r.status, 503) << r.error;
  EXPECT_EQ((*server)->stats().connections_refused.load(), 1u);
}

TEST(HttpServerTest, PortInUseIsUnavailable) {
  HttpServerOptions options;
  options.listen_host = "127.0.0.1";
  options.port = 0;
  auto handler = [](const HttpRequest&) { return HttpResponse{}; };
  auto first = HttpServer::Start(options, handler, Error);
  ASSERT_TRUE(first.ok());
  options.port = (*first)->port();
  auto second = HttpServer::Start(options, handler, Error);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  options.listen_host = "not-an-ip";
  EXPECT_EQ(HttpServer::Start(options, handler, Error).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bridge::api::http
