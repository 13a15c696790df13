#!/usr/bin/env bash
# MLLP ingest speed, end to end, in one run: tests/bench/mllp_load (20
# connections, each sending its next synthetic ORU^R01 when the previous ACK
# arrived) against
#   - python-hl7's asyncio MLLP server (parses and ACKs, stores nothing),
#   - lab-bridge serve on SQLite (WAL, synchronous=FULL),
#   - lab-bridge serve on PostgreSQL (a throwaway cluster, fsync and
#     synchronous_commit on),
#   - lab-bridge serve on SQLite over TLS,
# every lab-bridge ACK sent only after the message is committed.
#
#   tests/bench/run_mllp_bench.sh [BUILD_DIR] [MESSAGES] [CONNECTIONS]
#
# Prints one line per target (msg/s, ACK latency p50/p99) and the ratios to
# python-hl7; docs/BENCHMARKS.md ("MLLP ingest") records a run.
set -euo pipefail
build=$(readlink -f "${1:-build}")
messages=${2:-20000}
connections=${3:-20}
root=$(cd "$(dirname "$0")/../.." && pwd)
lab_bridge=$build/lab-bridge
load=$build/tests/bench/mllp_load
[[ -x $lab_bridge && -x $load ]] || { echo "build lab-bridge and mllp_load in $build first"; exit 2; }

work=$(mktemp -d /tmp/lab-bridge-mllp-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pg_stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source "$root/tests/support/pg_throwaway.sh"

wait_port() {  # FILE PID
  for _ in $(seq 1 300); do
    [[ -s $1 ]] && { sed -n 's/^mllp=//p' "$1"; return 0; }
    kill -0 "$2" 2>/dev/null || { echo "server exited" >&2; return 1; }
    sleep 0.1
  done
  return 1
}

cpu_ticks() {  # PID: user + system clock ticks so far
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# ARGS: NAME PORT SERVER_PID MESSAGES [mllp_load options...]
measure() {
  local name=$1 port=$2 server=$3 count=$4
  shift 4
  # Warm-up (connections, caches, the first WAL segments), then the run.
  "$load" --port "$port" --connections "$connections" --messages 500 --prefix "WARM-$name-" \
    "$@" >/dev/null
  local before after
  before=$(cpu_ticks "$server")
  "$load" --port "$port" --connections "$connections" --messages "$count" --prefix "RUN-$name-" \
    --json "$work/$name.json" "$@" | sed "s/^mllp_load:/$name:/"
  after=$(cpu_ticks "$server")
  # The server's own CPU per message (not its database's): what a free core
  # would allow, whatever else runs on the machine.
  awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$count" \
    'BEGIN { printf "%s\n", t * 1000 / hz / n }' >"$work/$name.cpu"
}

# Sets $port. Not run in $(...): the server would hold the substitution open.
start_lab_bridge() {  # NAME DATABASE_URL [VAR=VALUE...]
  local name=$1 url=$2
  shift 2
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env DATABASE_URL="$url" MLLP_LISTEN_HOST=127.0.0.1 MLLP_LISTEN_PORT=0 \
    HTTP_LISTEN_HOST=127.0.0.1 HTTP_LISTEN_PORT=0 GRPC_LISTEN_PORT=0 LOG_LEVEL=warning "$@" \
    "$lab_bridge" serve --port-file "$work/$name/ports" >"$work/$name/log" 2>&1 </dev/null) &
  pids+=($!)
  port=$(wait_port "$work/$name/ports" "${pids[-1]}")
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); commit $(git -C "$root" rev-parse --short HEAD)"
echo "$connections connections; lab-bridge $messages messages per target, python-hl7 $((messages / 4))"

/usr/bin/python3 "$root/tests/bench/python_hl7_ack_server.py" "$work/python.ports" 3600 \
  >"$work/python.log" 2>&1 </dev/null &
pids+=($!)
port=$(wait_port "$work/python.ports" "${pids[-1]}")
measure python-hl7 "$port" "${pids[-1]}" $((messages / 4))

start_lab_bridge sqlite "sqlite://$work/sqlite/lab-bridge.db"
measure lab-bridge-sqlite "$port" "${pids[-1]}" "$messages"

pg_start >/dev/null </dev/null
start_lab_bridge postgres "$BRIDGE_TEST_PG_DSN"
measure lab-bridge-postgres "$port" "${pids[-1]}" "$messages"

mkdir -p "$work/pki"
(cd "$work/pki" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -out ca.crt -days 2 -subj /CN=bench-ca 2>/dev/null &&
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
    -out server.csr -subj /CN=localhost 2>/dev/null &&
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext &&
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
    -days 2 -extfile ext 2>/dev/null)
start_lab_bridge sqlite-tls "sqlite://$work/sqlite-tls/lab-bridge.db" \
  MLLP_TLS_CERT="$work/pki/server.crt" MLLP_TLS_KEY="$work/pki/server.key"
measure lab-bridge-sqlite-tls "$port" "${pids[-1]}" "$messages" --tls --ca "$work/pki/ca.crt" --server-name localhost

/usr/bin/python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
names = ("python-hl7", "lab-bridge-sqlite", "lab-bridge-postgres", "lab-bridge-sqlite-tls")
r = {n: json.load(open(f"{work}/{n}.json")) for n in names}
cpu = {n: float(open(f"{work}/{n}.cpu").read()) for n in names}
base = r["python-hl7"]["msg_per_s"]
print("\n| target | msg/s | x python-hl7 | ACK p50 ms | ACK p99 ms | server CPU ms/msg | stored |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
for name, v in r.items():
    stored = "nothing" if name == "python-hl7" else "every message, committed before its ACK"
    print(f"| {name} | {v['msg_per_s']:.0f} | {v['msg_per_s'] / base:.2f} | {v['p50_ms']:.2f} | "
          f"{v['p99_ms']:.2f} | {cpu[name]:.3f} | {stored} |")
EOF
