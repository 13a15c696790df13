// tests/api/service/scripted_lis.h
//
// A laboratory system that behaves as a test scripts it: a plain TCP MLLP
// listener on 127.0.0.1 (its own framing, not lab-bridge's), which records
// every message it reads and answers each as the script says: ACK codes,
// replies for other control ids, silence, delays, or hanging up.
//
//   ScriptedLis lis([](const LisMessage& m) { return LisAction::Reply({Ack("AA", m.control_id)});
//   });
//   ... lis.port() ... lis.WaitForMessages(1, absl::Seconds(5));
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace bridge::testing {

struct LisMessage {
  int index = 0;       // 0-based, over every connection
  int connection = 0;  // 0-based
  std::string control_id;
  std::string payload;
  absl::Time received_at;
};

struct LisAction {
  absl::Duration delay;              // before answering
  std::vector<std::string> replies;  // payloads, framed and sent in order
  bool hang_up = false;              // close the connection after the replies

  static LisAction Reply(std::vector<std::string> replies) {
    LisAction a;
    a.replies = std::move(replies);
    return a;
  }
  static LisAction Silence() { return {}; }
  static LisAction HangUp() {
    LisAction a;
    a.hang_up = true;
    return a;
  }
};

using LisScript = std::function<LisAction(const LisMessage& message)>;

// An ACK from the LIS for `control_id` (MSA-1 `code`).
std::string LisAck(const std::string& code, const std::string& control_id);

// A script that answers every message AA.
LisScript AlwaysAccept();

class ScriptedLis {
 public:
  // Listens on 127.0.0.1:`port` (0: any free port).
  explicit ScriptedLis(LisScript script, std::uint16_t port = 0);
  ~ScriptedLis();
  ScriptedLis(const ScriptedLis&) = delete;
  ScriptedLis& operator=(const ScriptedLis&) = delete;

  std::uint16_t port() const { return port_; }
  std::vector<LisMessage> messages() const;
  // True once at least `count` messages were read.
  bool WaitForMessages(std::size_t count, absl::Duration timeout) const;
  // Sends `payload`, framed, on the newest open connection, unprompted (an
  // enhanced-mode application ACK, say). False when none is open.
  bool SendToLastConnection(const std::string& payload);
  // Closes the listener and every connection.
  void Stop();

 private:
  void AcceptLoop();
  void Serve(int fd, int connection);

  LisScript script_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<LisMessage> messages_;
  std::vector<int> fds_;
  std::vector<std::thread> servers_;
  int connections_ = 0;
};

// Polls `done` every 20 ms until it is true or `timeout` passes.
bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout);

}  // namespace bridge::testing
