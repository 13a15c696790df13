// storage/store.h
//
// The Store is the one place lab-bridge keeps state: the HL7 v2 audit trail
// (hl7_messages, hash-chained so that an edit or deletion of a past row is
// detectable), patients, lab orders and their outbox, lab results and the
// stored FHIR resources. Two backends implement it, chosen by DATABASE_URL:
// SQLite (embedded default, WAL + synchronous=FULL) and PostgreSQL (libpqxx,
// synchronous_commit=on). Neither backend's headers are visible from here.
//
// Usage:
//   StoreOptions options;
//   options.database_url = "sqlite://./var/lab-bridge.db";
//   absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(options);
//   if (!store.ok()) { /* print store.status(), exit */ }
//   absl::StatusOr<IngestOutcome> outcome = (*store)->Ingest(record);
//   // ACK the sender only when outcome.ok(): the record is durable by then.
//
// Error codes (every method): kUnavailable means the database could not be
// reached or could not write right now (connection lost, disk full, lock
// timeout) and the same call may succeed later; kInvalidArgument means the
// input can never be stored as given; kNotFound / kAlreadyExists /
// kFailedPrecondition as documented per method; kDataLoss only from
// VerifyAuditChain; kInternal for anything else. A lost PostgreSQL
// connection is re-established by the next call; a call that had written
// nothing yet (any query, the start of an ingest batch) is retried once
// internally, so a server restart costs at most the batch in flight.
//
// Text fields: an empty string is stored as NULL and read back as "".
// Times are stored as microseconds since the Unix epoch (UTC).
//
// Thread safety: a Store is safe for concurrent use from any number of
// threads. Writes go through one connection (Ingest calls are queued to one
// committer thread and grouped); queries use a second connection. Every
// method blocks (disk and network I/O): call it from a worker pool, never
// from an I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bridge::storage {

inline constexpr char kDefaultDatabaseUrl[] = "sqlite://./var/lab-bridge.db";

struct StoreOptions {
  // sqlite:///abs/path.db, sqlite://./relative.db (relative to the working
  // directory; the folder is created) or postgresql://user:pass@host:port/db
  // (any libpq URI, query parameters included).
  std::string database_url = kDefaultDatabaseUrl;

  // Apply pending migrations when the store opens. When false, Open fails
  // with kFailedPrecondition if the schema is not current.
  bool migrate_on_open = true;

  // Concurrent Ingest() calls share one transaction (one fsync) when true.
  // When false every Ingest() commits on its own (for benchmarks).
  bool group_commit = true;

  // Connections that serve queries, beside the one that writes: that many
  // API reads run at once. 0: queries share the writer's connection.
  int read_connections = 4;

  // Upper bound on records committed in one group-commit transaction.
  int max_batch_records = 128;

  // How long a writer waits for a database lock before kUnavailable.
  absl::Duration lock_timeout = absl::Seconds(5);

  // Source of "now" for processed_at / received_at / leases. Tests inject one.
  std::function<absl::Time()> clock = [] { return absl::Now(); };

  // Test hook: called between the writes of one Ingest() with the name of the
  // step about to run ("message", "patient", "orders", "results", "fhir").
  // A non-OK return aborts that record exactly as a database error would.
  std::function<absl::Status(std::string_view step)> ingest_fault_hook_for_test;
};

// ----- what callers write -----

// One HL7 v2 message as received (or sent), with its audit fields. The ACK
// fields are the answer the caller will send once the record is committed.
struct InboundMessage {
  std::string message_type;           // MSH-9.1, e.g. "ORU"; "" when unparseable
  std::string trigger_event;          // MSH-9.2, e.g. "R01"
  std::string message_control_id;     // MSH-10
  std::string sending_application;    // MSH-3
  std::string sending_facility;       // MSH-4
  std::string receiving_application;  // MSH-5
  std::string receiving_facility;     // MSH-6
  std::string version;                // MSH-12
  std::string raw_message;            // bytes exactly as received
  std::string ack_status;             // AA/AE/AR/CA/CE/CR, "" while pending
  std::string ack_message;            // the ACK bytes we answer with
  std::string source_ip;
  std::string peer_certificate_subject;
  std::string error_detail;                // no PHI
  std::optional<absl::Time> processed_at;  // default: the store's clock
};

// A patient upserted from PID. Keyed by pms_patient_id (PID-3 with our
// assigning authority) or, when that is empty, by other_identifiers.
struct PatientRecord {
  std::string pms_patient_id;
  std::string other_identifiers;  // e.g. "A123^^^LAB^MR~..." as received
  std::string family_name;
  std::string given_name;
  std::string birth_date;  // YYYY[MM[DD]] as in PID-7
  std::string sex;         // PID-8
};

