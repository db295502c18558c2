#!/usr/bin/env bash
# README command 2: install dependencies, build, and run the whole test suite:
#   layering          every #include names an allowed component
#   unit              GoogleTest via CTest, -Wall -Wextra -Werror build
#   integration       pytest against the real binary and real peers on loopback
#   unit-asan         the unit tests under AddressSanitizer + UBSanitizer
#   integration-asan  the integration tests against the ASan/UBSan binary
#   unit-tsan         the unit tests of the components that run threads or Asio,
#                     under ThreadSanitizer
#   integration-tsan  forwarding, IMAP, gateway and reload tests under ThreadSanitizer
#   fuzz              every libFuzzer target for 30 s (skip: HIKYAKU_SKIP_FUZZ=1)
# How it fits in CI's 90 minutes on 2 cores (a clean machine, no compiler
# cache): the plain build runs first, on both cores; the fuzz, ASan and TSan
# builds then run one after the other in the background at the lowest CPU and
# I/O priority while the test stages run in the foreground, and each test
# stage waits only for the build it needs. The integration stages run their
# tests in 4 pytest-xdist processes (they mostly wait on sockets and disks;
# conftest.free_port gives each process its own ports). The fuzz run goes
# beside the ASan integration stage at nice 19. Each GoogleTest executable is
# one process (not one per test case); its own XML report gives the verdict
# of every case.
# Results are read from JUnit XML (ctest --output-junit, pytest --junitxml)
# and GoogleTest's XML by scripts/suite_report.py, which prints a table per
# stage (passed / failed / skipped / duration) and ends with "N passed, N
# failed, N skipped" counting each distinct test once: a test that fails in
# any stage is failed. With CI=true a skip is a failure unless the test is on
# tests/skip-allowlist.txt.
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
pytest_args=(-q -p no:cacheprovider -o junit_family=xunit1 -rfEs -n 4)
# The integration files the TSan stage runs (the code with threads: forwarding
# through the queue threads and the SMTP client, IMAP sessions with IDLE, the
# rules replaced by a reload while the queue threads read them).
tsan_tests=(tests/integration/test_forward.py tests/integration/test_imap.py tests/integration/test_gateway.py
            tests/integration/test_reload.py)
# The unit tests the TSan stage builds and runs: the components whose code
# (or whose tests) use threads, atomics or Asio. The others (parsers,
# DKIM/SPF/ARC, policy, configuration) run on one thread, where TSan has
# nothing to find; they run plain and under ASan/UBSan.
tsan_units=(admin base delivery dns dns_asio history imap login mailbox metrics net pop3 queue sasl smtp tls)

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

run_ctest() {  # BUILD_DIR RESULT_DIR [ENV...] [-- CTEST ARGS...]: each test executable once, two at a time
  local dir=$1 out=$2
  shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  mkdir -p "$out"
  (cd "$dir" && env GTEST_OUTPUT="xml:$out/" "${envs[@]}" ctest --output-on-failure -j2 \
     --output-junit "$out/ctest.xml" "$@") >"$out.log" 2>&1
  local rc=$?
  tail -5 "$out.log"
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
  # Kept when the stage fails (the logs are what to read), removed otherwise.
  local tmp
  tmp=$(mktemp -d /tmp/hikyaku-it.XXXXXX)
  echo "pytest temporary files (server logs): $tmp" >"$junit.log"
  # Files a test keeps for people to look at (the status page's screenshot).
  env HIKYAKU_BIN="$bin" HIKYAKU_ARTIFACTS="${junit%.xml}-artifacts" "${envs[@]}" $py -m pytest "${pytest_args[@]}" --junitxml="$junit" \
    --basetemp="$tmp" "$@" >>"$junit.log" 2>&1
  local rc=$?
  tail -15 "$junit.log"
  if [ $rc = 0 ]; then
    rm -rf "$tmp"
    echo "(passed: $tmp removed)" >>"$junit.log"
  fi
  return $rc
}

