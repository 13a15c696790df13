#include "mllp/server.h"

#include <array>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <openssl/ssl.h>

#include "absl/status/status.h"
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
constexpr std::size_t kReadChunkBytes = 16 * 1024;

// What a session is doing; decides what a graceful stop may interrupt.
enum class Phase { kHandshake, kReading, kHandling, kWriting, kClosed };

// Which deadline is armed, so the watchdog can count what cut a connection.
enum class DeadlineKind { kNone, kHandshake, kIdle, kFrame, kWrite };

tcp::socket& Lowest(tcp::socket& s) { return s; }
tcp::socket& Lowest(TlsStream& s) { return s.next_layer(); }

// Type-erased view of a session for the server's registry.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Start() = 0;  // spawns the session's coroutines on its strand
  // Both are thread-safe: they post to the session's strand.
  virtual void RequestStop() = 0;  // close now if not in the middle of a message
  virtual void ForceClose() = 0;
};

}  // namespace

class Server::Impl : public std::enable_shared_from_this<Server::Impl> {
 public:
  Impl(const ServerOptions& options, MessageHandler& handler)
      : options_(options), handler_(handler), acceptor_(net::make_strand(io_)) {}

  ~Impl() { Stop(); }

  absl::Status Open();
  void Run();
  void Stop();

  void Log(LogLevel level, const std::string& line) const {
    if (options_.log) {
      options_.log(level, line);
    }
  }

  // Called by a session's destructor.
  void Unregister(std::uint64_t id, const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(id);
    if (auto it = per_peer_.find(address); it != per_peer_.end() && --it->second == 0) {
      per_peer_.erase(it);
    }
    stats_.active_connections.fetch_sub(1);
    cv_.notify_all();
  }

  const ServerOptions options_;
  MessageHandler& handler_;  // not owned; outlives the server (see Server::Start)
  ServerStats stats_;
  std::unique_ptr<ssl::context> tls_;  // null: plain TCP
  std::atomic<bool> stopping_{false};
  std::uint16_t port_ = 0;

 private:
  net::awaitable<void> AcceptLoop();
  void StartSession(tcp::socket socket);
  std::vector<std::shared_ptr<SessionBase>> LiveSessions();

  std::atomic<std::uint64_t> next_connection_id_{1};
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::uint64_t, std::weak_ptr<SessionBase>> sessions_;  // guarded by mu_
  std::unordered_map<std::string, std::size_t> per_peer_;                  // guarded by mu_
  std::mutex stop_mu_;
  bool stopped_ = false;  // guarded by stop_mu_
  std::vector<std::thread> threads_;

  // Declared last so it is destroyed first: pending coroutines it destroys
  // run session destructors, which still need the registry above.
  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;  // on its own strand
};

namespace {

// Completes the coroutine waiting for a handler's reply, from whatever thread
// the handler calls ReplyFn on; a ReplyFn dropped uncalled completes with
// nullopt. Keeps the server (and so its io_context) alive while a handler
// still holds the callback.
template <typename Handler>
class ReplyState {
 public:
  ReplyState(Handler handler, std::shared_ptr<Server::Impl> server)
      : server_(std::move(server)), handler_(std::move(handler)) {}
  ReplyState(const ReplyState&) = delete;
  ReplyState& operator=(const ReplyState&) = delete;
  ~ReplyState() { Complete(std::nullopt); }

  void Complete(std::optional<std::string> reply) {
    std::optional<Handler> handler;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!handler_.has_value()) {
        return;  // already answered
      }
      handler.emplace(std::move(*handler_));
      handler_.reset();
    }
    // Resume the session on its own strand, never inline on the caller's thread.
    auto executor = net::get_associated_executor(*handler);
    net::post(executor, [h = std::move(*handler), reply = std::move(reply)]() mutable {
      std::move(h)(std::move(reply));
    });
  }

 private:
  std::shared_ptr<Server::Impl> server_;  // first member: released last
  std::mutex mu_;
  std::optional<Handler> handler_;  // guarded by mu_
};

