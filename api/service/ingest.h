// api/service/ingest.h
//
// Ingest: the inbound pipeline of ARCHITECTURE.md "Inbound", steps 2-7, for
// one received HL7 v2 message. Transport-free: the MLLP handler
// (api/mllp_handler.h) calls it on a worker thread and sends what it returns.
//
//   service::EventBus bus;
//   service::Ingest ingest(*store, bus, {.sending_application = "PMS_LAB",
//                                         .sending_facility = "MPS_PMS"});
//   IngestResult r = ingest.Handle(payload, {.source_ip = "10.0.0.7"});
//   if (r.reply) send(*r.reply); else close_connection();
//
// What each message gets (the ACK is always built first, stored in the
// message's audit row, and returned only after the commit):
//   - does not parse: raw bytes + error stored; NAK AE/AR whose MSA-2 is the
//     control id read from the raw bytes when possible; ERR segment.
//   - header invalid (ValidateHeader): stored; AE (101) or AR (200-203).
//   - resend (same MSH-3/MSH-4/MSH-10 and same bytes): the ORIGINAL ACK,
//     byte for byte; nothing else changes (the store keeps a receipt row).
//   - ORU^R01: converted (v2_to_fhir) into patient + one result per OBX +
//     FHIR resources, stored with the audit row in ONE Store::Ingest;
//     AA, or CA when the sender asks for enhanced mode. Results for several
//     different patients in one ORU are refused with AE (one IngestRecord
//     holds one patient; storing them under one would mislink results).
//     Order groups refused by OBR-25 give AE, the rest is stored. An OBX
//     without OBX-3.1 gets no lab_results row (it has no test code; it stays
//     in the audit row and the FHIR resources) and is counted in
//     uncoded_results; the message is still AA.
//   - ORM^O01 / OML^O21 from a LIS (status updates): stored, AA.
//   - ACK, ORR^O02, ORL^O22 (responses to our orders): stored, AA (CA in
//     enhanced mode), MSA-2 their MSH-10.
//   - storage unavailable (or any storage error): AR with ERR-3 207 so the
//     sender resends; nothing is stored (one transaction).
// Every message is answered, even an ACK and even when MSH-15 says NE/ER/SU:
// over MLLP the sender waits for one reply per frame (python-hl7, node-hl7-
// client, Mirth, HAPI all do), and no reply, or a closed connection, leaves
// it unable to tell a stored message from a lost one, so it resends the same
// message forever. HL7's "no ACK to an ACK" guards against ping-pong between
// two receivers; a reply on the sender's own connection cannot start one.
// Stored results are published on the EventBus; critical ones are logged as
// an alert (ids and test code only).
//
// Logging: one line per message through `options.logger` (spdlog), with
// control id, type, outcome and ids; never PID contents, values or raw bytes.
//
// Thread-safety: Handle may be called concurrently from any number of
// threads (the Store shares commits between them). It blocks on storage:
// never call it on an I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

#include "api/control_id.h"
#include "api/service/event_bus.h"
#include "mapping/v2_to_fhir/converter.h"
#include "storage/store.h"

namespace spdlog {
class logger;
}

namespace bridge::api::service {

// Who sent the message (copied into the audit row).
struct IngestPeer {
  std::string source_ip;
  std::string certificate_subject;
  std::vector<std::string> certificate_names;  // CN and subjectAltNames, mutual TLS
  std::uint64_t connection_id = 0;             // for logs
};

struct IngestOptions {
  std::string sending_application = "PMS_LAB";  // our MSH-3 in ACKs
  std::string sending_facility = "MPS_PMS";     // our MSH-4; PMS PID-3 assigning authority
  // OBX-8 flags that make a result critical (HH, LL, AA always do).
  std::vector<std::string> critical_flags = {"HH", "LL", "AA"};
  // Clock for ACK MSH-7 and conversion time.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Where log lines go; nullptr: nothing is logged.
  std::shared_ptr<spdlog::logger> logger;
  // The mapping settings of a known sender (by MSH-3, MSH-4): its time zone,
  // unit map and coding systems (lis_endpoints.json); nullptr or nullopt:
  // the defaults. Called once per ORU^R01, from any thread.
  std::function<std::optional<v2_to_fhir::SenderSettings>(std::string_view application,
                                                          std::string_view facility)>
      sender_settings;
  // Whether this peer may send as MSH-3/MSH-4 (lis_endpoints.json's
  // client_certificate_names); a non-OK status refuses the message with AR,
  // and it is still stored. nullptr: every sender is accepted.
  std::function<absl::Status(std::string_view application, std::string_view facility,
                             const IngestPeer& peer)>
      authorize_sender;
};


struct IngestResult {
  // The ACK/NAK to send back (unframed ER7). nullopt only for a resend whose
  // original audit row holds no ACK (a row not written by Ingest): the MLLP
  // server then closes the connection.
  std::optional<std::string> reply;
  std::string ack_code;      // MSA-1 of `reply` (or of the stored ACK), e.g. "AA"
  std::string control_id;    // the sender's MSH-10 ("" when unreadable)
  std::string message_type;  // "ORU^R01"; "" when unreadable
  bool stored = false;       // the audit row (and all derived rows) committed
  bool duplicate = false;    // a resend answered with the original ACK
  bool control_id_reused = false;
  std::optional<std::int64_t> message_id;
  std::vector<std::int64_t> result_ids;
  int critical_results = 0;
  int uncoded_results = 0;  // OBX rows without OBX-3.1 (no lab_results row)
  std::string error;        // no PHI; "" when AA/CA
};

class Ingest {
 public:
  // `store` and `bus` are borrowed and must outlive this object.
  Ingest(storage::Store& store, EventBus& bus, IngestOptions options);
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  IngestResult Handle(std::string_view payload, const IngestPeer& peer);

  // The NAK for a frame over MAX_MESSAGE_SIZE, built from its first bytes
  // (MSA-2 from MSH-10 when readable, AR 207... see .cc). Not stored: the
  // message was never received whole.
  std::string OversizeNak(std::string_view prefix, std::size_t max_bytes);

 private:
  std::string AckTimestamp() const;

  storage::Store& store_;
  EventBus& bus_;
  IngestOptions options_;
  ControlIdGenerator control_ids_;
};

}  // namespace bridge::api::service
