#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and runs
# lab-bridge on the embedded SQLite default (./var/lab-bridge.db).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRIDGE_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target lab-bridge
exec build/lab-bridge serve "$@"
