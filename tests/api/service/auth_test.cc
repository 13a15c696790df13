// tests/api/service/auth_test.cc: the token registry on a real file.
#include "api/service/auth.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

#include "tests/support/test_paths.h"

namespace bridge::api::service {
namespace {

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(TokenRegistryTest, CreateStoresOnlyTheHashAndAuthenticatesWithRoles) {
  bridge::testing::TempDir dir;
  const std::string path = (dir.path() / "sub" / "tokens.json").string();
  auto registry = TokenRegistry::Open(path);
  ASSERT_TRUE(registry.ok()) << registry.status();
  EXPECT_TRUE((*registry)->empty());
  absl::StatusOr<std::uint32_t> roles = ParseRoles("results:read, orders:write");
  ASSERT_TRUE(roles.ok());
  absl::StatusOr<std::string> token = (*registry)->Create("pms", *roles, absl::Now());
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->rfind("lb_", 0), 0u);
  EXPECT_EQ(token->size(), 3u + 43u);

  const std::string file = Slurp(path);
  EXPECT_EQ(file.find(*token), std::string::npos) << "the token itself must not be stored";
  EXPECT_NE(file.find(Sha256Hex(*token)), std::string::npos);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);

  absl::StatusOr<Principal> who = (*registry)->Authenticate(*token);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->name, "pms");
  EXPECT_TRUE(who->Has(Role::kResultsRead));
  EXPECT_TRUE(who->Has(Role::kOrdersWrite));
  EXPECT_FALSE(who->Has(Role::kCriticalsAck));
  EXPECT_FALSE(who->Has(Role::kAuditRead));

  EXPECT_EQ((*registry)->Authenticate("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ((*registry)->Authenticate(*token + "x").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(TokenRegistryTest, AnotherProcessSeesCreateAndRevoke) {
  bridge::testing::TempDir dir;
  const std::string path = (dir.path() / "tokens.json").string();
  auto server = TokenRegistry::Open(path);
  auto cli = TokenRegistry::Open(path);
  ASSERT_TRUE(server.ok() && cli.ok());
  absl::StatusOr<std::string> token = (*cli)->Create("app", kAllRoles, absl::Now());
  ASSERT_TRUE(token.ok());
  // The server re-reads a changed file at most once a second.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE((*server)->Authenticate(*token).ok());
  ASSERT_TRUE((*cli)->Revoke("app").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ((*server)->Authenticate(*token).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(TokenRegistryTest, NamesRolesAndFilesAreValidated) {
  bridge::testing::TempDir dir;
  const std::string path = (dir.path() / "tokens.json").string();
  auto registry = TokenRegistry::Open(path);
  ASSERT_TRUE(registry.ok());
  EXPECT_EQ((*registry)->Create("", kAllRoles, absl::Now()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*registry)->Create("has space", kAllRoles, absl::Now()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*registry)->Create("none", 0, absl::Now()).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*registry)->Create("a", kAllRoles, absl::Now()).ok());
  EXPECT_EQ((*registry)->Create("a", kAllRoles, absl::Now()).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ((*registry)->Revoke("missing").code(), absl::StatusCode::kNotFound);
  ASSERT_EQ((*registry)->List().size(), 1u);
  EXPECT_EQ(RoleNames((*registry)->List()[0].roles).size(), 4u);

  EXPECT_EQ(ParseRoles("results:read,admin").status().code(), absl::StatusCode::kInvalidArgument);
  std::ofstream(dir.path() / "bad.json") << R"({"tokens": [{"name": "x", "sha256": "nothex",
      "roles": ["results:read"]}]})";
  EXPECT_EQ(TokenRegistry::Open((dir.path() / "bad.json").string()).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::ofstream(dir.path() / "junk.json") << "not json";
  EXPECT_EQ(TokenRegistry::Open((dir.path() / "junk.json").string()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Sha256HexTest, KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace bridge::api::service
