// api/service/auth.cc
#include "api/service/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace bridge::api::service {
namespace {

constexpr std::array<std::pair<Role, const char*>, 4> kRoleNames = {{
    {Role::kResultsRead, "results:read"},
    {Role::kOrdersWrite, "orders:write"},
    {Role::kCriticalsAck, "criticals:ack"},
    {Role::kAuditRead, "audit:read"},
}};

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (const char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

bool ValidHex64(const std::string& hex) {
  if (hex.size() != 64) {
    return false;
  }
  for (const char c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

std::int64_t MtimeNs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return 0;
  }
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec +
         static_cast<std::int64_t>(st.st_size);
}

}  // namespace

absl::StatusOr<Role> ParseRole(std::string_view name) {
  for (const auto& [role, text] : kRoleNames) {
    if (name == text) {
      return role;
    }
  }
  return absl::InvalidArgumentError(
      "unknown role \"" + std::string(name) +
      "\" (expected results:read, orders:write, criticals:ack, audit:read)");
}

std::string RoleName(Role role) {
  for (const auto& [r, text] : kRoleNames) {
    if (r == role) {
      return text;
    }
  }
  return "";
}

absl::StatusOr<std::uint32_t> ParseRoles(std::string_view comma_separated) {
  std::uint32_t roles = 0;
  for (absl::string_view part :
       absl::StrSplit(absl::string_view(comma_separated.data(), comma_separated.size()), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) {
      continue;
    }
    absl::StatusOr<Role> role = ParseRole(std::string_view(part.data(), part.size()));
    if (!role.ok()) {
      return role.status();
    }
    roles |= static_cast<std::uint32_t>(*role);
  }
  return roles;
}

std::vector<std::string> RoleNames(std::uint32_t roles) {
  std::vector<std::string> out;
  for (const auto& [role, text] : kRoleNames) {
    if ((roles & static_cast<std::uint32_t>(role)) != 0) {
      out.emplace_back(text);
    }
  }
  return out;
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

absl::StatusOr<std::string> NewToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "lb_";
  std::uint32_t acc = 0;
  int bits = 0;
  for (const unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      out.push_back(kAlphabet[(acc >> (bits - 6)) & 63]);
      bits -= 6;
    }
  }
  if (bits > 0) {
    out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<TokenRegistry>> TokenRegistry::Open(std::string path) {
  std::unique_ptr<TokenRegistry> registry(new TokenRegistry(std::move(path)));
  std::lock_guard<std::mutex> lock(registry->mu_);
  if (absl::Status s = registry->LoadLocked(); !s.ok()) {
    return s;
  }
  return registry;
}

absl::Status TokenRegistry::LoadLocked() {
  tokens_.clear();
  loaded_mtime_ns_ = MtimeNs(path_);
  std::ifstream in(path_);
  if (!in) {
    return absl::OkStatus();  // no file yet: no tokens
  }
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  const std::string where = "API tokens file " + path_ + ": ";
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("tokens") ||
      !doc["tokens"].IsArray()) {
    return absl::InvalidArgumentError(where + "expected {\"tokens\": [...]}");
  }
  for (const rapidjson::Value& entry : doc["tokens"].GetArray()) {
    if (!entry.IsObject() || !entry.HasMember("name") || !entry["name"].IsString() ||
        !entry.HasMember("sha256") || !entry["sha256"].IsString() || !entry.HasMember("roles") ||
        !entry["roles"].IsArray()) {
      return absl::InvalidArgumentError(where + "each token needs name, sha256 and roles");
    }
    TokenInfo info;
    info.name = entry["name"].GetString();
    info.sha256_hex = entry["sha256"].GetString();
    if (!ValidHex64(info.sha256_hex)) {
      return absl::InvalidArgumentError(where + "token \"" + info.name +
                                        "\": sha256 must be 64 lower-case hex digits");
    }
    for (const rapidjson::Value& role : entry["roles"].GetArray()) {
      if (!role.IsString()) {
        return absl::InvalidArgumentError(where + "roles must be strings");
      }
      absl::StatusOr<Role> parsed = ParseRole(role.GetString());
      if (!parsed.ok()) {
        return absl::InvalidArgumentError(where + std::string(parsed.status().message()));
      }
      info.roles |= static_cast<std::uint32_t>(*parsed);
    }
    if (entry.HasMember("created_at") && entry["created_at"].IsString()) {
      info.created_at = entry["created_at"].GetString();
    }
    tokens_.push_back(std::move(info));
  }
  return absl::OkStatus();
}

absl::Status TokenRegistry::ReloadIfChangedLocked() {
  const absl::Time now = absl::Now();
  if (now - last_check_ < absl::Seconds(1)) {
    return absl::OkStatus();
  }
  last_check_ = now;
  if (MtimeNs(path_) == loaded_mtime_ns_) {
    return absl::OkStatus();
  }
  std::vector<TokenInfo> previous = tokens_;
  if (absl::Status s = LoadLocked(); !s.ok()) {
    tokens_ = std::move(previous);  // keep serving with the last good file
    return s;
  }
  return absl::OkStatus();
}

absl::Status TokenRegistry::SaveLocked() {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("tokens");
  w.StartArray();
  for (const TokenInfo& t : tokens_) {
    w.StartObject();
    w.Key("name");
    w.String(t.name.c_str());
    w.Key("sha256");
    w.String(t.sha256_hex.c_str());
    w.Key("roles");
    w.StartArray();
    for (const std::string& role : RoleNames(t.roles)) {
      w.String(role.c_str());
    }
    w.EndArray();
    w.Key("created_at");
    w.String(t.created_at.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::error_code ec;
  const std::filesystem::path target(path_);
  if (target.has_parent_path()) {
    std::filesystem::create_directories(target.parent_path(), ec);
  }
  const std::string tmp = path_ + ".tmp";
  {
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
      return absl::UnavailableError("cannot write " + tmp);
    }
    ::chmod(tmp.c_str(), 0600);
    const std::string text = std::string(buffer.GetString()) + "\n";
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) {
      return absl::UnavailableError("cannot write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    return absl::UnavailableError("cannot replace " + path_);
  }
  loaded_mtime_ns_ = MtimeNs(path_);
  return absl::OkStatus();
}

absl::StatusOr<Principal> TokenRegistry::Authenticate(std::string_view token) {
  const std::string hash = Sha256Hex(token);
  std::lock_guard<std::mutex> lock(mu_);
  (void)ReloadIfChangedLocked();
  const TokenInfo* match = nullptr;
  for (const TokenInfo& t : tokens_) {
    // Every entry is compared, whatever matched before (no early exit).
    if (CRYPTO_memcmp(t.sha256_hex.data(), hash.data(), hash.size()) == 0 && !token.empty()) {
      match = &t;
    }
  }
  if (match == nullptr) {
    return absl::UnauthenticatedError("missing or unknown bearer token");
  }
  return Principal{match->name, match->roles};
}

absl::StatusOr<std::string> TokenRegistry::Create(const std::string& name, std::uint32_t roles,
                                                  absl::Time now) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError("token name: 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  if (roles == 0) {
    return absl::InvalidArgumentError("token roles: at least one role");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = LoadLocked(); !s.ok()) {
    return s;
  }
  for (const TokenInfo& t : tokens_) {
    if (t.name == name) {
      return absl::AlreadyExistsError("a token named " + name + " exists");
    }
  }
  absl::StatusOr<std::string> token = NewToken();
  if (!token.ok()) {
    return token.status();
  }
  tokens_.push_back({name, Sha256Hex(*token), roles,
                     absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone())});
  if (absl::Status s = SaveLocked(); !s.ok()) {
    tokens_.pop_back();
    return s;
  }
  return token;
}

absl::Status TokenRegistry::Revoke(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = LoadLocked(); !s.ok()) {
    return s;
  }
  for (auto it = tokens_.begin(); it != tokens_.end(); ++it) {
    if (it->name == name) {
      tokens_.erase(it);
      return SaveLocked();
    }
  }
  return absl::NotFoundError("no token named " + name);
}

std::vector<TokenInfo> TokenRegistry::List() {
  std::lock_guard<std::mutex> lock(mu_);
  (void)LoadLocked();
  return tokens_;
}

bool TokenRegistry::empty() {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.empty();
}

}  // namespace bridge::api::service
