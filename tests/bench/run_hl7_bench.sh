#!/usr/bin/env bash
# Codec speed against python-hl7 on identical bytes, one core each.
#   tests/bench/run_hl7_bench.sh [BUILD_DIR]
# Prints both results and the ratio; docs/BENCHMARKS.md records a run.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$(mktemp /tmp/lab-bridge-bench-XXXXXX.txt)
trap 'rm -f "$corpus"' EXIT
"$build/tests/bench/hl7_bench" --write-corpus "$corpus"
echo "corpus: $(wc -l <"$corpus") messages, $(stat -c %s "$corpus") bytes"
taskset -c 0 "$build/tests/bench/hl7_bench" --benchmark_min_time=2 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true | tee /tmp/lab-bridge-hl7-bench.txt
py=$(taskset -c 0 /usr/bin/python3 "$root/tests/bench/python_hl7_parse.py" "$corpus" 5)
echo "$py"
rate() { awk -v n="$1" '$1 == n { for (i = 1; i <= NF; ++i) if ($i ~ /^items_per_second=/) { v = $i; sub("items_per_second=", "", v); m = 1; if (v ~ /k\/s$/) m = 1000; if (v ~ /M\/s$/) m = 1000000; sub(/[kM]?\/s$/, "", v); print v * m } }' /tmp/lab-bridge-hl7-bench.txt; }
py_parse=$(sed -nE 's/^python-hl7 parse: ([0-9]+) messages.*/\1/p' <<<"$py")
py_read=$(sed -nE 's/^python-hl7 parse\+read: ([0-9]+) messages.*/\1/p' <<<"$py")
awk -v a="$(rate BM_ParseFull_median)" -v b="$py_parse" \
  'BEGIN { printf "full parse: lab-bridge %.0f messages/s, python-hl7 %.0f/s: %.0fx\n", a, b, a / b }'
awk -v a="$(rate BM_ParseAndReadEveryValue_median)" -v b="$py_read" \
  'BEGIN { printf "parse + read every value: lab-bridge %.0f messages/s, python-hl7 %.0f/s: %.0fx\n", a, b, a / b }'