// Awaitable wrapper around MessageHandler's callback API.
template <typename Token>
auto AsyncHandle(Server::Impl& server, DecodedFrame frame, const PeerInfo& peer, Token&& token) {
  return net::async_initiate<Token, void(std::optional<std::string>)>(
      [](auto handler, Server::Impl* server, DecodedFrame frame, const PeerInfo* peer) {
        using Handler = std::decay_t<decltype(handler)>;
        auto state = std::make_shared<ReplyState<Handler>>(std::move(handler),
                                                           server->shared_from_this());
        ReplyFn done = [state](std::optional<std::string> reply) {
          state->Complete(std::move(reply));
        };
        state.reset();
        if (frame.oversize) {
          server->handler_.HandleOversizeFrame(std::move(frame.payload), *peer, std::move(done));
        } else {
          server->handler_.HandleFrame(std::move(frame.payload), *peer, std::move(done));
        }
      },
      token, &server, std::move(frame), &peer);
}

template <typename Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Session(Server::Impl& server, Stream stream, PeerInfo peer)
      : server_(server),
        stream_(std::move(stream)),
        watchdog_(stream_.get_executor()),
        peer_(std::move(peer)),
        decoder_(server.options_.max_frame_bytes, server.options_.oversize_prefix_bytes) {}

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  ~Session() override { Unregister(); }

  void Start() override {
    auto self = this->shared_from_this();
    Server::Impl* server = &server_;
    auto on_exit = [server](std::exception_ptr e) {
      if (e) {
        server->Log(LogLevel::kError, "mllp: BUG: exception escaped a session coroutine");
      }
    };
    net::co_spawn(stream_.get_executor(), Serve(self), on_exit);
    net::co_spawn(stream_.get_executor(), Watchdog(self), on_exit);
  }

  void RequestStop() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->phase_ == Phase::kReading || self->phase_ == Phase::kHandshake) {
        self->Close();
      }  // else: Serve() sees stopping_ once the message in hand is answered
    });
  }

  void ForceClose() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Close(); });
  }

 private:
  static net::awaitable<void> Serve(std::shared_ptr<Session> self) {
    co_await self->ServeLoop();
    self->Close();
  }

  net::awaitable<void> ServeLoop() {
    ServerStats& stats = server_.stats_;
    const ServerOptions& options = server_.options_;
    if constexpr (kTls) {
      phase_ = Phase::kHandshake;
      SetDeadline(Clock::now() + options.handshake_timeout, DeadlineKind::kHandshake);
      auto [ec] = co_await stream_.async_handshake(ssl::stream_base::server, kUseTuple);
      if (ec) {
        if (!timed_out_) {
          stats.tls_handshake_failures.fetch_add(1);
          Log(LogLevel::kWarning, "TLS handshake failed: " + ec.message());
        }
        co_return;
      }
      if (!CheckPeerCertificate()) {
        co_return;
      }
    }

    std::vector<DecodedFrame> frames;
    std::array<char, kReadChunkBytes> buffer;
    std::uint64_t frames_started_seen = 0;
    Clock::time_point frame_started;
    for (;;) {
      if (server_.stopping_.load()) {
        co_return;
      }
      phase_ = Phase::kReading;
      if (decoder_.in_frame()) {
        SetDeadline(frame_started + options.frame_read_timeout, DeadlineKind::kFrame);
      } else {
        SetDeadline(Clock::now() + options.idle_timeout, DeadlineKind::kIdle);
      }
      auto [ec, n] = co_await stream_.async_read_some(net::buffer(buffer), kUseTuple);
      const DecoderStats before = decoder_.stats();
      bool end_of_stream = false;
      if (ec == net::error::eof || ec == ssl::error::stream_truncated) {
        end_of_stream = true;
        decoder_.Finish(&frames);  // a last frame may lack its final <CR>
      } else if (ec) {
        if (!timed_out_ && ec != net::error::operation_aborted) {
          Log(LogLevel::kDebug, "read failed: " + ec.message());
        }
        CountDecoder(before);
        co_return;
      } else {
        decoder_.Feed(std::string_view(buffer.data(), n), &frames);
      }
      CountDecoder(before);

      for (DecodedFrame& frame : frames) {
        const bool oversize = frame.oversize;
        if (oversize) {
          Log(LogLevel::kWarning, "frame over " + std::to_string(options.max_frame_bytes) +
                                      " bytes refused");
        } else {
          stats.frames_received.fetch_add(1);
        }
        phase_ = Phase::kHandling;
        SetDeadline(Clock::time_point::max(), DeadlineKind::kNone);
        std::optional<std::string> reply =
            co_await AsyncHandle(server_, std::move(frame), peer_, net::use_awaitable);
        if (closed_) {
          co_return;  // force-closed while the handler worked
        }
        if (!reply.has_value()) {
          stats.handler_unanswered.fetch_add(1);
          co_return;
        }
        phase_ = Phase::kWriting;
        SetDeadline(Clock::now() + options.write_timeout, DeadlineKind::kWrite);
        const std::string wire = Frame(*reply);
        auto [write_ec, written] = co_await net::async_write(stream_, net::buffer(wire), kUseTuple);
        if (write_ec) {
          if (!timed_out_) {
            Log(LogLevel::kDebug, "write failed: " + write_ec.message());
          }
          co_return;
        }
        stats.replies_sent.fetch_add(1);
        if (oversize || server_.stopping_.load()) {
          co_return;  // oversize: we cannot resynchronise cheaply; stop: message in hand done
        }
      }
      frames.clear();
      if (end_of_stream) {
        co_return;
      }
      // A frame still open started in this chunk: its read deadline runs from
      // now, not from before the handler calls above.
      if (decoder_.stats().frames_started != frames_started_seen) {
        frames_started_seen = decoder_.stats().frames_started;
        frame_started = Clock::now();
      }
    }
  }

  static net::awaitable<void> Watchdog(std::shared_ptr<Session> self) {
    while (!self->closed_) {
      self->watchdog_.expires_at(self->deadline_);
      co_await self->watchdog_.async_wait(kUseTuple);
      if (self->closed_) {
        co_return;
      }
      if (self->deadline_ <= Clock::now()) {
        self->OnDeadline();
        co_return;
      }
    }
  }

  void OnDeadline() {
    ServerStats& stats = server_.stats_;
    timed_out_ = true;
    switch (deadline_kind_) {
      case DeadlineKind::kHandshake:
        stats.handshake_timeouts.fetch_add(1);
        Log(LogLevel::kInfo, "TLS handshake deadline passed; closing");
        break;
      case DeadlineKind::kIdle:
        stats.idle_timeouts.fetch_add(1);
        Log(LogLevel::kInfo, "idle timeout; closing");
        break;
      case DeadlineKind::kFrame:
        stats.frame_timeouts.fetch_add(1);
        Log(LogLevel::kWarning, "frame not complete within its read deadline; closing");
        break;
      case DeadlineKind::kWrite:
        stats.write_timeouts.fetch_add(1);
        Log(LogLevel::kWarning, "reply not written within its deadline; closing");
        break;
      case DeadlineKind::kNone:
        break;
    }
    Close();
  }

  // REQUIRES: on the strand.
  void SetDeadline(Clock::time_point deadline, DeadlineKind kind) {
    const bool earlier = deadline < deadline_;
    deadline_ = deadline;
    deadline_kind_ = kind;
    if (earlier) {
      watchdog_.cancel();  // re-arm the watchdog for the nearer deadline
    }
  }

  // REQUIRES: on the strand.
  void Close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    phase_ = Phase::kClosed;
    boost::system::error_code ignored;
    Lowest(stream_).shutdown(tcp::socket::shutdown_both, ignored);
    Lowest(stream_).close(ignored);
    watchdog_.cancel();
    // The connection ends here, even if a handler still holds its ReplyFn.
    Unregister();
  }

  void Unregister() {
    if (registered_) {
      registered_ = false;
      server_.Unregister(peer_.connection_id, peer_.address);
    }
  }

  bool CheckPeerCertificate() {
    if constexpr (kTls) {
      X509* cert = SSL_get1_peer_certificate(stream_.native_handle());
      CertificateIdentity identity = DescribeCertificate(cert);
      if (cert != nullptr) {
        X509_free(cert);
      }
      peer_.tls = true;
      peer_.certificate_subject = identity.subject;
      peer_.certificate_names = identity.names;
      const std::vector<std::string>& allowed = server_.options_.tls.allowed_peers;
      if (!allowed.empty() && !IsAllowedPeer(identity, allowed)) {
        server_.stats_.peers_not_allowed.fetch_add(1);
        Log(LogLevel::kWarning, "client certificate '" + identity.subject +
                                    "' is not on the allow-list; closing");
        return false;
      }
    }
    return true;
  }

  void CountDecoder(const DecoderStats& before) {
    const DecoderStats& after = decoder_.stats();
    ServerStats& stats = server_.stats_;
    stats.junk_bytes.fetch_add(after.junk_bytes - before.junk_bytes);
    stats.oversize_frames.fetch_add(after.oversize_frames - before.oversize_frames);
    stats.truncated_frames.fetch_add(after.truncated_frames - before.truncated_frames);
  }

  void Log(LogLevel level, const std::string& line) const {
    server_.Log(level, "mllp: conn=" + std::to_string(peer_.connection_id) + " peer=" +
                           peer_.address + ":" + std::to_string(peer_.port) + " " + line);
  }

  Server::Impl& server_;  // outlives every session: it owns the io_context they run on
  Stream stream_;
  net::steady_timer watchdog_;
  PeerInfo peer_;
  FrameDecoder decoder_;
  Phase phase_ = Phase::kReading;
  Clock::time_point deadline_ = Clock::time_point::max();
  DeadlineKind deadline_kind_ = DeadlineKind::kNone;
  bool closed_ = false;
  bool timed_out_ = false;
  bool registered_ = true;  // counted in the server's registry and limits
};

}  // namespace

