// TLS and mutual TLS between our Client and Server, and against the openssl
// CLI, with a PKI generated per test suite.
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "mllp/client.h"
#include "mllp/frame_encoder.h"
#include "mllp/server.h"
#include "tests/mllp/mllp_test_support.h"
#include "tests/support/test_paths.h"

namespace bridge::mllp {
namespace {

using namespace bridge::mllp::testing;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new bridge::testing::TempDir();
    std::optional<TestPki> pki = MakeTestPki(dir_->path());
    pki_ = pki ? new TestPki(*pki) : nullptr;
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
    pki_ = nullptr;
    dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(pki_, nullptr) << "test PKI generation failed";
    server_options_.listen_host = "127.0.0.1";
    server_options_.port = 0;
    server_options_.handshake_timeout = 2s;
    server_options_.idle_timeout = 500ms;
    server_options_.tls.cert_file = pki_->server_crt;
    server_options_.tls.key_file = pki_->server_key;
    client_options_.host = "127.0.0.1";
    client_options_.connect_timeout = 3s;
    client_options_.ack_timeout = 3s;
    client_options_.tls.enabled = true;
    client_options_.tls.ca_file = pki_->ca_crt;
    client_options_.tls.server_name = "localhost";
  }

  void StartServer() {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(server_options_, handler_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_options_.port = server_->port();
  }

  void RequireClientCerts(std::vector<std::string> allowed = {}) {
    server_options_.tls.client_ca_file = pki_->ca_crt;
    server_options_.tls.allowed_peers = std::move(allowed);
  }

  void UseClientCert(const std::filesystem::path& crt, const std::filesystem::path& key) {
    client_options_.tls.cert_file = crt;
    client_options_.tls.key_file = key;
  }

  absl::StatusOr<Exchange> SendOne(const std::string& id) {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(client_options_, &Msa2);
    if (!client.ok()) {
      return client.status();
    }
    return (*client)->SendAndAwait(TestMessage(id), id);
  }

  // Runs `openssl s_client` against the server with extra `args`; returns
  // its combined output and sets *exit_code.
  std::string SClient(const std::string& args, const std::string& input, int* exit_code) {
    const std::filesystem::path in = dir_->path() / "sclient.in";
    {
      std::ofstream(in, std::ios::binary) << input;
    }
    std::string out;
    *exit_code = RunCommand("timeout 10 openssl s_client -connect 127.0.0.1:" +
                                std::to_string(server_->port()) + " -CAfile " +
                                pki_->ca_crt.string() + " " + args + " < " + in.string(),
                            &out);
    return out;
  }

  static bridge::testing::TempDir* dir_;
  static TestPki* pki_;
  ServerOptions server_options_;
  ClientOptions client_options_;
  AckHandler handler_;
  std::unique_ptr<Server> server_;
};

bridge::testing::TempDir* TlsTest::dir_ = nullptr;
TestPki* TlsTest::pki_ = nullptr;

TEST_F(TlsTest, ClientAndServerTalkOverTls) {
  StartServer();
  absl::StatusOr<Exchange> ex = SendOne("TLS1");
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ(Msa2(ex->reply), "TLS1");
  EXPECT_EQ(handler_.last_subject(), "");  // no client certificate asked for
}

TEST_F(TlsTest, ServerIdentifiedByIpAddressSan) {
  StartServer();
  client_options_.tls.server_name = "";  // verify against host = 127.0.0.1
  absl::StatusOr<Exchange> ex = SendOne("TLSIP");
  ASSERT_TRUE(ex.ok()) << ex.status();
}

TEST_F(TlsTest, HostnameMismatchIsRefusedByTheClient) {
  StartServer();
  client_options_.tls.server_name = "lab.example.org";
  absl::StatusOr<Exchange> ex = SendOne("TLS2");
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kUnavailable) << ex.status();
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(TlsTest, UntrustedServerIsRefusedByTheClient) {
  StartServer();
  client_options_.tls.ca_file = dir_->path() / "rogue-ca.crt";
  absl::StatusOr<Exchange> ex = SendOne("TLS3");
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kUnavailable) << ex.status();
}

TEST_F(TlsTest, MutualTlsPassesTheVerifiedSubjectToTheHandler) {
  RequireClientCerts();
  StartServer();
  UseClientCert(pki_->client_a_crt, pki_->client_a_key);
  absl::StatusOr<Exchange> ex = SendOne("MTLS1");
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ(handler_.last_subject(), "CN=lis-a,O=Test Lab");
}

TEST_F(TlsTest, MissingClientCertificateIsRefused) {
  RequireClientCerts();
  StartServer();
  absl::StatusOr<Exchange> ex = SendOne("MTLS2");
  EXPECT_FALSE(ex.ok());
  EXPECT_EQ(handler_.handled(), 0);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().tls_handshake_failures.load() == 1; }));
}

