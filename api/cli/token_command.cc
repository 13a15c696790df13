// api/cli/token_command.cc
#include "api/cli/token_command.h"

#include <memory>
#include <ostream>
#include <string>

#include "absl/strings/str_join.h"

#include "api/service/auth.h"

namespace bridge::api {
namespace {

std::unique_ptr<service::TokenRegistry> OpenOrExplain(const std::string& file, std::ostream& err) {
  absl::StatusOr<std::unique_ptr<service::TokenRegistry>> registry =
      service::TokenRegistry::Open(file);
  if (!registry.ok()) {
    err << "lab-bridge token: " << registry.status().message() << "\n";
    return nullptr;
  }
  return *std::move(registry);
}

}  // namespace

int RunTokenCreate(const std::string& tokens_file, const std::string& name,
                   const std::string& roles, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::uint32_t> parsed = service::ParseRoles(roles);
  if (!parsed.ok()) {
    err << "lab-bridge token create: --roles: " << parsed.status().message() << "\n";
    return 2;
  }
  std::unique_ptr<service::TokenRegistry> registry = OpenOrExplain(tokens_file, err);
  if (!registry) {
    return 1;
  }
  absl::StatusOr<std::string> token = registry->Create(name, *parsed, absl::Now());
  if (!token.ok()) {
    err << "lab-bridge token create: " << token.status().message() << "\n";
    return absl::IsInvalidArgument(token.status()) ? 2 : 1;
  }
  out << *token << "\n";
  err << "token \"" << name << "\" created with roles "
      << absl::StrJoin(service::RoleNames(*parsed), ",") << " in " << tokens_file
      << "; it is shown only this once\n";
  return 0;
}

int RunTokenList(const std::string& tokens_file, std::ostream& out, std::ostream& err) {
  std::unique_ptr<service::TokenRegistry> registry = OpenOrExplain(tokens_file, err);
  if (!registry) {
    return 1;
  }
  for (const service::TokenInfo& t : registry->List()) {
    out << t.name << "\t" << absl::StrJoin(service::RoleNames(t.roles), ",") << "\t" << t.created_at
        << "\n";
  }
  return 0;
}

int RunTokenRevoke(const std::string& tokens_file, const std::string& name, std::ostream& out,
                   std::ostream& err) {
  std::unique_ptr<service::TokenRegistry> registry = OpenOrExplain(tokens_file, err);
  if (!registry) {
    return 1;
  }
  if (absl::Status s = registry->Revoke(name); !s.ok()) {
    err << "lab-bridge token revoke: " << s.message() << "\n";
    return 1;
  }
  out << "token \"" << name << "\" revoked\n";
  return 0;
}

}  // namespace bridge::api
