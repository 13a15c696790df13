// `lab-bridge token`: API bearer tokens (api/service/auth.h) on the command
// line. The tokens file is API_TOKENS_FILE (default ./var/api_tokens.json).
//
//   token create --name NAME --roles results:read,orders:write
//                       prints the new token once on stdout; only its
//                       SHA-256 is stored
//   token list          name, roles and creation time of every token
//   token revoke NAME   deletes it; a running server refuses it within 1 s
//
// Each returns the process exit code (0 ok, 1 refused, 2 bad arguments) and
// writes errors as one line on `err`.
#pragma once

#include <iosfwd>
#include <string>

namespace bridge::api {

int RunTokenCreate(const std::string& tokens_file, const std::string& name,
                   const std::string& roles, std::ostream& out, std::ostream& err);
int RunTokenList(const std::string& tokens_file, std::ostream& out, std::ostream& err);
int RunTokenRevoke(const std::string& tokens_file, const std::string& name, std::ostream& out,
                   std::ostream& err);

}  // namespace bridge::api
