#!/usr/bin/env bash
# Build every libFuzzer target with clang and run each for SECONDS (default 30).
# Usage: scripts/fuzz.sh [SECONDS]
# With HIKYAKU_FUZZ_RESULTS=FILE, one line per target is written there
# ("fuzz:TARGET<TAB>passed|failed<TAB>message", read by scripts/suite_report.py).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
export CCACHE_BASEDIR="$PWD"
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DHIKYAKU_FUZZ=ON -DHIKYAKU_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(cmake --build build-fuzz --target help | sed -n 's/^\(fuzz_[a-z0-9_]*\):.*/\1/p' | sort -u)
if [ -z "$targets" ]; then echo "fuzz: no targets"; exit 1; fi
cmake --build build-fuzz -j "${HIKYAKU_JOBS:-$(nproc)}" --target $targets
status=0
results=${HIKYAKU_FUZZ_RESULTS:-/dev/null}
: >"$results"
for t in $targets; do
  corpus=build-fuzz/corpus-$t
  mkdir -p "$corpus"
  if build-fuzz/fuzz/$t -max_total_time="$seconds" -print_final_stats=0 "$corpus" >build-fuzz/$t.log 2>&1; then
    echo "fuzz: $t ran ${seconds}s, no findings ($(grep -c '' build-fuzz/$t.log) log lines)"
    printf 'fuzz:%s\tpassed\t\n' "$t" >>"$results"
  else
    echo "fuzz: $t FOUND A PROBLEM:"; tail -40 build-fuzz/$t.log; status=1
    printf 'fuzz:%s\tfailed\tfinding, see build-fuzz/%s.log\n' "$t" "$t" >>"$results"
  fi
done
exit $status