// One OBX (lab_results row).
struct ResultRecord {
  std::string test_code;  // OBX-3.1, required
  std::string test_name;
  std::string value;
  std::string value_type;  // OBX-2
  std::string units;
  std::string reference_range;
  std::string abnormal_flag;       // OBX-8
  std::string result_status;       // OBX-11
  std::string observation_sub_id;  // OBX-4
  std::string sending_facility;
  std::string filler_order_number;  // OBR-3
  std::string placer_order_number;  // OBR-2: links the result to lab_orders
  std::optional<absl::Time> observation_date;
  bool critical = false;
  std::string report_code;            // OBR-4.1: the panel this result belongs to
  std::string report_name;            // OBR-4.2
  std::vector<std::string> comments;  // NTE-3 lines after the OBX, in order
};

// One value of a multi-valued FHIR search parameter of a resource (Patient
// identifier, name parts, birthdate; ServiceRequest identifier).
struct FhirSearchValue {
  std::string name;    // the search parameter: "identifier", "name", "birthdate"
  std::string system;  // identifier: its system ("" when it has none)
  std::string value;   // identifier: as is; name: lower-cased; birthdate: FHIR date text
};

// A FHIR resource to store (insert, or new version when it exists).
struct FhirResourceRecord {
  std::string resource_type;  // "Observation"
  std::string id;
  std::string json;
  std::string patient_reference;  // "Patient/123"
  std::string code;
  std::string date;  // FHIR date/dateTime text; compared lexically
  std::string status;
  std::string category;
  // Replace the resource's previous values (a new version drops the old ones).
  std::vector<FhirSearchValue> search_values;
};

// Everything one inbound message produces, written in ONE transaction.
struct IngestRecord {
  InboundMessage message;
  std::optional<PatientRecord> patient;
  std::vector<ResultRecord> results;
  // OBR-2 placer numbers whose orders move to "resulted".
  std::vector<std::string> resulted_placer_order_numbers;
  std::vector<FhirResourceRecord> fhir_resources;
};

struct IngestOutcome {
  int64_t message_id = 0;               // this receipt's hl7_messages.id
  std::optional<int64_t> duplicate_of;  // set when this was a resend
  bool control_id_reused = false;       // same key, different content
  std::string ack_status;               // original ACK when a duplicate
  std::string ack_message;
  std::optional<int64_t> patient_id;
  std::vector<int64_t> result_ids;
};

// ----- what callers read -----

struct StoredMessage {
  int64_t id = 0;
  std::string direction;   // "inbound" / "outbound"
  InboundMessage message;  // processed_at always set
  std::string message_hash;
  std::optional<int64_t> duplicate_of;
  bool control_id_reused = false;
  std::string chain_hash;
};

struct StoredPatient {
  int64_t id = 0;
  PatientRecord patient;
  absl::Time updated_at;
};

struct StoredResult {
  int64_t id = 0;
  int64_t patient_id = 0;
  std::optional<int64_t> lab_order_id;
  int64_t hl7_message_id = 0;
  ResultRecord result;
  absl::Time received_at;
  std::string acknowledged_by;
  std::optional<absl::Time> acknowledged_at;
  std::string acknowledgement_note;
};

struct NewOrder {
  // The patient: upserted from `patient` when given, else `patient_id`.
  std::optional<PatientRecord> patient;
  int64_t patient_id = 0;
  std::optional<int64_t> encounter_id;
  std::vector<std::string> test_codes;  // required, non-empty
  std::string ordering_provider;
  std::string priority = "R";
  std::string placer_order_number;  // required, unique
  std::string lis_endpoint;         // required: outbox destination
  std::string outbox_payload;       // bytes for the dispatcher
};

struct StoredOrder {
  int64_t id = 0;
  int64_t patient_id = 0;
  std::optional<int64_t> encounter_id;
  std::vector<std::string> test_codes;
  std::string ordering_provider;
  std::string priority;
  std::string status;  // pending/sent/acknowledged/resulted/failed/rejected/cancelled
  std::string placer_order_number;
  std::optional<int64_t> hl7_message_id;
  absl::Time created_at;
  std::optional<absl::Time> sent_at;
  std::optional<absl::Time> acknowledged_at;
  std::string lis_endpoint;
  int attempts = 0;
  std::string last_error;
  // For a "resulted" order: "preliminary" while a test's latest result is
  // preliminary (OBX-11 P, R, S or I) or, when the lab echoes the ordered
  // test codes in OBR-4, an ordered test has not answered yet; "final" once
  // every test is final or corrected; "" for orders not resulted. Derived
  // from the linked lab_results when read.
  std::string result_status;
};