absl::Status Server::Impl::Open() {
  if (options_.io_threads < 1) {
    return absl::InvalidArgumentError("mllp: io_threads must be at least 1");
  }
  if (options_.max_connections == 0 || options_.max_connections_per_peer == 0) {
    return absl::InvalidArgumentError("mllp: connection limits must be at least 1");
  }
  if (options_.tls.enabled()) {
    absl::StatusOr<std::unique_ptr<ssl::context>> tls = MakeServerTlsContext(options_.tls);
    if (!tls.ok()) {
      return tls.status();
    }
    tls_ = *std::move(tls);
  }
  boost::system::error_code ec;
  tcp::resolver resolver(io_);
  auto results = resolver.resolve(options_.listen_host, std::to_string(options_.port),
                                  tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError("mllp: cannot resolve listen host '" + options_.listen_host +
                                      "': " + ec.message());
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor_.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return absl::UnavailableError("mllp: cannot listen on " + options_.listen_host + ":" +
                                  std::to_string(options_.port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  return absl::OkStatus();
}

void Server::Impl::Run() {
  work_.emplace(io_.get_executor());
  net::co_spawn(acceptor_.get_executor(), AcceptLoop(), [this](std::exception_ptr e) {
    if (e) {
      Log(LogLevel::kError, "mllp: BUG: exception escaped the accept loop");
    }
  });
  for (int i = 0; i < options_.io_threads; ++i) {
    threads_.emplace_back([this] { io_.run(); });
  }
  Log(LogLevel::kInfo, "mllp: listening on " + options_.listen_host + ":" + std::to_string(port_) +
                           (tls_ ? " (TLS)" : " (plain TCP)"));
}

net::awaitable<void> Server::Impl::AcceptLoop() {
  net::steady_timer backoff(acceptor_.get_executor());
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(net::make_strand(io_), kUseTuple);
    if (stopping_.load() || !acceptor_.is_open()) {
      co_return;
    }
    if (ec) {
      // E.g. EMFILE: back off briefly instead of spinning.
      Log(LogLevel::kWarning, "mllp: accept failed: " + ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(kUseTuple);
      continue;
    }
    StartSession(std::move(socket));
  }
}

void Server::Impl::StartSession(tcp::socket socket) {
  boost::system::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) {
    socket.close(ec);
    return;
  }
  PeerInfo peer;
  peer.address = remote.address().to_string();
  peer.port = remote.port();
  peer.connection_id = next_connection_id_.fetch_add(1);
  peer.tls = tls_ != nullptr;
  socket.set_option(tcp::no_delay(true), ec);
  // The session is created under the lock (so Stop() sees it) but started,
  // and possibly destroyed, outside it: its destructor takes the lock.
  std::shared_ptr<SessionBase> session;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t& from_peer = per_peer_[peer.address];
    if (sessions_.size() >= options_.max_connections ||
        from_peer >= options_.max_connections_per_peer) {
      if (from_peer == 0) {
        per_peer_.erase(peer.address);
      }
      stats_.connections_refused.fetch_add(1);
      Log(LogLevel::kWarning, "mllp: connection from " + peer.address + " refused: limit reached");
      socket.close(ec);
      return;
    }
    ++from_peer;
    stats_.connections_accepted.fetch_add(1);
    stats_.active_connections.fetch_add(1);
    const std::uint64_t id = peer.connection_id;
    if (tls_) {
      session = std::make_shared<Session<TlsStream>>(*this, TlsStream(std::move(socket), *tls_),
                                                     std::move(peer));
    } else {
      session = std::make_shared<Session<tcp::socket>>(*this, std::move(socket), std::move(peer));
    }
    sessions_[id] = session;
  }
  session->Start();
}

std::vector<std::shared_ptr<SessionBase>> Server::Impl::LiveSessions() {
  std::vector<std::shared_ptr<SessionBase>> live;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, weak] : sessions_) {
    if (std::shared_ptr<SessionBase> s = weak.lock()) {
      live.push_back(std::move(s));
    }
  }
  return live;
}

