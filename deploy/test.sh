#!/usr/bin/env bash
# The README's test command: installs what is missing (Debian packages, npm
# test peers), builds everything, starts a throwaway PostgreSQL, runs the
# fuzzers for a bounded time, then every test with ctest. Exit 0 only if all
# of it passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

jobs=$(nproc)
fuzz_seconds=${BRIDGE_FUZZ_SECONDS:-60}

deploy/install-deps.sh --with-tests

if [[ -f tests/package.json ]]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

# libFuzzer targets: their own clang build with ASan + UBSan.
cmake -S . -B build/fuzz -G Ninja -DBRIDGE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/fuzz -j "$jobs"
tests/fuzz/run_fuzzers.sh build/fuzz "$fuzz_seconds"

source tests/support/pg_throwaway.sh
trap pg_stop EXIT
pg_start
# PostgreSQL is up and every peer was installed above: a test that would
# skip without them must fail instead.
export BRIDGE_REQUIRE_PG=1 BRIDGE_REQUIRE_PEERS=1

ctest --test-dir build --output-on-failure -j "$jobs" --timeout 900
