#!/bin/bash
# tests/e2e/dashboard_e2e.sh LAB_BRIDGE SCREENSHOT_DIR
#
# The lab dashboard end to end: a real `lab-bridge serve` on SQLite (free
# ports for MLLP, HTTP and gRPC), python-hl7's asyncio MLLP server as the
# LIS (LIS_ENDPOINTS_FILE), and dashboard.mjs driving Debian's Chromium
# with playwright-core. Screenshots go to SCREENSHOT_DIR.
set -euo pipefail
bin=$(realpath "$1")
shots=$2
here=$(cd "$(dirname "$0")/.." && pwd)  # tests/
work=$(mktemp -d /tmp/lab-bridge-e2e-XXXXXX)
pid=
lis_pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [[ -n $lis_pid ]]; then kill "$lis_pid" 2>/dev/null || true; wait "$lis_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

missing() {
  if [[ -n ${CI:-}${BRIDGE_REQUIRE_PEERS:-} ]]; then echo "FAIL: $1"; exit 1; fi
  echo "SKIP: $1"; exit 0
}
[[ -x /usr/bin/chromium ]] || missing "/usr/bin/chromium is not installed (deploy/install-deps.sh --with-tests)"
[[ -d $here/node_modules/playwright-core ]] || missing "playwright-core is not installed (npm ci in tests/)"
[[ -x /usr/bin/mllp_send ]] || missing "python3-hl7 (mllp_send) is not installed"

# The LIS, on a free port, for at most 10 minutes; it results CBC orders to
# the MLLP port that serve writes to $work/ports.
/usr/bin/python3 "$here/e2e/fake_lis.py" "$work/lis_port" "$work/lis_received.txt" 600 "$work/ports" \
  >"$work/lis.log" 2>&1 &
lis_pid=$!
for _ in $(seq 1 100); do [[ -s $work/lis_port ]] && break; sleep 0.1; done
[[ -s $work/lis_port ]] || { echo "FAIL: the fake LIS did not start"; cat "$work/lis.log"; exit 1; }
cat >"$work/lis_endpoints.json" <<JSON
{"endpoints": [{"id": "e2e-lab", "default": true, "host": "127.0.0.1", "port": $(cat "$work/lis_port"),
  "receiving_application": "LAB_LIS", "receiving_facility": "REFERENCE_LAB",
  "ack_timeout_seconds": 5, "backoff_initial_ms": 200}]}
JSON

export DATABASE_URL="sqlite://$work/lab-bridge.db"
export API_TOKENS_FILE=$work/tokens.json ACCESS_AUDIT_FILE=$work/access.jsonl
export LIS_ENDPOINTS_FILE=$work/lis_endpoints.json
export MLLP_LISTEN_HOST=127.0.0.1 MLLP_LISTEN_PORT=0 HTTP_LISTEN_HOST=127.0.0.1 HTTP_LISTEN_PORT=0
export GRPC_LISTEN_PORT=0 ACK_TIMEOUT_SECONDS=5 LOG_LEVEL=info
token=$("$bin" token create --name clinician --roles results:read,orders:write,criticals:ack)
nurse=$("$bin" token create --name nurse --roles results:read,criticals:ack)

"$bin" serve --port-file "$work/ports" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [[ -s $work/ports ]] && break; sleep 0.1; done
[[ -s $work/ports ]] || { echo "FAIL: lab-bridge serve did not start"; cat "$work/server.log"; exit 1; }
port_of() { sed -n "s/^$1=//p" "$work/ports"; }

status=0
(cd "$here" && E2E_BASE_URL="http://127.0.0.1:$(port_of http)" E2E_MLLP_PORT="$(port_of mllp)" \
  E2E_TOKEN="$token" E2E_NURSE_TOKEN="$nurse" E2E_BIN="$bin" E2E_WORK="$work" \
  E2E_SCREENSHOTS="$shots" E2E_SERVER_PID="$pid" E2E_LIS_RECEIVED="$work/lis_received.txt" \
  E2E_GUIDE_ORU="$here/fixtures/hl7/guide_sample_oru.hl7" \
  node e2e/dashboard.mjs) || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- lab-bridge serve log (last 40 lines)"
  tail -n 40 "$work/server.log"
  echo "--- fake LIS log"
  cat "$work/lis.log"
fi
exit $status