TEST_F(TlsTest, ClientCertificateFromAnotherCaIsRefused) {
  RequireClientCerts();
  StartServer();
  UseClientCert(pki_->rogue_crt, pki_->rogue_key);  // same CN=lis-a, wrong issuer
  absl::StatusOr<Exchange> ex = SendOne("MTLS3");
  EXPECT_FALSE(ex.ok());
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(TlsTest, AllowListAcceptsByCnOrSanAndRefusesOthers) {
  RequireClientCerts({"lis-a.example"});  // SAN of client A only
  StartServer();
  UseClientCert(pki_->client_a_crt, pki_->client_a_key);
  ASSERT_TRUE(SendOne("AL1").ok());
  UseClientCert(pki_->client_b_crt, pki_->client_b_key);
  absl::StatusOr<Exchange> refused = SendOne("AL2");
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(handler_.handled(), 1);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().peers_not_allowed.load() == 1; }));
}

TEST_F(TlsTest, AllowListMatchesTheFullSubject) {
  RequireClientCerts({"CN=lis-b,O=Test Lab"});
  StartServer();
  UseClientCert(pki_->client_b_crt, pki_->client_b_key);
  EXPECT_TRUE(SendOne("AL3").ok());
}

TEST_F(TlsTest, OpensslSClientGetsAnAckOverMutualTls) {
  RequireClientCerts();
  StartServer();
  int rc = 0;
  const std::string out =
      SClient("-quiet -ign_eof -cert " + pki_->client_a_crt.string() + " -key " +
                  pki_->client_a_key.string(),
              Frame(TestMessage("SCL1")), &rc);
  // -ign_eof keeps s_client reading until the server's idle close (500 ms here).
  EXPECT_NE(out.find("MSA|AA|SCL1"), std::string::npos) << out;
}

TEST_F(TlsTest, OpensslSClientWithoutCertificateIsRefused) {
  RequireClientCerts();
  StartServer();
  int rc = 0;
  const std::string out = SClient("-quiet", Frame(TestMessage("SCL2")), &rc);
  EXPECT_EQ(out.find("MSA|"), std::string::npos) << out;
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(TlsTest, Tls11IsRefused) {
  StartServer();
  int rc = 0;
  // SECLEVEL=0 lets the openssl client itself offer TLS 1.1; our server must refuse.
  const std::string out =
      SClient("-tls1_1 -cipher 'DEFAULT@SECLEVEL=0'", "", &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("Cipher is (NONE)"), std::string::npos) << out;
  EXPECT_TRUE(out.find("alert protocol version") != std::string::npos ||
              out.find("unsupported protocol") != std::string::npos ||
              out.find("no protocols available") != std::string::npos)
      << out;
  EXPECT_TRUE(WaitFor([&] { return server_->stats().tls_handshake_failures.load() >= 1; }))
      << "the server never saw (and refused) the TLS 1.1 handshake";
}

TEST_F(TlsTest, Tls12WithAnAeadSuiteIsAccepted) {
  StartServer();
  int rc = 0;
  const std::string out = SClient("-tls1_2 -brief", "", &rc);
  EXPECT_NE(out.find("Protocol version: TLSv1.2"), std::string::npos) << out;
  EXPECT_TRUE(out.find("GCM") != std::string::npos || out.find("CHACHA20") != std::string::npos)
      << out;
}

TEST_F(TlsTest, Tls12CbcSuitesAreRefused) {
  StartServer();
  int rc = 0;
  const std::string out = SClient("-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256", "", &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_EQ(out.find("Cipher is ECDHE-ECDSA-AES128-SHA256"), std::string::npos) << out;
}

TEST_F(TlsTest, Tls13IsPreferred) {
  StartServer();
  int rc = 0;
  const std::string out = SClient("-brief", "", &rc);
  EXPECT_NE(out.find("Protocol version: TLSv1.3"), std::string::npos) << out;
}

TEST_F(TlsTest, BadCertificateFileFailsStart) {
  server_options_.tls.cert_file = dir_->path() / "missing.crt";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(server_options_, handler_);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << server.status();
}

TEST_F(TlsTest, AllowListWithoutClientCaFailsStart) {
  server_options_.tls.allowed_peers = {"lis-a"};
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(server_options_, handler_);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << server.status();
}

TEST_F(TlsTest, StalledHandshakeIsCutAtTheHandshakeDeadline) {
  server_options_.handshake_timeout = 200ms;
  StartServer();
  RawConnection c(server_->port());  // connects, never says ClientHello
  EXPECT_TRUE(c.WaitClosed(2s));
  EXPECT_EQ(server_->stats().handshake_timeouts.load(), 1u);
}

}  // namespace
}  // namespace bridge::mllp