# Background builds: each records its exit status in $results/<name>.rc,
# which the stage that needs it waits for; its output goes to <name>.log.
background_build() {  # NAME LABEL COMMAND...
  local name=$1 label=$2
  shift 2
  stage "$name" "$label (background)" build - nice -n 19 ionice -c 3 "$@" >"$results/$name.log" 2>&1
  local rc=$?
  echo "== $label (background): exit status $rc"
  if [ $rc != 0 ]; then tail -30 "$results/$name.log"; fi
  echo $rc >"$results/$name.rc"
  return $rc
}
built() {  # NAME: wait for a background build; true if it succeeded (not if skipped)
  while [ ! -s "$results/$1.rc" ]; do sleep 2; done
  [ "$(cat "$results/$1.rc")" = 0 ]
}

run_fuzz() {
  HIKYAKU_FUZZ_RESULTS=$results/fuzz.tsv nice -n 19 bash scripts/fuzz.sh 30 >"$results/fuzz.log" 2>&1
  local rc=$?
  grep '^fuzz: ' "$results/fuzz.log"
  return $rc
}
stage layering "layering" plain "$results/layering.tsv" run_layering

if ! stage build "build" build - bash scripts/build.sh build; then
  HIKYAKU_SUITE_SECONDS=$SECONDS $py scripts/suite_report.py "$manifest" tests/skip-allowlist.txt
  exit 1
fi

tsan_targets="hikyaku $(printf '%s_test ' "${tsan_units[@]}")"
(
  if [ "${HIKYAKU_SKIP_FUZZ:-0}" != 1 ]; then
    background_build build-fuzz "build fuzz targets (clang)" bash scripts/fuzz.sh --build-only
  else
    echo skipped >"$results/build-fuzz.rc"  # `built build-fuzz` is then false
  fi
  background_build build-asan "build ASan+UBSan" \
    bash scripts/build.sh build-asan -DHIKYAKU_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  background_build build-tsan "build TSan" env HIKYAKU_TARGETS="$tsan_targets" \
    bash scripts/build.sh build-tsan -DHIKYAKU_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
) &
builds_pid=$!

stage unit "unit" gtest "$results/unit" run_ctest build "$results/unit"
stage integration "integration" pytest "$results/integration.xml" \
  run_pytest "$root/build/src/app/hikyaku" "$results/integration.xml" -- tests/integration

fuzz_pid=""
if built build-asan; then
  stage unit-asan "unit ASan+UBSan" gtest "$results/unit-asan" \
    run_ctest build-asan "$results/unit-asan" "${asan_env[@]}"
  if built build-fuzz; then
    stage fuzz "fuzz (30 s per target, beside the next stage)" plain "$results/fuzz.tsv" run_fuzz &
    fuzz_pid=$!
  fi
  stage integration-asan "integration ASan+UBSan" pytest "$results/integration-asan.xml" \
    run_pytest "$root/build-asan/src/app/hikyaku" "$results/integration-asan.xml" \
    "${asan_env[@]}" -- tests/integration
fi

if built build-tsan; then
  stage unit-tsan "unit TSan" gtest "$results/unit-tsan" \
    run_ctest build-tsan "$results/unit-tsan" "${tsan_env[@]}" -- \
    -R "^($(IFS='|'; echo "${tsan_units[*]}"))_test\$"
  stage integration-tsan "integration TSan" pytest "$results/integration-tsan.xml" \
    run_pytest "$root/build-tsan/src/app/hikyaku" "$results/integration-tsan.xml" \
    "${tsan_env[@]}" -- "${tsan_tests[@]}"
fi

wait "$builds_pid"
if [ -n "$fuzz_pid" ]; then
  wait "$fuzz_pid"
elif built build-fuzz; then
  stage fuzz "fuzz (30 s per target)" plain "$results/fuzz.tsv" run_fuzz
fi

HIKYAKU_SUITE_SECONDS=$SECONDS $py scripts/suite_report.py "$manifest" tests/skip-allowlist.txt
