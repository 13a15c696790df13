// tests/mllp/mllp_test_support.h
//
// Fixture vocabulary for the mllp tests: a raw blocking socket peer that
// speaks framed bytes, toy HL7 helpers built from plain string operations
// (tests may do that; the mllp library may not), an ACK-ing handler, and a
// throwaway PKI generated with the openssl CLI.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mllp/frame_decoder.h"
#include "mllp/handler.h"

namespace bridge::mllp::testing {

using namespace std::chrono_literals;

// A tiny ORU-like message whose MSH-10 is `control_id`.
std::string TestMessage(const std::string& control_id);

// MSH-10 of an ER7 message ("" if absent). String ops only.
std::string ControlId(std::string_view message);

// "MSH|...\rMSA|AA|<MSH-10>" for `message`.
std::string AckFor(std::string_view message, std::string_view code = "AA");

// MSA-2 of an ACK, or nullopt.
std::optional<std::string> Msa2(std::string_view ack);

// A blocking TCP peer on 127.0.0.1 with per-call timeouts (poll-based).
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool Send(std::string_view bytes);
  void ShutdownWrite();
  // Next complete frame's payload, or nullopt on timeout/close.
  std::optional<std::string> ReadFrame(std::chrono::milliseconds timeout = 5s);
  // True when the server closes the connection within `timeout`.
  bool WaitClosed(std::chrono::milliseconds timeout = 5s);

 private:
  int fd_ = -1;
  FrameDecoder decoder_{64 * 1024 * 1024};
  std::vector<std::string> ready_;
};

// Answers every frame with AckFor(frame) after `delay` (0: inline, on the I/O
// thread; otherwise from a separate thread, like api/'s DB pool).
class AckHandler : public MessageHandler {
 public:
  explicit AckHandler(std::chrono::milliseconds delay = 0ms) : delay_(delay) {}
  ~AckHandler() override;

  void HandleFrame(std::string payload, const PeerInfo& peer, ReplyFn done) override;
  void HandleOversizeFrame(std::string prefix, const PeerInfo& peer, ReplyFn done) override;

  int handled() const { return handled_.load(); }
  std::string last_subject() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_subject_;
  }
  std::string last_oversize_prefix() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_oversize_prefix_;
  }
  // Called instead of answering when set (e.g. to drop `done`).
  std::function<void(std::string, ReplyFn)> override_reply;

 private:
  const std::chrono::milliseconds delay_;
  std::atomic<int> handled_{0};
  std::mutex mu_;
  std::vector<std::thread> workers_;  // guarded by mu_
  std::string last_subject_;          // guarded by mu_
  std::string last_oversize_prefix_;  // guarded by mu_
};

// Polls `condition` every 5 ms until true or `timeout`.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s);

// A CA, a server certificate for localhost/127.0.0.1, two client
// certificates (CN=lis-a, CN=lis-b) from the CA, and a client certificate
// from an unrelated CA. Generated with the openssl CLI into `dir`.
struct TestPki {
  std::filesystem::path ca_crt;
  std::filesystem::path server_crt, server_key;
  std::filesystem::path client_a_crt, client_a_key;  // CN=lis-a, SAN DNS:lis-a.example
  std::filesystem::path client_b_crt, client_b_key;  // CN=lis-b
  std::filesystem::path rogue_crt, rogue_key;        // CN=lis-a, other CA
};
// Returns nullopt (after ADD_FAILURE) when openssl fails.
std::optional<TestPki> MakeTestPki(const std::filesystem::path& dir);

// Runs a shell command; returns its exit status and fills `*output` with
// stdout+stderr.
int RunCommand(const std::string& command, std::string* output);

}  // namespace bridge::mllp::testing
