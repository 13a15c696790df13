#!/usr/bin/env bash
# Order dispatch speed (issue 7) on both backends in one run:
# tests/bench/order_dispatch_bench.py against `lab-bridge serve` on SQLite
# and on a throwaway PostgreSQL (fsync and synchronous_commit on).
#
#   tests/bench/run_order_bench.sh [BUILD_DIR] [DRAIN_ORDERS] [RATE] [SECONDS]
#
# docs/BENCHMARKS.md ("Order dispatch") records a run.
set -euo pipefail
build=$(readlink -f "${1:-build}")
orders=${2:-2000}
rate=${3:-100}
seconds=${4:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
[[ -x $build/lab-bridge ]] || { echo "build lab-bridge in $build first"; exit 2; }
source "$root/tests/support/pg_throwaway.sh"
trap pg_stop EXIT
pg_start >/dev/null
for backend in sqlite postgres; do
  /usr/bin/python3 "$root/tests/bench/order_dispatch_bench.py" "$build/lab-bridge" "$backend" \
    --orders "$orders" --rate "$rate" --seconds "$seconds" | grep -v '^PASS$'
done
