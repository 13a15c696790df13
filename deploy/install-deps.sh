#!/usr/bin/env bash
# Installs the Debian 12 packages lab-bridge needs to build, run and test.
# Idempotent: packages already installed are skipped, and apt is not touched
# at all when nothing is missing. Run as root (or with sudo available).
set -euo pipefail

build_packages=(
  cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost1.81-dev rapidjson-dev libpqxx-dev libsqlite3-dev libssl-dev libabsl-dev
  libspdlog-dev libcli11-dev prometheus-cpp-dev libgoogle-perftools-dev
)
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev
  postgresql-15 python3-hl7 netcat-openbsd sqlite3 nodejs curl jq wrk
  chromium fonts-dejavu-core
)

want=("${build_packages[@]}")
if [[ "${1:-}" == "--with-tests" ]]; then
  want+=("${test_packages[@]}")
fi

missing=()
# The machine image's nodejs (nodesource) bundles npm and conflicts with
# Debian's npm package, so npm is only requested when no npm is on PATH.
if [[ "${1:-}" == "--with-tests" ]] && ! command -v npm >/dev/null; then
  want+=(npm)
fi
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