struct CreatedOrder {
  int64_t order_id = 0;
  int64_t outbox_id = 0;
  int64_t patient_id = 0;
};

struct OutboxItem {
  int64_t id = 0;
  int64_t order_id = 0;
  std::string endpoint;
  std::string payload;
  int attempts = 0;
  absl::Time next_attempt_at;
  std::string claimed_by;
  absl::Time claimed_until;
};

// How a claim on an outbox row ends (Store::SettleOutbox).
struct OutboxSettlement {
  enum class Outcome {
    kDone,     // delivered: the row is finished
    kRetry,    // try again at next_attempt_at
    kFail,     // give up: the row is finished as failed
    kRelease,  // not attempted (LIS unreachable, routing): back to the queue
  };
  Outcome outcome = Outcome::kDone;
  absl::Time next_attempt_at;  // kRetry, kRelease
  std::string endpoint;        // kRelease: a new destination ("" keeps it)
  std::string error;           // last_error of the row and its order ("" keeps it)
  // The order moves to `order_status` only when its status is one of
  // `order_status_from` ("" leaves it alone). "sent" sets sent_at,
  // "acknowledged" acknowledged_at.
  std::string order_status;
  std::vector<std::string> order_status_from;
  // Appended to the audit trail in the same transaction: the message sent
  // and the ACK that answered it (direction "outbound"). With
  // `link_order_to_message`, the order's hl7_message_id points at it. It is
  // written even when the claim was lost (the message did go out).
  std::optional<InboundMessage> outbound_message;
  bool link_order_to_message = false;
};

struct OrderCancellation {
  bool cancel_message_queued = false;  // an ORC-1 CA row was added to the outbox
};

struct StoredFhirResource {
  FhirResourceRecord resource;
  int64_t version = 0;
  absl::Time last_updated;
};

// Results: newest first (by id). `cursor` is the opaque next_cursor of the
// previous page; pages are stable under concurrent inserts.
struct ResultQuery {
  std::optional<int64_t> patient_id;  // internal id, or:
  std::string pms_patient_id;         // PID-3 with our assigning authority
  bool abnormal_only = false;         // abnormal_flag set and not "N"
  std::optional<bool> critical;
  std::optional<bool> acknowledged;
  std::optional<absl::Time> observed_from;  // inclusive
  std::optional<absl::Time> observed_to;    // exclusive
  std::string test_code;
  int limit = 100;
  std::string cursor;
};

struct ResultPage {
  std::vector<StoredResult> results;
  std::string next_cursor;  // "" when there are no more rows
};

struct PatientQuery {
  std::string text;  // a PMS id, or words of a name ("doe", "jane doe", "do ja")
  int limit = 20;    // 1..1000
};

struct OrderQuery {
  std::optional<int64_t> patient_id;
  std::string status;
  // Any of these statuses (with `status`, either may match). Empty: no filter.
  std::vector<std::string> statuses;
  std::optional<absl::Time> created_before;  // exclusive
  int limit = 100;
  std::string cursor;
};

struct OrderPage {
  std::vector<StoredOrder> orders;
  std::string next_cursor;
};

struct MessageQuery {
  std::optional<absl::Time> processed_from;  // inclusive
  std::optional<absl::Time> processed_to;    // exclusive
  int limit = 100;
  std::string cursor;  // oldest first
};

struct MessagePage {
  std::vector<StoredMessage> messages;
  std::string next_cursor;
};

// A condition on FhirResourceRecord::search_values: the resource matches when
// one of its values named `name` does.
struct FhirValueCondition {
  enum class Match {
    kToken,   // value equal ("" = any), and system equal when `system` is set ("" = none)
    kPrefix,  // value starts with `value` (callers lower-case names)
    kRange,   // value in [from, to), lexical; an empty bound is open
  };
  std::string name;
  Match match = Match::kToken;
  std::optional<std::string> system;
  std::string value;
  std::string from;
  std::string to;
};

struct FhirQuery {
  std::string resource_type;  // required
  std::string patient_reference;
  std::string code;
  std::string status;
  std::string category;
  std::string date_from;                             // inclusive, lexical
  std::string date_to;                               // exclusive, lexical
  std::optional<absl::Time> last_updated_from;       // inclusive
  std::optional<absl::Time> last_updated_to;         // exclusive
  std::vector<FhirValueCondition> value_conditions;  // all must hold
  int limit = 100;
  std::string cursor;
};

