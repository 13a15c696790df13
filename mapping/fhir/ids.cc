#include "mapping/fhir/ids.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

namespace bridge::fhir {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::array<std::uint8_t, 16> ParseUuid(std::string_view text) {
  std::array<std::uint8_t, 16> out{};
  size_t n = 0;
  int high = -1;
  for (char c : text) {
    if (c == '-') continue;
    const int d = HexDigit(c);
    if (d < 0 || n >= 16) return {};
    if (high < 0) {
      high = d;
    } else {
      out[n++] = static_cast<std::uint8_t>(high * 16 + d);
      high = -1;
    }
  }
  if (n != 16) return {};
  return out;
}

// Digest of the concatenation of `a` and `b`; returns its length. The
// algorithm is fetched once and the context reused per thread (an implicit
// fetch per call costs more than hashing a short key).
unsigned Digest(bool sha256, std::string_view a, std::string_view b, unsigned char* out) {
  static EVP_MD* const kSha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct CtxDeleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  thread_local std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  const EVP_MD* md = sha256 ? kSha256 : kSha1;
  unsigned len = 0;
  if (ctx == nullptr || md == nullptr) return 0;
  // Short inputs (every id's) go to OpenSSL in one piece: each call into
  // EVP costs about as much as hashing a block.
  char joined[256];
  const bool join = a.size() + b.size() <= sizeof(joined);
  if (join) {
    // (memcpy from an empty view's null data is undefined, even for 0 bytes)
    if (!a.empty()) std::memcpy(joined, a.data(), a.size());
    if (!b.empty()) std::memcpy(joined + a.size(), b.data(), b.size());
  }
  if (EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
      (join ? EVP_DigestUpdate(ctx.get(), joined, a.size() + b.size()) != 1
            : (EVP_DigestUpdate(ctx.get(), a.data(), a.size()) != 1 ||
               EVP_DigestUpdate(ctx.get(), b.data(), b.size()) != 1)) ||
      EVP_DigestFinal_ex(ctx.get(), out, &len) != 1) {
    len = 0;
  }
  return len;
}

}  // namespace

std::string UuidV5(std::string_view ns, std::string_view name) {
  // Nearly every id is in the bridge's namespace: parsed once.
  static const std::array<std::uint8_t, 16> kBridgeBytes = ParseUuid(kBridgeNamespace);
  const std::array<std::uint8_t, 16> ns_bytes =
      ns == kBridgeNamespace ? kBridgeBytes : ParseUuid(ns);
  unsigned char hash[EVP_MAX_MD_SIZE] = {};
  Digest(false, std::string_view(reinterpret_cast<const char*>(ns_bytes.data()), ns_bytes.size()),
         name, hash);
  hash[6] = static_cast<unsigned char>((hash[6] & 0x0F) | 0x50);  // version 5
  hash[8] = static_cast<unsigned char>((hash[8] & 0x3F) | 0x80);  // RFC 4122 variant
  char text[36];
  size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text[at++] = '-';
    text[at++] = kHex[hash[i] >> 4];
    text[at++] = kHex[hash[i] & 0x0F];
  }
  return std::string(text, sizeof(text));
}

std::string Sha256Hex(std::string_view data) {
  unsigned char hash[EVP_MAX_MD_SIZE] = {};
  const unsigned len = Digest(true, data, {}, hash);
  char text[2 * EVP_MAX_MD_SIZE];
  for (unsigned i = 0; i < len; ++i) {
    text[2 * i] = kHex[hash[i] >> 4];
    text[2 * i + 1] = kHex[hash[i] & 0x0F];
  }
  return std::string(text, 2 * len);
}

std::string EscapeSearchValue(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 8);
  auto put = [&out](unsigned char c) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4] - ((c >> 4) >= 10 ? 32 : 0));
      out.push_back(kHex[c & 0x0F] - ((c & 0x0F) >= 10 ? 32 : 0));
    }
  };
  for (size_t i = 0; i < value.size();) {
    // Runs of unreserved characters (most of every value) in one append.
    size_t run = i;
    while (run < value.size() && IsUnreserved(static_cast<unsigned char>(value[run]))) ++run;
    out.append(value.data() + i, run - i);
    if (run == value.size()) break;
    const unsigned char c = static_cast<unsigned char>(value[run]);
    if (c == '\\' || c == '|' || c == ',' || c == '$') put('\\');
    put(c);
    i = run + 1;
  }
  return out;
}

std::string SearchToken(std::string_view system, std::string_view value) {
  if (system.empty()) return EscapeSearchValue(value);
  return EscapeSearchValue(system) + "|" + EscapeSearchValue(value);
}

}  // namespace bridge::fhir
