#!/usr/bin/env bash
# README command 2: install dependencies, build, and run the whole test suite:
#   1. unit tests (GoogleTest via CTest), -Wall -Wextra -Werror build;
#   2. integration tests (pytest) against the real binary and real peers on
#      loopback (smtplib, poplib, swaks, fetchmail, mutt, dkimpy, ...);
#   3. unit tests again under AddressSanitizer + UBSanitizer;
#   4. every libFuzzer target for 30 s (skip with HIKYAKU_SKIP_FUZZ=1).
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1

passed=0
failed=0
count_ctest() {  # parse "X% tests passed, F tests failed out of T"
  local log=$1 line total fails
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$log" | tail -1)
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  fails=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  passed=$((passed + total - fails)); failed=$((failed + fails))
}

echo "== layering: every #include names an allowed component"
if /usr/bin/python3 scripts/check-includes.py; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "== build (g++, -Werror)"
bash scripts/build.sh build || { echo "0 passed, 1 failed"; exit 1; }

echo "== unit tests"
(cd build && ctest --output-on-failure -j2) 2>&1 | tee build/ctest.log | tail -15
count_ctest build/ctest.log

echo "== integration tests"
HIKYAKU_BIN=$PWD/build/src/app/hikyaku /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/integration 2>&1 | tee build/pytest.log | tail -25
line=$(grep -E '^[=]* ?[0-9]+ (passed|failed)' build/pytest.log | tail -1)
p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || true)
f=0
for n in $(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | grep -oE '^[0-9]+'); do f=$((f + n)); done
if [ -z "$line" ]; then failed=$((failed + 1)); fi
passed=$((passed + ${p:-0})); failed=$((failed + f))

echo "== unit tests under AddressSanitizer + UBSanitizer"
if bash scripts/build.sh build-asan -DHIKYAKU_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug; then
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j2) 2>&1 | tee build-asan/ctest.log | tail -15
  count_ctest build-asan/ctest.log
else
  failed=$((failed + 1))
fi

if [ "${HIKYAKU_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz targets (30 s each)"
  if bash scripts/fuzz.sh 30; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