struct FhirPage {
  std::vector<StoredFhirResource> resources;
  std::string next_cursor;
};

// Counters since the store was opened (for /metrics and tests).
struct StoreStats {
  int64_t ingest_records = 0;   // Ingest() calls that reached the committer
  int64_t ingest_batches = 0;   // transactions they were committed in
  int64_t ingest_failures = 0;  // records whose outcome was an error
  // Queries, transactions and ingest records that failed on the database
  // itself (kUnavailable or kInternal: connection lost, disk full, lock
  // timeout), not on the caller's input.
  int64_t database_errors = 0;
};

// Work waiting for people or for the dispatcher, counted now (for /metrics).
struct OpenWork {
  int64_t open_critical_results = 0;  // critical, not yet acknowledged
  int64_t outbox_pending = 0;         // outbox rows not yet sent, failed or cancelled
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies pending numbered migrations; returns how many were applied.
  virtual absl::StatusOr<int> Migrate() = 0;

  // Records an inbound message and everything derived from it in ONE
  // transaction, committed before return. Idempotent on (sending
  // application, sending facility, MSH-10): a resend with the same bytes
  // hash is stored as a receipt row (duplicate_of = the original), nothing
  // else changes, and the outcome carries the ORIGINAL ack. The same key with
  // different bytes is stored as a new message flagged control_id_reused.
  // kInvalidArgument: results without a patient, a result without test_code,
  // a FHIR resource without type/id. Concurrent calls share commits.
  virtual absl::StatusOr<IngestOutcome> Ingest(const IngestRecord& record) = 0;

  // Appends an outbound message (e.g. an ORM we sent) to the audit trail.
  virtual absl::StatusOr<int64_t> RecordOutbound(const InboundMessage& message,
                                                 std::optional<int64_t> order_id) = 0;

  virtual absl::StatusOr<StoredMessage> GetMessage(int64_t id) = 0;
  // All rows with that key, oldest first (original, receipts, reuses).
  virtual absl::StatusOr<std::vector<StoredMessage>> FindMessagesByControlId(
      std::string_view sending_application, std::string_view sending_facility,
      std::string_view message_control_id) = 0;
  virtual absl::StatusOr<MessagePage> ListMessages(const MessageQuery& query) = 0;

  virtual absl::StatusOr<StoredPatient> GetPatient(int64_t id) = 0;
  virtual absl::StatusOr<StoredPatient> FindPatientByPmsId(std::string_view pms_patient_id) = 0;
  // Patients whose PMS id equals `query.text`, or whose family or given
  // names start with every word of it (case-insensitive for ASCII), ordered
  // by family name, given name, id. An empty text is InvalidArgument.
  virtual absl::StatusOr<std::vector<StoredPatient>> SearchPatients(const PatientQuery& query) = 0;

  // kNotFound when a pms_patient_id is given and no such patient exists.
  virtual absl::StatusOr<ResultPage> ListResults(const ResultQuery& query) = 0;
  // One result by id. kNotFound: no such result.
  virtual absl::StatusOr<StoredResult> GetResult(int64_t id) = 0;
  // Marks a result acknowledged. kNotFound: no such result;
  // kAlreadyExists: already acknowledged (the first acknowledgement stays).
  virtual absl::Status AcknowledgeResult(int64_t result_id, std::string_view who, absl::Time when,
                                         std::string_view note) = 0;

  // Creates the order (status pending) and its outbox row in one transaction.
  // kAlreadyExists: placer_order_number taken; kInvalidArgument: missing fields.
  virtual absl::StatusOr<CreatedOrder> CreateOrder(const NewOrder& order) = 0;
  virtual absl::StatusOr<StoredOrder> GetOrder(int64_t id) = 0;
  virtual absl::StatusOr<StoredOrder> FindOrderByPlacerNumber(std::string_view placer) = 0;
  virtual absl::StatusOr<OrderPage> ListOrders(const OrderQuery& query) = 0;
  // Sets status (and sent_at / acknowledged_at for "sent" / "acknowledged").
  virtual absl::Status UpdateOrderStatus(int64_t order_id, std::string_view status,
                                         absl::Time when) = 0;

