#include "storage/internal/sql_store.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "storage/internal/audit_chain.h"
#include "storage/internal/migrations.h"

namespace bridge::storage::internal {
namespace {

// ----- small conversions -----

// Debian's abseil has its own string_view, distinct from std::string_view.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

std::string Str(const std::optional<std::string>& v) { return v ? *v : std::string(); }
// Moves a column's text into `field` (left empty for NULL).
void Take(std::optional<std::string>& column, std::string* field) {
  if (column) {
    *field = std::move(*column);
  }
}

// The backends' own decimal text (an optional '-', then digits); 0 for NULL.
// A plain loop: std::from_chars was a twentieth of a result page.
int64_t Int(const std::optional<std::string>& v) {
  if (!v || v->empty()) {
    return 0;
  }
  const bool negative = (*v)[0] == '-';
  uint64_t magnitude = 0;
  for (size_t i = negative ? 1 : 0; i < v->size(); ++i) {
    const unsigned digit = static_cast<unsigned char>((*v)[i]) - '0';
    if (digit > 9) {
      break;
    }
    magnitude = magnitude * 10 + digit;
  }
  return negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
}

std::optional<int64_t> OptInt(const std::optional<std::string>& v) {
  if (!v) {
    return std::nullopt;
  }
  return Int(v);
}

std::optional<absl::Time> OptTime(const std::optional<std::string>& v) {
  if (!v) {
    return std::nullopt;
  }
  return FromMicros(Int(v));
}

std::optional<std::string> OptText(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

Param OptTimeParam(const std::optional<absl::Time>& t) {
  return t ? Param::Int(ToMicros(*t)) : Param::Null();
}

// Key columns are stored as '' rather than NULL so that equality finds them.
Param KeyText(const std::string& s) { return Param{Param::Kind::kText, 0, ValidUtf8(s)}; }

// Cursors are opaque to callers: "c" + hex of the last key.
std::string EncodeCursor(std::string_view key) {
  return absl::StrCat("c", absl::BytesToHexString(Sv(key)));
}

absl::StatusOr<std::string> DecodeCursor(std::string_view cursor) {
  if (cursor.size() < 1 || cursor[0] != 'c' || (cursor.size() % 2) != 1) {
    return absl::InvalidArgumentError("storage: malformed cursor");
  }
  for (char c : cursor.substr(1)) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("storage: malformed cursor");
    }
  }
  return absl::HexStringToBytes(Sv(cursor.substr(1)));
}

absl::StatusOr<int64_t> DecodeIdCursor(std::string_view cursor) {
  absl::StatusOr<std::string> key = DecodeCursor(cursor);
  if (!key.ok()) {
    return key.status();
  }
  int64_t id = 0;
  auto [ptr, ec] = std::from_chars(key->data(), key->data() + key->size(), id);
  if (ec != std::errc() || ptr != key->data() + key->size()) {
    return absl::InvalidArgumentError("storage: malformed cursor");
  }
  return id;
}

// "($first+1, ..., $first+count)": one tuple of a multi-row VALUES list.
std::string Placeholders(size_t first, size_t count) {
  std::string out = "(";
  for (size_t i = 1; i <= count; ++i) {
    absl::StrAppend(&out, i > 1 ? ", $" : "$", first + i);
  }
  return out + ")";
}

int ClampLimit(int limit) { return limit <= 0 ? 100 : (limit > 1000 ? 1000 : limit); }

// test_codes is a JSON array of strings, as in the guide.
std::string ToJsonArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out += ",";
    }
    out += '"';
    for (unsigned char c : values[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
    out += '"';
  }
  out += "]";
  return out;
}

// Reads back exactly what ToJsonArray writes.
std::vector<std::string> FromJsonArray(std::string_view json) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < json.size()) {
    if (json[i] != '"') {
      ++i;
      continue;
    }
    std::string value;
    ++i;
    while (i < json.size() && json[i] != '"') {
      if (json[i] == '\\' && i + 1 < json.size()) {
        if (json[i + 1] == 'u' && i + 5 < json.size()) {
          value += static_cast<char>(std::stoi(std::string(json.substr(i + 2, 4)), nullptr, 16));
          i += 6;
          continue;
        }
        value += json[i + 1];
        i += 2;
        continue;
      }
      value += json[i++];
    }
    ++i;
    out.push_back(std::move(value));
  }
  return out;
}

constexpr char kMessageColumns[] =
    "id, direction, message_type, trigger_event, message_control_id, sending_application, "
    "sending_facility, receiving_application, receiving_facility, version, raw_message, "
    "message_hash, ack_status, ack_message, source_ip, peer_certificate_subject, processed_at, "
    "error_detail, duplicate_of, control_id_reused, chain_hash";

StoredMessage MessageFromRow(const Row& r) {
  StoredMessage m;
  m.id = Int(r[0]);
  m.direction = Str(r[1]);
  m.message.message_type = Str(r[2]);
  m.message.trigger_event = Str(r[3]);
  m.message.message_control_id = Str(r[4]);
  m.message.sending_application = Str(r[5]);
  m.message.sending_facility = Str(r[6]);
  m.message.receiving_application = Str(r[7]);
  m.message.receiving_facility = Str(r[8]);
  m.message.version = Str(r[9]);
  m.message.raw_message = Str(r[10]);
  m.message_hash = Str(r[11]);
  m.message.ack_status = Str(r[12]);
  m.message.ack_message = Str(r[13]);
  m.message.source_ip = Str(r[14]);
  m.message.peer_certificate_subject = Str(r[15]);
  m.message.processed_at = FromMicros(Int(r[16]));
  m.message.error_detail = Str(r[17]);
  m.duplicate_of = OptInt(r[18]);
  m.control_id_reused = Int(r[19]) != 0;
  m.chain_hash = Str(r[20]);
  return m;
}

ChainRow ChainRowFromRow(const Row& r) {
  ChainRow c;
  c.id = Int(r[0]);
  c.direction = Str(r[1]);
  c.message_type = r[2];
  c.trigger_event = r[3];
  c.message_control_id = r[4];
  c.sending_application = r[5];
  c.sending_facility = r[6];
  c.receiving_application = r[7];
  c.receiving_facility = r[8];
  c.version = r[9];
  c.message_hash = Str(r[11]);
  c.ack_status = r[12];
  c.ack_message = r[13];
  c.source_ip = r[14];
  c.peer_certificate_subject = r[15];
  c.processed_at = Int(r[16]);
  c.error_detail = r[17];
  c.duplicate_of = OptInt(r[18]);
  c.control_id_reused = Int(r[19]) != 0;
  return c;
}

constexpr char kResultColumns[] =
    "id, patient_id, lab_order_id, hl7_message_id, test_code, test_name, value, value_type, "
    "units, reference_range, abnormal_flag, result_status, observation_sub_id, "
    "sending_facility, filler_order_number, placer_order_number, observation_date, critical, "
    "received_at, acknowledged_by, acknowledged_at, acknowledgement_note, report_code, "
    "report_name, comments";

StoredResult ResultFromRow(Row&& r) {
  StoredResult s;
  s.id = Int(r[0]);
  s.patient_id = Int(r[1]);
  s.lab_order_id = OptInt(r[2]);
  s.hl7_message_id = Int(r[3]);
  Take(r[4], &s.result.test_code);
  Take(r[5], &s.result.test_name);
  Take(r[6], &s.result.value);
  Take(r[7], &s.result.value_type);
  Take(r[8], &s.result.units);
  Take(r[9], &s.result.reference_range);
  Take(r[10], &s.result.abnormal_flag);
  Take(r[11], &s.result.result_status);
  Take(r[12], &s.result.observation_sub_id);
  Take(r[13], &s.result.sending_facility);
  Take(r[14], &s.result.filler_order_number);
  Take(r[15], &s.result.placer_order_number);
  s.result.observation_date = OptTime(r[16]);
  s.result.critical = Int(r[17]) != 0;
  s.received_at = FromMicros(Int(r[18]));
  Take(r[19], &s.acknowledged_by);
  s.acknowledged_at = OptTime(r[20]);
  Take(r[21], &s.acknowledgement_note);
  Take(r[22], &s.result.report_code);
  Take(r[23], &s.result.report_name);
  if (r[24]) {
    s.result.comments = FromJsonArray(*r[24]);
  }
  return s;
}

constexpr char kOrderColumns[] =
    "id, patient_id, encounter_id, test_codes, ordering_provider, priority, status, "
    "placer_order_number, hl7_message_id, created_at, sent_at, acknowledged_at, lis_endpoint, "
    "attempts, last_error";

// Appends `values` to `params` and returns their placeholders ("$4, $5"),
// for an IN (...) list.
std::string AppendParams(std::vector<Param>* params, std::vector<Param> values) {
  std::string placeholders;
  for (Param& value : values) {
    params->push_back(std::move(value));
    absl::StrAppend(&placeholders, placeholders.empty() ? "$" : ", $", params->size());
  }
  return placeholders;
}

StoredOrder OrderFromRow(Row&& r) {
  StoredOrder o;
  o.id = Int(r[0]);
  o.patient_id = Int(r[1]);
  o.encounter_id = OptInt(r[2]);
  o.test_codes = FromJsonArray(Str(r[3]));
  Take(r[4], &o.ordering_provider);
  Take(r[5], &o.priority);
  Take(r[6], &o.status);
  Take(r[7], &o.placer_order_number);
  o.hl7_message_id = OptInt(r[8]);
  o.created_at = FromMicros(Int(r[9]));
  o.sent_at = OptTime(r[10]);
  o.acknowledged_at = OptTime(r[11]);
  Take(r[12], &o.lis_endpoint);
  o.attempts = static_cast<int>(Int(r[13]));
  Take(r[14], &o.last_error);
  return o;
}

constexpr char kPatientColumns[] =
    "id, pms_patient_id, other_identifiers, family_name, given_name, birth_date, sex, "
    "updated_at";

StoredPatient PatientFromRow(Row&& r) {
  StoredPatient p;
  p.id = Int(r[0]);
  Take(r[1], &p.patient.pms_patient_id);
  Take(r[2], &p.patient.other_identifiers);
  Take(r[3], &p.patient.family_name);
  Take(r[4], &p.patient.given_name);
  Take(r[5], &p.patient.birth_date);
  Take(r[6], &p.patient.sex);
  p.updated_at = FromMicros(Int(r[7]));
  return p;
}

constexpr char kFhirColumns[] =
    "resource_type, id, json, patient_reference, code, date, status, category, version, "
    "last_updated";

StoredFhirResource FhirFromRow(Row&& r) {
  StoredFhirResource f;
  Take(r[0], &f.resource.resource_type);
  Take(r[1], &f.resource.id);
  Take(r[2], &f.resource.json);
  Take(r[3], &f.resource.patient_reference);
  Take(r[4], &f.resource.code);
  Take(r[5], &f.resource.date);
  Take(r[6], &f.resource.status);
  Take(r[7], &f.resource.category);
  f.version = Int(r[8]);
  f.last_updated = FromMicros(Int(r[9]));
  return f;
}

constexpr char kOutboxColumns[] =
    "id, order_id, endpoint, payload, attempts, next_attempt_at, claimed_by, claimed_until";

OutboxItem OutboxFromRow(const Row& r) {
  OutboxItem o;
  o.id = Int(r[0]);
  o.order_id = Int(r[1]);
  o.endpoint = Str(r[2]);
  o.payload = Str(r[3]);
  o.attempts = static_cast<int>(Int(r[4]));
  o.next_attempt_at = FromMicros(Int(r[5]));
  o.claimed_by = Str(r[6]);
  o.claimed_until = FromMicros(Int(r[7]));
  return o;
}

absl::Status ValidateRecord(const IngestRecord& record) {
  for (const ResultRecord& r : record.results) {
    if (r.test_code.empty()) {
      return absl::InvalidArgumentError("storage: result without test_code (OBX-3)");
    }
  }
  for (const FhirResourceRecord& f : record.fhir_resources) {
    if (f.resource_type.empty() || f.id.empty() || f.json.empty()) {
      return absl::InvalidArgumentError("storage: FHIR resource without type, id or JSON");
    }
  }
  if (record.patient && record.patient->pms_patient_id.empty() &&
      record.patient->other_identifiers.empty()) {
    return absl::InvalidArgumentError("storage: patient without any identifier (PID-3)");
  }
  return absl::OkStatus();
}

struct ChainHead {
  int64_t id = 0;
  std::string hash;
};

// ----- the store -----

class SqlStore final : public Store {
 public:
  SqlStore(std::unique_ptr<Connection> connection,
           std::vector<std::unique_ptr<Connection>> read_connections, StoreOptions options)
      : options_(std::move(options)),
        conn_(std::move(connection)),
        read_conns_(std::move(read_connections)) {
    for (std::unique_ptr<Connection>& c : read_conns_) {
      idle_readers_.push_back(c.get());
    }
  }

  ~SqlStore() override {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (committer_.joinable()) {
      committer_.join();
    }
  }

  SqlStore(const SqlStore&) = delete;
  SqlStore& operator=(const SqlStore&) = delete;
  SqlStore(SqlStore&&) = delete;
  SqlStore& operator=(SqlStore&&) = delete;

