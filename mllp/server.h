// mllp/server.h
//
// Server accepts MLLP connections, plain TCP or native TLS (OpenSSL via
// Boost.Asio), decodes frames, hands each payload to a MessageHandler and
// writes its reply back, in order, on the same connection. It owns a small
// io_context thread pool; each connection runs as a C++20 coroutine on its
// own strand, and no call on those threads blocks.
//
//   absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options, handler);
//   if (!server.ok()) { ... }  // bad TLS files, port in use, ...
//   std::uint16_t port = (*server)->port();
//   ...
//   (*server)->Stop();  // graceful: finishes messages in hand
//
// Per connection: a TLS handshake (TLS 1.2 minimum, 1.3 preferred, AEAD
// suites only, no compression, no renegotiation) under handshake_timeout,
// then an optional client-certificate allow-list check; then frames until
// the peer closes, an idle_timeout passes between frames, a frame takes
// longer than frame_read_timeout from its <VT> to its end, a reply takes
// longer than write_timeout, or an oversize frame arrives (the handler may
// answer it, then the connection closes).
//
// Thread-safety: Start, port, stats and Stop may be called from any thread;
// Stop is idempotent. The handler must outlive the Server.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "mllp/handler.h"
#include "mllp/options.h"

namespace bridge::mllp {

// Counters since Start. Read them with .load(); they only grow, except
// active_connections.
struct ServerStats {
  std::atomic<std::uint64_t> connections_accepted{0};  // passed the limits
  std::atomic<std::uint64_t> connections_refused{0};   // over max_connections(_per_peer)
  std::atomic<std::int64_t> active_connections{0};
  std::atomic<std::uint64_t> tls_handshake_failures{0};
  std::atomic<std::uint64_t> peers_not_allowed{0};     // certificate not on the allow-list
  std::atomic<std::uint64_t> frames_received{0};       // complete frames handed to the handler
  std::atomic<std::uint64_t> replies_sent{0};
  std::atomic<std::uint64_t> junk_bytes{0};            // skipped outside frames
  std::atomic<std::uint64_t> oversize_frames{0};       // refused at max_frame_bytes
  std::atomic<std::uint64_t> truncated_frames{0};      // started, never ended
  std::atomic<std::uint64_t> idle_timeouts{0};
  std::atomic<std::uint64_t> frame_timeouts{0};        // slowloris cut-offs
  std::atomic<std::uint64_t> write_timeouts{0};
  std::atomic<std::uint64_t> handshake_timeouts{0};
  std::atomic<std::uint64_t> handler_unanswered{0};    // ReplyFn got nullopt or was dropped
};

class Server {
 public:
  // Binds options.listen_host:options.port, loads the TLS files when
  // options.tls.enabled(), and starts serving on options.io_threads threads.
  // Returns InvalidArgument for bad options or TLS files that do not load,
  // Unavailable when the address cannot be bound (e.g. port in use).
  // `handler` is borrowed and must outlive the Server.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       MessageHandler& handler);

  // Calls Stop().
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the real one when options.port was 0).
  std::uint16_t port() const;

  // Graceful stop: stops accepting; closes connections waiting for input;
  // lets each connection whose frame is with the handler get its reply
  // written, then closes it. Returns when every connection has ended, or
  // after options.shutdown_grace, when the rest are closed. The I/O threads
  // are joined before it returns. Blocking; do not call it from a handler.
  void Stop();

  const ServerStats& stats() const;

  class Impl;  // public only so that server.cc's helpers can name it

 private:
  explicit Server(std::shared_ptr<Impl> impl);

  std::shared_ptr<Impl> impl_;  // shared: a late ReplyFn may keep it alive
};

}  // namespace bridge::mllp