void Server::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) {
      return;
    }
    stopped_ = true;
  }
  stopping_.store(true);
  if (threads_.empty()) {
    return;  // never ran
  }
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  for (const std::shared_ptr<SessionBase>& s : LiveSessions()) {
    s->RequestStop();
  }
  auto all_ended = [this] { return sessions_.empty(); };
  bool ended = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    ended = cv_.wait_for(lock, options_.shutdown_grace, all_ended);
  }
  if (!ended) {
    Log(LogLevel::kWarning, "mllp: shutdown grace passed; closing remaining connections");
    for (const std::shared_ptr<SessionBase>& s : LiveSessions()) {
      s->ForceClose();
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(1), all_ended);
  }
  work_.reset();
  io_.stop();
  for (std::thread& t : threads_) {
    t.join();
  }
  threads_.clear();
  Log(LogLevel::kInfo, "mllp: stopped");
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      MessageHandler& handler) {
  auto impl = std::make_shared<Impl>(options, handler);
  if (absl::Status s = impl->Open(); !s.ok()) {
    return s;
  }
  impl->Run();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

std::uint16_t Server::port() const { return impl_->port_; }

void Server::Stop() { impl_->Stop(); }

const ServerStats& Server::stats() const { return impl_->stats_; }

}  // namespace bridge::mllp
