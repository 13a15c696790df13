// api/http/server.h
//
// HttpServer: an HTTP/1.1 server on Boost.Beast that knows nothing of
// lab-bridge's routes. It parses requests (header and body size limits),
// keeps connections alive, and runs the Handler for each request on a worker
// pool (handlers may block on storage), never on an I/O thread. Each
// connection is a C++20 coroutine on its own strand.
//
//   HttpServerOptions options;
//   options.port = 0;  // any free port
//   absl::StatusOr<std::unique_ptr<HttpServer>> server =
//       HttpServer::Start(options, handler, error_responder);
//   std::uint16_t port = (*server)->port();
//   (*server)->Stop();
//
// Limits, each answered with a body built by the ErrorResponder (JSON or a
// FHIR OperationOutcome, never HTML): a body over body_limit (413), a
// malformed request or oversize header (400), a handler slower than
// request_timeout (503; the handler finishes in the background and its
// answer is dropped), more than max_connections open (503, then closed).
// A connection idle for idle_timeout is closed.
//
// Streamed responses (server-sent events): a handler may answer with an
// HttpResponse whose `stream` is set. The server writes the head, then
// (chunked on HTTP/1.1) whatever the stream produces, until the stream ends,
// the client goes away or the server stops; at most max_streams at once
// (503 beyond). The stream is woken by its own events, or after
// stream_idle_interval without any, so it can send a keep-alive.
//
// Thread-safety: Start, port, stats and Stop may be called from any thread;
// Stop is idempotent. The handlers must be thread-safe and outlive the server.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bridge::api::http {

struct HttpServerOptions {
  std::string listen_host = "0.0.0.0";
  int port = 8080;  // 0: any free port (see port())
  int io_threads = 2;
  int worker_threads = 4;  // handlers run here
  std::size_t body_limit = 1024 * 1024;
  std::size_t header_limit = 16 * 1024;
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration read_timeout = absl::Seconds(30);  // one request, header to body end
  int max_connections = 1024;
  int max_streams = 256;
  absl::Duration stream_idle_interval = absl::Seconds(15);
};

// A response body produced over time. The server calls Start once, then
// Next each time the stream wakes it (or after stream_idle_interval with
// `idle` true), then Close exactly once.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // `wake` asks the server to call Next soon; it may be called from any
  // thread, any number of times, until Close returns.
  virtual void Start(std::function<void()> wake) = 0;
  // Text to send now ("" for nothing), or nullopt to end the response.
  virtual std::optional<std::string> Next(bool idle) = 0;
  // The response is over (ended, client gone, refused or server stopping).
  // Once it returns, `wake` is never called again.
  virtual void Close() = 0;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as received: path and query
  std::string path;    // percent-decoded, without the query
  std::string raw_query;
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  std::string peer_address;

  // The first header with that lower-case name, or "".
  std::string_view Header(std::string_view lower_name) const;
  // The first query parameter with that name, or nullptr.
  const std::string* QueryParam(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is produced by the stream (see ResponseStream) and
  // `body` is ignored; the connection closes when the stream ends.
  std::shared_ptr<ResponseStream> stream;
};

// Splits "a=1&b=x%20y" into decoded pairs ('+' is a space). A malformed
// escape is kept literally.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);
std::string PercentDecode(std::string_view text, bool plus_is_space);
std::string PercentEncode(std::string_view text);

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Answers the server's own refusals (413, 400, 503) for a request target.
using ErrorResponder =
    std::function<HttpResponse(int status, std::string_view message, std::string_view target)>;

struct HttpServerStats {
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::int64_t> active_connections{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> responses_2xx{0};
  std::atomic<std::uint64_t> responses_4xx{0};
  std::atomic<std::uint64_t> responses_5xx{0};
  std::atomic<std::uint64_t> request_timeouts{0};
  std::atomic<std::uint64_t> body_too_large{0};
  std::atomic<std::int64_t> open_streams{0};
  std::atomic<std::uint64_t> streams_refused{0};
};

class HttpServer {
 public:
  // Binds listen_host:port and starts serving. InvalidArgument for a bad
  // host; Unavailable when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpHandler handler,
                                                           ErrorResponder error_responder);
  virtual ~HttpServer() = default;

  virtual std::uint16_t port() const = 0;
  virtual const HttpServerStats& stats() const = 0;
  // Stops accepting, closes connections, joins the threads.
  virtual void Stop() = 0;
};

}  // namespace bridge::api::http
