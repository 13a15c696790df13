#include "mllp/client.h"

#include <array>
#include <chrono>
#include <deque>
#include <exception>
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mllp/frame_decoder.h"
#include "mllp/frame_encoder.h"
#include "mllp/tls_context.h"

namespace bridge::mllp {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using TlsStream = ssl::stream<tcp::socket>;

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

}  // namespace

// All I/O runs on a private io_context driven by the calling thread, only
// while a call is in progress. A reader coroutine stays pending between
// calls, so a reply that arrives after a call gave up is still decoded, and
// reported as stray, by the next call.
class Client::Impl {
 public:
  Impl(const ClientOptions& options, CorrelationIdExtractor extractor)
      : options_(options),
        extractor_(std::move(extractor)),
        decoder_(options.max_frame_bytes, kDefaultOversizePrefixBytes) {}

  ~Impl() { Close(); }

  absl::Status Init() {
    if (options_.host.empty()) {
      return absl::InvalidArgumentError("mllp client: empty host");
    }
    if (options_.tls.enabled) {
      absl::StatusOr<std::unique_ptr<ssl::context>> tls = MakeClientTlsContext(options_.tls);
      if (!tls.ok()) {
        return tls.status();
      }
      tls_ = *std::move(tls);
    }
    return absl::OkStatus();
  }

  absl::Status Connect();
  absl::StatusOr<Exchange> SendAndAwait(std::string_view payload, std::string_view expected_id);
  void Close();

  bool connected() {
    Pump();
    return connected_;
  }

  std::vector<StrayReply> TakeStrayReplies() { return std::exchange(stray_, {}); }

  std::vector<StrayReply> TakeUnsolicitedReplies() {
    Pump();
    std::vector<StrayReply> replies = std::exchange(stray_, {});
    while (!inbox_.empty()) {
      DecodedFrame frame = std::move(inbox_.front());
      inbox_.pop_front();
      if (frame.oversize) {
        Log(LogLevel::kWarning, "unsolicited frame over " +
                                    std::to_string(options_.max_frame_bytes) + " bytes dropped");
        continue;
      }
      std::optional<std::string> id =
          extractor_ ? extractor_(frame.payload) : std::optional<std::string>();
      replies.push_back({std::move(frame.payload), std::move(id)});
    }
    return replies;
  }

 private:
  net::awaitable<absl::Status> ConnectOp();
  net::awaitable<absl::Status> WriteOp(std::string wire);
  static net::awaitable<void> ReadLoop(Impl* self, std::uint64_t generation);

  // Runs `op` on the private io_context until it completes or `deadline`
  // passes; on the deadline the connection is closed and `on_timeout` returned.
  absl::Status RunUntil(net::awaitable<absl::Status> op, Clock::time_point deadline,
                        absl::Status on_timeout);
  // Runs ready handlers (e.g. a read that completed between calls).
  void Pump() {
    io_.restart();
    io_.poll();
  }

  tcp::socket& Lowest() { return tls_stream_ ? tls_stream_->next_layer() : *socket_; }

  void Log(LogLevel level, const std::string& line) const {
    if (options_.log) {
      options_.log(level, "mllp client " + options_.host + ":" + std::to_string(options_.port) +
                              ": " + line);
    }
  }

  const ClientOptions options_;
  const CorrelationIdExtractor extractor_;
  std::unique_ptr<ssl::context> tls_;
  FrameDecoder decoder_;
  std::deque<DecodedFrame> inbox_;  // decoded, not yet examined
  std::vector<StrayReply> stray_;   // from failed calls
  bool connected_ = false;
  bool fresh_connection_ = false;
  std::uint64_t generation_ = 0;  // bumps per connection; a stale reader ignores its results
  std::string read_error_;
  // Declared after everything the coroutines touch; sockets before the context.
  net::io_context io_;
  std::unique_ptr<tcp::socket> socket_;
  std::unique_ptr<TlsStream> tls_stream_;
};

