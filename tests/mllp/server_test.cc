#include "mllp/server.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mllp/frame_encoder.h"
#include "tests/mllp/mllp_test_support.h"

namespace bridge::mllp {
namespace {

using namespace bridge::mllp::testing;

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() {
    options_.listen_host = "127.0.0.1";
    options_.port = 0;
    options_.idle_timeout = 10s;
    options_.frame_read_timeout = 5s;
    options_.shutdown_grace = 3s;
  }

  void StartServer(MessageHandler& handler) {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options_, handler);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void StartServer() { StartServer(handler_); }
  std::uint16_t port() const { return server_->port(); }
  const ServerStats& stats() const { return server_->stats(); }

  ServerOptions options_;
  AckHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, PortZeroReportsTheBoundPort) {
  StartServer();
  EXPECT_NE(port(), 0);
  RawConnection c(port());
  EXPECT_TRUE(c.connected());
}

TEST_F(ServerTest, PortInUseIsUnavailable) {
  StartServer();
  options_.port = port();
  AckHandler other;
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(options_, other);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

TEST_F(ServerTest, ManyMessagesOnOneConnectionAreAnsweredInOrder) {
  AckHandler slow(2ms);  // replies come from worker threads
  StartServer(slow);
  RawConnection c(port());
  std::string burst;
  for (int i = 0; i < 100; ++i) {
    burst += Frame(TestMessage("C" + std::to_string(i)));
  }
  ASSERT_TRUE(c.Send(burst));  // all in one write: many frames per read
  for (int i = 0; i < 100; ++i) {
    std::optional<std::string> ack = c.ReadFrame();
    ASSERT_TRUE(ack.has_value()) << i;
    EXPECT_EQ(Msa2(*ack), "C" + std::to_string(i));
  }
  EXPECT_EQ(stats().frames_received.load(), 100u);
  EXPECT_TRUE(WaitFor([&] { return stats().replies_sent.load() == 100u; }));
}

TEST_F(ServerTest, JunkBetweenFramesIsSkippedAndCounted) {
  StartServer();
  RawConnection c(port());
  ASSERT_TRUE(c.Send(std::string("\0\r\nxx", 5) + Frame(TestMessage("J1")) + "\n"));
  EXPECT_EQ(Msa2(c.ReadFrame().value_or("")), "J1");
  EXPECT_TRUE(WaitFor([&] { return stats().junk_bytes.load() == 6; }));
}

TEST_F(ServerTest, LastFrameWithoutFinalCrIsAnsweredAtEndOfStream) {
  StartServer();
  RawConnection c(port());
  ASSERT_TRUE(c.Send("\x0b" + TestMessage("NOCR") + "\x1c"));
  c.ShutdownWrite();
  EXPECT_EQ(Msa2(c.ReadFrame().value_or("")), "NOCR");
}

TEST_F(ServerTest, GarbageAndTruncatedFramesDoNotStopTheServer) {
  StartServer();
  {
    RawConnection garbage(port());
    std::string noise;
    for (int i = 0; i < 4096; ++i) {
      const char c = static_cast<char>((i * 7919) % 251 + 1);  // every byte value but NUL...
      noise.push_back(c == kStartBlock ? 'x' : c);              // ...and <VT>
    }
    ASSERT_TRUE(garbage.Send(noise));
    RawConnection truncated(port());
    ASSERT_TRUE(truncated.Send("\x0b" + TestMessage("TRUNC").substr(0, 40)));
  }  // both close mid-stream
  RawConnection normal(port());
  ASSERT_TRUE(normal.Send(Frame(TestMessage("OK1"))));
  EXPECT_EQ(Msa2(normal.ReadFrame().value_or("")), "OK1");
  EXPECT_TRUE(WaitFor([&] { return stats().truncated_frames.load() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return stats().junk_bytes.load() == 4096; }));
  EXPECT_EQ(handler_.handled(), 1);
}

TEST_F(ServerTest, ConnectionsOverMaxConnectionsAreClosed) {
  options_.max_connections = 2;
  StartServer();
  RawConnection a(port()), b(port());
  ASSERT_TRUE(a.Send(Frame(TestMessage("A"))) && b.Send(Frame(TestMessage("B"))));
  ASSERT_TRUE(a.ReadFrame() && b.ReadFrame());  // both registered
  RawConnection third(port());
  EXPECT_TRUE(third.WaitClosed(2s));
  EXPECT_EQ(stats().connections_refused.load(), 1u);
  // The first two still work.
  ASSERT_TRUE(a.Send(Frame(TestMessage("A2"))));
  EXPECT_EQ(Msa2(a.ReadFrame().value_or("")), "A2");
}

TEST_F(ServerTest, ConnectionsOverThePerPeerLimitAreClosedAndFreedSlotsReused) {
  options_.max_connections_per_peer = 1;
  StartServer();
  auto first = std::make_unique<RawConnection>(port());
  ASSERT_TRUE(first->Send(Frame(TestMessage("P1"))));
  ASSERT_TRUE(first->ReadFrame());
  RawConnection second(port());
  EXPECT_TRUE(second.WaitClosed(2s));
  EXPECT_EQ(stats().connections_refused.load(), 1u);
  first.reset();
  ASSERT_TRUE(WaitFor([&] { return stats().active_connections.load() == 0; }));
  RawConnection third(port());
  ASSERT_TRUE(third.Send(Frame(TestMessage("P3"))));
  EXPECT_EQ(Msa2(third.ReadFrame().value_or("")), "P3");
}

TEST_F(ServerTest, IdleConnectionIsClosedAfterIdleTimeout) {
  options_.idle_timeout = 200ms;
  StartServer();
  RawConnection c(port());
  ASSERT_TRUE(c.Send(Frame(TestMessage("I1"))));
  ASSERT_TRUE(c.ReadFrame());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_EQ(stats().idle_timeouts.load(), 1u);
}

// 100 senders trickling one byte per 100 ms each are cut at the frame deadline
// (bytes do not extend it); a normal client meanwhile gets prompt replies.
TEST_F(ServerTest, SlowlorisSenderIsCutAtFrameDeadlineWhileOthersAreServed) {
  options_.frame_read_timeout = 500ms;
  options_.idle_timeout = 10s;
  options_.max_connections_per_peer = 200;  // every test peer is 127.0.0.1
  StartServer();
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 100; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port()));
  }
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    const std::string wire = Frame(TestMessage("SLOW"));
    for (std::size_t i = 0; i < wire.size() && !stop; ++i) {
      for (auto& c : slow) {
        c->Send(std::string_view(&wire[i], 1));
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  RawConnection normal(port());
  for (int i = 0; i < 10; ++i) {
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(normal.Send(Frame(TestMessage("N" + std::to_string(i)))));
    EXPECT_EQ(Msa2(normal.ReadFrame(1s).value_or("")), "N" + std::to_string(i));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms);
    std::this_thread::sleep_for(50ms);
  }
  for (auto& c : slow) {
    EXPECT_TRUE(c->WaitClosed(2s));
  }
  stop = true;
  trickler.join();
  EXPECT_EQ(stats().frame_timeouts.load(), 100u);
  EXPECT_EQ(handler_.handled(), 10);
}

