// mllp/tls_context.h
//
// OpenSSL context builders shared by Server and Client, plus the
// certificate-identity helpers behind the client allow-list. Internal to
// mllp (server.cc and client.cc include it); other modules configure TLS
// through ServerTlsOptions / ClientTlsOptions only.
//
// Policy, both directions: TLS 1.2 minimum (1.3 negotiated when the peer
// has it), AEAD cipher suites only (ECDHE with AES-GCM or ChaCha20-Poly1305
// for TLS 1.2), no compression, no renegotiation.
//
// Thread-safety: the returned contexts are immutable after construction and
// may be shared by every connection.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <openssl/x509.h>

#include "absl/status/statusor.h"
#include "mllp/options.h"

namespace bridge::mllp {

// TLS 1.2 suites (OpenSSL names); TLS 1.3 suites are AEAD by definition.
inline constexpr char kTls12CipherList[] =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
inline constexpr char kTls13CipherSuites[] =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

// Loads cert/key (and the client CA, which turns on mandatory client
// certificates). InvalidArgument names the file that failed to load.
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const ServerTlsOptions& options);

// Loads the CA (or the default trust store) and the optional client
// certificate; peer verification is always on. InvalidArgument on bad files.
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const ClientTlsOptions& options);

struct CertificateIdentity {
  std::string subject;             // RFC 2253
  std::vector<std::string> names;  // subject CN, then subjectAltName DNS/IP/email/URI
};

CertificateIdentity DescribeCertificate(X509* certificate);

// True when an entry of `allowed` equals the subject or one of the names.
bool IsAllowedPeer(const CertificateIdentity& identity, const std::vector<std::string>& allowed);

// Pops OpenSSL's thread-local error queue into one line ("" when empty).
std::string DrainOpenSslErrors();

}  // namespace bridge::mllp