absl::Status Client::Impl::RunUntil(net::awaitable<absl::Status> op, Clock::time_point deadline,
                                    absl::Status on_timeout) {
  std::optional<absl::Status> result;
  net::co_spawn(io_, std::move(op), [&result](std::exception_ptr e, absl::Status s) {
    result = e ? absl::InternalError("mllp client: BUG: exception in I/O coroutine") : s;
  });
  while (!result.has_value()) {
    io_.restart();
    if (io_.run_one_until(deadline) == 0 && Clock::now() >= deadline) {
      break;
    }
  }
  if (result.has_value()) {
    return *result;
  }
  Close();  // aborts the operation; Close() also drains the io_context
  return on_timeout;
}

net::awaitable<absl::Status> Client::Impl::ConnectOp() {
  tcp::resolver resolver(io_);
  auto [resolve_ec, endpoints] =
      co_await resolver.async_resolve(options_.host, std::to_string(options_.port), kUseTuple);
  if (resolve_ec) {
    co_return absl::UnavailableError("mllp client: cannot resolve " + options_.host + ": " +
                                     resolve_ec.message());
  }
  auto [connect_ec, endpoint] = co_await net::async_connect(Lowest(), endpoints, kUseTuple);
  if (connect_ec) {
    co_return absl::UnavailableError("mllp client: cannot connect to " + options_.host + ":" +
                                     std::to_string(options_.port) + ": " + connect_ec.message());
  }
  boost::system::error_code ignored;
  Lowest().set_option(tcp::no_delay(true), ignored);
  if (tls_stream_) {
    const std::string& name =
        options_.tls.server_name.empty() ? options_.host : options_.tls.server_name;
    SSL* ssl = tls_stream_->native_handle();
    boost::system::error_code not_ip;
    net::ip::make_address(name, not_ip);
    if (not_ip) {
      // A DNS name: send it as SNI and require it in the certificate.
      SSL_set_tlsext_host_name(ssl, name.c_str());
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (SSL_set1_host(ssl, name.c_str()) != 1) {
        co_return absl::InternalError("mllp client: cannot set host name check");
      }
    } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1) {
      co_return absl::InternalError("mllp client: cannot set IP address check");
    }
    auto [hs_ec] = co_await tls_stream_->async_handshake(ssl::stream_base::client, kUseTuple);
    if (hs_ec) {
      std::string detail = hs_ec.message();
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        detail += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
      }
      co_return absl::UnavailableError("mllp client: TLS handshake with " + name +
                                       " failed: " + detail);
    }
  }
  co_return absl::OkStatus();
}

net::awaitable<absl::Status> Client::Impl::WriteOp(std::string wire) {
  boost::system::error_code ec;
  if (tls_stream_) {
    std::tie(ec, std::ignore) = co_await net::async_write(*tls_stream_, net::buffer(wire), kUseTuple);
  } else {
    std::tie(ec, std::ignore) = co_await net::async_write(*socket_, net::buffer(wire), kUseTuple);
  }
  if (ec) {
    co_return absl::UnavailableError("mllp client: write failed: " + ec.message());
  }
  co_return absl::OkStatus();
}

net::awaitable<void> Client::Impl::ReadLoop(Impl* self, std::uint64_t generation) {
  std::array<char, 16 * 1024> buffer;
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = 0;
    if (self->tls_stream_) {
      std::tie(ec, n) = co_await self->tls_stream_->async_read_some(net::buffer(buffer), kUseTuple);
    } else {
      std::tie(ec, n) = co_await self->socket_->async_read_some(net::buffer(buffer), kUseTuple);
    }
    if (generation != self->generation_) {
      co_return;  // the connection this reader served is gone
    }
    std::vector<DecodedFrame> frames;
    if (ec) {
      self->decoder_.Finish(&frames);
    } else {
      self->decoder_.Feed(std::string_view(buffer.data(), n), &frames);
    }
    for (DecodedFrame& f : frames) {
      self->inbox_.push_back(std::move(f));
    }
    if (ec) {
      self->connected_ = false;
      self->read_error_ = ec == net::error::eof ? "peer closed the connection" : ec.message();
      co_return;
    }
  }
}

