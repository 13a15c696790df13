#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/tests/fuzz for SECONDS in total,
# seeded from the repository's fixtures. Fails on any crash, leak, sanitizer
# report or hang (a single input running over 10 s).
set -euo pipefail
build_dir=$1
seconds=${2:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
fuzzers=("$build_dir"/tests/fuzz/*_fuzz)
per_target=$((seconds / ${#fuzzers[@]}))
((per_target < 10)) && per_target=10
work=$(mktemp -d /tmp/lab-bridge-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
for fuzzer in "${fuzzers[@]}"; do
  name=$(basename "$fuzzer")
  mkdir -p "$work/$name"
  find "$root/tests/fixtures" "$root/tests/golden" -type f \( -name '*.hl7' -o -name '*.json' \) \
    -exec cp {} "$work/$name/" \; 2>/dev/null || true
  echo "fuzz: $name for ${per_target}s"
  if ! "$fuzzer" "$work/$name" -max_total_time="$per_target" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" >"$work/$name.log" 2>&1; then
    tail -n 60 "$work/$name.log"
    echo "fuzz: $name FAILED; the input that failed is kept in $work"
    trap - EXIT
    exit 1
  fi
  grep -E '^stat::number_of_executed_units' "$work/$name.log" | sed "s/^/fuzz: $name /"
done
