#!/usr/bin/env bash
# API read speed (issue 6): wrk on loopback, 50 connections, a bearer token on
# every request, against apis_fixture_server over a database that holds
# 100,000 results for 1,000 patients (seeded on the first run, kept in
# WORK_DIR for the next ones). For each server binary given, in turn:
#
#   GET /api/lab-results?patient_id=100001   (the REST list, 100 results)
#   GET /fhir/Observation?patient=100001     (the FHIR search, 50 entries)
#
# with requests/s and p99 from wrk and the server's own CPU per request
# (user+system, and system alone, from /proc/PID/stat). Give several binaries
# (e.g. the build before a change and after it) to compare them in one run.
#
#   tests/bench/run_api_bench.sh [--postgres DSN] [--seconds N] [--rounds N] SERVER...
#
# SERVER is a built tests/interop/apis_fixture_server. WORK_DIR defaults to
# /tmp/lab-bridge-api-bench. With --postgres the data go to schema apibench of
# DSN (created if missing). docs/BENCHMARKS.md ("APIs over HTTP") records runs.
set -euo pipefail
dsn=""
seconds=8
rounds=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --postgres) dsn=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--postgres DSN] [--seconds N] [--rounds N] SERVER..."; exit 2; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
work=${WORK_DIR:-/tmp/lab-bridge-api-bench}
mkdir -p "$work"

if [[ -n $dsn ]]; then
  psql -X -q "$dsn" -c "SET client_min_messages = warning; CREATE SCHEMA IF NOT EXISTS apibench" >/dev/null
  sep='?'; [[ $dsn == *\?* ]] && sep='&'
  export DATABASE_URL="${dsn}${sep}options=-csearch_path%3Dapibench"
  seeded=$(psql -X -At "$dsn" -c "SELECT to_regclass('apibench.lab_results') IS NOT NULL")
  [[ $seeded == t ]] && seeded=$(psql -X -At "$dsn" -c "SELECT count(*) >= 100000 FROM apibench.lab_results")
  tag=pg
else
  export DATABASE_URL="sqlite://$work/lb.db"
  seeded=f; [[ -s $work/lb.db ]] && seeded=t
  tag=sqlite
fi
export API_TOKENS_FILE=$work/tokens-$tag.json ACCESS_AUDIT_FILE=$work/access.jsonl

pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -f "$work/access.jsonl"; }
trap cleanup EXIT

start() {  # start SERVER [seed]: waits for its port
  rm -f "$work/port"
  if [[ ${2:-} == seed ]]; then
    "$1" --port-file "$work/port" --token-file "$work/token-$tag" --patients 1000 --results 100000 \
      >"$work/server.log" 2>&1 &
  else
    "$1" --port-file "$work/port" --token-file "$work/token-$tag" >"$work/server.log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 900); do [[ -s $work/port ]] && return; sleep 0.2; done
  echo "server did not start: $(tail -3 "$work/server.log")"; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; rm -f "$work/access.jsonl"; }
cpu_ticks() { awk '{print $14 + $15, $15}' "/proc/$pid/stat"; }

if [[ $seeded != t ]]; then
  echo "seeding 100,000 results for 1,000 patients ($tag)..."
  rm -f "$API_TOKENS_FILE"
  start "$1" seed
  stop
fi

# A kept database whose admin token was lost: mint a new one on the next start.
[[ -s $work/token-$tag ]] || rm -f "$API_TOKENS_FILE"
ticks_per_s=$(getconf CLK_TCK)
for ((round = 1; round <= rounds; round++)); do
  for server in "$@"; do
    start "$server"
    port=$(cat "$work/port") token=$(cat "$work/token-$tag")
    for path in "api/lab-results?patient_id=100001" "fhir/Observation?patient=100001"; do
      read -r all0 sys0 < <(cpu_ticks)
      out=$(wrk -t2 -c50 -d"${seconds}s" --latency -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$port/$path")
      read -r all1 sys1 < <(cpu_ticks)
      n=$(awk '/requests in/{print $1}' <<<"$out")
      rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
      p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
      non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out")
      printf '%s round %d %-8s %9s req/s  p99 %8s  server CPU %4d us/req (system %3d)%s  %s\n' \
        "$tag" "$round" "$(basename "$server")" "$rps" "$p99" \
        $(((all1 - all0) * 1000000 / ticks_per_s / n)) $(((sys1 - sys0) * 1000000 / ticks_per_s / n)) \
        "${non2xx:+  NON-2XX $non2xx}" "/$path"
    done
    stop
  done
done
