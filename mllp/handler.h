// mllp/handler.h
//
// MessageHandler is what the mllp::Server needs from the application: it
// gets each received payload (bytes, never parsed here) and answers, later
// and from any thread, with the payload of the reply frame (the ACK/NAK).
//
//   class EchoHandler : public bridge::mllp::MessageHandler {
//     void HandleFrame(std::string payload, const PeerInfo& peer, ReplyFn done) override {
//       done(MakeMyAck(payload));  // or hand `done` to a worker pool
//     }
//   };
//
// Design: callback, not awaitable. The api layer runs storage work on its own
// thread pool and calls `done` from there; the server resumes the connection
// on its strand. The mllp module therefore imposes no coroutine type on its
// users, and the handler never blocks an I/O thread.
//
// Thread-safety: one handler serves every connection; HandleFrame may be
// called concurrently for different connections. For one connection the
// calls are strictly sequential: the next frame is handed over only after the
// previous reply was written, so replies go out in order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bridge::mllp {

// Who sent a frame. Valid only for the duration of the call that receives
// it; copy what you keep.
struct PeerInfo {
  std::string address;       // remote IP address, e.g. "127.0.0.1"
  std::uint16_t port = 0;    // remote TCP port
  std::uint64_t connection_id = 0;  // unique per server, for logs
  bool tls = false;
  // The verified client certificate, when mutual TLS is on; else empty.
  std::string certificate_subject;              // RFC 2253, e.g. "CN=lis-a,O=Lab A"
  std::vector<std::string> certificate_names;   // subject CN + subjectAltName entries
};

// True when one of `entries` is the certificate's subject or one of its
// names: how an allow-list entry names a client certificate.
inline bool CertificateIsNamed(std::string_view subject, const std::vector<std::string>& names,
                               const std::vector<std::string>& entries) {
  for (const std::string& entry : entries) {
    if ((!subject.empty() && entry == subject) ||
        std::find(names.begin(), names.end(), entry) != names.end()) {
      return true;
    }
  }
  return false;
}

// Completes one frame. Call it exactly once, from any thread: with the reply
// payload (unframed; the server adds <VT>..<FS><CR>) to answer, or with
// std::nullopt to close the connection without answering. Later calls are
// ignored. Dropping every copy without calling it counts as std::nullopt.
using ReplyFn = std::function<void(std::optional<std::string> reply)>;

class MessageHandler {
 public:
  virtual ~MessageHandler() = default;

  // A complete frame arrived. Called on an I/O thread: must not block (hand
  // slow work to another executor and call `done` from there). Must not
  // throw.
  virtual void HandleFrame(std::string payload, const PeerInfo& peer, ReplyFn done) = 0;

  // A frame exceeded ServerOptions::max_frame_bytes. `prefix` holds its first
  // oversize_prefix_bytes (enough to read MSH-10 for a NAK); the rest was
  // never buffered. A reply given to `done` is sent, then the connection is
  // closed either way. Same threading rules as HandleFrame. The default
  // closes without a reply.
  virtual void HandleOversizeFrame(std::string prefix, const PeerInfo& peer, ReplyFn done) {
    (void)prefix;
    (void)peer;
    done(std::nullopt);
  }
};

}  // namespace bridge::mllp
