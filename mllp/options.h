// mllp/options.h
//
// ServerOptions and ClientOptions: every limit, deadline and TLS file the
// mllp module uses, each with a named default. Plain aggregates; api/config
// fills them once from the environment (MLLP_LISTEN_HOST, MLLP_LISTEN_PORT,
// MAX_MESSAGE_SIZE, ACK_TIMEOUT_SECONDS, MLLP_TLS_*).
//
//   bridge::mllp::ServerOptions options;
//   options.port = 0;  // tests: let the kernel pick, read Server::port()
//   options.tls.cert_file = "server.crt";
//   options.tls.key_file = "server.key";
//
// Thread-safety: plain values; copy freely.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bridge::mllp {

// MAX_MESSAGE_SIZE: the largest payload accepted, in bytes.
inline constexpr std::size_t kDefaultMaxFrameBytes = 1024 * 1024;
// How much of an oversize frame is kept so that a NAK can still quote MSH.
inline constexpr std::size_t kDefaultOversizePrefixBytes = 4096;
inline constexpr std::uint16_t kDefaultMllpPort = 2575;
inline constexpr int kDefaultIoThreads = 2;
inline constexpr std::size_t kDefaultMaxConnections = 512;
inline constexpr std::size_t kDefaultMaxConnectionsPerPeer = 32;
// No byte at all between frames for this long: the connection is closed.
inline constexpr std::chrono::milliseconds kDefaultIdleTimeout = std::chrono::minutes(10);
// A frame must arrive whole within this time of its <VT> (slowloris defence).
inline constexpr std::chrono::milliseconds kDefaultFrameReadTimeout = std::chrono::seconds(30);
// A reply must be written within this time.
inline constexpr std::chrono::milliseconds kDefaultWriteTimeout = std::chrono::seconds(30);
// TLS handshake (and the allow-list check) must finish within this time.
inline constexpr std::chrono::milliseconds kDefaultHandshakeTimeout = std::chrono::seconds(10);
// Server::Stop() waits this long for messages in hand before closing anyway.
inline constexpr std::chrono::milliseconds kDefaultShutdownGrace = std::chrono::seconds(10);
inline constexpr std::chrono::milliseconds kDefaultConnectTimeout = std::chrono::seconds(10);
// ACK_TIMEOUT_SECONDS.
inline constexpr std::chrono::milliseconds kDefaultAckTimeout = std::chrono::seconds(30);

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Receives one line per event. Lines carry peer addresses, connection ids and
// counts, never payload bytes (no PHI). Called from I/O threads: must not
// block. Empty: nothing is logged.
using LogSink = std::function<void(LogLevel level, std::string_view line)>;

struct ServerTlsOptions {
  // PEM certificate chain and private key. Both empty: plain TCP.
  std::string cert_file;
  std::string key_file;
  // PEM CA bundle. Non-empty: every client must present a certificate that
  // chains to it (mutual TLS); otherwise no client certificate is asked for.
  std::string client_ca_file;
  // With client_ca_file: when non-empty, a verified client certificate is
  // accepted only if one entry equals its subject (RFC 2253 form, e.g.
  // "CN=lis-a,O=Lab A"), its subject CN, or one of its subjectAltName
  // DNS/IP/email/URI entries. Empty: any certificate from the CA is accepted.
  std::vector<std::string> allowed_peers;

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

struct ServerOptions {
  // Address to bind (an IP literal or a name resolved once at start).
  std::string listen_host = "0.0.0.0";
  // Port to bind; 0 lets the kernel choose (read it back with Server::port()).
  std::uint16_t port = kDefaultMllpPort;
  // Threads running the server's io_context.
  int io_threads = kDefaultIoThreads;
  // Connections beyond these limits are accepted and closed at once.
  std::size_t max_connections = kDefaultMaxConnections;
  std::size_t max_connections_per_peer = kDefaultMaxConnectionsPerPeer;  // per IP address
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  std::size_t oversize_prefix_bytes = kDefaultOversizePrefixBytes;
  std::chrono::milliseconds idle_timeout = kDefaultIdleTimeout;
  std::chrono::milliseconds frame_read_timeout = kDefaultFrameReadTimeout;
  std::chrono::milliseconds write_timeout = kDefaultWriteTimeout;
  std::chrono::milliseconds handshake_timeout = kDefaultHandshakeTimeout;
  std::chrono::milliseconds shutdown_grace = kDefaultShutdownGrace;
  ServerTlsOptions tls;
  LogSink log;
};

struct ClientTlsOptions {
  // Use TLS (TLS 1.2 minimum) for this peer.
  bool enabled = false;
  // PEM CA bundle the server certificate must chain to; empty: the system's
  // default trust store.
  std::string ca_file;
  // Optional client certificate and key for mutual TLS.
  std::string cert_file;
  std::string key_file;
  // Name sent as SNI and checked against the server certificate (DNS name or
  // IP address). Empty: ClientOptions::host.
  std::string server_name;
};

struct ClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = kDefaultMllpPort;
  // Name resolution + TCP connect + TLS handshake must finish within this.
  std::chrono::milliseconds connect_timeout = kDefaultConnectTimeout;
  // The matching reply must arrive within this time after the send starts.
  std::chrono::milliseconds ack_timeout = kDefaultAckTimeout;
  // Largest reply accepted.
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  ClientTlsOptions tls;
  LogSink log;
};

}  // namespace bridge::mllp
