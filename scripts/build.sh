#!/usr/bin/env bash
# Configure and build hikyaku. Usage: scripts/build.sh [BUILD_DIR] [cmake args...]
# Default: build/ in RelWithDebInfo with g++ and -Werror. HIKYAKU_TARGETS="a b"
# builds only those targets (and what they need).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD"  # cache hits across checkouts (CI clones elsewhere)
dir=${1:-build}
shift || true
jobs=${HIKYAKU_JOBS:-$(nproc)}
cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
targets=()
for t in ${HIKYAKU_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$dir" -j "$jobs" "${targets[@]}"
