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
#  - calls every gRPC RPC with @grpc/grpc-js, health and reflection;
#  - restarts with gRPC over mutual TLS (GRPC_TLS_CERT/KEY/CLIENT_CA, a test
#    PKI made with the openssl CLI) and checks it with @grpc/grpc-js, and that
#    unusable TLS files stop the start naming their variable.
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
  --reader-token-file "$work/reader_token" --writer-token-file "$work/writer_token" \
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
writer=$(cat "$work/writer_token")
(cd "$here" && WRITER_TOKEN=$writer node interop/grpc_client_check.mjs "127.0.0.1:$(cat "$work/grpc_port")" "$token" "$reader" \
  "$here/../proto" "$pid")

# --- gRPC over TLS (GRPC_TLS_CERT/KEY/CLIENT_CA): a second server on the same store ---
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
pki=$work/pki
mkdir -p "$pki"
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
for ca in ca other-ca; do
  openssl req -x509 $ec -subj "/CN=$ca" -keyout "$pki/$ca.key" -out "$pki/$ca.crt" 2>/dev/null
done
leaf() {  # name cn ca extensions
  openssl req $ec -subj "/CN=$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  printf '%b' "$4" >"$pki/$1.ext"
  openssl x509 -req -days 2 -in "$pki/$1.csr" -CA "$pki/$3.crt" -CAkey "$pki/$3.key" \
    -CAcreateserial -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
}
leaf server localhost ca 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
leaf pms pms-backend ca 'extendedKeyUsage=clientAuth\n'
leaf stranger pms-backend other-ca 'extendedKeyUsage=clientAuth\n'

# A file that cannot serve stops the start, naming its variable.
if GRPC_TLS_CERT=$pki/missing.crt GRPC_TLS_KEY=$pki/server.key "$server" --port-file "$work/port-bad" \
    >"$work/bad.log" 2>&1; then
  fail "a missing GRPC_TLS_CERT did not stop the start"
fi
grep -q GRPC_TLS_CERT "$work/bad.log" || fail "the error does not name GRPC_TLS_CERT: $(cat "$work/bad.log")"
if GRPC_TLS_CERT=$pki/server.crt GRPC_TLS_KEY=$pki/pms.key "$server" --port-file "$work/port-bad" \
    >"$work/bad.log" 2>&1; then
  fail "a key that is not the certificate's did not stop the start"
fi
grep -q GRPC_TLS_KEY "$work/bad.log" || fail "the error does not name GRPC_TLS_KEY: $(cat "$work/bad.log")"

rm -f "$work/port" "$work/grpc_port"
GRPC_TLS_CERT=$pki/server.crt GRPC_TLS_KEY=$pki/server.key GRPC_TLS_CLIENT_CA=$pki/ca.crt \
  "$server" --port-file "$work/port" --grpc-port-file "$work/grpc_port" >"$work/server-tls.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [[ -s $work/port ]] && break; sleep 0.1; done
[[ -s $work/port ]] || { echo "FAIL: TLS server did not start"; cat "$work/server-tls.log"; exit 1; }
(cd "$here" && node interop/grpc_client_check.mjs "127.0.0.1:$(cat "$work/grpc_port")" "$token" "$reader" \
  "$here/../proto" "$pid" "$pki")
echo "PASS ($backend)"
