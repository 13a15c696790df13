#include "mllp/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "mllp/frame_encoder.h"
#include "mllp/server.h"
#include "tests/mllp/mllp_test_support.h"

namespace bridge::mllp {
namespace {

using namespace bridge::mllp::testing;

// A one-connection scripted MLLP peer on a raw socket: `script` gets the
// accepted fd and does whatever the test needs.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<void(int fd)> script) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 4);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd >= 0) {
        script(fd);
        ::close(fd);
      }
    });
  }
  ~ScriptedServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// Reads one frame from a raw fd (blocking).
std::string ReadFrameFromFd(int fd, FrameDecoder& decoder, std::vector<DecodedFrame>& pending) {
  while (pending.empty()) {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      return "";
    }
    decoder.Feed(std::string_view(buf, static_cast<std::size_t>(n)), &pending);
  }
  std::string out = std::move(pending.front().payload);
  pending.erase(pending.begin());
  return out;
}

void SendAll(int fd, const std::string& bytes) {
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
}

ClientOptions LocalClient(std::uint16_t port) {
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.connect_timeout = 2s;
  options.ack_timeout = 2s;
  return options;
}

std::unique_ptr<Client> MakeClient(const ClientOptions& options) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options, &Msa2);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

TEST(ClientTest, SendsAndCorrelatesOverOneReusedConnection) {
  AckHandler handler;
  ServerOptions server_options;
  server_options.listen_host = "127.0.0.1";
  server_options.port = 0;
  auto server = Server::Start(server_options, handler);
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<Client> client = MakeClient(LocalClient((*server)->port()));
  for (int i = 0; i < 20; ++i) {
    const std::string id = "K" + std::to_string(i);
    absl::StatusOr<Exchange> ex = client->SendAndAwait(TestMessage(id), id);
    ASSERT_TRUE(ex.ok()) << ex.status();
    EXPECT_EQ(Msa2(ex->reply), id);
    EXPECT_TRUE(ex->stray_replies.empty());
    EXPECT_EQ(ex->reused_connection, i > 0);
  }
  EXPECT_EQ((*server)->stats().connections_accepted.load(), 1u);
}

TEST(ClientTest, ReconnectsAfterTheServerClosedTheConnection) {
  AckHandler handler;
  ServerOptions server_options;
  server_options.listen_host = "127.0.0.1";
  server_options.port = 0;
  server_options.idle_timeout = 100ms;
  auto server = Server::Start(server_options, handler);
  ASSERT_TRUE(server.ok());
  std::unique_ptr<Client> client = MakeClient(LocalClient((*server)->port()));
  ASSERT_TRUE(client->SendAndAwait(TestMessage("R1"), "R1").ok());
  ASSERT_TRUE(WaitFor([&] { return (*server)->stats().idle_timeouts.load() == 1; }));
  absl::StatusOr<Exchange> ex = client->SendAndAwait(TestMessage("R2"), "R2");
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_FALSE(ex->reused_connection);
}

TEST(ClientTest, ConnectRefusedIsUnavailable) {
  // Bind then close a socket to get a port where nothing listens.
  std::uint16_t port = 0;
  {
    ScriptedServer closed([](int) {});
    port = closed.port();
    RawConnection unblock(port);
  }
  std::unique_ptr<Client> client = MakeClient(LocalClient(port));
  absl::StatusOr<Exchange> ex = client->SendAndAwait(TestMessage("U1"), "U1");
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kUnavailable) << ex.status();
}

// A peer that accepts TCP but never answers the TLS ClientHello: the connect
// deadline (resolve + TCP + handshake) must fire.
TEST(ClientTest, StalledTlsHandshakeIsUnavailableAtTheConnectDeadline) {
  ScriptedServer mute([](int fd) {
    char buf[4096];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  });
  ClientOptions options = LocalClient(mute.port());
  options.connect_timeout = 300ms;
  options.tls.enabled = true;  // system trust store; never reached
  std::unique_ptr<Client> client = MakeClient(options);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Exchange> ex = client->SendAndAwait(TestMessage("H1"), "H1");
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kUnavailable) << ex.status();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 290ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_FALSE(client->connected());
}