absl::Status Client::Impl::Connect() {
  Pump();
  if (connected_) {
    return absl::OkStatus();
  }
  Close();
  socket_ = std::make_unique<tcp::socket>(io_);
  if (tls_) {
    tls_stream_ = std::make_unique<TlsStream>(io_, *tls_);
  }
  const Clock::time_point deadline = Clock::now() + options_.connect_timeout;
  absl::Status s = RunUntil(ConnectOp(), deadline,
                            absl::UnavailableError("mllp client: connect to " + options_.host +
                                                   ":" + std::to_string(options_.port) +
                                                   " timed out"));
  if (!s.ok()) {
    Close();
    Log(LogLevel::kWarning, std::string(s.message()));
    return s;
  }
  connected_ = true;
  fresh_connection_ = true;
  read_error_.clear();
  ++generation_;
  net::co_spawn(io_, ReadLoop(this, generation_), net::detached);
  return absl::OkStatus();
}

void Client::Impl::Close() {
  ++generation_;
  connected_ = false;
  if (socket_ || tls_stream_) {
    boost::system::error_code ignored;
    Lowest().close(ignored);
  }
  // Let aborted operations finish before their objects go away.
  io_.restart();
  io_.run();
  tls_stream_.reset();
  socket_.reset();
  decoder_.Reset();
  inbox_.clear();
}

absl::StatusOr<Exchange> Client::Impl::SendAndAwait(std::string_view payload,
                                                    std::string_view expected_id) {
  if (!IsFrameable(payload)) {
    return absl::InvalidArgumentError("mllp client: payload contains <VT> or <FS>");
  }
  Exchange exchange;
  // Late replies that arrived since the last call are strays of this one.
  Pump();
  if (!connected_) {
    // Keep what the dead connection delivered before closing it.
    for (DecodedFrame& f : inbox_) {
      stray_.push_back({std::move(f.payload), std::nullopt});
    }
    if (absl::Status s = Connect(); !s.ok()) {
      return s;
    }
  }
  exchange.reused_connection = !fresh_connection_;
  fresh_connection_ = false;

  const Clock::time_point deadline = Clock::now() + options_.ack_timeout;
  if (absl::Status s = RunUntil(WriteOp(Frame(payload)), deadline,
                                absl::DeadlineExceededError("mllp client: write timed out"));
      !s.ok()) {
    Close();
    return s;
  }
  auto fail = [&](absl::Status s) {
    for (StrayReply& r : exchange.stray_replies) {
      stray_.push_back(std::move(r));
    }
    return s;
  };
  for (;;) {
    while (!inbox_.empty()) {
      DecodedFrame frame = std::move(inbox_.front());
      inbox_.pop_front();
      if (frame.oversize) {
        Close();
        return fail(absl::ResourceExhaustedError("mllp client: reply over " +
                                                 std::to_string(options_.max_frame_bytes) +
                                                 " bytes"));
      }
      if (!extractor_) {
        exchange.reply = std::move(frame.payload);
        return exchange;
      }
      std::optional<std::string> id = extractor_(frame.payload);
      if (id.has_value() && *id == expected_id) {
        exchange.reply = std::move(frame.payload);
        return exchange;
      }
      Log(LogLevel::kWarning, "stray reply (correlation id '" + id.value_or("<none>") +
                                  "', expected '" + std::string(expected_id) + "')");
      exchange.stray_replies.push_back({std::move(frame.payload), std::move(id)});
    }
    if (!connected_) {
      std::string why = read_error_;
      Close();
      return fail(absl::UnavailableError("mllp client: connection lost before the reply: " + why));
    }
    if (Clock::now() >= deadline) {
      return fail(absl::DeadlineExceededError("mllp client: no reply for " +
                                              std::string(expected_id) + " within " +
                                              std::to_string(options_.ack_timeout.count()) +
                                              " ms"));
    }
    io_.restart();
    io_.run_one_until(deadline);
  }
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options,
                                                       CorrelationIdExtractor extractor) {
  auto impl = std::make_unique<Impl>(options, std::move(extractor));
  if (absl::Status s = impl->Init(); !s.ok()) {
    return s;
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::Status Client::Connect() { return impl_->Connect(); }

absl::StatusOr<Exchange> Client::SendAndAwait(std::string_view payload,
                                              std::string_view expected_id) {
  return impl_->SendAndAwait(payload, expected_id);
}

std::vector<StrayReply> Client::TakeStrayReplies() { return impl_->TakeStrayReplies(); }

std::vector<StrayReply> Client::TakeUnsolicitedReplies() {
  return impl_->TakeUnsolicitedReplies();
}

void Client::Close() { impl_->Close(); }

bool Client::connected() const { return impl_->connected(); }

}  // namespace bridge::mllp
