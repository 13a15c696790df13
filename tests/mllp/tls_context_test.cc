#include "mllp/tls_context.h"

#include <string>

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "tests/mllp/mllp_test_support.h"
#include "tests/support/test_paths.h"

namespace bridge::mllp {
namespace {

using namespace bridge::mllp::testing;

// The protocol policy is asserted on the context itself, because OpenSSL 3's
// defaults already refuse TLS 1.1 at security level 1: an s_client probe alone
// would pass even if our own minimum were missing.
void ExpectPolicy(SSL_CTX* ctx) {
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  const uint64_t options = SSL_CTX_get_options(ctx);
  EXPECT_NE(options & SSL_OP_NO_COMPRESSION, 0u);
  EXPECT_NE(options & SSL_OP_NO_RENEGOTIATION, 0u);
  SSL* ssl = SSL_new(ctx);
  ASSERT_NE(ssl, nullptr);
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl);
  ASSERT_GT(sk_SSL_CIPHER_num(ciphers), 0);
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    SCOPED_TRACE(SSL_CIPHER_get_name(c));
    EXPECT_TRUE(SSL_CIPHER_is_aead(c));
    const int kx = SSL_CIPHER_get_kx_nid(c);  // NID_kx_any: a TLS 1.3 suite
    EXPECT_TRUE(kx == NID_kx_ecdhe || kx == NID_kx_any) << OBJ_nid2sn(kx);
  }
  SSL_free(ssl);
}

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<TestPki> pki = MakeTestPki(dir_.path());
    ASSERT_TRUE(pki.has_value());
    pki_ = *pki;
  }
  X509* Load(const std::filesystem::path& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    X509* cert = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f) {
      std::fclose(f);
    }
    return cert;
  }
  bridge::testing::TempDir dir_;
  TestPki pki_;
};

TEST_F(TlsContextTest, ServerContextEnforcesThePolicy) {
  ServerTlsOptions options;
  options.cert_file = pki_.server_crt;
  options.key_file = pki_.server_key;
  options.client_ca_file = pki_.ca_crt;
  auto ctx = MakeServerTlsContext(options);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  ExpectPolicy((*ctx)->native_handle());
  EXPECT_EQ(SSL_CTX_get_verify_mode((*ctx)->native_handle()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
}

TEST_F(TlsContextTest, ClientContextEnforcesThePolicyAndVerifiesThePeer) {
  ClientTlsOptions options;
  options.enabled = true;
  options.ca_file = pki_.ca_crt;
  auto ctx = MakeClientTlsContext(options);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  ExpectPolicy((*ctx)->native_handle());
  EXPECT_EQ(SSL_CTX_get_verify_mode((*ctx)->native_handle()), SSL_VERIFY_PEER);
}

TEST_F(TlsContextTest, MismatchedKeyIsInvalidArgument) {
  ServerTlsOptions options;
  options.cert_file = pki_.server_crt;
  options.key_file = pki_.client_a_key;
  EXPECT_EQ(MakeServerTlsContext(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsContextTest, DescribesSubjectCnAndSans) {
  X509* server = Load(pki_.server_crt);
  ASSERT_NE(server, nullptr);
  CertificateIdentity id = DescribeCertificate(server);
  X509_free(server);
  EXPECT_EQ(id.subject, "CN=localhost,O=Test Lab");
  EXPECT_EQ(id.names, (std::vector<std::string>{"localhost", "localhost", "127.0.0.1"}));
}

TEST_F(TlsContextTest, AllowListMatchesSubjectCnOrSanExactly) {
  CertificateIdentity id{"CN=lis-a,O=Test Lab", {"lis-a", "lis-a.example"}};
  EXPECT_TRUE(IsAllowedPeer(id, {"CN=lis-a,O=Test Lab"}));
  EXPECT_TRUE(IsAllowedPeer(id, {"other", "lis-a"}));
  EXPECT_TRUE(IsAllowedPeer(id, {"lis-a.example"}));
  EXPECT_FALSE(IsAllowedPeer(id, {"LIS-A"}));
  EXPECT_FALSE(IsAllowedPeer(id, {"lis"}));
  EXPECT_FALSE(IsAllowedPeer(id, {"CN=lis-a"}));
  EXPECT_FALSE(IsAllowedPeer(id, {}));
}

}  // namespace
}  // namespace bridge::mllp
