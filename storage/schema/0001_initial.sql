-- 0001: the tables of the setup guide (Part B Step 1), extended for lab-bridge.
-- One text for both backends: {{ID}} is an auto-assigned integer primary key
-- and {{BYTES}} a byte string (BLOB on SQLite, BYTEA on PostgreSQL).
-- Times are BIGINT microseconds since the Unix epoch (UTC); flags are 0/1.

-- The audit trail. Rows are append-only; ids are assigned contiguously under
-- the audit_chain lock and every row carries
-- chain_hash = SHA-256(previous chain_hash || canonical row content).
CREATE TABLE hl7_messages (
  id BIGINT PRIMARY KEY,
  direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
  message_type TEXT,
  trigger_event TEXT,
  message_control_id TEXT,
  sending_application TEXT,
  sending_facility TEXT,
  receiving_application TEXT,
  receiving_facility TEXT,
  version TEXT,
  raw_message {{BYTES}} NOT NULL,
  message_hash TEXT NOT NULL,
  ack_status TEXT,
  ack_message {{BYTES}},
  source_ip TEXT,
  peer_certificate_subject TEXT,
  processed_at BIGINT NOT NULL,
  error_detail TEXT,
  duplicate_of BIGINT,
  control_id_reused INTEGER NOT NULL DEFAULT 0,
  chain_hash TEXT NOT NULL
);
CREATE INDEX hl7_messages_control_id
  ON hl7_messages (sending_application, sending_facility, message_control_id);
CREATE INDEX hl7_messages_processed_at ON hl7_messages (processed_at, id);

-- The chain's head (last row written) and anchor (last row purged), one row.
CREATE TABLE audit_chain (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  head_id BIGINT NOT NULL,
  head_hash TEXT NOT NULL,
  anchor_id BIGINT NOT NULL,
  anchor_hash TEXT NOT NULL,
  purged_rows BIGINT NOT NULL DEFAULT 0
);
INSERT INTO audit_chain (id, head_id, head_hash, anchor_id, anchor_hash)
  VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
          0, '0000000000000000000000000000000000000000000000000000000000000000');

-- patient_key: pms_patient_id when known, else the other identifiers.
CREATE TABLE patients (
  id {{ID}},
  patient_key TEXT NOT NULL UNIQUE,
  pms_patient_id TEXT,
  other_identifiers TEXT,
  family_name TEXT,
  given_name TEXT,
  birth_date TEXT,
  sex TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX patients_pms_patient_id ON patients (pms_patient_id);

CREATE TABLE lab_orders (
  id {{ID}},
  patient_id BIGINT NOT NULL,
  encounter_id BIGINT,
  test_codes TEXT NOT NULL,
  ordering_provider TEXT,
  priority TEXT NOT NULL DEFAULT 'R',
  status TEXT NOT NULL DEFAULT 'pending',
  placer_order_number TEXT NOT NULL UNIQUE,
  hl7_message_id BIGINT,
  created_at BIGINT NOT NULL,
  sent_at BIGINT,
  acknowledged_at BIGINT,
  lis_endpoint TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);
CREATE INDEX lab_orders_patient ON lab_orders (patient_id, id);
CREATE INDEX lab_orders_status ON lab_orders (status, id);

CREATE TABLE lab_results (
  id {{ID}},
  patient_id BIGINT NOT NULL,
  lab_order_id BIGINT,
  test_code TEXT NOT NULL,
  test_name TEXT,
  value TEXT,
  units TEXT,
  reference_range TEXT,
  abnormal_flag TEXT,
  result_status TEXT,
  sending_facility TEXT,
  filler_order_number TEXT,
  observation_date BIGINT,
  received_at BIGINT NOT NULL,
  hl7_message_id BIGINT NOT NULL,
  value_type TEXT,
  observation_sub_id TEXT,
  placer_order_number TEXT,
  critical INTEGER NOT NULL DEFAULT 0,
  acknowledged_by TEXT,
  acknowledged_at BIGINT,
  acknowledgement_note TEXT
);
-- Results by patient and time of receipt (ids grow with receipt; also the
-- paging key). Observation-date ranges filter within one patient's rows: a
-- second (patient_id, observation_date) index would cost a B-tree insert per row.
CREATE INDEX lab_results_patient ON lab_results (patient_id, id);
CREATE INDEX lab_results_critical_open ON lab_results (id)
  WHERE critical = 1 AND acknowledged_at IS NULL;

-- Orders waiting to be sent. A row is leased (claimed_by, claimed_until)
-- while a dispatcher works on it; an expired lease makes it claimable again.
CREATE TABLE outbox (
  id {{ID}},
  order_id BIGINT NOT NULL,
  endpoint TEXT NOT NULL,
  payload {{BYTES}} NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  claimed_by TEXT,
  claimed_until BIGINT,
  last_error TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);

CREATE TABLE fhir_resources (
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  version BIGINT NOT NULL,
  last_updated BIGINT NOT NULL,
  patient_reference TEXT,
  code TEXT,
  date TEXT,
  status TEXT,
  category TEXT,
  hl7_message_id BIGINT,
  json TEXT NOT NULL,
  PRIMARY KEY (resource_type, id)
);
CREATE INDEX fhir_resources_patient ON fhir_resources (resource_type, patient_reference, date);
CREATE INDEX fhir_resources_code ON fhir_resources (resource_type, code, date);