TEST(ClientTest, NoReplyIsDeadlineExceeded) {
  ScriptedServer silent([](int fd) {
    char buf[4096];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  });
  ClientOptions options = LocalClient(silent.port());
  options.ack_timeout = 200ms;
  std::unique_ptr<Client> client = MakeClient(options);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Exchange> ex = client->SendAndAwait(TestMessage("T1"), "T1");
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kDeadlineExceeded) << ex.status();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  client->Close();
}

TEST(ClientTest, PeerClosingBeforeTheReplyIsUnavailable) {
  ScriptedServer rude([](int fd) {
    FrameDecoder decoder;
    std::vector<DecodedFrame> pending;
    ReadFrameFromFd(fd, decoder, pending);
  });
  std::unique_ptr<Client> client = MakeClient(LocalClient(rude.port()));
  absl::StatusOr<Exchange> ex = client->SendAndAwait(TestMessage("X1"), "X1");
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kUnavailable) << ex.status();
}

TEST(ClientTest, UnframeablePayloadIsInvalidArgument) {
  std::unique_ptr<Client> client = MakeClient(LocalClient(1));
  EXPECT_EQ(client->SendAndAwait(std::string("MSH\x1c", 4), "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The scripted server answers message 1 late, only after message 2 arrived,
// and sends ACK(1) before ACK(2). The client must time out on 1, then report
// ACK(1) as stray and take only ACK(2) for message 2.
TEST(ClientTest, LateAckForAPreviousMessageIsNeverTakenForTheCurrentOne) {
  ScriptedServer scripted([](int fd) {
    FrameDecoder decoder;
    std::vector<DecodedFrame> pending;
    const std::string first = ReadFrameFromFd(fd, decoder, pending);
    const std::string second = ReadFrameFromFd(fd, decoder, pending);
    SendAll(fd, Frame(AckFor(first)) + Frame("MSH|^~\\&|no MSA here"));
    std::this_thread::sleep_for(50ms);
    SendAll(fd, Frame(AckFor(second)));
    char buf[64];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  });
  ClientOptions options = LocalClient(scripted.port());
  options.ack_timeout = 300ms;
  std::unique_ptr<Client> client = MakeClient(options);
  absl::StatusOr<Exchange> first = client->SendAndAwait(TestMessage("M1"), "M1");
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<Exchange> second = client->SendAndAwait(TestMessage("M2"), "M2");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Msa2(second->reply), "M2");
  EXPECT_TRUE(second->reused_connection);
  ASSERT_EQ(second->stray_replies.size(), 2u);
  EXPECT_EQ(second->stray_replies[0].correlation_id, "M1");
  EXPECT_EQ(second->stray_replies[1].correlation_id, std::nullopt);
  client->Close();
}

// A mismatched reply arriving alone is stray, and the wait ends at the deadline.
TEST(ClientTest, OnlyMismatchedRepliesIsDeadlineExceededWithStraysKept) {
  ScriptedServer scripted([](int fd) {
    FrameDecoder decoder;
    std::vector<DecodedFrame> pending;
    ReadFrameFromFd(fd, decoder, pending);
    SendAll(fd, Frame(AckFor(TestMessage("OTHER"))));
    char buf[64];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  });
  ClientOptions options = LocalClient(scripted.port());
  options.ack_timeout = 200ms;
  std::unique_ptr<Client> client = MakeClient(options);
  absl::StatusOr<Exchange> ex = client->SendAndAwait(TestMessage("MINE"), "MINE");
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kDeadlineExceeded);
  std::vector<StrayReply> strays = client->TakeStrayReplies();
  ASSERT_EQ(strays.size(), 1u);
  EXPECT_EQ(strays[0].correlation_id, "OTHER");
  client->Close();
}

}  // namespace
}  // namespace bridge::mllp
