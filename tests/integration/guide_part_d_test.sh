#!/bin/bash
# tests/integration/guide_part_d_test.sh LAB_BRIDGE BACKEND
#
# The original guide's Part D Step 1, literally: the sample ORU written with
# the guide's heredoc (LF line ends), framed with the guide's printf/cat
# lines and sent with `nc localhost PORT < mllp_msg` (netcat-openbsd) to
# `lab-bridge serve` started with no configuration but its ports (0: any free
# port, so parallel tests do not collide; the guide's 2575 is the default)
# and, for PostgreSQL, DATABASE_URL. On SQLite the database is the default
# ./var/lab-bridge.db in the server's working folder. The only other change
# to the guide's commands: /tmp/ becomes this test's own folder.
#
# Then, as the guide's Steps 1-3 expect: nc printed MSA|AA|MSG001; the audit
# table holds one inbound ORU row with ack_status AA (the guide's Step 3
# query); lab_results holds five rows for patient 12345, potassium 6.8 mEq/L
# flagged HH and critical, the other four not critical; the log carries the
# critical alert without patient data; and the guide's Part D Step 2 curl
# commands against the same server return the five results and the critical
# potassium.
set -euo pipefail
lab_bridge=$(readlink -f "$1")
backend=${2:-sqlite}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/lab-bridge-partd-XXXXXX)
pid=
nc_pid=
schema=
cleanup() {
  if [[ -n $nc_pid ]]; then kill "$nc_pid" 2>/dev/null || true; fi
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [[ -n $schema ]]; then psql -X -q "$BRIDGE_TEST_PG_DSN" -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- server log ---"
  cat "$work/serve.log" 2>/dev/null || true
  exit 1
}

# Nothing of the caller's configuration leaks into "no configuration".
for v in $(env | sed -n 's/^\(MLLP_[A-Z_]*\|DATABASE_URL\|HTTP_[A-Z_]*\|GRPC_[A-Z_]*\|LOG_LEVEL\|API_TOKENS_FILE\|ACCESS_AUDIT_FILE\|SENDING_[A-Z_]*\)=.*/\1/p'); do
  unset "$v"
done

if [[ $backend == postgres ]]; then
  if [[ -z ${BRIDGE_TEST_PG_DSN:-} ]]; then
    if [[ -n ${CI:-}${BRIDGE_REQUIRE_PG:-} ]]; then echo "FAIL: BRIDGE_TEST_PG_DSN not set"; exit 1; fi
    echo "SKIP: BRIDGE_TEST_PG_DSN not set"; exit 0
  fi
  schema="partd_$$_$RANDOM"
  psql -X -q "$BRIDGE_TEST_PG_DSN" -c "CREATE SCHEMA $schema" >/dev/null
  sep='?'; [[ $BRIDGE_TEST_PG_DSN == *\?* ]] && sep='&'
  export DATABASE_URL="${BRIDGE_TEST_PG_DSN}${sep}options=-csearch_path%3D${schema}"
  sql() { psql -X -q -t -A -F '|' "$DATABASE_URL" -c "$1"; }
else
  sql() { sqlite3 -separator '|' "$work/var/lab-bridge.db" "$1"; }
fi

cd "$work"
MLLP_LISTEN_PORT=0 HTTP_LISTEN_PORT=0 GRPC_LISTEN_PORT=0 \
  "$lab_bridge" serve --port-file "$work/ports" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  [[ -s $work/ports ]] && break
  kill -0 "$pid" 2>/dev/null || fail "lab-bridge serve exited before listening"
  sleep 0.1
done
[[ -s $work/ports ]] || fail "lab-bridge serve did not start"
port=$(sed -n 's/^mllp=//p' "$work/ports")
[[ -n $port ]] || port=$(head -1 "$work/ports")

# --- Part D Step 1, as the guide writes it (/tmp -> $work, 2575 -> $port) ---
# Create a sample ORU message file
cat > $work/test_oru.hl7 << 'ENDHL7'
MSH|^~\&|LAB_LIS|REFERENCE_LAB|PMS_LAB|MPS_PMS|20260221120000||ORU^R01|MSG001|P|2.5.1
PID|1||12345^^^MPS_PMS^MR||Doe^Jane||19900315|F
OBR|1|ORD001|FIL001|CBC^Complete Blood Count|||20260221110000|||||||||Dr. Smith||||||||F
OBX|1|NM|WBC^White Blood Cell Count||7.5|10*3/uL|4.5-11.0|N||F
OBX|2|NM|RBC^Red Blood Cell Count||4.8|10*6/uL|4.0-5.5|N||F
OBX|3|NM|HGB^Hemoglobin||14.2|g/dL|12.0-16.0|N||F
OBX|4|NM|PLT^Platelet Count||250|10*3/uL|150-400|N||F
OBX|5|NM|K^Potassium||6.8|mEq/L|3.5-5.0|HH||F
ENDHL7

# Send via netcat (plaintext for local testing)
printf '\x0b' > $work/mllp_msg
cat $work/test_oru.hl7 >> $work/mllp_msg
printf '\x1c\x0d' >> $work/mllp_msg
# The guide's `nc localhost 2575 < /tmp/mllp_msg`. netcat-openbsd keeps the
# connection open after its input ends (the server keeps it too: MLLP
# connections are persistent), so the test reads nc's output until the ACK
# arrives and then ends nc itself.
: >"$work/nc.out"
nc localhost $port < $work/mllp_msg > "$work/nc.out" &
nc_pid=$!
for _ in $(seq 1 100); do
  tr '\r' '\n' <"$work/nc.out" | grep -q '^MSA|' && break
  sleep 0.1