TEST_F(ServerTest, OversizeFrameGetsTheRejectionReplyThenClose) {
  options_.max_frame_bytes = 8 * 1024;
  options_.oversize_prefix_bytes = 256;
  StartServer();
  RawConnection c(port());
  const std::string big = TestMessage("BIG1") + "\rNTE|1||" + std::string(100 * 1024, 'x');
  c.Send(Frame(big));  // may fail part-way once the server closes: that is fine
  std::optional<std::string> nak = c.ReadFrame();
  ASSERT_TRUE(nak.has_value());
  EXPECT_NE(nak->find("MSA|AR|BIG1"), std::string::npos) << *nak;
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(handler_.last_oversize_prefix().size(), 256u);
  EXPECT_EQ(stats().oversize_frames.load(), 1u);
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(ServerTest, PeerThatNeverReadsIsCutAtTheWriteDeadline) {
  options_.write_timeout = 200ms;
  StartServer();
  handler_.override_reply = [](std::string, ReplyFn done) { done(std::string(1 << 20, 'A')); };
  RawConnection c(port());
  std::string burst;
  for (int i = 0; i < 64; ++i) {
    burst += Frame(TestMessage("W" + std::to_string(i)));
  }
  ASSERT_TRUE(c.Send(burst));  // 64 MiB of replies; the peer reads none of them
  EXPECT_TRUE(WaitFor([&] { return stats().write_timeouts.load() == 1; }, 5s));
  EXPECT_TRUE(WaitFor([&] { return stats().active_connections.load() == 0; }));
}

TEST_F(ServerTest, DroppedReplyClosesTheConnection) {
  StartServer();
  handler_.override_reply = [](std::string, ReplyFn done) { (void)done; };  // never called
  RawConnection c(port());
  ASSERT_TRUE(c.Send(Frame(TestMessage("D1"))));
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_TRUE(WaitFor([&] { return stats().handler_unanswered.load() == 1; }));
}

TEST_F(ServerTest, GracefulStopFinishesTheMessageInHandThenCloses) {
  AckHandler slow(400ms);
  StartServer(slow);
  RawConnection busy(port());
  RawConnection idle(port());
  ASSERT_TRUE(idle.Send(Frame(TestMessage("W"))));
  ASSERT_TRUE(WaitFor([&] { return slow.handled() == 1; }));
  ASSERT_TRUE(idle.ReadFrame());
  ASSERT_TRUE(busy.Send(Frame(TestMessage("INFLIGHT"))));
  ASSERT_TRUE(WaitFor([&] { return slow.handled() == 2; }));
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] { server_->Stop(); });
  EXPECT_TRUE(idle.WaitClosed(1s));  // nothing in hand: closed at once
  std::optional<std::string> ack = busy.ReadFrame(3s);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(Msa2(*ack), "INFLIGHT");
  EXPECT_TRUE(busy.WaitClosed(2s));
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(stats().active_connections.load(), 0);
  RawConnection after(port());
  EXPECT_FALSE(after.connected() && after.Send(Frame(TestMessage("X"))) && after.ReadFrame(300ms));
}

TEST_F(ServerTest, StopIsBoundedWhenTheHandlerNeverAnswers) {
  options_.shutdown_grace = 200ms;
  std::vector<ReplyFn> held;
  std::mutex mu;
  handler_.override_reply = [&](std::string, ReplyFn done) {
    std::lock_guard<std::mutex> lock(mu);
    held.push_back(std::move(done));
  };
  StartServer();
  RawConnection c(port());
  ASSERT_TRUE(c.Send(Frame(TestMessage("STUCK"))));
  ASSERT_TRUE(WaitFor([&] { return handler_.handled() == 1; }));
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 700ms);
  EXPECT_TRUE(c.WaitClosed(1s));
  std::lock_guard<std::mutex> lock(mu);
  held.front()("too late");  // must be harmless after Stop
}

}  // namespace
}  // namespace bridge::mllp
