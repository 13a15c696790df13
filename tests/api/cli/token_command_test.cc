// tests/api/cli/token_command_test.cc: `lab-bridge token` on a real file.
#include "api/cli/token_command.h"

#include <sstream>

#include "gtest/gtest.h"

#include "api/service/auth.h"
#include "tests/support/test_paths.h"

namespace bridge::api {
namespace {

TEST(TokenCommandTest, CreatePrintsTheTokenOnceListShowsNoSecretRevokeRemoves) {
  bridge::testing::TempDir dir;
  const std::string file = (dir.path() / "tokens.json").string();
  std::ostringstream out, err;
  ASSERT_EQ(RunTokenCreate(file, "pms-backend", "results:read,orders:write", out, err), 0)
      << err.str();
  std::string token = out.str();
  ASSERT_FALSE(token.empty());
  token.pop_back();  // newline
  EXPECT_EQ(token.rfind("lb_", 0), 0u);

  auto registry = service::TokenRegistry::Open(file);
  ASSERT_TRUE(registry.ok());
  absl::StatusOr<service::Principal> who = (*registry)->Authenticate(token);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->name, "pms-backend");

  std::ostringstream list, list_err;
  ASSERT_EQ(RunTokenList(file, list, list_err), 0);
  EXPECT_NE(list.str().find("pms-backend\tresults:read,orders:write\t"), std::string::npos)
      << list.str();
  EXPECT_EQ(list.str().find(token), std::string::npos);

  std::ostringstream again, again_err;
  EXPECT_EQ(RunTokenCreate(file, "pms-backend", "results:read", again, again_err), 1);
  EXPECT_TRUE(again.str().empty());
  std::ostringstream bad, bad_err;
  EXPECT_EQ(RunTokenCreate(file, "x", "root", bad, bad_err), 2);
  EXPECT_NE(bad_err.str().find("unknown role"), std::string::npos);

  std::ostringstream revoked, revoked_err;
  ASSERT_EQ(RunTokenRevoke(file, "pms-backend", revoked, revoked_err), 0);
  EXPECT_EQ(RunTokenRevoke(file, "pms-backend", revoked, revoked_err), 1);
  auto reread = service::TokenRegistry::Open(file);
  ASSERT_TRUE(reread.ok());
  EXPECT_FALSE((*reread)->Authenticate(token).ok());
}

}  // namespace
}  // namespace bridge::api
