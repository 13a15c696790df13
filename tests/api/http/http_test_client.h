// tests/api/http/http_test_client.h
//
// A blocking HTTP/1.1 client for the API tests (Boost.Beast, error codes,
// never throws). One connection per HttpTestClient, kept alive between
// requests so keep-alive itself is tested.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bridge::api::testing {

struct HttpResult {
  int status = 0;  // 0: transport error (see error)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;
  bool keep_alive = false;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpTestClient {
 public:
  explicit HttpTestClient(std::uint16_t port);
  ~HttpTestClient();
  HttpTestClient(const HttpTestClient&) = delete;
  HttpTestClient& operator=(const HttpTestClient&) = delete;

  HttpResult Send(const std::string& method, const std::string& target,
                  const std::vector<std::pair<std::string, std::string>>& headers = {},
                  const std::string& body = "");
  // Sends raw bytes and reads one response.
  HttpResult SendRaw(const std::string& bytes);

  // Number of TCP connections opened so far (1 while keep-alive holds).
  int connections_opened() const { return connections_opened_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_;
  int connections_opened_ = 0;
};

// One request on a fresh connection, with `token` as bearer when not empty.
HttpResult Fetch(std::uint16_t port, const std::string& method, const std::string& target,
                 const std::string& token = "", const std::string& body = "");

}  // namespace bridge::api::testing