done
kill "$nc_pid" 2>/dev/null || true
wait "$nc_pid" 2>/dev/null || true
nc_pid=
# ---------------------------------------------------------------------------

# The guide's text and the repository fixture are the same message.
[[ $(tr -d '\r\n' <"$work/test_oru.hl7") == "$(tr -d '\r\n' <"$here/tests/fixtures/hl7/guide_sample_oru.hl7")" ]] \
  || fail "tests/fixtures/hl7/guide_sample_oru.hl7 differs from the guide's Part D message"

ack=$(tr '\r' '\n' <"$work/nc.out")
echo "nc printed:"
echo "$ack" | tr -d '\013\034'
msa=$(echo "$ack" | tr -d '\013\034' | grep '^MSA|' || true)
[[ $msa == "MSA|AA|MSG001" ]] || fail "expected MSA|AA|MSG001 from nc, got '${msa}'"
[[ $(head -c 1 "$work/nc.out" | od -An -c | tr -d ' ') == '\v' ]] || fail "the ACK is not MLLP-framed"

# Part D Step 3 (the guide's query, on this backend).
rows=$(sql "SELECT direction, message_type, ack_status, processed_at FROM hl7_messages ORDER BY processed_at DESC LIMIT 5;")
echo "hl7_messages: $rows"
[[ $(wc -l <<<"$rows") == 1 ]] || fail "expected one audit row, got: $rows"
[[ $rows =~ ^inbound\|ORU\|AA\|[0-9]+$ ]] || fail "expected inbound | ORU | AA | <timestamp>, got: $rows"
[[ $(sql "SELECT message_control_id || ' ' || trigger_event || ' ' || sending_application FROM hl7_messages") == "MSG001 R01 LAB_LIS" ]] \
  || fail "the audit row does not name MSG001 / R01 / LAB_LIS"

# The five results of patient 12345 (as Part D Step 2 expects them).
results=$(sql "SELECT r.test_code, r.test_name, r.value, r.units, r.abnormal_flag, r.critical
               FROM lab_results r JOIN patients p ON p.id = r.patient_id
               WHERE p.pms_patient_id = '12345' ORDER BY r.id")
echo "lab_results:"
echo "$results"
expected="WBC|White Blood Cell Count|7.5|10*3/uL|N|0
RBC|Red Blood Cell Count|4.8|10*6/uL|N|0
HGB|Hemoglobin|14.2|g/dL|N|0
PLT|Platelet Count|250|10*3/uL|N|0
K|Potassium|6.8|mEq/L|HH|1"
[[ $results == "$expected" ]] || fail "lab_results for patient 12345 are not the guide's five with K 6.8 HH critical"
[[ $(sql "SELECT COUNT(*) FROM lab_results") == 5 ]] || fail "expected exactly five lab_results rows"
[[ $(sql "SELECT COUNT(*) FROM lab_results r JOIN hl7_messages m ON m.id = r.hl7_message_id WHERE m.message_control_id = 'MSG001'") == 5 ]] \
  || fail "the results are not linked to the MSG001 audit row"
# The critical result raised its alert in the log: the control id, the test
# and the flag, and no patient data.
grep -q 'event=critical_result control_id=MSG001 .*test_code=K flag=HH' "$work/serve.log" \
  || fail "no event=critical_result alert for MSG001 K HH in the log"
for phi in Doe Jane 19900315 '12345^^^MPS_PMS'; do
  ! grep -qwF -- "$phi" "$work/serve.log" || fail "the log holds patient data ($phi)"
done

# --- Part D Step 2 against this same server, which received the ORU over
# MLLP: the guide's curl lines but for the port. The first start printed its
# admin token once; a .curlrc carries it so the command lines stay the guide's.
token=$(grep -A1 'created token "admin"' "$work/serve.log" | tail -1 | tr -d ' ')
[[ -n $token ]] || fail "serve printed no admin token at its first start"
http=$(sed -n 's/^http=//p' "$work/ports")
mkdir -p "$work/curl"
printf 'header = "Authorization: Bearer %s"\n' "$token" >"$work/curl/.curlrc"
out=$(CURL_HOME=$work/curl curl -s "http://localhost:$http/api/lab-results?patient_id=12345" | jq '.[] | {test_name, value, abnormal_flag}')
echo "$out"
[[ $(jq -s 'length' <<<"$out") == 5 ]] || fail "Part D Step 2: expected 5 results, got: $out"
[[ $(jq -s -c '[.[] | select(.test_name == "Potassium" and .value == "6.8" and .abnormal_flag == "HH")] | length' <<<"$out") == 1 ]] \
  || fail "Part D Step 2: expected Potassium 6.8 HH"
out=$(CURL_HOME=$work/curl curl -s "http://localhost:$http/api/lab-results/critical" | jq '.')
[[ $(jq -c '[.[] | select(.test_code == "K" and .value == "6.8" and .units == "mEq/L" and .abnormal_flag == "HH")] | length' <<<"$out") == 1 ]] \
  || fail "Part D Step 2: /critical lacks Potassium 6.8 mEq/L HH: $out"
echo "PASS ($backend)"
