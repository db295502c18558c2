#!/usr/bin/env bash
# README command 2: install dependencies, build, and run the whole test suite,
# one stage after the other:
#   layering          every #include names an allowed component
#   unit              GoogleTest via CTest, -Wall -Wextra -Werror build
#   integration       pytest against the real binary and real peers on loopback
#   unit-asan         the unit tests under AddressSanitizer + UBSanitizer
#   integration-asan  the integration tests against the ASan/UBSan binary
#   unit-tsan         the unit tests under ThreadSanitizer
#   integration-tsan  forwarding, IMAP, gateway and reload tests under ThreadSanitizer
#   fuzz              every libFuzzer target for 30 s (skip: HIKYAKU_SKIP_FUZZ=1);
#                     built right after the plain build, run at the lowest CPU
#                     priority beside the ASan integration stage, whose tests
#                     mostly wait on sockets and disks (CI stays under 60 min)
# Results are read from JUnit XML (ctest --output-junit, pytest --junitxml) by
# scripts/suite_report.py, which prints a table per stage (passed / failed /
# skipped / duration) and ends with "N passed, N failed, N skipped" counting each
# distinct test once: a test that fails in any stage is failed. With CI=true a
# skip is a failure unless the test is on tests/skip-allowlist.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1

root=$PWD
results=$root/build-results
rm -rf "$results"
mkdir -p "$results"
manifest=$results/stages.tsv
: >"$manifest"
py=/usr/bin/python3
pytest_args=(-q -p no:cacheprovider -o junit_family=xunit1 -rfEs)
# The integration files the TSan stage runs (the code with threads: forwarding
# through the queue threads and the SMTP client, IMAP sessions with IDLE, the
# rules replaced by a reload while the queue threads read them).
tsan_tests=(tests/integration/test_forward.py tests/integration/test_imap.py tests/integration/test_gateway.py
            tests/integration/test_reload.py)

# Sanitizer runtimes: every finding fails the process that has it. ASan and
# LSan exit non-zero, UBSan aborts (-fno-sanitize-recover), TSan exits 66
# after reporting; the integration fixture also scans the server log.
asan_env=(ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
tsan_env=(TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:suppressions=$root/tests/tsan-suppressions.txt")

# stage NAME LABEL KIND RESULT_FILE COMMAND...: run, time and record one stage.
stage() {
  local name=$1 label=$2 kind=$3 result=$4
  shift 4
  echo "== $label"
  local start=$SECONDS
  "$@"
  local rc=$?
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$label" "$((SECONDS - start))" "$rc" "$kind" "$result" >>"$manifest"
  echo "== $label: exit status $rc, $((SECONDS - start)) s"
  return $rc
}

run_layering() {
  if $py scripts/check-includes.py; then
    printf 'layering: check-includes\tpassed\t\n' >"$results/layering.tsv"
  else
    printf 'layering: check-includes\tfailed\tscripts/check-includes.py found a forbidden #include\n' >"$results/layering.tsv"
  fi
}

run_ctest() {  # BUILD_DIR JUNIT [ENV...]
  local dir=$1 junit=$2
  shift 2
  (cd "$dir" && env "$@" ctest --output-on-failure -j2 --output-junit "$junit") >"$junit.log" 2>&1
  local rc=$?
  tail -5 "$junit.log"
  return $rc
}

run_pytest() {  # BINARY JUNIT [ENV...] -- [PYTEST ARGS...]
  local bin=$1 junit=$2
  shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  # Each stage keeps its server logs in a temporary tree of its own, with a
  # short path: the private Postfix's UNIX sockets live under it (108 bytes).
  local tmp
  tmp=$(mktemp -d /tmp/hikyaku-it.XXXXXX)
  echo "pytest temporary files (server logs): $tmp" >"$junit.log"
  env HIKYAKU_BIN="$bin" "${envs[@]}" $py -m pytest "${pytest_args[@]}" --junitxml="$junit" \
    --basetemp="$tmp" "$@" >>"$junit.log" 2>&1
  local rc=$?
  tail -15 "$junit.log"
  return $rc
}

run_fuzz() {
  HIKYAKU_FUZZ_RESULTS=$results/fuzz.tsv nice -n 19 bash scripts/fuzz.sh 30 >"$results/fuzz.log" 2>&1
  local rc=$?
  grep '^fuzz: ' "$results/fuzz.log"
  return $rc
}
fuzzing=0

stage layering "layering" plain "$results/layering.tsv" run_layering

if stage build "build" build - bash scripts/build.sh build; then
  if [ "${HIKYAKU_SKIP_FUZZ:-0}" != 1 ]; then
    stage build-fuzz "build fuzz targets (clang)" build - bash scripts/fuzz.sh --build-only && fuzzing=1
  fi
  stage unit "unit" ctest "$results/unit.xml" run_ctest build "$results/unit.xml"
  stage integration "integration" pytest "$results/integration.xml" \
    run_pytest "$root/build/src/app/hikyaku" "$results/integration.xml" -- tests/integration
fi

if stage build-asan "build ASan+UBSan" build - \
     bash scripts/build.sh build-asan -DHIKYAKU_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug; then
  stage unit-asan "unit ASan+UBSan" ctest "$results/unit-asan.xml" \
    run_ctest build-asan "$results/unit-asan.xml" "${asan_env[@]}"
  if [ $fuzzing = 1 ]; then
    stage fuzz "fuzz (30 s per target, beside the next stage)" plain "$results/fuzz.tsv" run_fuzz &
    fuzz_pid=$!
  fi
  stage integration-asan "integration ASan+UBSan" pytest "$results/integration-asan.xml" \
    run_pytest "$root/build-asan/src/app/hikyaku" "$results/integration-asan.xml" \
    "${asan_env[@]}" -- tests/integration
fi

if stage build-tsan "build TSan" build - \
     bash scripts/build.sh build-tsan -DHIKYAKU_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  stage unit-tsan "unit TSan" ctest "$results/unit-tsan.xml" \
    run_ctest build-tsan "$results/unit-tsan.xml" "${tsan_env[@]}"
  stage integration-tsan "integration TSan" pytest "$results/integration-tsan.xml" \
    run_pytest "$root/build-tsan/src/app/hikyaku" "$results/integration-tsan.xml" \
    "${tsan_env[@]}" -- "${tsan_tests[@]}"
fi

if [ $fuzzing = 1 ]; then
  if [ -n "${fuzz_pid:-}" ]; then
    wait "$fuzz_pid"
  else
    stage fuzz "fuzz (30 s per target)" plain "$results/fuzz.tsv" run_fuzz
  fi
fi

$py scripts/suite_report.py "$manifest" tests/skip-allowlist.txt
