// storage/internal/audit_chain.h (private to storage/)
//
// The hash chain over hl7_messages. Each row stores
//   chain_hash = hex(SHA-256(previous row's chain_hash || CanonicalContent(row)))
// where the first row after the retention anchor chains from the anchor hash
// (64 zeros before any purge). Row ids are assigned contiguously under the
// chain lock, so a gap in ids means a deleted row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bridge::storage::internal {

inline constexpr char kGenesisHash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// Every audited column of one hl7_messages row, as stored (NULL = nullopt).
struct ChainRow {
  int64_t id = 0;
  std::string direction;
  std::optional<std::string> message_type, trigger_event, message_control_id, sending_application,
      sending_facility, receiving_application, receiving_facility, version;
  std::string message_hash;
  std::optional<std::string> ack_status, ack_message, source_ip, peer_certificate_subject;
  int64_t processed_at = 0;
  std::optional<std::string> error_detail;
  std::optional<int64_t> duplicate_of;
  bool control_id_reused = false;
};

// Unambiguous serialisation: each field as "<length>:<bytes>;" or "~;" for NULL.
std::string CanonicalContent(const ChainRow& row);

std::string NextChainHash(std::string_view previous_hash, const ChainRow& row);

}  // namespace bridge::storage::internal
