// Third-party MLLP clients against our Server: python-hl7's mllp_send
// (Debian python3-hl7) and node-hl7-client (npm, tests/node_modules), plain
// and over TLS. Each test skips cleanly when its peer is not installed.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "mllp/frame_encoder.h"
#include "mllp/server.h"
#include "tests/mllp/mllp_test_support.h"
#include "tests/support/test_paths.h"

namespace bridge::mllp {
namespace {

using namespace bridge::mllp::testing;
namespace fs = std::filesystem;

constexpr char kMllpSend[] = "/usr/bin/mllp_send";

fs::path NodeScript() { return bridge::testing::SourceDir() / "tests/mllp/node_hl7_client_send.mjs"; }

bool NodeClientInstalled() {
  std::string out;
  return RunCommand("command -v node", &out) == 0 &&
         fs::exists(bridge::testing::SourceDir() / "tests/node_modules/node-hl7-client");
}

int CountOf(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class InteropTest : public ::testing::Test {
 protected:
  void StartServer() {
    options_.listen_host = "127.0.0.1";
    options_.port = 0;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options_, handler_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  std::string Port() const { return std::to_string(server_->port()); }

  bridge::testing::TempDir dir_;
  ServerOptions options_;
  AckHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(InteropTest, PythonHl7MllpSendGetsAnAckPerMessage) {
  if (!fs::exists(kMllpSend)) {
    BRIDGE_PEER_MISSING(kMllpSend << " not installed (Debian python3-hl7)");
  }
  StartServer();
  // mllp_send wants framed input; several frames in one file are sent in turn.
  const fs::path file = dir_.path() / "batch.mllp";
  {
    std::ofstream out(file, std::ios::binary);
    for (int i = 1; i <= 5; ++i) {
      out << Frame(TestMessage("PY-" + std::to_string(i)));
    }
  }
  std::string out;
  const int rc = RunCommand(std::string(kMllpSend) + " -p " + Port() + " -f " + file.string() +
                                " 127.0.0.1",
                            &out);
  EXPECT_EQ(rc, 0) << out;
  for (int i = 1; i <= 5; ++i) {
    EXPECT_NE(out.find("MSA|AA|PY-" + std::to_string(i)), std::string::npos) << out;
  }
  EXPECT_EQ(handler_.handled(), 5);
}

TEST_F(InteropTest, PythonHl7MllpSendLooseUnframedFile) {
  if (!fs::exists(kMllpSend)) {
    BRIDGE_PEER_MISSING(kMllpSend << " not installed (Debian python3-hl7)");
  }
  StartServer();
  const fs::path file = dir_.path() / "one.hl7";
  {
    std::string text = TestMessage("PY-LOOSE");
    for (char& c : text) {
      if (c == '\r') {
        c = '\n';
      }
    }
    std::ofstream(file, std::ios::binary) << text << "\n";
  }
  std::string out;
  const int rc = RunCommand(std::string(kMllpSend) + " --loose -p " + Port() + " -f " +
                                file.string() + " 127.0.0.1",
                            &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("MSA|AA|PY-LOOSE"), std::string::npos) << out;
}

TEST_F(InteropTest, NodeHl7ClientGetsAnAckPerMessage) {
  if (!NodeClientInstalled()) {
    BRIDGE_PEER_MISSING("node or tests/node_modules/node-hl7-client missing (run npm ci in tests/)");
  }
  StartServer();
  std::string out;
  const int rc = RunCommand("timeout 30 node " + NodeScript().string() + " " + Port() + " 10", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(CountOf(out, "ACK AA NODE-"), 10) << out;
  for (int i = 1; i <= 10; ++i) {
    EXPECT_NE(out.find("ACK AA NODE-" + std::to_string(i) + "\n"), std::string::npos) << out;
  }
}

TEST_F(InteropTest, NodeHl7ClientOverTls) {
  if (!NodeClientInstalled()) {
    BRIDGE_PEER_MISSING("node or tests/node_modules/node-hl7-client missing (run npm ci in tests/)");
  }
  std::optional<TestPki> pki = MakeTestPki(dir_.path());
  ASSERT_TRUE(pki.has_value());
  options_.tls.cert_file = pki->server_crt;
  options_.tls.key_file = pki->server_key;
  StartServer();
  std::string out;
  const int rc = RunCommand("timeout 30 node " + NodeScript().string() + " " + Port() + " 3 " +
                                pki->ca_crt.string(),
                            &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(CountOf(out, "ACK AA NODE-"), 3) << out;
}

TEST_F(InteropTest, NodeHl7ClientOverMutualTlsWithAllowList) {
  if (!NodeClientInstalled()) {
    BRIDGE_PEER_MISSING("node or tests/node_modules/node-hl7-client missing (run npm ci in tests/)");
  }
  std::optional<TestPki> pki = MakeTestPki(dir_.path());
  ASSERT_TRUE(pki.has_value());
  options_.tls.cert_file = pki->server_crt;
  options_.tls.key_file = pki->server_key;
  options_.tls.client_ca_file = pki->ca_crt;
  options_.tls.allowed_peers = {"lis-a"};
  StartServer();
  std::string out;
  const std::string base = "timeout 30 node " + NodeScript().string() + " " + Port() + " ";
  EXPECT_EQ(RunCommand(base + "2 " + pki->ca_crt.string() + " " + pki->client_a_crt.string() +
                           " " + pki->client_a_key.string(),
                       &out),
            0)
      << out;
  EXPECT_EQ(CountOf(out, "ACK AA NODE-"), 2) << out;
  EXPECT_EQ(handler_.last_subject(), "CN=lis-a,O=Test Lab");
  // Client B is from the same CA but not on the allow-list: no ACK.
  RunCommand("timeout 2 node " + NodeScript().string() + " " + Port() + " 1 " +
                 pki->ca_crt.string() + " " + pki->client_b_crt.string() + " " +
                 pki->client_b_key.string(),
             &out);
  EXPECT_EQ(CountOf(out, "ACK AA"), 0) << out;
  EXPECT_GE(server_->stats().peers_not_allowed.load(), 1u);
  EXPECT_EQ(handler_.handled(), 2);
}

}  // namespace
}  // namespace bridge::mllp