  // Claims up to `max_rows` pending outbox rows that are due and not leased
  // (or whose lease has expired), leasing them to `claimer` until
  // now + lease. Two claimers, in any processes, never hold the same row.
  virtual absl::StatusOr<std::vector<OutboxItem>> ClaimOutbox(std::string_view claimer,
                                                              absl::Duration lease,
                                                              int max_rows) = 0;
  // The three ends of a claim. kFailedPrecondition when `claimer` no longer
  // holds the lease (it expired and another claimer took the row).
  virtual absl::Status CompleteOutbox(int64_t outbox_id, std::string_view claimer) = 0;
  virtual absl::Status RetryOutbox(int64_t outbox_id, std::string_view claimer,
                                   absl::Time next_attempt_at, std::string_view error) = 0;
  virtual absl::Status FailOutbox(int64_t outbox_id, std::string_view claimer,
                                  std::string_view error) = 0;

  // Claims rows of one endpoint in placement (id) order. With `in_order`
  // the run starts at the endpoint's oldest pending row and stops before the
  // first row that is not due or is leased to anyone: while the oldest waits
  // for a retry, or is held by another claimer (any process), nothing is
  // claimed, so an endpoint's rows leave in the order they were placed.
  // Without `in_order`, any due and unleased rows of that endpoint.
  virtual absl::StatusOr<std::vector<OutboxItem>> ClaimEndpointOutbox(std::string_view claimer,
                                                                      std::string_view endpoint,
                                                                      absl::Duration lease,
                                                                      int max_rows,
                                                                      bool in_order) = 0;
  // Ends a claim, moves its order and appends the outbound audit row, in one
  // transaction. Every outcome but kRelease counts an attempt (on the row
  // and on the order). kFailedPrecondition when `claimer` no longer holds
  // the lease (then only the audit row is written).
  virtual absl::Status SettleOutbox(int64_t outbox_id, std::string_view claimer,
                                    const OutboxSettlement& settlement) = 0;
  // Pending rows that nobody holds and whose endpoint is not in `keep` get
  // endpoint `to` and become due now (after a configuration change removed
  // their endpoint). Returns how many rows moved.
  virtual absl::StatusOr<int64_t> RerouteOutbox(const std::vector<std::string>& keep,
                                                std::string_view to) = 0;
  // Moves the order to `to` when its status is one of `from`; returns
  // whether it moved. kNotFound: no such order.
  virtual absl::StatusOr<bool> TransitionOrder(int64_t order_id,
                                               const std::vector<std::string>& from,
                                               std::string_view to, absl::Time when) = 0;
  // Cancels an order in one transaction. Its rows waiting in the outbox are
  // dropped. When something of it may have reached the LIS (a row was
  // attempted, is being sent, or is done) a row carrying `cancel_payload`
  // (the ORC-1 CA message) is queued for the same endpoint, behind any row
  // being sent. Rows whose endpoint is `routing_endpoint` are still being
  // routed, never sent. kNotFound; kFailedPrecondition when the order is
  // already resulted, failed, rejected or cancelled.
  virtual absl::StatusOr<OrderCancellation> CancelOrder(int64_t order_id, absl::Time when,
                                                        std::string_view cancel_payload,
                                                        std::string_view routing_endpoint) = 0;

  virtual absl::StatusOr<StoredFhirResource> GetFhirResource(std::string_view resource_type,
                                                             std::string_view id) = 0;
  virtual absl::StatusOr<FhirPage> SearchFhirResources(const FhirQuery& query) = 0;

  // Walks the audit chain from the retention anchor to the head. Returns the
  // number of rows verified, or kDataLoss naming the first row that does not
  // verify (edited, or missing because it was deleted).
  virtual absl::StatusOr<int64_t> VerifyAuditChain() = 0;

  // Deletes audit rows processed before `cutoff` (a contiguous oldest prefix)
  // and moves the chain anchor so the first kept row still verifies. Also
  // deletes finished outbox rows older than `cutoff`. Returns rows purged.
  virtual absl::StatusOr<int64_t> PurgeAuditOlderThan(absl::Time cutoff) = 0;

  // A snapshot of the counters. Never blocks on the database.
  virtual StoreStats stats() const = 0;

  // Two counts over partial/state indexes (cheap at any table size).
  virtual absl::StatusOr<OpenWork> CountOpenWork() = 0;

  // The durability settings in force on the connection that commits, as the
  // database reports them (not as configured): "sqlite journal_mode=wal
  // synchronous=full" or "postgresql synchronous_commit=on fsync=on".
  // serve logs it at start; an ACK is only as safe as these.
  virtual absl::StatusOr<std::string> Durability() = 0;
};

// Opens (and by default migrates) the store named by options.database_url.
// kInvalidArgument: the URL is malformed or names an unknown scheme;
// kUnavailable: the database cannot be reached or opened. The message is one
// line and never contains the password.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);

// The URL with any password replaced by "***", for logs and errors.
std::string MaskDatabaseUrl(std::string_view url);

}  // namespace bridge::storage
