// api/service/auth.h
//
// Bearer-token authentication and role checks for every API (REST, FHIR,
// gRPC). Tokens are random strings shown once; only their SHA-256 is kept,
// with a name and roles, in a JSON file (API_TOKENS_FILE, mode 0600):
//
//   {"tokens": [{"name": "pms-backend", "sha256": "<64 hex>",
//                "roles": ["results:read", "orders:write"], "created_at": "..."}]}
//
// The file is re-read when it changes (checked at most once a second), so
// `lab-bridge token create/revoke` take effect on a running server.
//
//   absl::StatusOr<std::unique_ptr<TokenRegistry>> tokens = TokenRegistry::Open(path);
//   absl::StatusOr<Principal> who = (*tokens)->Authenticate(bearer);
//   if (!who.ok()) -> 401;  if (!who->Has(Role::kResultsRead)) -> 403
//
// Authenticate compares the token's hash with every configured hash with
// CRYPTO_memcmp (constant time; the loop never stops early).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bridge::api::service {

enum class Role : std::uint32_t {
  kResultsRead = 1,   // "results:read"
  kOrdersWrite = 2,   // "orders:write"
  kCriticalsAck = 4,  // "criticals:ack"
  kAuditRead = 8,     // "audit:read"
};
inline constexpr std::uint32_t kAllRoles = 15;

// "results:read" -> kResultsRead; InvalidArgument for an unknown name.
absl::StatusOr<Role> ParseRole(std::string_view name);
std::string RoleName(Role role);
// "results:read,orders:write" -> bit set; InvalidArgument naming a bad role.
absl::StatusOr<std::uint32_t> ParseRoles(std::string_view comma_separated);
std::vector<std::string> RoleNames(std::uint32_t roles);

struct Principal {
  std::string name;
  std::uint32_t roles = 0;
  bool Has(Role role) const { return (roles & static_cast<std::uint32_t>(role)) != 0; }
};

struct TokenInfo {
  std::string name;
  std::string sha256_hex;
  std::uint32_t roles = 0;
  std::string created_at;  // RFC 3339
};

// Lower-case hex SHA-256 of `text`.
std::string Sha256Hex(std::string_view text);

// A new random token ("lb_" + 43 base64url characters, 256 bits).
absl::StatusOr<std::string> NewToken();

class TokenRegistry {
 public:
  // Reads `path` (a missing file is an empty registry). InvalidArgument for
  // a malformed file, naming the problem.
  static absl::StatusOr<std::unique_ptr<TokenRegistry>> Open(std::string path);

  TokenRegistry(const TokenRegistry&) = delete;
  TokenRegistry& operator=(const TokenRegistry&) = delete;

  // Unauthenticated for an empty, unknown or revoked token.
  absl::StatusOr<Principal> Authenticate(std::string_view token);

  // Creates a token, saves its hash and returns the token (show it once).
  // AlreadyExists when the name is taken; InvalidArgument for a bad name
  // (1-64 of [A-Za-z0-9._-]) or no roles.
  absl::StatusOr<std::string> Create(const std::string& name, std::uint32_t roles, absl::Time now);
  // NotFound when no token has that name.
  absl::Status Revoke(const std::string& name);
  std::vector<TokenInfo> List();
  bool empty();

 private:
  explicit TokenRegistry(std::string path) : path_(std::move(path)) {}
  absl::Status LoadLocked();
  absl::Status ReloadIfChangedLocked();
  absl::Status SaveLocked();

  const std::string path_;
  std::mutex mu_;
  std::vector<TokenInfo> tokens_;
  std::int64_t loaded_mtime_ns_ = -1;
  absl::Time last_check_ = absl::InfinitePast();
};

}  // namespace bridge::api::service