  absl::Status Start() {
    if (options_.migrate_on_open) {
      absl::StatusOr<int> applied = Migrate();
      if (!applied.ok()) {
        return applied.status();
      }
    } else {
      std::lock_guard<std::mutex> lock(db_mu_);
      absl::StatusOr<std::vector<Row>> rows =
          conn_->Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {});
      const int latest = Migrations(conn_->dialect()).back().version;
      if (!rows.ok() || rows->empty() || Int((*rows)[0][0]) < latest) {
        return absl::FailedPreconditionError(
            "storage: schema is not current; run `lab-bridge migrate`");
      }
    }
    committer_ = std::thread([this] { CommitterLoop(); });
    return absl::OkStatus();
  }

  absl::StatusOr<int> Migrate() override {
    std::lock_guard<std::mutex> lock(db_mu_);
    if (absl::Status s = conn_->Begin(); !s.ok()) {
      return s;
    }
    absl::StatusOr<int> applied = MigrateLocked();
    if (!applied.ok()) {
      conn_->Rollback();
      return applied;
    }
    if (absl::Status s = conn_->Commit(); !s.ok()) {
      conn_->Rollback();
      return s;
    }
    return applied;
  }

  absl::StatusOr<IngestOutcome> Ingest(const IngestRecord& record) override {
    if (absl::Status s = ValidateRecord(record); !s.ok()) {
      return s;
    }
    // Everything that does not depend on the other records of the group is
    // computed here, on the caller's thread: the committer is the one
    // serial step of every ingest.
    PreparedIngest prepared = Prepare(record);
    Pending pending;
    pending.record = &record;
    pending.prepared = &prepared;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      if (stopping_) {
        return absl::UnavailableError("storage: store is closing");
      }
      queue_.push_back(&pending);
      queue_cv_.notify_all();
      done_cv_.wait(lock, [&] { return pending.done; });
    }
    return std::move(pending.outcome);
  }

  absl::StatusOr<int64_t> RecordOutbound(const InboundMessage& message,
                                         std::optional<int64_t> order_id) override {
    return InTransaction<int64_t>([&]() -> absl::StatusOr<int64_t> {
      absl::StatusOr<ChainHead> head = ReadHeadForUpdate();
      if (!head.ok()) {
        return head.status();
      }
      ChainHead h = *head;
      absl::StatusOr<int64_t> id = InsertMessage("outbound", message, std::nullopt, false, h);
      if (!id.ok()) {
        return id;
      }
      if (absl::Status s = WriteHead(h); !s.ok()) {
        return s;
      }
      if (order_id) {
        absl::StatusOr<std::vector<Row>> rows =
            conn_->Query("UPDATE lab_orders SET hl7_message_id = $1 WHERE id = $2",
                         {Param::Int(*id), Param::Int(*order_id)});
        if (!rows.ok()) {
          return rows.status();
        }
      }
      return id;
    });
  }

  absl::StatusOr<StoredMessage> GetMessage(int64_t id) override {
    absl::StatusOr<std::vector<Row>> rows =
        Read(absl::StrCat("SELECT ", kMessageColumns, " FROM hl7_messages WHERE id = $1"),
             {Param::Int(id)});
    if (!rows.ok()) {
      return rows.status();
    }
    if (rows->empty()) {
      return absl::NotFoundError(absl::StrCat("storage: no hl7_messages row ", id));
    }
    return MessageFromRow((*rows)[0]);
  }

  absl::StatusOr<std::vector<StoredMessage>> FindMessagesByControlId(
      std::string_view sending_application, std::string_view sending_facility,
      std::string_view message_control_id) override {
    absl::StatusOr<std::vector<Row>> rows =
        Read(absl::StrCat("SELECT ", kMessageColumns,
                          " FROM hl7_messages WHERE sending_application = $1 AND "
                          "sending_facility = $2 AND message_control_id = $3 ORDER BY id"),
             {KeyText(std::string(sending_application)), KeyText(std::string(sending_facility)),
              KeyText(std::string(message_control_id))});
    if (!rows.ok()) {
      return rows.status();
    }
    std::vector<StoredMessage> out;
    for (const Row& r : *rows) {
      out.push_back(MessageFromRow(r));
    }
    return out;
  }

  absl::StatusOr<MessagePage> ListMessages(const MessageQuery& query) override {
    std::string sql = absl::StrCat("SELECT ", kMessageColumns, " FROM hl7_messages WHERE 1 = 1");
    std::vector<Param> params;
    if (query.processed_from) {
      params.push_back(Param::Int(ToMicros(*query.processed_from)));
      absl::StrAppend(&sql, " AND processed_at >= $", params.size());
    }
    if (query.processed_to) {
      params.push_back(Param::Int(ToMicros(*query.processed_to)));
      absl::StrAppend(&sql, " AND processed_at < $", params.size());
    }
    if (!query.cursor.empty()) {
      absl::StatusOr<int64_t> after = DecodeIdCursor(query.cursor);
      if (!after.ok()) {
        return after.status();
      }
      params.push_back(Param::Int(*after));
      absl::StrAppend(&sql, " AND id > $", params.size());
    }
    const int limit = ClampLimit(query.limit);
    params.push_back(Param::Int(limit + 1));
    absl::StrAppend(&sql, " ORDER BY id LIMIT $", params.size());
    absl::StatusOr<std::vector<Row>> rows = Read(sql, params);
    if (!rows.ok()) {
      return rows.status();
    }
    MessagePage page;
    for (const Row& r : *rows) {
      if (static_cast<int>(page.messages.size()) == limit) {
        page.next_cursor = EncodeCursor(std::to_string(page.messages.back().id));
        break;
      }
      page.messages.push_back(MessageFromRow(r));
    }
    return page;
  }

  absl::StatusOr<StoredPatient> GetPatient(int64_t id) override {
    return OnePatient("id = $1", Param::Int(id));
  }

  absl::StatusOr<StoredPatient> FindPatientByPmsId(std::string_view pms_patient_id) override {
    return OnePatient("pms_patient_id = $1", Param::Text(std::string(pms_patient_id)));
  }

  absl::StatusOr<std::vector<StoredPatient>> SearchPatients(const PatientQuery& query) override {
    const std::vector<std::string> words = absl::StrSplit(
        absl::AsciiStrToLower(query.text), absl::ByAnyChar(" ,\t"), absl::SkipEmpty());
    if (words.empty()) {
      return absl::InvalidArgumentError("storage: empty patient search");
    }
    constexpr size_t kMaxWords = 5;
    if (words.size() > kMaxWords) {
      return absl::InvalidArgumentError("storage: patient search of more than 5 words");
    }
    std::vector<Param> params = {Param::Text(std::string(absl::StripAsciiWhitespace(query.text)))};
    std::string names;
    for (const std::string& word : words) {
      std::string pattern;
      for (const char c : word) {
        if (c == '%' || c == '_' || c == '\\') {
          pattern += '\\';
        }
        pattern += c;
      }
      params.push_back(Param::Text(pattern + "%"));
      const std::string p = absl::StrCat("$", params.size());
      absl::StrAppend(&names, names.empty() ? "" : " AND ", "(lower(family_name) LIKE ", p,
                      " ESCAPE '\\' OR lower(given_name) LIKE ", p, " ESCAPE '\\')");
    }
    params.push_back(Param::Int(ClampLimit(query.limit)));
    absl::StatusOr<std::vector<Row>> rows = Read(
        absl::StrCat("SELECT ", kPatientColumns, " FROM patients WHERE pms_patient_id = $1 OR (",
                     names, ") ORDER BY family_name, given_name, id LIMIT $", params.size()),
        params);
    if (!rows.ok()) {
      return rows.status();
    }
    std::vector<StoredPatient> out;
    out.reserve(rows->size());
    for (Row& r : *rows) {
      out.push_back(PatientFromRow(std::move(r)));
    }
    return out;
  }

  absl::StatusOr<StoredResult> GetResult(int64_t id) override {
    absl::StatusOr<std::vector<Row>> rows =
        Read(absl::StrCat("SELECT ", kResultColumns, " FROM lab_results WHERE id = $1"),
             {Param::Int(id)});
    if (!rows.ok()) {
      return rows.status();
    }
    if (rows->empty()) {
      return absl::NotFoundError("storage: no such result");
    }
    return ResultFromRow(std::move((*rows)[0]));
  }

  absl::StatusOr<ResultPage> ListResults(const ResultQuery& query) override {
    std::optional<int64_t> patient_id = query.patient_id;
    if (!patient_id && !query.pms_patient_id.empty()) {
      absl::StatusOr<StoredPatient> patient = FindPatientByPmsId(query.pms_patient_id);
      if (!patient.ok()) {
        return patient.status();
      }
      patient_id = patient->id;
    }
    std::string sql = absl::StrCat("SELECT ", kResultColumns, " FROM lab_results WHERE 1 = 1");
    std::vector<Param> params;
    auto add = [&](absl::string_view condition, Param p) {
      params.push_back(std::move(p));
      absl::StrAppend(&sql, " AND ", condition, " $", params.size());
    };
    if (patient_id) {
      add("patient_id =", Param::Int(*patient_id));
    }
    if (query.abnormal_only) {
      absl::StrAppend(&sql, " AND abnormal_flag IS NOT NULL AND abnormal_flag <> 'N'");
    }
    if (query.critical) {
      add("critical =", Param::Int(*query.critical ? 1 : 0));
    }
    if (query.acknowledged) {
      absl::StrAppend(&sql, *query.acknowledged ? " AND acknowledged_at IS NOT NULL"
                                                : " AND acknowledged_at IS NULL");
    }
    if (query.observed_from) {
      add("observation_date >=", Param::Int(ToMicros(*query.observed_from)));
    }
    if (query.observed_to) {
      add("observation_date <", Param::Int(ToMicros(*query.observed_to)));
    }
    if (!query.test_code.empty()) {
      add("test_code =", Param::Text(query.test_code));
    }
    if (!query.cursor.empty()) {
      absl::StatusOr<int64_t> before = DecodeIdCursor(query.cursor);
      if (!before.ok()) {
        return before.status();
      }
      add("id <", Param::Int(*before));
    }
    const int limit = ClampLimit(query.limit);
    params.push_back(Param::Int(limit + 1));
    absl::StrAppend(&sql, " ORDER BY id DESC LIMIT $", params.size());
    absl::StatusOr<std::vector<Row>> rows = Read(sql, params);
    if (!rows.ok()) {
      return rows.status();
    }
    ResultPage page;
    // Sized once: growing moved every row (about twenty strings each) again.
    page.results.reserve(std::min(rows->size(), static_cast<size_t>(limit)));
    for (Row& r : *rows) {
      if (static_cast<int>(page.results.size()) == limit) {
        page.next_cursor = EncodeCursor(std::to_string(page.results.back().id));
        break;
      }
      page.results.push_back(ResultFromRow(std::move(r)));
    }
    return page;
  }

  absl::Status AcknowledgeResult(int64_t result_id, std::string_view who, absl::Time when,
                                 std::string_view note) override {
    absl::StatusOr<bool> done = InTransaction<bool>([&]() -> absl::StatusOr<bool> {
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(
          "UPDATE lab_results SET acknowledged_by = $1, acknowledged_at = $2, "
          "acknowledgement_note = $3 WHERE id = $4 AND acknowledged_at IS NULL RETURNING id",
          {Param::Text(std::string(who)), Param::Int(ToMicros(when)),
           Param::Text(std::string(note)), Param::Int(result_id)});
      if (!rows.ok()) {
        return rows.status();
      }
      if (!rows->empty()) {
        return true;
      }
      absl::StatusOr<std::vector<Row>> exists =
          conn_->Query("SELECT id FROM lab_results WHERE id = $1", {Param::Int(result_id)});
      if (!exists.ok()) {
        return exists.status();
      }
      if (exists->empty()) {
        return absl::NotFoundError(absl::StrCat("storage: no lab_results row ", result_id));
      }
      return absl::AlreadyExistsError(
          absl::StrCat("storage: lab_results row ", result_id, " already acknowledged"));
    });
    return done.status();
  }

  absl::StatusOr<CreatedOrder> CreateOrder(const NewOrder& order) override {
    if (order.test_codes.empty() || order.placer_order_number.empty() ||
        order.lis_endpoint.empty()) {
      return absl::InvalidArgumentError(
          "storage: order needs test codes, a placer order number and an LIS endpoint");
    }
    if (!order.patient && order.patient_id <= 0) {
      return absl::InvalidArgumentError("storage: order without a patient");
    }
    if (order.patient && order.patient->pms_patient_id.empty() &&
        order.patient->other_identifiers.empty()) {
      return absl::InvalidArgumentError("storage: patient without any identifier (PID-3)");
    }
    return InTransaction<CreatedOrder>([&]() -> absl::StatusOr<CreatedOrder> {
      const int64_t now = ToMicros(options_.clock());
      CreatedOrder created;
      if (order.patient) {
        absl::StatusOr<int64_t> patient_id = UpsertPatient(*order.patient, now);
        if (!patient_id.ok()) {
          return patient_id.status();
        }
        created.patient_id = *patient_id;
      } else {
        created.patient_id = order.patient_id;
      }
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(
          "INSERT INTO lab_orders (patient_id, encounter_id, test_codes, ordering_provider, "
          "priority, status, placer_order_number, created_at, lis_endpoint, attempts) "
          "VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, 0) RETURNING id",
          {Param::Int(created.patient_id), Param::OptInt(order.encounter_id),
           Param::Text(ToJsonArray(order.test_codes)), Param::Text(order.ordering_provider),
           Param::Text(order.priority.empty() ? "R" : order.priority),
           Param::Text(order.placer_order_number), Param::Int(now),
           Param::Text(order.lis_endpoint)});
      if (!rows.ok()) {
        if (absl::IsAlreadyExists(rows.status())) {
          return absl::AlreadyExistsError(absl::StrCat(
              "storage: placer order number ", order.placer_order_number, " already exists"));
        }
        return rows.status();
      }
      created.order_id = Int((*rows)[0][0]);
      rows = conn_->Query(
          "INSERT INTO outbox (order_id, endpoint, payload, state, attempts, next_attempt_at, "
          "created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) RETURNING id",
          {Param::Int(created.order_id), Param::Text(order.lis_endpoint),
           Param::Blob(order.outbox_payload), Param::Int(now)});
      if (!rows.ok()) {
        return rows.status();
      }
      created.outbox_id = Int((*rows)[0][0]);
      return created;
    });
  }

  absl::StatusOr<StoredOrder> GetOrder(int64_t id) override {
    return OneOrder("id = $1", Param::Int(id));
  }

  absl::StatusOr<StoredOrder> FindOrderByPlacerNumber(std::string_view placer) override {
    return OneOrder("placer_order_number = $1", Param::Text(std::string(placer)));
  }

  absl::StatusOr<OrderPage> ListOrders(const OrderQuery& query) override {
    std::string sql = absl::StrCat("SELECT ", kOrderColumns, " FROM lab_orders WHERE 1 = 1");
    std::vector<Param> params;
    auto add = [&](absl::string_view condition, Param p) {
      params.push_back(std::move(p));
      absl::StrAppend(&sql, " AND ", condition, " $", params.size());
    };
    if (query.patient_id) {
      add("patient_id =", Param::Int(*query.patient_id));
    }
    if (!query.status.empty() && query.statuses.empty()) {
      add("status =", Param::Text(query.status));
    }
    if (!query.statuses.empty()) {
      std::vector<Param> statuses;
      for (const std::string& status : query.statuses) {
        statuses.push_back(Param::Text(status));
      }
      if (!query.status.empty()) {
        statuses.push_back(Param::Text(query.status));
      }
      absl::StrAppend(&sql, " AND status IN (", AppendParams(&params, std::move(statuses)), ")");
    }
    if (query.created_before) {
      add("created_at <", Param::Int(ToMicros(*query.created_before)));
    }
    if (!query.cursor.empty()) {
      absl::StatusOr<int64_t> before = DecodeIdCursor(query.cursor);
      if (!before.ok()) {
        return before.status();
      }
      add("id <", Param::Int(*before));
    }
    const int limit = ClampLimit(query.limit);
    params.push_back(Param::Int(limit + 1));
    absl::StrAppend(&sql, " ORDER BY id DESC LIMIT $", params.size());
    absl::StatusOr<std::vector<Row>> rows = Read(sql, params);
    if (!rows.ok()) {
      return rows.status();
    }
    OrderPage page;
    for (Row& r : *rows) {
      if (static_cast<int>(page.orders.size()) == limit) {
        page.next_cursor = EncodeCursor(std::to_string(page.orders.back().id));
        break;
      }
      page.orders.push_back(OrderFromRow(std::move(r)));
    }
    if (absl::Status derived = DeriveResultStatus(&page.orders); !derived.ok()) {
      return derived;
    }
    return page;
  }

  // Fills StoredOrder::result_status of the resulted orders from their
  // linked results, one indexed query for all of them. A later result for
  // the same test (report code, test code, sub-id) supersedes an earlier
  // one, so a final result after a preliminary one makes that test final.
  // When the lab echoes our test codes in OBR-4 (the ORM's codes), every
  // ordered test must also have answered; a lab that reports under codes of
  // its own is judged by its result statuses alone.
  absl::Status DeriveResultStatus(std::vector<StoredOrder>* orders) {
    std::vector<Param> ids;
    for (const StoredOrder& o : *orders) {
      if (o.status == "resulted") {
        ids.push_back(Param::Int(o.id));
      }
    }
    if (ids.empty()) {
      return absl::OkStatus();
    }
    std::vector<Param> params;
    const std::string in_list = AppendParams(&params, std::move(ids));
    absl::StatusOr<std::vector<Row>> rows =
        Read(absl::StrCat("SELECT lab_order_id, report_code, test_code, observation_sub_id, "
                          "result_status FROM lab_results WHERE lab_order_id IN (",
                          in_list, ") ORDER BY id"),
             params);
    if (!rows.ok()) {
      return rows.status();
    }
    struct Answers {
      std::map<std::string, std::string> latest_status;  // test key -> OBX-11
      std::set<std::string> report_codes;
    };
    std::map<int64_t, Answers> by_order;
    for (const Row& r : *rows) {
      Answers& answers = by_order[Int(r[0])];
      const std::string report_code = Str(r[1]);
      answers.report_codes.insert(report_code);
      answers.latest_status[absl::StrCat(report_code, "\x1f", Str(r[2]), "\x1f", Str(r[3]))] =
          Str(r[4]);
    }
    static const std::set<std::string, std::less<>> kPreliminary = {"P", "R", "S", "I"};
    for (StoredOrder& o : *orders) {
      if (o.status != "resulted") {
        continue;
      }
      const Answers& answers = by_order[o.id];
      bool echoes_our_codes = false;
      bool every_test_answered = true;
      for (const std::string& code : o.test_codes) {
        const bool answered = answers.report_codes.count(code) > 0;
        echoes_our_codes = echoes_our_codes || answered;
        every_test_answered = every_test_answered && answered;
      }
      bool is_final = !echoes_our_codes || every_test_answered;
      for (const auto& [test, status] : answers.latest_status) {
        if (kPreliminary.count(status) > 0) {
          is_final = false;
        }
      }
      o.result_status = is_final ? "final" : "preliminary";
    }
    return absl::OkStatus();
  }

  absl::Status UpdateOrderStatus(int64_t order_id, std::string_view status,
                                 absl::Time when) override {
    static const std::set<std::string, std::less<>> statuses = {
        "pending", "sent", "acknowledged", "resulted", "failed", "rejected", "cancelled"};
    if (statuses.find(status) == statuses.end()) {
      return absl::InvalidArgumentError(absl::StrCat("storage: unknown order status ", Sv(status)));
    }
    // Every placeholder must be used: PostgreSQL cannot type an unused one.
    std::string sql = "UPDATE lab_orders SET status = $1";
    std::vector<Param> params = {Param::Text(std::string(status))};
    if (status == "sent" || status == "acknowledged") {
      sql += status == "sent" ? ", sent_at = $2" : ", acknowledged_at = $2";
      params.push_back(Param::Int(ToMicros(when)));
    }
    sql += absl::StrCat(" WHERE id = $", params.size() + 1, " RETURNING id");
    params.push_back(Param::Int(order_id));
    absl::StatusOr<bool> done = InTransaction<bool>([&]() -> absl::StatusOr<bool> {
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(sql, params);
      if (!rows.ok()) {
        return rows.status();
      }
      if (rows->empty()) {
        return absl::NotFoundError(absl::StrCat("storage: no lab_orders row ", order_id));
      }
      return true;
    });
    return done.status();
  }

  absl::StatusOr<std::vector<OutboxItem>> ClaimOutbox(std::string_view claimer,
                                                      absl::Duration lease, int max_rows) override {
    if (claimer.empty() || max_rows <= 0) {
      return absl::InvalidArgumentError("storage: claim needs a claimer and max_rows > 0");
    }
    const bool postgres = conn_->dialect() == Dialect::kPostgres;
    // PostgreSQL: rows another transaction is claiming are skipped, not
    // waited for. SQLite: Begin() already holds the database's write lock.
    const std::string sql = absl::StrCat(
        "UPDATE outbox SET claimed_by = $1, claimed_until = $2, updated_at = $3 "
        "WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 "
        "AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY next_attempt_at, id "
        "LIMIT $4",
        postgres ? " FOR UPDATE SKIP LOCKED" : "", ") RETURNING ", kOutboxColumns);
    return InTransaction<std::vector<OutboxItem>>([&]() -> absl::StatusOr<std::vector<OutboxItem>> {
      const absl::Time now = options_.clock();
      absl::StatusOr<std::vector<Row>> rows =
          conn_->Query(sql, {Param::Text(std::string(claimer)), Param::Int(ToMicros(now + lease)),
                             Param::Int(ToMicros(now)), Param::Int(max_rows)});
      if (!rows.ok()) {
        return rows.status();
      }
      std::vector<OutboxItem> items;
      for (const Row& r : *rows) {
        items.push_back(OutboxFromRow(r));
      }
      std::sort(items.begin(), items.end(),
                [](const OutboxItem& a, const OutboxItem& b) { return a.id < b.id; });
      return items;
    });
  }

  absl::Status CompleteOutbox(int64_t outbox_id, std::string_view claimer) override {
    return EndClaim(outbox_id, claimer,
                    "UPDATE outbox SET state = 'done', attempts = attempts + 1, "
                    "claimed_by = NULL, claimed_until = NULL, updated_at = $3 "
                    "WHERE id = $1 AND claimed_by = $2 AND state = 'pending' RETURNING order_id",
                    {}, std::nullopt);
  }

  absl::Status RetryOutbox(int64_t outbox_id, std::string_view claimer, absl::Time next_attempt_at,
                           std::string_view error) override {
    return EndClaim(outbox_id, claimer,
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $4, "
                    "last_error = $5, claimed_by = NULL, claimed_until = NULL, updated_at = $3 "
                    "WHERE id = $1 AND claimed_by = $2 AND state = 'pending' RETURNING order_id",
                    {Param::Int(ToMicros(next_attempt_at)), Param::Text(std::string(error))},
                    std::string(error));
  }

  absl::Status FailOutbox(int64_t outbox_id, std::string_view claimer,
                          std::string_view error) override {
    return EndClaim(outbox_id, claimer,
                    "UPDATE outbox SET state = 'failed', attempts = attempts + 1, "
                    "last_error = $4, claimed_by = NULL, claimed_until = NULL, updated_at = $3 "
                    "WHERE id = $1 AND claimed_by = $2 AND state = 'pending' RETURNING order_id",
                    {Param::Text(std::string(error))}, std::string(error));
  }

  absl::StatusOr<std::vector<OutboxItem>> ClaimEndpointOutbox(std::string_view claimer,
                                                              std::string_view endpoint,
                                                              absl::Duration lease, int max_rows,
                                                              bool in_order) override {
    if (claimer.empty() || endpoint.empty() || max_rows <= 0) {
      return absl::InvalidArgumentError(
          "storage: claim needs a claimer, an endpoint and max_rows > 0");
    }
    const bool postgres = conn_->dialect() == Dialect::kPostgres;
    return InTransaction<std::vector<OutboxItem>>([&]() -> absl::StatusOr<std::vector<OutboxItem>> {
      const absl::Time now = options_.clock();
      const int64_t now_us = ToMicros(now);
      if (postgres) {
        // A lease need not survive a crash of the database: lost, the row is
        // simply claimable again, as after any crash. Not waiting for the
        // WAL flush saves a third of an order's commits; the settlement that
        // follows is synchronous and flushes this too.
        absl::StatusOr<std::vector<Row>> async =
            conn_->Query("SET LOCAL synchronous_commit TO OFF", {});
        if (!async.ok()) {
          return async.status();
        }
        // Claimers of one endpoint take turns (SQLite's BEGIN IMMEDIATE
        // already serialises every writer): a second claimer then sees the
        // first one's lease on the oldest row instead of skipping past it.
        absl::StatusOr<std::vector<Row>> locked =
            conn_->Query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS endpoint_lock",
                         {Param::Int(EndpointLockKey(endpoint))});
        if (!locked.ok()) {
          return locked.status();
        }
      }
      std::vector<Param> params = {Param::Text(std::string(endpoint))};
      std::string sql =
          "SELECT id, next_attempt_at, claimed_until FROM outbox WHERE state = 'pending' "
          "AND endpoint = $1";
      if (!in_order) {
        params.push_back(Param::Int(now_us));
        sql += " AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)";
      }
      params.push_back(Param::Int(max_rows));
      absl::StrAppend(&sql, " ORDER BY id LIMIT $", params.size());
      absl::StatusOr<std::vector<Row>> candidates = conn_->Query(sql, params);
      if (!candidates.ok()) {
        return candidates.status();
      }
      std::vector<int64_t> ids;
      for (const Row& r : *candidates) {
        const bool due = Int(r[1]) <= now_us;
        const bool leased = r[2].has_value() && Int(r[2]) >= now_us;
        if (!due || leased) {
          break;  // in order: nothing behind a waiting or held row
        }
        ids.push_back(Int(r[0]));
      }
      std::vector<OutboxItem> items;
      if (ids.empty()) {
        return items;
      }
      std::vector<Param> update = {Param::Text(std::string(claimer)),
                                   Param::Int(ToMicros(now + lease)), Param::Int(now_us)};
      std::vector<Param> claimed;
      for (int64_t id : ids) {
        claimed.push_back(Param::Int(id));
      }
      const std::string in_list = AppendParams(&update, std::move(claimed));
      absl::StatusOr<std::vector<Row>> rows =
          conn_->Query(absl::StrCat("UPDATE outbox SET claimed_by = $1, claimed_until = $2, "
                                    "updated_at = $3 WHERE id IN (",
                                    in_list, ") RETURNING ", kOutboxColumns),
                       update);
      if (!rows.ok()) {
        return rows.status();
      }
      for (const Row& r : *rows) {
        items.push_back(OutboxFromRow(r));
      }
      std::sort(items.begin(), items.end(),
                [](const OutboxItem& a, const OutboxItem& b) { return a.id < b.id; });
      return items;
    });
  }

  absl::Status SettleOutbox(int64_t outbox_id, std::string_view claimer,
                            const OutboxSettlement& settlement) override {
    using Outcome = OutboxSettlement::Outcome;
    const bool counts = settlement.outcome != Outcome::kRelease;
    const char* state = settlement.outcome == Outcome::kDone   ? "done"
                        : settlement.outcome == Outcome::kFail ? "failed"
                                                               : "pending";
    absl::StatusOr<bool> held = InTransaction<bool>([&]() -> absl::StatusOr<bool> {
      const int64_t now_us = ToMicros(options_.clock());
      std::optional<int64_t> message_id;
      if (settlement.outbound_message) {
        // The chain head first, as every writer of hl7_messages takes it.
        absl::StatusOr<ChainHead> head = ReadHeadForUpdate();
        if (!head.ok()) {
          return head.status();
        }
        ChainHead h = *head;
        absl::StatusOr<int64_t> id =
            InsertMessage("outbound", *settlement.outbound_message, std::nullopt, false, h);
        if (!id.ok()) {
          return id.status();
        }
        if (absl::Status s = WriteHead(h); !s.ok()) {
          return s;
        }
        message_id = *id;
      }
      std::vector<Param> params = {Param::Int(outbox_id), Param::Text(std::string(claimer)),
                                   Param::Int(now_us), Param::Text(state),
                                   Param::Int(counts ? 1 : 0)};
      std::string sql =
          "UPDATE outbox SET state = $4, attempts = attempts + $5, claimed_by = NULL, "
          "claimed_until = NULL, updated_at = $3";
      auto set = [&](absl::string_view column, Param p) {
        params.push_back(std::move(p));
        absl::StrAppend(&sql, ", ", column, " = $", params.size());
      };
      if (settlement.outcome == Outcome::kRetry || settlement.outcome == Outcome::kRelease) {
        set("next_attempt_at", Param::Int(ToMicros(settlement.next_attempt_at)));
      }
      if (!settlement.endpoint.empty()) {
        set("endpoint", Param::Text(settlement.endpoint));
      }
      if (!settlement.error.empty()) {
        set("last_error", Param::Text(settlement.error));
      }
      sql += " WHERE id = $1 AND claimed_by = $2 AND state = 'pending' RETURNING order_id";
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(sql, params);
      if (!rows.ok()) {
        return rows.status();
      }
      if (rows->empty()) {
        return false;  // commit the audit row alone
      }
      const int64_t order_id = Int((*rows)[0][0]);
      std::vector<Param> order_params = {Param::Int(order_id), Param::Int(counts ? 1 : 0)};
      std::string order_sql = "UPDATE lab_orders SET attempts = attempts + $2";
      auto set_order = [&](absl::string_view column, Param p) {
        order_params.push_back(std::move(p));
        absl::StrAppend(&order_sql, ", ", column, " = $", order_params.size());
      };
      if (!settlement.error.empty()) {
        set_order("last_error", Param::Text(settlement.error));
      }
      if (!settlement.endpoint.empty()) {
        set_order("lis_endpoint", Param::Text(settlement.endpoint));
      }
      if (message_id && settlement.link_order_to_message) {
        set_order("hl7_message_id", Param::Int(*message_id));
      }
      order_sql += " WHERE id = $1";
      if (absl::StatusOr<std::vector<Row>> r = conn_->Query(order_sql, order_params); !r.ok()) {
        return r.status();
      }
      if (!settlement.order_status.empty()) {
        absl::StatusOr<bool> moved =
            MoveOrder(order_id, settlement.order_status_from, settlement.order_status, now_us);
        if (!moved.ok()) {
          return moved.status();
        }
      }
      return true;
    });
    if (!held.ok()) {
      return held.status();
    }
    if (!*held) {
      return absl::FailedPreconditionError(
          absl::StrCat("storage: outbox row ", outbox_id, " is not held by ", Sv(claimer)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> RerouteOutbox(const std::vector<std::string>& keep,
                                        std::string_view to) override {
    if (to.empty()) {
      return absl::InvalidArgumentError("storage: reroute needs a destination");
    }
    return InTransaction<int64_t>([&]() -> absl::StatusOr<int64_t> {
      const int64_t now_us = ToMicros(options_.clock());
      std::vector<Param> params = {Param::Text(std::string(to)), Param::Int(now_us)};
      std::string sql =
          "UPDATE outbox SET endpoint = $1, next_attempt_at = $2, updated_at = $2 "
          "WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < $2)";
      if (!keep.empty()) {
        std::vector<Param> kept;
        for (const std::string& id : keep) {
          kept.push_back(Param::Text(id));
        }
        absl::StrAppend(&sql, " AND endpoint NOT IN (", AppendParams(&params, std::move(kept)),
                        ")");
      }
      sql += " RETURNING id";
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(sql, params);
      if (!rows.ok()) {
        return rows.status();
      }
      return static_cast<int64_t>(rows->size());
    });
  }

  absl::StatusOr<bool> TransitionOrder(int64_t order_id, const std::vector<std::string>& from,
                                       std::string_view to, absl::Time when) override {
    return InTransaction<bool>([&]() -> absl::StatusOr<bool> {
      absl::StatusOr<bool> moved = MoveOrder(order_id, from, to, ToMicros(when));
      if (!moved.ok() || *moved) {
        return moved;
      }
      absl::StatusOr<std::vector<Row>> exists =
          conn_->Query("SELECT id FROM lab_orders WHERE id = $1", {Param::Int(order_id)});
      if (!exists.ok()) {
        return exists.status();
      }
      if (exists->empty()) {
        return absl::NotFoundError(absl::StrCat("storage: no lab_orders row ", order_id));
      }
      return false;
    });
  }

  absl::StatusOr<OrderCancellation> CancelOrder(int64_t order_id, absl::Time when,
                                                std::string_view cancel_payload,
                                                std::string_view routing_endpoint) override {
    const bool postgres = conn_->dialect() == Dialect::kPostgres;
    return InTransaction<OrderCancellation>([&]() -> absl::StatusOr<OrderCancellation> {
      const int64_t now_us = ToMicros(options_.clock());
      absl::StatusOr<std::vector<Row>> order =
          conn_->Query(absl::StrCat("SELECT status FROM lab_orders WHERE id = $1",
                                    postgres ? " FOR UPDATE" : ""),
                       {Param::Int(order_id)});
      if (!order.ok()) {
        return order.status();
      }
      if (order->empty()) {
        return absl::NotFoundError(absl::StrCat("storage: no lab_orders row ", order_id));
      }
      const std::string status = Str((*order)[0][0]);
      if (status == "resulted" || status == "failed" || status == "rejected" ||
          status == "cancelled") {
        return absl::FailedPreconditionError(
            absl::StrCat("order ", order_id, " is already ", status));
      }
      // Rows being sent right now are locked by their sender's lease; the
      // cancel row queues behind them.
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(
          absl::StrCat("SELECT id, endpoint, state, attempts, claimed_until FROM outbox "
                       "WHERE order_id = $1 ORDER BY id",
                       postgres ? " FOR UPDATE" : ""),
          {Param::Int(order_id)});
      if (!rows.ok()) {
        return rows.status();
      }
      bool may_have_reached_lis = status != "pending";
      std::string endpoint;
      for (const Row& r : *rows) {
        endpoint = Str(r[1]);
        const bool routing = endpoint == routing_endpoint;
        const bool leased = r[4].has_value() && Int(r[4]) >= now_us;
        if (Str(r[2]) != "pending" || Int(r[3]) > 0 || (leased && !routing)) {
          may_have_reached_lis = true;
        }
      }
      // Waiting rows are not sent any more: the LIS either never saw them or
      // gets the cancel below. A row being sent stays (its sender settles it).
      absl::StatusOr<std::vector<Row>> dropped = conn_->Query(
          "UPDATE outbox SET state = 'cancelled', updated_at = $2 WHERE order_id = $1 "
          "AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < $2 "
          "OR endpoint = $3) RETURNING id",
          {Param::Int(order_id), Param::Int(now_us), Param::Text(std::string(routing_endpoint))});
      if (!dropped.ok()) {
        return dropped.status();
      }
      OrderCancellation out;
      if (may_have_reached_lis && !endpoint.empty() && endpoint != routing_endpoint) {
        absl::StatusOr<std::vector<Row>> queued = conn_->Query(
            "INSERT INTO outbox (order_id, endpoint, payload, state, attempts, next_attempt_at, "
            "created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) RETURNING id",
            {Param::Int(order_id), Param::Text(endpoint), Param::Blob(std::string(cancel_payload)),
             Param::Int(now_us)});
        if (!queued.ok()) {
          return queued.status();
        }
        out.cancel_message_queued = true;
      }
      absl::StatusOr<bool> moved = MoveOrder(order_id, {status}, "cancelled", ToMicros(when));
      if (!moved.ok()) {
        return moved.status();
      }
      return out;
    });
  }

  absl::StatusOr<StoredFhirResource> GetFhirResource(std::string_view resource_type,
                                                     std::string_view id) override {
    absl::StatusOr<std::vector<Row>> rows =
        Read(absl::StrCat("SELECT ", kFhirColumns,
                          " FROM fhir_resources WHERE resource_type = $1 AND id = $2"),
             {Param::Text(std::string(resource_type)), Param::Text(std::string(id))});
    if (!rows.ok()) {
      return rows.status();
    }
    if (rows->empty()) {
      return absl::NotFoundError(absl::StrCat("storage: no ", Sv(resource_type), "/", Sv(id)));
    }
    return FhirFromRow(std::move((*rows)[0]));
  }

  absl::StatusOr<FhirPage> SearchFhirResources(const FhirQuery& query) override {
    if (query.resource_type.empty()) {
      return absl::InvalidArgumentError("storage: FHIR search needs a resource type");
    }
    std::string sql =
        absl::StrCat("SELECT ", kFhirColumns, " FROM fhir_resources WHERE resource_type = $1");
    std::vector<Param> params = {Param::Text(query.resource_type)};
    auto add = [&](absl::string_view condition, const std::string& value) {
      if (value.empty()) {
        return;
      }
      params.push_back(Param::Text(value));
      absl::StrAppend(&sql, " AND ", condition, " $", params.size());
    };
    add("patient_reference =", query.patient_reference);
    add("code =", query.code);
    add("status =", query.status);
    add("category =", query.category);
    add("date >=", query.date_from);
    add("date <", query.date_to);
    if (query.last_updated_from.has_value()) {
      params.push_back(Param::Int(ToMicros(*query.last_updated_from)));
      absl::StrAppend(&sql, " AND last_updated >= $", params.size());
    }
    if (query.last_updated_to.has_value()) {
      params.push_back(Param::Int(ToMicros(*query.last_updated_to)));
      absl::StrAppend(&sql, " AND last_updated < $", params.size());
    }
    for (const FhirValueCondition& c : query.value_conditions) {
      params.push_back(Param::Text(c.name));
      absl::StrAppend(&sql,
                      " AND id IN (SELECT resource_id FROM fhir_search_values WHERE "
                      "resource_type = $1 AND name = $",
                      params.size());
      auto where = [&](absl::string_view condition, const std::string& value) {
        params.push_back(Param::Text(value));
        absl::StrAppend(&sql, " AND ", condition, " $", params.size());
      };
      switch (c.match) {
        case FhirValueCondition::Match::kToken:
          if (!c.value.empty()) {  // "system|": any value in that system
            where("value =", c.value);
          }
          if (c.system.has_value()) {
            if (c.system->empty()) {
              absl::StrAppend(&sql, " AND system IS NULL");
            } else {
              where("system =", *c.system);
            }
          }
          break;
        case FhirValueCondition::Match::kPrefix: {
          // The range lets the index answer; LIKE makes the match exact under
          // any collation (PostgreSQL's may not order bytes).
          where("value >=", c.value);
          if (!c.value.empty() && static_cast<unsigned char>(c.value.back()) < 0x7e) {
            std::string upper = c.value;
            upper.back() = static_cast<char>(upper.back() + 1);
            where("value <", upper);
          }
          std::string pattern;
          for (char ch : c.value) {
            if (ch == '%' || ch == '_' || ch == '\\') {
              pattern += '\\';
            }
            pattern += ch;
          }
          where("value LIKE", pattern + "%");
          absl::StrAppend(&sql, " ESCAPE '\\'");
          break;
        }
        case FhirValueCondition::Match::kRange:
          if (!c.from.empty()) {
            where("value >=", c.from);
          }
          if (!c.to.empty()) {
            where("value <", c.to);
          }
          break;
      }
      absl::StrAppend(&sql, ")");
    }
    if (!query.cursor.empty()) {
      absl::StatusOr<std::string> after = DecodeCursor(query.cursor);
      if (!after.ok()) {
        return after.status();
      }
      add("id >", *after);
    }
    const int limit = ClampLimit(query.limit);
    params.push_back(Param::Int(limit + 1));
    absl::StrAppend(&sql, " ORDER BY id LIMIT $", params.size());
    absl::StatusOr<std::vector<Row>> rows = Read(sql, params);
    if (!rows.ok()) {
      return rows.status();
    }
    FhirPage page;
    for (Row& r : *rows) {
      if (static_cast<int>(page.resources.size()) == limit) {
        page.next_cursor = EncodeCursor(page.resources.back().resource.id);
        break;
      }
      page.resources.push_back(FhirFromRow(std::move(r)));
    }
    return page;
  }

  StoreStats stats() const override {
    return StoreStats{stats_records_.load(), stats_batches_.load(), stats_failures_.load(),
                      stats_database_errors_.load()};
  }

  absl::StatusOr<std::string> Durability() override {
    std::lock_guard<std::mutex> lock(db_mu_);
    const auto one = [this](const std::string& sql) -> absl::StatusOr<std::string> {
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(sql, {});
      if (!rows.ok()) {
        return rows.status();
      }
      if (rows->empty() || rows->front().empty() || !rows->front()[0].has_value()) {
        return absl::InternalError(absl::StrCat("no answer to ", sql));
      }
      return *rows->front()[0];
    };
    if (conn_->dialect() == Dialect::kSqlite) {
      absl::StatusOr<std::string> journal = one("PRAGMA journal_mode");
      absl::StatusOr<std::string> synchronous = one("PRAGMA synchronous");
      if (!journal.ok() || !synchronous.ok()) {
        return journal.ok() ? synchronous.status() : journal.status();
      }
      static constexpr const char* kLevels[] = {"off", "normal", "full", "extra"};
      const int64_t level = Int(*synchronous);
      return absl::StrCat("sqlite journal_mode=", *journal, " synchronous=",
                          level >= 0 && level <= 3 ? kLevels[level] : *synchronous);
    }
    absl::StatusOr<std::string> commit = one("SHOW synchronous_commit");
    absl::StatusOr<std::string> fsync = one("SHOW fsync");
    if (!commit.ok() || !fsync.ok()) {
      return commit.ok() ? fsync.status() : commit.status();
    }
    return absl::StrCat("postgresql synchronous_commit=", *commit, " fsync=", *fsync);
  }

  absl::StatusOr<OpenWork> CountOpenWork() override {
    // Each count walks a partial or leading-column index: the open criticals
    // (lab_results_critical_open) and the pending outbox rows (outbox_due).
    absl::StatusOr<std::vector<Row>> rows = Read(
        "SELECT (SELECT COUNT(*) FROM lab_results WHERE critical = 1 AND acknowledged_at IS "
        "NULL), (SELECT COUNT(*) FROM outbox WHERE state = 'pending')",
        {});
    if (!rows.ok()) {
      return rows.status();
    }
    OpenWork work;
    if (!rows->empty()) {
      work.open_critical_results = Int((*rows)[0][0]);
      work.outbox_pending = Int((*rows)[0][1]);
    }
    return work;
  }

  absl::StatusOr<int64_t> VerifyAuditChain() override {
    absl::StatusOr<std::vector<Row>> chain =
        Read("SELECT head_id, head_hash, anchor_id, anchor_hash FROM audit_chain WHERE id = 1", {});
    if (!chain.ok()) {
      return chain.status();
    }
    if (chain->empty()) {
      return absl::DataLossError("audit chain: the audit_chain row is missing");
    }
    const int64_t head_id = Int((*chain)[0][0]);
    const std::string head_hash = Str((*chain)[0][1]);
    int64_t expected_id = Int((*chain)[0][2]) + 1;
    std::string previous = Str((*chain)[0][3]);
    int64_t verified = 0;
    constexpr int kPage = 500;
    for (;;) {
      // One page per lock so writers are not held up by a long walk.
      absl::StatusOr<std::vector<Row>> rows =
          Read(absl::StrCat("SELECT ", kMessageColumns,
                            " FROM hl7_messages WHERE id >= $1 ORDER BY id LIMIT $2"),
               {Param::Int(expected_id), Param::Int(kPage)});
      if (!rows.ok()) {
        return rows.status();
      }
      for (const Row& r : *rows) {
        const ChainRow row = ChainRowFromRow(r);
        if (row.id > head_id) {
          break;  // written after the walk started
        }
        if (row.id != expected_id) {
          return absl::DataLossError(
              absl::StrCat("audit chain broken: hl7_messages row ", expected_id,
                           " is missing (deleted); the chain continues at row ", row.id));
        }
        if (Sha256Hex(Str(r[10])) != row.message_hash) {
          return absl::DataLossError(absl::StrCat("audit chain broken: hl7_messages row ", row.id,
                                                  " does not verify (raw_message altered)"));
        }
        const std::string hash = NextChainHash(previous, row);
        if (hash != Str(r[20])) {
          return absl::DataLossError(absl::StrCat("audit chain broken: hl7_messages row ", row.id,
                                                  " does not verify (row altered)"));
        }
        previous = hash;
        ++expected_id;
        ++verified;
      }
      if (static_cast<int>(rows->size()) < kPage || expected_id > head_id) {
        break;
      }
    }
    if (expected_id <= head_id) {
      return absl::DataLossError(absl::StrCat("audit chain broken: hl7_messages row ", expected_id,
                                              " is missing (deleted)"));
    }
    if (previous != head_hash) {
      return absl::DataLossError(absl::StrCat("audit chain broken: hl7_messages row ", head_id,
                                              " does not match the recorded chain head"));
    }
    return verified;
  }

  absl::StatusOr<int64_t> PurgeAuditOlderThan(absl::Time cutoff) override {
    return InTransaction<int64_t>([&]() -> absl::StatusOr<int64_t> {
      absl::StatusOr<ChainHead> head = ReadHeadForUpdate();
      if (!head.ok()) {
        return head.status();
      }
      absl::StatusOr<std::vector<Row>> rows =
          conn_->Query("SELECT anchor_id FROM audit_chain WHERE id = 1", {});
      if (!rows.ok()) {
        return rows.status();
      }
      const int64_t anchor_id = Int((*rows)[0][0]);
      rows = conn_->Query("SELECT MIN(id) FROM hl7_messages WHERE processed_at >= $1",
                          {Param::Int(ToMicros(cutoff))});
      if (!rows.ok()) {
        return rows.status();
      }
      // Only a contiguous oldest prefix goes, so the chain stays one piece.
      const std::optional<int64_t> first_kept = OptInt((*rows)[0][0]);
      const int64_t last_purged = first_kept ? *first_kept - 1 : head->id;
      absl::StatusOr<std::vector<Row>> outbox =
          conn_->Query("DELETE FROM outbox WHERE state IN ('done', 'failed') AND updated_at < $1",
                       {Param::Int(ToMicros(cutoff))});
      if (!outbox.ok()) {
        return outbox.status();
      }
      if (last_purged <= anchor_id) {
        return int64_t{0};
      }
      rows = conn_->Query("SELECT chain_hash FROM hl7_messages WHERE id = $1",
                          {Param::Int(last_purged)});
      if (!rows.ok()) {
        return rows.status();
      }
      if (rows->empty()) {
        return absl::DataLossError(absl::StrCat("audit chain broken: hl7_messages row ",
                                                last_purged, " is missing (deleted)"));
      }
      const std::string anchor_hash = Str((*rows)[0][0]);
      rows = conn_->Query("DELETE FROM hl7_messages WHERE id <= $1 RETURNING id",
                          {Param::Int(last_purged)});
      if (!rows.ok()) {
        return rows.status();
      }
      const int64_t purged = static_cast<int64_t>(rows->size());
      absl::StatusOr<std::vector<Row>> update = conn_->Query(
          "UPDATE audit_chain SET anchor_id = $1, anchor_hash = $2, "
          "purged_rows = purged_rows + $3 WHERE id = 1",
          {Param::Int(last_purged), Param::Text(anchor_hash), Param::Int(purged)});
      if (!update.ok()) {
        return update.status();
      }
      return purged;
    });
  }

 private:
  struct PreparedIngest;
  struct Pending {
    const IngestRecord* record = nullptr;
    PreparedIngest* prepared = nullptr;
    absl::StatusOr<IngestOutcome> outcome = absl::InternalError("not run");
    bool done = false;
  };

  // ----- group commit -----

  void CommitterLoop() {
    for (;;) {
      std::vector<Pending*> batch;
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) {
          return;
        }
        const size_t max = options_.group_commit
                               ? static_cast<size_t>(std::max(1, options_.max_batch_records))
                               : 1;
        while (!queue_.empty() && batch.size() < max) {
          batch.push_back(queue_.front());
          queue_.pop_front();
        }
      }
      {
        std::lock_guard<std::mutex> lock(db_mu_);
        RunBatch(batch);
      }
      stats_records_ += static_cast<int64_t>(batch.size());
      ++stats_batches_;
      for (const Pending* p : batch) {
        if (!p->outcome.ok()) {
          ++stats_failures_;
          CountDatabaseError(p->outcome.status());
        }
      }
      {
        std::lock_guard<std::mutex> lock(queue_mu_);
        for (Pending* p : batch) {
          p->done = true;
        }
      }
      done_cv_.notify_all();
    }
  }

  // Originals already stored, by (sending application, sending facility,
  // MSH-10), oldest first: what a resend or a reused control id is checked
  // against. Loaded once per batch and extended as records commit.
  using MessageKey = std::tuple<std::string, std::string, std::string>;
  struct KnownMessage {
    int64_t id = 0;
    std::string hash;
    std::string ack_status;
    std::string ack_message;
  };
  using KnownMessages = std::map<MessageKey, std::vector<KnownMessage>>;

  static MessageKey KeyOf(const InboundMessage& m) {
    return {ValidUtf8(m.sending_application), ValidUtf8(m.sending_facility),
            ValidUtf8(m.message_control_id)};
  }

  // Begins the batch's transaction, locks the chain head, opens the savepoint
  // "batch" for WriteBatch and loads the originals of the batch's control
  // ids: one round trip on PostgreSQL.
  absl::StatusOr<ChainHead> BeginBatch(const std::vector<Pending*>& batch, KnownMessages* known) {
    // Full keys, so the (application, facility, control id) index answers
    // it: a lookup by control id alone would scan the whole audit table.
    const bool postgres = conn_->dialect() == Dialect::kPostgres;
    std::vector<Param> params;
    std::vector<std::string> conditions;
    std::vector<std::vector<Param>> key_rows;  // PostgreSQL: application, facility, control id
    std::set<MessageKey> keys;
    for (const Pending* p : batch) {
      const InboundMessage& m = p->record->message;
      if (m.message_control_id.empty() || !keys.insert(KeyOf(m)).second) {
        continue;
      }
      if (postgres) {
        key_rows.push_back({KeyText(m.sending_application), KeyText(m.sending_facility),
                            KeyText(m.message_control_id)});
        continue;
      }
      params.push_back(KeyText(m.sending_application));
      params.push_back(KeyText(m.sending_facility));
      params.push_back(KeyText(m.message_control_id));
      conditions.push_back(absl::StrCat("(sending_application = $", params.size() - 2,
                                        " AND sending_facility = $", params.size() - 1,
                                        " AND message_control_id = $", params.size(), ")"));
    }
    std::string sql =
        "SELECT 0, '', '', '', head_id, head_hash, NULL, NULL FROM audit_chain WHERE id = 1";
    if (!key_rows.empty()) {
      // PostgreSQL turns an OR of full keys that share application and
      // facility into one index condition on those two and filters the
      // control ids: a walk over every message of that sender, once per
      // batch (6.5 ms at 9,000 messages, growing with the table). Keys
      // joined from arrays are looked up one index probe each.
      params = {PgArray(key_rows, 0), PgArray(key_rows, 1), PgArray(key_rows, 2)};
      absl::StrAppend(&sql,
                      " UNION ALL SELECT 1, m.sending_application, m.sending_facility, "
                      "m.message_control_id, m.id, m.message_hash, m.ack_status, m.ack_message "
                      "FROM unnest($1::text[], $2::text[], $3::text[]) AS k(a, f, c) "
                      "JOIN hl7_messages m ON m.sending_application = k.a AND "
                      "m.sending_facility = k.f AND m.message_control_id = k.c "
                      "WHERE m.direction = 'inbound' AND m.duplicate_of IS NULL");
    } else if (!params.empty()) {
      absl::StrAppend(&sql,
                      " UNION ALL SELECT 1, sending_application, sending_facility, "
                      "message_control_id, id, message_hash, ack_status, ack_message "
                      "FROM hl7_messages WHERE direction = 'inbound' AND duplicate_of IS NULL "
                      "AND (",
                      absl::StrJoin(conditions, " OR "), ")");
    }
    sql += " ORDER BY 1, 5";
    std::vector<Connection::Statement> statements;
    if (conn_->dialect() == Dialect::kPostgres) {
      // Serialises writers across processes; SQLite's BEGIN IMMEDIATE does.
      statements.push_back({"SELECT head_id FROM audit_chain WHERE id = 1 FOR UPDATE", {}});
    }
    // WriteBatch's savepoint, in the same round trip (nothing is written
    // before it). It is never released on success: COMMIT ends it.
    statements.push_back({"SAVEPOINT batch", {}});
    statements.push_back({sql, params});
    absl::StatusOr<std::vector<Row>> rows = conn_->BeginWith(statements);
    if (!rows.ok()) {
      return rows.status();
    }
    if (rows->empty() || Int((*rows)[0][0]) != 0) {
      return absl::DataLossError("audit chain: the audit_chain row is missing");
    }
    ChainHead head{Int((*rows)[0][4]), Str((*rows)[0][5])};
    for (size_t i = 1; i < rows->size(); ++i) {
      const Row& r = (*rows)[i];
      (*known)[{Str(r[1]), Str(r[2]), Str(r[3])}].push_back(
          KnownMessage{Int(r[4]), Str(r[5]), Str(r[6]), Str(r[7])});
    }
    return head;
  }

  // One transaction for the whole batch; each record inside its own
  // savepoint, so a record that fails is rolled back alone. On PostgreSQL a
  // record costs one round trip (its statements go together).
  void RunBatch(const std::vector<Pending*>& batch) {
    auto fail_all = [&](const absl::Status& status) {
      for (Pending* p : batch) {
        p->outcome = status;
      }
    };
    KnownMessages known_messages;
    KnownMessages* known = &known_messages;
    absl::StatusOr<ChainHead> head = BeginBatch(batch, known);
    if (absl::IsUnavailable(head.status())) {
      // Nothing was written yet, so one retry is safe; it reconnects if the
      // connection was lost since the last batch.
      conn_->Rollback();
      known_messages.clear();
      head = BeginBatch(batch, known);
    }
    if (!head.ok()) {
      conn_->Rollback();
      fail_all(head.status());
      return;
    }
    ChainHead h = *head;
    if (absl::Status s = WriteBatch(batch, h, *known); s.ok()) {
      Commit(batch, *head, h);
      return;
    } else if (!absl::IsAborted(s)) {
      // The transaction itself is gone (connection lost, disk full).
      conn_->Rollback();
      fail_all(s);
      return;
    }
    // Aborted: the group's writes were undone (a record the set-based
    // statements cannot take, a statement that failed, an injected fault).
    // Record by record below, each in its own savepoint, so only a record
    // that fails is lost and its writer learns why.
    h = *head;
    // A batch of one needs no savepoint: its failure rolls back everything.
    const bool savepoints = batch.size() > 1;
    bool release_pending = false;
    for (Pending* p : batch) {
      std::vector<Connection::Statement> lead;
      if (savepoints) {
        if (release_pending) {
          lead.push_back({"RELEASE SAVEPOINT record", {}});
        }
        lead.push_back({"SAVEPOINT record", {}});
      }
      ChainHead local = h;
      std::optional<KnownMessage> stored;
      absl::StatusOr<IngestOutcome> outcome =
          WriteRecord(*p->record, local, *known, std::move(lead), &stored);
      if (outcome.ok()) {
        h = local;
        release_pending = savepoints;
        if (stored) {
          (*known)[KeyOf(p->record->message)].push_back(*stored);
        }
      } else if (!savepoints) {
        conn_->Rollback();
        fail_all(outcome.status());
        return;
      } else {
        release_pending = false;
        if (absl::Status undo =
                conn_->ExecScript("ROLLBACK TO SAVEPOINT record; RELEASE SAVEPOINT record");
            !undo.ok()) {
          // The transaction itself is gone (connection lost, disk full):
          // nothing in this batch is committed.
          conn_->Rollback();
          fail_all(outcome.status());
          return;
        }
      }
      p->outcome = std::move(outcome);
    }
    Commit(batch, *head, h);
  }

  // Moves the chain head and commits; on failure every record of the batch
  // fails (nothing of it is stored).
  void Commit(const std::vector<Pending*>& batch, const ChainHead& start, const ChainHead& head) {
    std::vector<Connection::Statement> last;
    if (head.id != start.id) {
      last.push_back({"UPDATE audit_chain SET head_id = $1, head_hash = $2 WHERE id = 1",
                      {Param::Int(head.id), Param::Text(head.hash)}});
    }
    if (absl::Status s = conn_->CommitWith(last); !s.ok()) {
      conn_->Rollback();
      for (Pending* p : batch) {
        p->outcome = s;
      }
    }
  }

  // ----- set-based group writes -----
  //
  // A group of N records is written with one statement per table (PostgreSQL:
  // arrays unnested server-side, one round trip each; SQLite: one prepared
  // single-row statement run per row, which costs no round trips), instead of
  // N x 6 statements in N savepoints. Everything is inside one savepoint: if
  // anything goes wrong, the group's writes are undone and RunBatch writes the
  // records one by one, as before, so each record still keeps its own outcome.

  // One lab_results row's values that come from the record alone (valid
  // UTF-8), in kResultInsertHead's order after its first four columns. Both
  // write paths (set-based and record by record) insert results through
  // these two: a new column goes here and nowhere else.
  static std::vector<Param> ResultValues(const ResultRecord& r) {
    return {Param::Text(r.test_code),
            Param::Text(r.test_name),
            Param::Text(r.value),
            Param::Text(r.units),
            Param::Text(r.reference_range),
            Param::Text(r.abnormal_flag),
            Param::Text(r.result_status),
            Param::Text(r.sending_facility),
            Param::Text(r.filler_order_number),
            OptTimeParam(r.observation_date),
            Param::Text(r.value_type),
            Param::Text(r.observation_sub_id),
            Param::Text(r.placer_order_number),
            Param::Int(r.critical ? 1 : 0),
            Param::Text(r.report_code),
            Param::Text(r.report_name),
            r.comments.empty() ? Param::Null() : Param::Text(ToJsonArray(r.comments))};
  }
  static constexpr char kResultInsertHead[] =
      "INSERT INTO lab_results (patient_id, lab_order_id, hl7_message_id, received_at, "
      "test_code, test_name, value, units, reference_range, abnormal_flag, result_status, "
      "sending_facility, filler_order_number, observation_date, value_type, "
      "observation_sub_id, placer_order_number, critical, report_code, report_name, comments)";
  static constexpr size_t kResultInsertColumnCount = 21;

  // One fhir_resources row's values that come from the record alone, in
  // kFhirUpsertHead's order after its first three columns.
  struct PreparedResource {
    std::string type;
    std::string id;
    std::vector<Param> values;  // patient_reference, code, date, status, category, json
    std::vector<std::array<Param, 3>> search_values;  // name, system, value
  };
  static constexpr char kFhirUpsertHead[] =
      "INSERT INTO fhir_resources (resource_type, id, hl7_message_id, last_updated, version, "
      "patient_reference, code, date, status, category, json)";
  // A resource seen before (a corrected result, OBX-11 = C) gets a new
  // version per record that carries it: `version` holds that count.
  static constexpr char kFhirUpsertTail[] =
      " ON CONFLICT (resource_type, id) DO UPDATE SET "
      "version = fhir_resources.version + excluded.version, "
      "last_updated = excluded.last_updated, patient_reference = excluded.patient_reference, "
      "code = excluded.code, date = excluded.date, status = excluded.status, "
      "category = excluded.category, hl7_message_id = excluded.hl7_message_id, "
      "json = excluded.json";

  struct PreparedIngest {
    InboundMessage message;  // text as stored (StoredText)
    std::string message_hash;
    MessageKey key;
    std::optional<PatientRecord> patient;  // text as stored
    std::string patient_key;
    std::vector<std::string> resulted;  // placer numbers as stored, sorted, unique
    std::vector<PreparedResource> resources;
    std::vector<std::vector<Param>> results;  // ResultValues
    std::vector<std::string> result_placers;  // as stored, per result
    std::vector<bool> result_links_order;     // placer is one of `resulted`
  };

  static PreparedIngest Prepare(const IngestRecord& record) {
    PreparedIngest r;
    r.message = StoredText(record.message);
    r.message_hash = Sha256Hex(record.message.raw_message);
    r.key = {r.message.sending_application, r.message.sending_facility,
             r.message.message_control_id};
    if (record.patient) {
      PatientRecord p = *record.patient;
      r.patient_key =
          ValidUtf8(!p.pms_patient_id.empty() ? absl::StrCat("pms:", p.pms_patient_id)
                                              : absl::StrCat("ids:", p.other_identifiers));
      for (std::string* field : {&p.pms_patient_id, &p.other_identifiers, &p.family_name,
                                 &p.given_name, &p.birth_date, &p.sex}) {
        *field = ValidUtf8(*field);
      }
      r.patient = std::move(p);
    }
    const std::set<std::string> resulted(record.resulted_placer_order_numbers.begin(),
                                         record.resulted_placer_order_numbers.end());
    for (const std::string& placer : resulted) {
      if (!placer.empty()) {
        r.resulted.push_back(ValidUtf8(placer));
      }
    }
    for (const ResultRecord& result : record.results) {
      r.results.push_back(ResultValues(result));
      r.result_placers.push_back(ValidUtf8(result.placer_order_number));
      r.result_links_order.push_back(resulted.count(result.placer_order_number) > 0);
    }
    // The last occurrence of a (type, id) within one message wins.
    std::set<std::pair<std::string, std::string>> seen;
    for (auto it = record.fhir_resources.rbegin(); it != record.fhir_resources.rend(); ++it) {
      if (!seen.insert({it->resource_type, it->id}).second) {
        continue;
      }
      PreparedResource f;
      f.type = ValidUtf8(it->resource_type);
      f.id = ValidUtf8(it->id);
      f.values = {Param::Text(it->patient_reference),
                  Param::Text(it->code),
                  Param::Text(it->date),
                  Param::Text(it->status),
                  Param::Text(it->category),
                  Param::Text(it->json)};
      for (const FhirSearchValue& v : it->search_values) {
        if (!v.name.empty() && !v.value.empty()) {
          f.search_values.push_back(
              {Param::Text(v.name), Param::Text(v.system), Param::Text(v.value)});
        }
      }
      r.resources.push_back(std::move(f));
    }
    std::reverse(r.resources.begin(), r.resources.end());
    return r;
  }

  enum class Column { kText, kInt, kBytes };

  // PostgreSQL array input text for one column of `rows` (elements already
  // valid UTF-8; bytes as \x hex).
  static Param PgArray(const std::vector<std::vector<Param>>& rows, size_t column) {
    size_t size = 2;
    for (const std::vector<Param>& row : rows) {
      size += row[column].text.size() * (row[column].kind == Param::Kind::kBlob ? 2 : 1) + 24;
    }
    std::string out;
    out.reserve(size);
    out += '{';
    for (size_t i = 0; i < rows.size(); ++i) {
      if (i > 0) {
        out += ',';
      }
      const Param& p = rows[i][column];
      switch (p.kind) {
        case Param::Kind::kNull:
          out += "NULL";
          break;
        case Param::Kind::kInt:
          absl::StrAppend(&out, p.int_value);
          break;
        case Param::Kind::kText: {
          out += '"';
          // Runs without '"' or '\\' in one append (JSON has many quotes).
          std::string_view rest = p.text;
          for (size_t special = rest.find_first_of("\"\\"); special != std::string_view::npos;
               special = rest.find_first_of("\"\\")) {
            out.append(rest.substr(0, special));
            out += '\\';
            out += rest[special];
            rest.remove_prefix(special + 1);
          }
          out.append(rest);
          out += '"';
          break;
        }
        case Param::Kind::kBlob:
          // "\\x..." : the array syntax takes one backslash away.
          absl::StrAppend(&out, "\"\\\\x", absl::BytesToHexString(Sv(p.text)), "\"");
          break;
      }
    }
    out += '}';
    return Param{Param::Kind::kText, 0, std::move(out)};
  }

  // Runs `head` (an "INSERT INTO t (columns)") for every row of `rows`, then
  // `tail` (ON CONFLICT / RETURNING ...). Returns the RETURNING rows.
  absl::StatusOr<std::vector<Row>> BulkWrite(const std::string& head,
                                             const std::vector<Column>& columns,
                                             const std::vector<std::vector<Param>>& rows,
                                             const std::string& tail) {
    if (rows.empty()) {
      return std::vector<Row>{};
    }
    if (conn_->dialect() == Dialect::kPostgres) {
      std::vector<Param> arrays;
      std::vector<std::string> casts;
      for (size_t c = 0; c < columns.size(); ++c) {
        arrays.push_back(PgArray(rows, c));
        casts.push_back(absl::StrCat("$", c + 1,
                                     columns[c] == Column::kText  ? "::text[]"
                                     : columns[c] == Column::kInt ? "::bigint[]"
                                                                  : "::bytea[]"));
      }
      return conn_->Query(
          absl::StrCat(head, " SELECT * FROM unnest(", absl::StrJoin(casts, ", "), ")", tail),
          arrays);
    }
    const std::string sql = absl::StrCat(head, " VALUES ", Placeholders(0, columns.size()), tail);
    std::vector<Row> out;
    for (const std::vector<Param>& row : rows) {
      absl::StatusOr<std::vector<Row>> returned = conn_->Query(sql, row);
      if (!returned.ok()) {
        return returned.status();
      }
      for (Row& r : *returned) {
        out.push_back(std::move(r));
      }
    }
    return out;
  }

  // Calls the test hook once per record that writes `step`.
  absl::Status HookEach(std::string_view step, size_t records) {
    for (size_t i = 0; i < records; ++i) {
      if (absl::Status s = Hook(step); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  // Writes the whole group set-based inside the savepoint "batch" that
  // BeginBatch opened and sets every outcome. Aborted: nothing of the group
  // was written (the savepoint was rolled back and released); the caller
  // writes the records one by one. Any other error: the transaction is gone.
  absl::Status WriteBatch(const std::vector<Pending*>& batch, ChainHead& head,
                          KnownMessages& known) {
    ChainHead h = head;
    KnownMessages k = known;
    std::vector<IngestOutcome> outcomes(batch.size());
    absl::Status status = WriteBatchStatements(batch, h, k, outcomes);
    if (!status.ok()) {
      if (absl::Status undo =
              conn_->ExecScript("ROLLBACK TO SAVEPOINT batch; RELEASE SAVEPOINT batch");
          !undo.ok()) {
        return undo;
      }
      return absl::AbortedError(status.message());
    }
    head = h;
    known = std::move(k);
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->outcome = std::move(outcomes[i]);
    }
    return absl::OkStatus();
  }

  absl::Status WriteBatchStatements(const std::vector<Pending*>& batch, ChainHead& head,
                                    KnownMessages& known, std::vector<IngestOutcome>& outcomes) {
    const bool postgres = conn_->dialect() == Dialect::kPostgres;
    const int64_t now = ToMicros(options_.clock());

    // Audit rows: receipts for resends, the rest chained in order.
    std::vector<size_t> writers;  // records whose derived rows are written
    std::vector<std::vector<Param>> message_rows;
    if (absl::Status s = HookEach("message", batch.size()); !s.ok()) {
      return s;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      const PreparedIngest& r = *batch[i]->prepared;
      IngestOutcome& outcome = outcomes[i];
      const KnownMessage* original = nullptr;
      if (!r.message.message_control_id.empty()) {
        if (auto it = known.find(r.key); it != known.end() && !it->second.empty()) {
          for (const KnownMessage& m : it->second) {
            if (m.hash == r.message_hash) {
              original = &m;
              break;
            }
          }
          outcome.control_id_reused = original == nullptr;
        }
      }
      if (original != nullptr) {
        InboundMessage receipt = r.message;
        receipt.ack_status = original->ack_status;
        receipt.ack_message = original->ack_message;
        message_rows.push_back(
            MessageValues("inbound", receipt, r.message_hash, original->id, false, head));
        outcome.message_id = head.id;
        outcome.duplicate_of = original->id;
        outcome.ack_status = original->ack_status;
        outcome.ack_message = original->ack_message;
        continue;
      }
      message_rows.push_back(MessageValues("inbound", r.message, r.message_hash, std::nullopt,
                                           outcome.control_id_reused, head));
      outcome.message_id = head.id;
      outcome.ack_status = r.message.ack_status;
      outcome.ack_message = r.message.ack_message;
      if (!r.message.message_control_id.empty()) {
        known[r.key].push_back(KnownMessage{outcome.message_id, r.message_hash,
                                            r.message.ack_status, r.message.ack_message});
      }
      writers.push_back(i);
    }
    const std::vector<Column> message_columns = {
        Column::kInt,  Column::kText,  Column::kText, Column::kText, Column::kText,  Column::kText,
        Column::kText, Column::kText,  Column::kText, Column::kText, Column::kBytes, Column::kText,
        Column::kText, Column::kBytes, Column::kText, Column::kText, Column::kInt,   Column::kText,
        Column::kInt,  Column::kInt,   Column::kText};
    if (absl::StatusOr<std::vector<Row>> s =
            BulkWrite(kMessageInsertHead, message_columns, message_rows, "");
        !s.ok()) {
      return s.status();
    }

    // Patients: one row per key, fields merged in order (the later
    // record's non-empty value wins, as sequential upserts would leave it).
    if (absl::Status s = HookEach("patient", writers.size()); !s.ok()) {
      return s;
    }
    std::map<std::string, size_t> patient_row;  // key -> index in patient_rows
    std::vector<std::vector<Param>> patient_rows;
    for (size_t i : writers) {
      const PreparedIngest& r = *batch[i]->prepared;
      if (!r.patient) {
        continue;
      }
      auto [it, inserted] = patient_row.emplace(r.patient_key, patient_rows.size());
      if (inserted) {
        patient_rows.push_back({Param{Param::Kind::kText, 0, r.patient_key}, Param::Null(),
                                Param::Null(), Param::Null(), Param::Null(), Param::Null(),
                                Param::Null(), Param::Int(now), Param::Int(now)});
      }
      std::vector<Param>& row = patient_rows[it->second];
      const PatientRecord& p = *r.patient;
      size_t column = 1;
      for (const std::string* field : {&p.pms_patient_id, &p.other_identifiers, &p.family_name,
                                       &p.given_name, &p.birth_date, &p.sex}) {
        if (!field->empty()) {
          row[column] = Param{Param::Kind::kText, 0, *field};
        }
        ++column;
      }
    }
    absl::StatusOr<std::vector<Row>> patients = BulkWrite(
        "INSERT INTO patients (patient_key, pms_patient_id, other_identifiers, family_name, "
        "given_name, birth_date, sex, created_at, updated_at)",
        {Column::kText, Column::kText, Column::kText, Column::kText, Column::kText, Column::kText,
         Column::kText, Column::kInt, Column::kInt},
        patient_rows,
        " ON CONFLICT (patient_key) DO UPDATE SET "
        "other_identifiers = COALESCE(excluded.other_identifiers, patients.other_identifiers), "
        "family_name = COALESCE(excluded.family_name, patients.family_name), "
        "given_name = COALESCE(excluded.given_name, patients.given_name), "
        "birth_date = COALESCE(excluded.birth_date, patients.birth_date), "
        "sex = COALESCE(excluded.sex, patients.sex), updated_at = excluded.updated_at "
        "RETURNING patient_key, id");
    if (!patients.ok()) {
      return patients.status();
    }
    std::map<std::string, int64_t> patient_ids;
    for (const Row& row : *patients) {
      patient_ids[Str(row[0])] = Int(row[1]);
    }

    // Orders the results answer move to "resulted" (not cancelled ones);
    // results link to an order of their placer number whatever its status.
    if (absl::Status s = HookEach("orders", writers.size()); !s.ok()) {
      return s;
    }
    std::set<std::string> placers;
    for (size_t i : writers) {
      placers.insert(batch[i]->prepared->resulted.begin(), batch[i]->prepared->resulted.end());
    }
    std::map<std::string, int64_t> order_patient;  // placer -> patient, orders moved
    std::map<std::string, int64_t> order_ids;      // placer -> order id, any status
    if (!placers.empty()) {
      std::vector<std::vector<Param>> placer_rows;
      for (const std::string& placer : placers) {
        placer_rows.push_back({Param{Param::Kind::kText, 0, placer}});
      }
      absl::StatusOr<std::vector<Row>> moved =
          postgres ? conn_->Query(
                         "UPDATE lab_orders SET status = 'resulted' WHERE placer_order_number = "
                         "ANY($1::text[]) AND status <> 'cancelled' "
                         "RETURNING placer_order_number, patient_id",
                         {PgArray(placer_rows, 0)})
                   : ForEachRow(
                         "UPDATE lab_orders SET status = 'resulted' WHERE placer_order_number = "
                         "$1 AND status <> 'cancelled' RETURNING placer_order_number, patient_id",
                         placer_rows);
      if (!moved.ok()) {
        return moved.status();
      }
      for (const Row& row : *moved) {
        order_patient[Str(row[0])] = Int(row[1]);
      }
      absl::StatusOr<std::vector<Row>> ids =
          postgres ? conn_->Query(
                         "SELECT placer_order_number, id FROM lab_orders WHERE "
                         "placer_order_number = ANY($1::text[])",
                         {PgArray(placer_rows, 0)})
                   : ForEachRow(
                         "SELECT placer_order_number, id FROM lab_orders WHERE "
                         "placer_order_number = $1",
                         placer_rows);
      if (!ids.ok()) {
        return ids.status();
      }
      for (const Row& row : *ids) {
        order_ids[Str(row[0])] = Int(row[1]);
      }
    }
    // Whose results: the PID's patient, or (no PID) the first moved order's.
    std::vector<std::optional<int64_t>> result_patient(batch.size());
    for (size_t i : writers) {
      const PreparedIngest& r = *batch[i]->prepared;
      if (r.patient) {
        auto it = patient_ids.find(r.patient_key);
        if (it == patient_ids.end()) {
          return absl::InternalError("storage: upserted patient not returned");
        }
        result_patient[i] = it->second;
        continue;
      }
      for (const std::string& placer : r.resulted) {
        if (auto it = order_patient.find(placer); it != order_patient.end()) {
          result_patient[i] = it->second;
          break;
        }
      }
      if (!r.results.empty() && !result_patient[i]) {
        // The record fails alone: left to the record-by-record path.
        return absl::InvalidArgumentError("storage: results without a patient (PID-3)");
      }
    }

    // FHIR resources: one row per (type, id) with the last record's content
    // and search values, and a version per record that carried it.
    if (absl::Status s = HookEach("fhir", writers.size()); !s.ok()) {
      return s;
    }
    std::map<std::pair<std::string, std::string>, size_t> resource_row;
    std::vector<std::vector<Param>> resource_rows;
    std::vector<const PreparedResource*> resource_source;
    for (size_t i : writers) {
      for (const PreparedResource& f : batch[i]->prepared->resources) {
        auto [it, inserted] =
            resource_row.emplace(std::make_pair(f.type, f.id), resource_rows.size());
        std::vector<Param> row = {
            Param{Param::Kind::kText, 0, f.type}, Param{Param::Kind::kText, 0, f.id},
            Param::Int(outcomes[i].message_id), Param::Int(now), Param::Int(1)};
        row.insert(row.end(), f.values.begin(), f.values.end());
        if (inserted) {
          resource_rows.push_back(std::move(row));
          resource_source.push_back(&f);
        } else {
          row[4] = Param::Int(resource_rows[it->second][4].int_value + 1);
          resource_rows[it->second] = std::move(row);
          resource_source[it->second] = &f;
        }
      }
    }
    if (absl::StatusOr<std::vector<Row>> s = BulkWrite(
            kFhirUpsertHead,
            {Column::kText, Column::kText, Column::kInt, Column::kInt, Column::kInt, Column::kText,
             Column::kText, Column::kText, Column::kText, Column::kText, Column::kText},
            resource_rows, kFhirUpsertTail);
        !s.ok()) {
      return s.status();
    }
    // A stored resource's search values are those of its latest version.
    std::vector<std::vector<Param>> resource_keys;
    std::vector<std::vector<Param>> value_rows;
    for (const PreparedResource* f : resource_source) {
      resource_keys.push_back(
          {Param{Param::Kind::kText, 0, f->type}, Param{Param::Kind::kText, 0, f->id}});
      for (const std::array<Param, 3>& v : f->search_values) {
        value_rows.push_back({Param{Param::Kind::kText, 0, f->type},
                              Param{Param::Kind::kText, 0, f->id}, v[0], v[1], v[2]});
      }
    }
    if (!resource_keys.empty()) {
      absl::StatusOr<std::vector<Row>> deleted =
          postgres ? conn_->Query(
                         "DELETE FROM fhir_search_values WHERE (resource_type, resource_id) IN "
                         "(SELECT * FROM unnest($1::text[], $2::text[]))",
                         {PgArray(resource_keys, 0), PgArray(resource_keys, 1)})
                   : ForEachRow(
                         "DELETE FROM fhir_search_values WHERE resource_type = $1 AND "
                         "resource_id = $2",
                         resource_keys);
      if (!deleted.ok()) {
        return deleted.status();
      }
    }
    if (absl::StatusOr<std::vector<Row>> s = BulkWrite(
            "INSERT INTO fhir_search_values (resource_type, resource_id, name, system, value)",
            {Column::kText, Column::kText, Column::kText, Column::kText, Column::kText}, value_rows,
            "");
        !s.ok()) {
      return s.status();
    }

    // Results, linked to their patient and order; ids come back per message
    // (PostgreSQL) or are assigned here (SQLite).
    if (absl::Status s = HookEach("results", writers.size()); !s.ok()) {
      return s;
    }
    // SQLite: ids as AUTOINCREMENT would assign them (after the largest ever
    // used; the write lock is held), inserted with the rows. RETURNING made
    // SQLite collect every row's output in a temporary table: a third of the
    // cost of a result row's insert.
    int64_t next_result_id = 0;
    if (!postgres) {
      absl::StatusOr<std::vector<Row>> last = conn_->Query(
          "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'lab_results'), 0), "
          "COALESCE((SELECT MAX(id) FROM lab_results), 0))",
          {});
      if (!last.ok()) {
        return last.status();
      }
      next_result_id = Int((*last)[0][0]) + 1;
    }
    std::vector<std::vector<Param>> result_rows;
    std::map<int64_t, size_t> record_of_message;  // PostgreSQL: RETURNING's message -> writer
    for (size_t i : writers) {
      PreparedIngest& r = *batch[i]->prepared;
      if (postgres) record_of_message[outcomes[i].message_id] = i;
      outcomes[i].patient_id = result_patient[i];
      for (size_t j = 0; j < r.results.size(); ++j) {
        std::optional<int64_t> order_id;
        if (r.result_links_order[j]) {
          if (auto it = order_ids.find(r.result_placers[j]); it != order_ids.end()) {
            order_id = it->second;
          }
        }
        std::vector<Param> row;
        row.reserve(kResultInsertColumnCount + 1);
        if (!postgres) {
          outcomes[i].result_ids.push_back(next_result_id);
          row.push_back(Param::Int(next_result_id++));
        }
        row.push_back(Param::OptInt(result_patient[i]));
        row.push_back(Param::OptInt(order_id));
        row.push_back(Param::Int(outcomes[i].message_id));
        row.push_back(Param::Int(now));
        for (Param& value : r.results[j]) {
          row.push_back(std::move(value));
        }
        result_rows.push_back(std::move(row));
      }
    }
    std::vector<Column> result_columns = {
        Column::kInt,  Column::kInt,  Column::kInt,  Column::kInt,  Column::kText, Column::kText,
        Column::kText, Column::kText, Column::kText, Column::kText, Column::kText, Column::kText,
        Column::kText, Column::kInt,  Column::kText, Column::kText, Column::kText, Column::kInt,
        Column::kText, Column::kText, Column::kText};
    if (!postgres) {
      // The same insert with the ids assigned above as its first column.
      static const std::string kHeadWithId = [] {
        constexpr std::string_view kInto = "INSERT INTO lab_results (";
        return absl::StrCat(Sv(kInto), "id, ",
                            Sv(std::string_view(kResultInsertHead).substr(kInto.size())));
      }();
      result_columns.insert(result_columns.begin(), Column::kInt);
      if (absl::StatusOr<std::vector<Row>> s =
              BulkWrite(kHeadWithId, result_columns, result_rows, "");
          !s.ok()) {
        return s.status();
      }
    } else {
      absl::StatusOr<std::vector<Row>> results = BulkWrite(
          kResultInsertHead, result_columns, result_rows, " RETURNING id, hl7_message_id");
      if (!results.ok()) {
        return results.status();
      }
      for (const Row& row : *results) {
        auto it = record_of_message.find(Int(row[1]));
        if (it == record_of_message.end()) {
          return absl::InternalError("storage: result of an unknown message returned");
        }
        outcomes[it->second].result_ids.push_back(Int(row[0]));
      }
    }
    for (IngestOutcome& outcome : outcomes) {
      std::sort(outcome.result_ids.begin(), outcome.result_ids.end());
    }
    return absl::OkStatus();
  }

  // One statement per row of `rows` (SQLite: prepared once, no round trips).
  absl::StatusOr<std::vector<Row>> ForEachRow(const std::string& sql,
                                              const std::vector<std::vector<Param>>& rows) {
    std::vector<Row> out;
    for (const std::vector<Param>& row : rows) {
      absl::StatusOr<std::vector<Row>> returned = conn_->Query(sql, row);
      if (!returned.ok()) {
        return returned.status();
      }
      for (Row& r : *returned) {
        out.push_back(std::move(r));
      }
    }
    return out;
  }

  absl::Status Hook(std::string_view step) {
    if (options_.ingest_fault_hook_for_test) {
      return options_.ingest_fault_hook_for_test(step);
    }
    return absl::OkStatus();
  }

  // Statements of one record, sent together; `Fail` first runs what is
  // buffered, so an injected fault really falls between executed writes.
  class StatementBuffer {
   public:
    StatementBuffer(Connection& connection, std::vector<Connection::Statement> lead)
        : connection_(connection), statements_(std::move(lead)) {}

    void Add(std::string sql, std::vector<Param> params) {
      statements_.push_back({std::move(sql), std::move(params)});
    }

    absl::StatusOr<std::vector<Row>> Flush() {
      if (statements_.empty()) {
        return std::vector<Row>{};
      }
      absl::StatusOr<std::vector<Row>> rows = connection_.QueryBatch(statements_);
      statements_.clear();
      return rows;
    }

    absl::Status Fail(const absl::Status& status) {
      absl::StatusOr<std::vector<Row>> rows = Flush();
      return rows.ok() ? status : rows.status();
    }

   private:
    Connection& connection_;
    std::vector<Connection::Statement> statements_;
  };

  absl::StatusOr<IngestOutcome> WriteRecord(const IngestRecord& record, ChainHead& head,
                                            const KnownMessages& known,
                                            std::vector<Connection::Statement> lead,
                                            std::optional<KnownMessage>* stored) {
    const InboundMessage& m = record.message;
    const int64_t now = ToMicros(options_.clock());
    const std::string hash = Sha256Hex(m.raw_message);
    StatementBuffer buffer(*conn_, std::move(lead));
    IngestOutcome outcome;
    if (absl::Status s = Hook("message"); !s.ok()) {
      return buffer.Fail(s);
    }
    if (!m.message_control_id.empty()) {
      if (auto it = known.find(KeyOf(m)); it != known.end() && !it->second.empty()) {
        const KnownMessage* original = nullptr;
        for (const KnownMessage& k : it->second) {
          if (k.hash == hash) {
            original = &k;
            break;
          }
        }
        if (original != nullptr) {
          // A resend: a receipt row, the original ACK, nothing else.
          InboundMessage receipt = m;
          receipt.ack_status = original->ack_status;
          receipt.ack_message = original->ack_message;
          outcome.message_id =
              AddMessageInsert(buffer, "inbound", receipt, original->id, false, head);
          absl::StatusOr<std::vector<Row>> rows = buffer.Flush();
          if (!rows.ok()) {
            return rows.status();
          }
          outcome.duplicate_of = original->id;
          outcome.ack_status = receipt.ack_status;
          outcome.ack_message = receipt.ack_message;
          return outcome;
        }
        outcome.control_id_reused = true;
      }
    }
    outcome.message_id =
        AddMessageInsert(buffer, "inbound", m, std::nullopt, outcome.control_id_reused, head);
    outcome.ack_status = m.ack_status;
    outcome.ack_message = m.ack_message;
    if (!m.message_control_id.empty()) {
      *stored = KnownMessage{outcome.message_id, hash, m.ack_status, m.ack_message};
    }

    if (absl::Status s = Hook("patient"); !s.ok()) {
      return buffer.Fail(s);
    }
    std::string patient_key;
    if (record.patient) {
      patient_key = AddPatientUpsert(buffer, *record.patient, now);
    }

    if (absl::Status s = Hook("orders"); !s.ok()) {
      return buffer.Fail(s);
    }
    const std::set<std::string> resulted(record.resulted_placer_order_numbers.begin(),
                                         record.resulted_placer_order_numbers.end());
    std::optional<int64_t> order_patient_id;
    for (const std::string& placer : resulted) {
      buffer.Add(
          "UPDATE lab_orders SET status = 'resulted' WHERE placer_order_number = $1 "
          "AND status <> 'cancelled' RETURNING patient_id",
          {Param::Text(placer)});
      if (!record.patient && !record.results.empty() && !order_patient_id) {
        // Rare: results with no PID; the order tells whose they are.
        absl::StatusOr<std::vector<Row>> rows = buffer.Flush();
        if (!rows.ok()) {
          return rows.status();
        }
        if (!rows->empty()) {
          order_patient_id = Int((*rows)[0][0]);
        }
      }
    }
    if (!record.results.empty() && !record.patient && !order_patient_id) {
      return buffer.Fail(absl::InvalidArgumentError("storage: results without a patient (PID-3)"));
    }

    if (absl::Status s = Hook("fhir"); !s.ok()) {
      return buffer.Fail(s);
    }
    AddFhirUpserts(buffer, record, outcome.message_id, now);

    if (absl::Status s = Hook("results"); !s.ok()) {
      return buffer.Fail(s);
    }
    // The patient's id is resolved inside the statements; the last one
    // returns it (and the new result ids), so the record is one round trip.
    const Param patient_param = record.patient ? Param::Text(patient_key) : Param::Null();
    const std::string patient_sql = record.patient
                                        ? "(SELECT id FROM patients WHERE patient_key = $1)"
                                        : absl::StrCat(*order_patient_id);
    constexpr size_t kRowsPerStatement = 50;
    for (size_t start = 0; start < record.results.size(); start += kRowsPerStatement) {
      const size_t end = std::min(record.results.size(), start + kRowsPerStatement);
      std::vector<Param> params = {patient_param};
      std::vector<std::string> tuples;
      for (size_t i = start; i < end; ++i) {
        const ResultRecord& r = record.results[i];
        std::string order_sql = "NULL";
        if (resulted.count(r.placer_order_number) > 0) {
          params.push_back(Param::Text(r.placer_order_number));
          order_sql = absl::StrCat("(SELECT id FROM lab_orders WHERE placer_order_number = $",
                                   params.size(), ")");
        }
        std::string tuple = absl::StrCat("(", patient_sql, ", ", order_sql, ", ");
        const size_t first = params.size();
        params.push_back(Param::Int(outcome.message_id));
        params.push_back(Param::Int(now));
        for (Param& p : ResultValues(r)) {
          params.push_back(std::move(p));
        }
        tuple += Placeholders(first, params.size() - first).substr(1);
        tuples.push_back(std::move(tuple));
      }
      buffer.Add(absl::StrCat(kResultInsertHead, " VALUES ", absl::StrJoin(tuples, ", "),
                              " RETURNING id, patient_id"),
                 std::move(params));
      absl::StatusOr<std::vector<Row>> rows = buffer.Flush();
      if (!rows.ok()) {
        return rows.status();
      }
      for (const Row& r : *rows) {
        outcome.result_ids.push_back(Int(r[0]));
        outcome.patient_id = Int(r[1]);
      }
    }
    std::sort(outcome.result_ids.begin(), outcome.result_ids.end());
    if (record.results.empty() && record.patient) {
      buffer.Add("SELECT id FROM patients WHERE patient_key = $1", {patient_param});
    }
    absl::StatusOr<std::vector<Row>> rows = buffer.Flush();
    if (!rows.ok()) {
      return rows.status();
    }
    if (record.results.empty() && record.patient && !rows->empty()) {
      outcome.patient_id = Int((*rows)[0][0]);
    }
    return outcome;
  }

  // One multi-row upsert per 50 resources. One statement may not touch a
  // row twice (PostgreSQL refuses), so the last occurrence of a (type, id)
  // within one message wins.
  void AddFhirUpserts(StatementBuffer& buffer, const IngestRecord& record, int64_t message_id,
                      int64_t now) {
    std::vector<const FhirResourceRecord*> resources;
    std::set<std::pair<std::string, std::string>> seen;
    for (auto it = record.fhir_resources.rbegin(); it != record.fhir_resources.rend(); ++it) {
      if (seen.insert({it->resource_type, it->id}).second) {
        resources.insert(resources.begin(), &*it);
      }
    }
    constexpr size_t kRowsPerStatement = 50;
    for (size_t start = 0; start < resources.size(); start += kRowsPerStatement) {
      const size_t end = std::min(resources.size(), start + kRowsPerStatement);
      std::vector<Param> params;
      std::vector<std::string> tuples;
      for (size_t i = start; i < end; ++i) {
        const FhirResourceRecord& f = *resources[i];
        std::string tuple = Placeholders(params.size(), 10);
        tuple.insert(tuple.size() - 1, ", 1");  // version of a new resource
        tuples.push_back(std::move(tuple));
        for (Param& p :
             std::vector<Param>{Param::Text(f.resource_type), Param::Text(f.id), Param::Int(now),
                                Param::Text(f.patient_reference), Param::Text(f.code),
                                Param::Text(f.date), Param::Text(f.status), Param::Text(f.category),
                                Param::Int(message_id), Param::Text(f.json)}) {
          params.push_back(std::move(p));
        }
      }
      // A resource seen before (a corrected result, OBX-11 = C) gets a new version.
      buffer.Add(
          absl::StrCat(
              "INSERT INTO fhir_resources (resource_type, id, last_updated, patient_reference, "
              "code, date, status, category, hl7_message_id, json, version) VALUES ",
              absl::StrJoin(tuples, ", "),
              " ON CONFLICT (resource_type, id) DO UPDATE SET "
              "version = fhir_resources.version + 1, last_updated = excluded.last_updated, "
              "patient_reference = excluded.patient_reference, code = excluded.code, "
              "date = excluded.date, status = excluded.status, category = excluded.category, "
              "hl7_message_id = excluded.hl7_message_id, json = excluded.json"),
          std::move(params));
      AddSearchValues(buffer, resources, start, end);
    }
  }

  // A stored resource's search values are those of its latest version.
  static void AddSearchValues(StatementBuffer& buffer,
                              const std::vector<const FhirResourceRecord*>& resources, size_t start,
                              size_t end) {
    std::vector<Param> params;
    std::vector<std::string> matches;
    for (size_t i = start; i < end; ++i) {
      params.push_back(Param::Text(resources[i]->resource_type));
      params.push_back(Param::Text(resources[i]->id));
      matches.push_back(absl::StrCat("(resource_type = $", params.size() - 1,
                                     " AND resource_id = $", params.size(), ")"));
    }
    buffer.Add(
        absl::StrCat("DELETE FROM fhir_search_values WHERE ", absl::StrJoin(matches, " OR ")),
        std::move(params));
    params.clear();
    std::vector<std::string> tuples;
    for (size_t i = start; i < end; ++i) {
      for (const FhirSearchValue& v : resources[i]->search_values) {
        if (v.name.empty() || v.value.empty()) {
          continue;
        }
        tuples.push_back(Placeholders(params.size(), 5));
        for (Param& p : std::vector<Param>{Param::Text(resources[i]->resource_type),
                                           Param::Text(resources[i]->id), Param::Text(v.name),
                                           Param::Text(v.system), Param::Text(v.value)}) {
          params.push_back(std::move(p));
        }
      }
    }
    if (!tuples.empty()) {
      buffer.Add(absl::StrCat("INSERT INTO fhir_search_values (resource_type, resource_id, name, "
                              "system, value) VALUES ",
                              absl::StrJoin(tuples, ", ")),
                 std::move(params));
    }
  }

  // ----- helpers; REQUIRES: db_mu_ held -----

  absl::Status Exec(const std::string& sql) { return conn_->Query(sql, {}).status(); }

  absl::StatusOr<int> MigrateLocked() {
    if (conn_->dialect() == Dialect::kPostgres) {
      // Two replicas starting together must not both migrate.
      if (absl::Status s = Exec("SELECT pg_advisory_xact_lock(7412001)"); !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = conn_->ExecScript(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::vector<Row>> rows =
        conn_->Query("SELECT version FROM schema_migrations", {});
    if (!rows.ok()) {
      return rows.status();
    }
    std::set<int64_t> applied;
    for (const Row& r : *rows) {
      applied.insert(Int(r[0]));
    }
    int count = 0;
    for (const Migration& m : Migrations(conn_->dialect())) {
      if (applied.count(m.version) > 0) {
        continue;
      }
      if (absl::Status s = conn_->ExecScript(m.sql); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("migration ", m.name, ": ", s.message()));
      }
      absl::StatusOr<std::vector<Row>> insert = conn_->Query(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
          {Param::Int(m.version), Param::Text(m.name), Param::Int(ToMicros(options_.clock()))});
      if (!insert.ok()) {
        return insert.status();
      }
      ++count;
    }
    return count;
  }

  // Locks the chain head for this transaction (PostgreSQL row lock; SQLite
  // already holds the write lock), so ids and hashes are assigned serially
  // even with several processes writing.
  absl::StatusOr<ChainHead> ReadHeadForUpdate() {
    const std::string sql =
        absl::StrCat("SELECT head_id, head_hash FROM audit_chain WHERE id = 1",
                     conn_->dialect() == Dialect::kPostgres ? " FOR UPDATE" : "");
    absl::StatusOr<std::vector<Row>> rows = conn_->Query(sql, {});
    if (!rows.ok()) {
      return rows.status();
    }
    if (rows->empty()) {
      return absl::DataLossError("audit chain: the audit_chain row is missing");
    }
    return ChainHead{Int((*rows)[0][0]), Str((*rows)[0][1])};
  }

  absl::Status WriteHead(const ChainHead& head) {
    return conn_
        ->Query("UPDATE audit_chain SET head_id = $1, head_hash = $2 WHERE id = 1",
                {Param::Int(head.id), Param::Text(head.hash)})
        .status();
  }

  // Text fields of a message as stored (valid UTF-8); raw bytes untouched.
  static InboundMessage StoredText(const InboundMessage& received) {
    InboundMessage m = received;
    for (std::string* field :
         {&m.message_type, &m.trigger_event, &m.message_control_id, &m.sending_application,
          &m.sending_facility, &m.receiving_application, &m.receiving_facility, &m.version,
          &m.ack_status, &m.source_ip, &m.peer_certificate_subject, &m.error_detail}) {
      *field = ValidUtf8(*field);
    }
    return m;
  }

  static constexpr char kMessageInsertHead[] =
      "INSERT INTO hl7_messages (id, direction, message_type, trigger_event, "
      "message_control_id, sending_application, sending_facility, receiving_application, "
      "receiving_facility, version, raw_message, message_hash, ack_status, ack_message, "
      "source_ip, peer_certificate_subject, processed_at, error_detail, duplicate_of, "
      "control_id_reused, chain_hash)";

  // The INSERT of one audit row at head.id + 1; advances `head` (the caller
  // keeps the old head if the statement then fails).
  Connection::Statement MessageInsert(std::string_view direction, const InboundMessage& received,
                                      std::optional<int64_t> duplicate_of, bool reused,
                                      ChainHead& head) {
    const InboundMessage m = StoredText(received);
    return Connection::Statement{
        absl::StrCat(kMessageInsertHead,
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
                     "$16, $17, $18, $19, $20, $21)"),
        MessageValues(direction, m, Sha256Hex(m.raw_message), duplicate_of, reused, head)};
  }

  // The column values of one audit row at head.id + 1 (in kMessageInsertHead's
  // order), its chain hash computed; advances `head`. `m`'s text fields must
  // already be as stored (StoredText).
  std::vector<Param> MessageValues(std::string_view direction, const InboundMessage& m,
                                   const std::string& message_hash,
                                   std::optional<int64_t> duplicate_of, bool reused,
                                   ChainHead& head) const {
    // The chain covers exactly what is stored: text as stored (valid UTF-8).
    ChainRow row;
    row.id = head.id + 1;
    row.direction = std::string(direction);
    row.message_type = OptText(m.message_type);
    row.trigger_event = OptText(m.trigger_event);
    row.message_control_id = m.message_control_id;
    row.sending_application = m.sending_application;
    row.sending_facility = m.sending_facility;
    row.receiving_application = OptText(m.receiving_application);
    row.receiving_facility = OptText(m.receiving_facility);
    row.version = OptText(m.version);
    row.message_hash = message_hash;
    row.ack_status = OptText(m.ack_status);
    row.ack_message = OptText(m.ack_message);
    row.source_ip = OptText(m.source_ip);
    row.peer_certificate_subject = OptText(m.peer_certificate_subject);
    row.processed_at = ToMicros(m.processed_at ? *m.processed_at : options_.clock());
    row.error_detail = OptText(m.error_detail);
    row.duplicate_of = duplicate_of;
    row.control_id_reused = reused;
    std::string chain_hash = NextChainHash(head.hash, row);
    auto text = [](const std::string& v) {  // already valid UTF-8
      return v.empty() ? Param::Null() : Param{Param::Kind::kText, 0, v};
    };
    auto key = [](const std::string& v) { return Param{Param::Kind::kText, 0, v}; };
    std::vector<Param> values = {Param::Int(row.id),
                                 key(row.direction),
                                 text(m.message_type),
                                 text(m.trigger_event),
                                 key(m.message_control_id),
                                 key(m.sending_application),
                                 key(m.sending_facility),
                                 text(m.receiving_application),
                                 text(m.receiving_facility),
                                 text(m.version),
                                 Param::Blob(m.raw_message),
                                 key(message_hash),
                                 text(m.ack_status),
                                 m.ack_message.empty() ? Param::Null() : Param::Blob(m.ack_message),
                                 text(m.source_ip),
                                 text(m.peer_certificate_subject),
                                 Param::Int(row.processed_at),
                                 text(m.error_detail),
                                 Param::OptInt(duplicate_of),
                                 Param::Int(reused ? 1 : 0),
                                 key(chain_hash)};
    head.id = row.id;
    head.hash = std::move(chain_hash);
    return values;
  }

  absl::StatusOr<int64_t> InsertMessage(std::string_view direction, const InboundMessage& m,
                                        std::optional<int64_t> duplicate_of, bool reused,
                                        ChainHead& head) {
    ChainHead next = head;
    Connection::Statement statement = MessageInsert(direction, m, duplicate_of, reused, next);
    absl::StatusOr<std::vector<Row>> rows = conn_->Query(statement.sql, statement.params);
    if (!rows.ok()) {
      return rows.status();
    }
    head = next;
    return head.id;
  }

  int64_t AddMessageInsert(StatementBuffer& buffer, std::string_view direction,
                           const InboundMessage& m, std::optional<int64_t> duplicate_of,
                           bool reused, ChainHead& head) {
    Connection::Statement statement = MessageInsert(direction, m, duplicate_of, reused, head);
    buffer.Add(std::move(statement.sql), std::move(statement.params));
    return head.id;
  }

  // The patient upsert (RETURNING id); `*key` gets the row's patient_key.
  static Connection::Statement PatientUpsert(const PatientRecord& p, int64_t now,
                                             std::string* key_out) {
    const std::string key = !p.pms_patient_id.empty() ? absl::StrCat("pms:", p.pms_patient_id)
                                                      : absl::StrCat("ids:", p.other_identifiers);
    *key_out = key;
    return Connection::Statement{
        "INSERT INTO patients (patient_key, pms_patient_id, other_identifiers, family_name, "
        "given_name, birth_date, sex, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (patient_key) DO UPDATE SET "
        "other_identifiers = COALESCE(excluded.other_identifiers, patients.other_identifiers), "
        "family_name = COALESCE(excluded.family_name, patients.family_name), "
        "given_name = COALESCE(excluded.given_name, patients.given_name), "
        "birth_date = COALESCE(excluded.birth_date, patients.birth_date), "
        "sex = COALESCE(excluded.sex, patients.sex), updated_at = excluded.updated_at "
        "RETURNING id",
        {Param::Text(key), Param::Text(p.pms_patient_id), Param::Text(p.other_identifiers),
         Param::Text(p.family_name), Param::Text(p.given_name), Param::Text(p.birth_date),
         Param::Text(p.sex), Param::Int(now)}};
  }

  absl::StatusOr<int64_t> UpsertPatient(const PatientRecord& p, int64_t now) {
    std::string key;
    Connection::Statement statement = PatientUpsert(p, now, &key);
    absl::StatusOr<std::vector<Row>> rows = conn_->Query(statement.sql, statement.params);
    if (!rows.ok()) {
      return rows.status();
    }
    return Int((*rows)[0][0]);
  }

  static std::string AddPatientUpsert(StatementBuffer& buffer, const PatientRecord& p,
                                      int64_t now) {
    std::string key;
    Connection::Statement statement = PatientUpsert(p, now, &key);
    buffer.Add(std::move(statement.sql), std::move(statement.params));
    return key;
  }

  // Inside a transaction: status `to` when the order is in one of `from`.
  absl::StatusOr<bool> MoveOrder(int64_t order_id, const std::vector<std::string>& from,
                                 std::string_view to, int64_t when_us) {
    std::vector<Param> params = {Param::Int(order_id), Param::Text(std::string(to))};
    std::string sql = "UPDATE lab_orders SET status = $2";
    if (to == "sent" || to == "acknowledged") {
      params.push_back(Param::Int(when_us));
      absl::StrAppend(&sql, to == "sent" ? ", sent_at = $" : ", acknowledged_at = $",
                      params.size());
    }
    sql += " WHERE id = $1";
    if (!from.empty()) {
      std::vector<Param> statuses;
      for (const std::string& status : from) {
        statuses.push_back(Param::Text(status));
      }
      absl::StrAppend(&sql, " AND status IN (", AppendParams(&params, std::move(statuses)), ")");
    }
    sql += " RETURNING id";
    absl::StatusOr<std::vector<Row>> rows = conn_->Query(sql, params);
    if (!rows.ok()) {
      return rows.status();
    }
    return !rows->empty();
  }

  // Advisory-lock key of an endpoint's claimers (FNV-1a: the same in every
  // process, whatever the build).
  static int64_t EndpointLockKey(std::string_view endpoint) {
    uint64_t hash = 14695981039346656037ull;
    for (char c : std::string("outbox:") + std::string(endpoint)) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
    return static_cast<int64_t>(hash);
  }

  absl::Status EndClaim(int64_t outbox_id, std::string_view claimer, const std::string& sql,
                        std::vector<Param> extra, std::optional<std::string> error) {
    absl::StatusOr<bool> done = InTransaction<bool>([&]() -> absl::StatusOr<bool> {
      std::vector<Param> params = {Param::Int(outbox_id), Param::Text(std::string(claimer)),
                                   Param::Int(ToMicros(options_.clock()))};
      for (Param& p : extra) {
        params.push_back(p);
      }
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(sql, params);
      if (!rows.ok()) {
        return rows.status();
      }
      if (rows->empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("storage: outbox row ", outbox_id, " is not held by ", Sv(claimer)));
      }
      // Mirror the attempt count and last error on the order for the APIs.
      absl::StatusOr<std::vector<Row>> order = conn_->Query(
          "UPDATE lab_orders SET attempts = attempts + 1, "
          "last_error = COALESCE($2, last_error) WHERE id = $1",
          {Param::Int(Int((*rows)[0][0])), error ? Param::Text(*error) : Param::Null()});
      if (!order.ok()) {
        return order.status();
      }
      return true;
    });
    return done.status();
  }

  absl::StatusOr<StoredPatient> OnePatient(const std::string& where, const Param& param) {
    absl::StatusOr<std::vector<Row>> rows =
        Read(absl::StrCat("SELECT ", kPatientColumns, " FROM patients WHERE ", where), {param});
    if (!rows.ok()) {
      return rows.status();
    }
    if (rows->empty()) {
      return absl::NotFoundError("storage: no such patient");
    }
    return PatientFromRow(std::move((*rows)[0]));
  }

  absl::StatusOr<StoredOrder> OneOrder(const std::string& where, const Param& param) {
    absl::StatusOr<std::vector<Row>> rows =
        Read(absl::StrCat("SELECT ", kOrderColumns, " FROM lab_orders WHERE ", where), {param});
    if (!rows.ok()) {
      return rows.status();
    }
    if (rows->empty()) {
      return absl::NotFoundError("storage: no such order");
    }
    std::vector<StoredOrder> order = {OrderFromRow(std::move((*rows)[0]))};
    if (absl::Status derived = DeriveResultStatus(&order); !derived.ok()) {
      return derived;
    }
    return std::move(order[0]);
  }

  // Queries run on their own connections, so the APIs are not held up by a
  // group commit in progress (SQLite WAL readers do not block the writer),
  // nor by each other: each query takes whichever reader is free.
  absl::StatusOr<std::vector<Row>> Read(const std::string& sql, const std::vector<Param>& params) {
    if (read_conns_.empty()) {
      std::lock_guard<std::mutex> lock(db_mu_);
      absl::StatusOr<std::vector<Row>> rows = conn_->Query(sql, params);
      CountDatabaseError(rows.status());
      return rows;
    }
    Connection* reader = nullptr;
    {
      std::unique_lock<std::mutex> lock(readers_mu_);
      readers_cv_.wait(lock, [this] { return !idle_readers_.empty(); });
      reader = idle_readers_.back();
      idle_readers_.pop_back();
    }
    absl::StatusOr<std::vector<Row>> rows = reader->Query(sql, params);
    if (absl::IsUnavailable(rows.status())) {
      // A read is idempotent: one immediate retry, which reconnects if the
      // connection was lost (a server restart, a failover).
      rows = reader->Query(sql, params);
    }
    {
      std::lock_guard<std::mutex> lock(readers_mu_);
      idle_readers_.push_back(reader);
    }
    readers_cv_.notify_one();
    CountDatabaseError(rows.status());
    return rows;
  }

  void CountDatabaseError(const absl::Status& status) {
    if (absl::IsUnavailable(status) || absl::IsInternal(status)) {
      ++stats_database_errors_;
    }
  }

  template <typename T>
  absl::StatusOr<T> InTransaction(const std::function<absl::StatusOr<T>()>& body) {
    std::lock_guard<std::mutex> lock(db_mu_);
    if (absl::Status s = conn_->Begin(); !s.ok()) {
      conn_->Rollback();
      CountDatabaseError(s);
      return s;
    }
    absl::StatusOr<T> result = body();
    if (!result.ok()) {
      conn_->Rollback();
      CountDatabaseError(result.status());
      return result;
    }
    if (absl::Status s = conn_->Commit(); !s.ok()) {
      conn_->Rollback();
      CountDatabaseError(s);
      return s;
    }
    return result;
  }

  const StoreOptions options_;

  std::atomic<int64_t> stats_records_{0};
  std::atomic<int64_t> stats_batches_{0};
  std::atomic<int64_t> stats_failures_{0};
  std::atomic<int64_t> stats_database_errors_{0};

  std::mutex db_mu_;  // guards conn_: a connection is not thread-safe
  std::unique_ptr<Connection> conn_;
  // May be empty: reads then use conn_.
  std::vector<std::unique_ptr<Connection>> read_conns_;
  std::mutex readers_mu_;  // guards idle_readers_
  std::condition_variable readers_cv_;
  std::vector<Connection*> idle_readers_;  // those of read_conns_ no query is using

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable done_cv_;
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  std::thread committer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> MakeSqlStore(
    std::unique_ptr<Connection> connection,
    std::vector<std::unique_ptr<Connection>> read_connections, const StoreOptions& options) {
  auto store =
      std::make_unique<SqlStore>(std::move(connection), std::move(read_connections), options);
  if (absl::Status s = store->Start(); !s.ok()) {
    return s;
  }
  return store;
}

}  // namespace bridge::storage::internal
