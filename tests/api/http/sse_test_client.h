// tests/api/http/sse_test_client.h
//
// A blocking client for server-sent-event responses (Boost.Beast): sends one
// GET, reads the head, then reads the body as it arrives (chunked decoding
// by Beast's parser) until some text appears, the server ends the stream,
// or a deadline passes. Never throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bridge::api::testing {

class SseTestClient {
 public:
  // Connects to 127.0.0.1:port and sends GET `target` with `headers`; reads
  // the response head (status() is 0 when that failed: see error()).
  SseTestClient(std::uint16_t port, const std::string& target,
                const std::vector<std::pair<std::string, std::string>>& headers = {});
  ~SseTestClient();
  SseTestClient(const SseTestClient&) = delete;
  SseTestClient& operator=(const SseTestClient&) = delete;

  int status() const { return status_; }
  std::string Header(const std::string& lower_name) const;
  const std::string& error() const { return error_; }

  // Reads until `text` is in the body (true), or the stream ends or the
  // deadline passes (false).
  bool WaitFor(const std::string& text,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // Reads until the server ends the response (true) or the deadline passes.
  bool WaitForEnd(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // Everything read so far (the decoded body).
  const std::string& body() const { return body_; }
  bool ended() const { return ended_; }
  // Closes the connection from the client side.
  void Close();

 private:
  // One read of whatever arrives within `timeout`; false when nothing did.
  bool ReadSome(std::chrono::milliseconds timeout);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  int status_ = 0;
  std::map<std::string, std::string> headers_;
  std::string error_;
  std::string body_;
  bool ended_ = false;
};

}  // namespace bridge::api::testing
