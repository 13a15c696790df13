#!/bin/bash
# tests/interop/apis_interop_test.sh SERVER BACKEND
#
# Starts apis_fixture_server (the guide's sample ORU stored) on BACKEND
# (sqlite, or postgres with BRIDGE_TEST_PG_DSN), then:
#  - runs the guide's Part D Step 2 and Part B Step 4 / Part D Step 4 curl
#    commands verbatim, only the port changed (the bearer token comes from a
#    .curlrc in CURL_HOME, so the command lines stay the guide's);
#  - drives the FHIR facade with fhir-kit-client and validates every
#    resource and Bundle it got with @medplum/core;
#  - calls every gRPC RPC with @grpc/grpc-js, health and reflection.
set -euo pipefail
server=$1
backend=${2:-sqlite}
here=$(cd "$(dirname "$0")/.." && pwd)  # tests/
work=$(mktemp -d /tmp/lab-bridge-interop-XXXXXX)
pid=
schema=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi
  if [[ -n $schema ]]; then psql "$BRIDGE_TEST_PG_DSN" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ $backend == postgres ]]; then
  if [[ -z ${BRIDGE_TEST_PG_DSN:-} ]]; then
    if [[ -n ${CI:-}${BRIDGE_REQUIRE_PG:-} ]]; then echo "FAIL: BRIDGE_TEST_PG_DSN not set"; exit 1; fi
    echo "SKIP: BRIDGE_TEST_PG_DSN not set"; exit 0
  fi
  schema="interop_$$_$RANDOM"
  psql "$BRIDGE_TEST_PG_DSN" -qc "CREATE SCHEMA $schema" >/dev/null
  sep='?'; [[ $BRIDGE_TEST_PG_DSN == *\?* ]] && sep='&'
  export DATABASE_URL="${BRIDGE_TEST_PG_DSN}${sep}options=-csearch_path%3D${schema}"
else
  export DATABASE_URL="sqlite://$work/lab-bridge.db"
fi
export API_TOKENS_FILE=$work/tokens.json ACCESS_AUDIT_FILE=$work/access.jsonl
"$server" --port-file "$work/port" --grpc-port-file "$work/grpc_port" --token-file "$work/token" \
  --reader-token-file "$work/reader_token" \
  >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [[ -s $work/port ]] && break; sleep 0.1; done
[[ -s $work/port ]] || { echo "FAIL: server did not start"; cat "$work/server.log"; exit 1; }
port=$(cat "$work/port")
token=$(cat "$work/token")
mkdir -p "$work/curl"
printf 'header = "Authorization: Bearer %s"\n' "$token" >"$work/curl/.curlrc"
export CURL_HOME=$work/curl

fail() { echo "FAIL: $*"; exit 1; }

# --- Part D Step 2, verbatim but for the port ---
out=$(curl -s "http://localhost:$port/api/lab-results?patient_id=12345" | jq '.[] | {test_name, value, abnormal_flag}')
echo "$out"
[[ $(jq -s 'length' <<<"$out") == 5 ]] || fail "expected 5 results"
[[ $(jq -s -c '[.[] | select(.test_name == "Potassium" and .abnormal_flag == "HH")] | length' <<<"$out") == 1 ]] \
  || fail "expected K (Potassium) with flag HH"
out=$(curl -s "http://localhost:$port/api/lab-results/critical" | jq '.')
echo "$out"
[[ $(jq -c '[.[] | select(.test_code == "K" and .value == "6.8" and .units == "mEq/L" and .abnormal_flag == "HH")] | length' <<<"$out") == 1 ]] \
  || fail "expected Potassium 6.8 mEq/L with flag HH"

# --- Part B Step 4, verbatim but for the port ---
out=$(curl -s -X POST http://localhost:$port/api/lab-orders \
  -H "Content-Type: application/json" \
  -d '{
    "patient_id": 1,
    "encounter_id": 1,
    "test_codes": ["CBC", "BMP"],
    "ordering_provider": "Dr. Smith",
    "priority": "R"
  }' | jq '.')
echo "$out"
[[ $(jq -r '.status' <<<"$out") == pending && $(jq -c '.test_codes' <<<"$out") == '["CBC","BMP"]' ]] \
  || fail "Part B Step 4: expected a pending order for CBC, BMP"

# --- Part D Step 4, verbatim but for the port ---
out=$(curl -s -X POST http://localhost:$port/api/lab-orders \
  -H "Content-Type: application/json" \
  -d '{
    "patient_id": 1,
    "test_codes": ["CBC", "BMP"],
    "ordering_provider": "Dr. Smith",
    "priority": "S"
  }' | jq '.status')
echo "$out"
[[ $out == '"pending"' ]] || fail "Part D Step 4: expected \"pending\" (no LIS dispatch yet)"

# Without the .curlrc the same command is refused with a JSON 401.
code=$(CURL_HOME=/nonexistent curl -s -o "$work/401.json" -w '%{http_code}' "http://localhost:$port/api/lab-results/critical")
[[ $code == 401 && $(jq -r '.detail' "$work/401.json") != null ]] || fail "expected 401 JSON without a token"

# --- FHIR: fhir-kit-client + @medplum/core ---
mkdir -p "$work/fhir"
(cd "$here" && node interop/fhir_client_check.mjs "http://127.0.0.1:$port/fhir" "$token" "$work/fhir")
(cd "$here" && node mapping_v2fhir/validate_fhir.mjs "$work"/fhir/*.json)
# --- gRPC: @grpc/grpc-js, health, reflection ---
reader=$(cat "$work/reader_token")
(cd "$here" && node interop/grpc_client_check.mjs "127.0.0.1:$(cat "$work/grpc_port")" "$token" "$reader" \
  "$here/../proto" "$pid")
echo "PASS ($backend)"
