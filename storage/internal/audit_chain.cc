#include "storage/internal/audit_chain.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace bridge::storage::internal {
namespace {

void Put(std::string& out, const std::optional<std::string>& field) {
  if (!field) {
    out.append("~;");
    return;
  }
  absl::StrAppend(&out, field->size(), ":", *field, ";");
}

void Put(std::string& out, const std::optional<int64_t>& field) {
  Put(out, field ? std::optional<std::string>(std::to_string(*field)) : std::nullopt);
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // EVP_Digest is one-shot; it only fails on allocation failure, where the
  // all-zero digest below makes the chain fail to verify rather than lie.
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return std::string(64, '0');
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string CanonicalContent(const ChainRow& row) {
  std::string out = "hl7_messages/v1;";
  Put(out, std::optional<int64_t>(row.id));
  Put(out, std::optional<std::string>(row.direction));
  Put(out, row.message_type);
  Put(out, row.trigger_event);
  Put(out, row.message_control_id);
  Put(out, row.sending_application);
  Put(out, row.sending_facility);
  Put(out, row.receiving_application);
  Put(out, row.receiving_facility);
  Put(out, row.version);
  Put(out, std::optional<std::string>(row.message_hash));
  Put(out, row.ack_status);
  Put(out, row.ack_message);
  Put(out, row.source_ip);
  Put(out, row.peer_certificate_subject);
  Put(out, std::optional<int64_t>(row.processed_at));
  Put(out, row.error_detail);
  Put(out, row.duplicate_of);
  Put(out, std::optional<int64_t>(row.control_id_reused ? 1 : 0));
  return out;
}

std::string NextChainHash(std::string_view previous_hash, const ChainRow& row) {
  std::string input(previous_hash);
  input += CanonicalContent(row);
  return Sha256Hex(input);
}

}  // namespace bridge::storage::internal
