// api/http/server.cc: Beast listener and sessions (one coroutine per
// connection, on its strand); handlers run on a thread pool.
#include "api/http/server.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace bridge::api::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) {
      continue;
    }
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(PercentDecode(part, true), "");
    } else {
      out.emplace_back(PercentDecode(part.substr(0, eq), true),
                       PercentDecode(part.substr(eq + 1), true));
    }
  }
  return out;
}

std::string_view HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) {
      return value;
    }
  }
  return {};
}

const std::string* HttpRequest::QueryParam(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) {
      return &value;
    }
  }
  return nullptr;
}

namespace {

class ServerImpl final : public HttpServer {
 public:
  ServerImpl(const HttpServerOptions& options, HttpHandler handler, ErrorResponder errors)
      : options_(options),
        handler_(std::move(handler)),
        errors_(std::move(errors)),
        workers_(static_cast<std::size_t>(std::max(1, options.worker_threads))),
        acceptor_(net::make_strand(io_)) {}

  ~ServerImpl() override { Stop(); }

  absl::Status Bind() {
    boost::system::error_code ec;
    const net::ip::address address = net::ip::make_address(options_.listen_host, ec);
    if (ec) {
      return absl::InvalidArgumentError("HTTP listen host: not an IP address: " +
                                        options_.listen_host);
    }
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
      acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
      acceptor_.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return absl::UnavailableError("HTTP listen " + options_.listen_host + ":" +
                                    std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return absl::OkStatus();
  }

  void Run() {
    net::co_spawn(acceptor_.get_executor(), Accept(), net::detached);
    const int n = std::max(1, options_.io_threads);
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
  }

  std::uint16_t port() const override { return port_; }
  const HttpServerStats& stats() const override { return stats_; }

  void Stop() override {
    std::call_once(stopped_, [this] {
      net::post(acceptor_.get_executor(), [this] {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
      });
      io_.stop();
      for (std::thread& t : threads_) {
        if (t.joinable()) {
          t.join();
        }
      }
      workers_.join();
      // Suspended stream sessions never resume now; end their streams here
      // so nothing wakes an executor that is about to be destroyed.
      std::set<std::shared_ptr<OpenStream>> open;
      {
        std::lock_guard lock(streams_mutex_);
        open.swap(streams_);
      }
      for (const std::shared_ptr<OpenStream>& s : open) {
        s->CloseOnce();
      }
    });
  }

 private:
  // A stream being written, closed once whoever finishes first: the session
  // or Stop.
  struct OpenStream {
    explicit OpenStream(std::shared_ptr<ResponseStream> s) : stream(std::move(s)) {}
    void CloseOnce() {
      std::call_once(closed, [this] { stream->Close(); });
    }
    std::shared_ptr<ResponseStream> stream;
    std::once_flag closed;
  };

  // What wakes a stream session: the stream's events (posted to the
  // session's strand), or the client closing its side.
  struct StreamWaker {
    explicit StreamWaker(net::any_io_executor executor) : timer(std::move(executor)) {}
    net::steady_timer timer;
    bool woken = false;
    bool client_gone = false;
  };

  struct Pending {
    explicit Pending(net::any_io_executor executor) : timer(std::move(executor)) {}
    net::steady_timer timer;
    bool done = false;
    HttpResponse response;
  };

  net::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(net::make_strand(io_), kUseTuple);
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
          co_return;
        }
        continue;  // e.g. EMFILE: keep accepting
      }
      if (stats_.active_connections.load() >= options_.max_connections) {
        ++stats_.connections_refused;
        auto executor = socket.get_executor();
        net::co_spawn(executor, Refuse(beast::tcp_stream(std::move(socket))), net::detached);
        continue;
      }
      ++stats_.connections_accepted;
      ++stats_.active_connections;
      auto executor = socket.get_executor();
      net::co_spawn(executor, Session(beast::tcp_stream(std::move(socket))),
                    [this](const std::exception_ptr&) { --stats_.active_connections; });
    }
  }

  net::awaitable<void> Refuse(beast::tcp_stream stream) {
    bhttp::response<bhttp::string_body> res =
        ToBeast(errors_(503, "too many connections", "/"), 11, false);
    stream.expires_after(std::chrono::seconds(5));
    co_await bhttp::async_write(stream, res, kUseTuple);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  // Takes the response by value: its body (a 50 KB result page) is moved
  // into Beast's, not copied.
  bhttp::response<bhttp::string_body> ToBeast(HttpResponse r, unsigned version, bool keep_alive) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::server, "lab-bridge");
    if (!r.content_type.empty()) {
      res.set(bhttp::field::content_type, r.content_type);
    }
    for (const auto& [name, value] : r.headers) {
      res.set(name, value);
    }
    res.body() = std::move(r.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    if (r.status >= 500) {
      ++stats_.responses_5xx;
    } else if (r.status >= 400) {
      ++stats_.responses_4xx;
    } else {
      ++stats_.responses_2xx;
    }
    return res;
  }

  // Runs the handler on the worker pool; answers 503 if it takes longer
  // than request_timeout (its late answer is dropped).
  net::awaitable<HttpResponse> RunHandler(std::shared_ptr<HttpRequest> request) {
    auto executor = co_await net::this_coro::executor;
    auto pending = std::make_shared<Pending>(executor);
    pending->timer.expires_after(ToChrono(options_.request_timeout));
    net::post(workers_, [this, request, pending, executor] {
      HttpResponse response = handler_(*request);
      net::post(executor, [pending, response = std::move(response)]() mutable {
        if (pending->done) {
          if (response.stream) {
            response.stream->Close();  // its 503 has already been sent
          }
          return;
        }
        pending->done = true;
        pending->response = std::move(response);
        pending->timer.cancel();
      });
    });
    co_await pending->timer.async_wait(kUseTuple);
    if (!pending->done) {
      pending->done = true;
      ++stats_.request_timeouts;
      co_return errors_(503, "request timed out", request->target);
    }
    co_return std::move(pending->response);
  }

  net::awaitable<void> Session(beast::tcp_stream stream) {
    beast::flat_buffer buffer;
    std::string peer;
    {
      boost::system::error_code ec;
      const tcp::endpoint remote = stream.socket().remote_endpoint(ec);
      if (!ec) {
        peer = remote.address().to_string();
      }
    }
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
      parser.body_limit(options_.body_limit);
      // Idle until the first byte of the next request, then the read limit.
      stream.expires_after(
          ToChrono(buffer.size() > 0 ? options_.read_timeout : options_.idle_timeout));
      auto [ec, unused] = co_await bhttp::async_read_header(stream, buffer, parser, kUseTuple);
      if (!ec && !parser.is_done()) {
        stream.expires_after(ToChrono(options_.read_timeout));
        std::tie(ec, unused) = co_await bhttp::async_read(stream, buffer, parser, kUseTuple);
      }
      if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
          ec == beast::error::timeout || ec == net::error::connection_reset ||
          ec == net::error::operation_aborted) {
        break;
      }
      if (ec) {
        const bool too_large = ec == bhttp::error::body_limit;
        if (too_large) {
          ++stats_.body_too_large;
        }
        // The request line is parsed before the header fields, so the target
        // is known even when Content-Length already broke the body limit.
        std::string target(parser.get().target());
        if (target.empty()) {
          target = "/";
        }
        HttpResponse refusal =
            too_large ? errors_(413,
                                "request body larger than " + std::to_string(options_.body_limit) +
                                    " bytes",
                                target)
                      : errors_(400, "malformed HTTP request: " + ec.message(), target);
        bhttp::response<bhttp::string_body> res = ToBeast(refusal, 11, false);
        stream.expires_after(ToChrono(options_.read_timeout));
        co_await bhttp::async_write(stream, res, kUseTuple);
        break;
      }
      ++stats_.requests;
      bhttp::request<bhttp::string_body> req = parser.release();
      auto request = std::make_shared<HttpRequest>();
      request->method = std::string(req.method_string());
      request->target = std::string(req.target());
      const std::size_t question = request->target.find('?');
      request->path = PercentDecode(std::string_view(request->target).substr(0, question), false);
      if (question != std::string::npos) {
        request->raw_query = request->target.substr(question + 1);
        request->query = ParseQuery(request->raw_query);
      }
      for (const auto& field : req) {
        request->headers.emplace_back(absl::AsciiStrToLower(std::string(field.name_string())),
                                      std::string(field.value()));
      }
      request->body = std::move(req.body());
      request->peer_address = peer;
      const bool keep_alive = req.keep_alive();
      const unsigned version = req.version();

      HttpResponse response = co_await RunHandler(request);
      if (response.stream) {
        co_await WriteStream(stream, std::move(response), version);
        break;
      }
      if (request->method == "HEAD") {
        response.body.clear();
      }
      bhttp::response<bhttp::string_body> res = ToBeast(std::move(response), version, keep_alive);
      stream.expires_after(ToChrono(options_.read_timeout));
      auto [write_ec, written] = co_await bhttp::async_write(stream, res, kUseTuple);
      if (write_ec || !keep_alive) {
        break;
      }
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Writes a streamed response until the stream ends, the client goes away
  // or a write fails. HTTP/1.1 gets chunks; HTTP/1.0 a body ended by close.
  net::awaitable<void> WriteStream(beast::tcp_stream& stream, HttpResponse response,
                                   unsigned version) {
    auto open = std::make_shared<OpenStream>(std::move(response.stream));
    const bool admitted = ++stats_.open_streams <= options_.max_streams;
    if (admitted) {
      std::lock_guard lock(streams_mutex_);
      streams_.insert(open);
    }
    const auto finish = [this, open, admitted] {
      if (admitted) {
        std::lock_guard lock(streams_mutex_);
        streams_.erase(open);
      }
      --stats_.open_streams;
      open->CloseOnce();
    };
    if (!admitted) {
      ++stats_.streams_refused;
      finish();
      bhttp::response<bhttp::string_body> res =
          ToBeast(errors_(503, "too many open event streams", "/"), version, false);
      stream.expires_after(ToChrono(options_.read_timeout));
      co_await bhttp::async_write(stream, res, kUseTuple);
      co_return;
    }

    bhttp::response<bhttp::empty_body> head{static_cast<bhttp::status>(response.status), version};
    head.set(bhttp::field::server, "lab-bridge");
    head.set(bhttp::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) {
      head.set(name, value);
    }
    head.keep_alive(false);
    const bool chunked = version >= 11;
    if (chunked) {
      head.chunked(true);
    }
    ++stats_.responses_2xx;
    bhttp::response_serializer<bhttp::empty_body> serializer{head};
    stream.expires_after(ToChrono(options_.read_timeout));
    auto [head_ec, head_written] =
        co_await bhttp::async_write_header(stream, serializer, kUseTuple);
    if (head_ec) {
      finish();
      co_return;
    }
    stream.expires_never();

    auto executor = co_await net::this_coro::executor;
    auto waker = std::make_shared<StreamWaker>(executor);
    std::weak_ptr<StreamWaker> weak_waker = waker;
    open->stream->Start([executor, weak_waker] {
      net::post(executor, [weak_waker] {
        if (std::shared_ptr<StreamWaker> w = weak_waker.lock()) {
          w->woken = true;
          w->timer.cancel();
        }
      });
    });
    // A client never sends on an event stream: any read completion (data,
    // end of stream, error) means it is done with it.
    auto scratch = std::make_shared<std::array<char, 512>>();
    stream.socket().async_read_some(net::buffer(*scratch),
                                    [waker, scratch](boost::system::error_code, std::size_t) {
                                      waker->client_gone = true;
                                      waker->timer.cancel();
                                    });

    bool first = true;  // the stream's opening text (retry, replay) goes out at once
    for (;;) {
      bool idle = false;
      if (!waker->woken && !waker->client_gone && !first) {
        waker->timer.expires_after(ToChrono(options_.stream_idle_interval));
        auto [wait_ec] = co_await waker->timer.async_wait(kUseTuple);
        idle = !wait_ec && !waker->woken;
      }
      first = false;
      if (waker->client_gone) {
        break;
      }
      waker->woken = false;
      std::optional<std::string> text = open->stream->Next(idle);
      if (text.has_value() && text->empty()) {
        continue;
      }
      stream.expires_after(ToChrono(options_.read_timeout));
      boost::system::error_code write_ec;
      if (!text.has_value()) {
        if (chunked) {
          std::tie(write_ec, std::ignore) =
              co_await net::async_write(stream, bhttp::make_chunk_last(), kUseTuple);
        }
        break;
      }
      if (chunked) {
        std::tie(write_ec, std::ignore) =
            co_await net::async_write(stream, bhttp::make_chunk(net::buffer(*text)), kUseTuple);
      } else {
        std::tie(write_ec, std::ignore) =
            co_await net::async_write(stream, net::buffer(*text), kUseTuple);
      }
      stream.expires_never();
      if (write_ec) {
        break;
      }
    }
    finish();
    boost::system::error_code ignored;
    stream.socket().cancel(ignored);
  }

  const HttpServerOptions options_;
  HttpHandler handler_;
  ErrorResponder errors_;
  HttpServerStats stats_;
  net::io_context io_;
  net::thread_pool workers_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::once_flag stopped_;
  std::mutex streams_mutex_;
  std::set<std::shared_ptr<OpenStream>> streams_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler,
                                                              ErrorResponder error_responder) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError("HTTP port out of range: " + std::to_string(options.port));
  }
  auto server =
      std::make_unique<ServerImpl>(options, std::move(handler), std::move(error_responder));
  if (absl::Status bound = server->Bind(); !bound.ok()) {
    return bound;
  }
  server->Run();
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace bridge::api::http
