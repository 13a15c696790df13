#include "mllp/tls_context.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "absl/status/status.h"
#include "mllp/handler.h"

namespace bridge::mllp {
namespace {

// Applies the shared protocol policy to a fresh SSL_CTX.
absl::Status ApplyPolicy(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return absl::InternalError("TLS: cannot set minimum version: " + DrainOpenSslErrors());
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(ctx, kTls12CipherList) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, kTls13CipherSuites) != 1) {
    return absl::InternalError("TLS: cannot set cipher suites: " + DrainOpenSslErrors());
  }
  return absl::OkStatus();
}

absl::Status LoadCertificateAndKey(SSL_CTX* ctx, const std::string& cert_file,
                                   const std::string& key_file) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError("TLS: cannot load certificate chain " + cert_file + ": " +
                                      DrainOpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError("TLS: cannot load private key " + key_file + ": " +
                                      DrainOpenSslErrors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError("TLS: private key " + key_file + " does not match " +
                                      cert_file);
  }
  return absl::OkStatus();
}

std::unique_ptr<boost::asio::ssl::context> Wrap(SSL_CTX* ctx) {
  // The Asio context takes ownership of the handle; it throws only on null.
  return std::make_unique<boost::asio::ssl::context>(ctx);
}

std::string ToString(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) {
    return {};
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::string IpToString(const ASN1_OCTET_STRING* ip) {
  const unsigned char* d = ASN1_STRING_get0_data(ip);
  const int len = ASN1_STRING_length(ip);
  std::array<char, 64> buf{};
  if (len == 4) {
    std::snprintf(buf.data(), buf.size(), "%u.%u.%u.%u", d[0], d[1], d[2], d[3]);
    return buf.data();
  }
  if (len == 16) {
    std::string out;
    for (int i = 0; i < 16; i += 2) {
      std::snprintf(buf.data(), buf.size(), "%s%x", i == 0 ? "" : ":", (d[i] << 8) | d[i + 1]);
      out += buf.data();
    }
    return out;
  }
  return {};
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    if (!out.empty()) {
      out += "; ";
    }
    out += buf.data();
  }
  return out;
}

absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const ServerTlsOptions& options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return absl::InvalidArgumentError("TLS: both a certificate and a key file are needed");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    return absl::InternalError("TLS: SSL_CTX_new failed: " + DrainOpenSslErrors());
  }
  std::unique_ptr<boost::asio::ssl::context> context = Wrap(ctx);
  if (absl::Status s = ApplyPolicy(ctx); !s.ok()) {
    return s;
  }
  if (absl::Status s = LoadCertificateAndKey(ctx, options.cert_file, options.key_file); !s.ok()) {
    return s;
  }
  if (!options.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.client_ca_file.c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError("TLS: cannot load client CA " + options.client_ca_file +
                                        ": " + DrainOpenSslErrors());
    }
    // Advertise the CA to clients so they pick the right certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else if (!options.allowed_peers.empty()) {
    return absl::InvalidArgumentError("TLS: an allow-list needs a client CA file");
  }
  return context;
}

absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const ClientTlsOptions& options) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    return absl::InternalError("TLS: SSL_CTX_new failed: " + DrainOpenSslErrors());
  }
  std::unique_ptr<boost::asio::ssl::context> context = Wrap(ctx);
  if (absl::Status s = ApplyPolicy(ctx); !s.ok()) {
    return s;
  }
  if (options.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return absl::InternalError("TLS: no default trust store: " + DrainOpenSslErrors());
    }
  } else if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError("TLS: cannot load CA " + options.ca_file + ": " +
                                      DrainOpenSslErrors());
  }
  if (!options.cert_file.empty() || !options.key_file.empty()) {
    if (absl::Status s = LoadCertificateAndKey(ctx, options.cert_file, options.key_file);
        !s.ok()) {
      return s;
    }
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return context;
}

CertificateIdentity DescribeCertificate(X509* certificate) {
  CertificateIdentity id;
  if (certificate == nullptr) {
    return id;
  }
  X509_NAME* subject = X509_get_subject_name(certificate);
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, subject, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    if (len > 0) {
      id.subject.assign(data, static_cast<std::size_t>(len));
    }
    BIO_free(bio);
  }
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
    id.names.push_back(ToString(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))));
  }
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      switch (name->type) {
        case GEN_DNS:
        case GEN_EMAIL:
        case GEN_URI:
          id.names.push_back(ToString(name->d.ia5));
          break;
        case GEN_IPADD:
          id.names.push_back(IpToString(name->d.ip));
          break;
        default:
          break;
      }
    }
    GENERAL_NAMES_free(sans);
  }
  return id;
}

bool IsAllowedPeer(const CertificateIdentity& identity, const std::vector<std::string>& allowed) {
  return CertificateIsNamed(identity.subject, identity.names, allowed);
}

}  // namespace bridge::mllp
