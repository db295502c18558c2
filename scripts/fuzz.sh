#!/usr/bin/env bash
# Build every libFuzzer target with clang and run each for SECONDS (default
# 30) from its seeds: the committed corpus fuzz/corpus/<target>/ (inputs
# written for the project and inputs grown from them), the seeds scripts/fuzz-seeds.py makes at run time
# from ../shared/testdata (into build-fuzz/seeds/, never into the repository)
# and the dictionary fuzz/dict/<target>.dict. New inputs go to a scratch
# corpus, build-fuzz/fuzz-out/<target>/corpus, emptied at the start of each
# run. A crash, leak, timeout (-timeout=10 s per input) or out-of-memory is a
# finding: the run fails and prints the reproducer's path
# (build-fuzz/fuzz-out/<target>/crash-…; replay it with
# `build-fuzz/fuzz/fuzz_<target> FILE`).
#
# Usage: scripts/fuzz.sh [SECONDS]   fuzz every target (HIKYAKU_FUZZ_TARGETS="a b"
#                                    limits the run to targets a and b)
#        scripts/fuzz.sh --build-only    build the targets and the seeds, run nothing
#        With HIKYAKU_FUZZ_RESULTS=FILE, one line per target is written there
#        ("fuzz:TARGET<TAB>passed|failed<TAB>message", read by
#        scripts/suite_report.py).
#        scripts/fuzz.sh --update-corpus SECONDS
#                                    fuzz each target from the committed corpus
#                                    alone (no test-data seeds, so what is
#                                    committed stays the project's own) and
#                                    merge the finds into fuzz/corpus/<target>/
#                                    with -merge=1 (minimised: only inputs that
#                                    reach new code edges are added)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=fuzz
if [ "${1:-}" = "--update-corpus" ]; then mode=update; shift; fi
if [ "${1:-}" = "--build-only" ]; then mode=build; shift; fi
seconds=${1:-30}
export CCACHE_BASEDIR="$PWD"
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DHIKYAKU_FUZZ=ON -DHIKYAKU_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(cmake --build build-fuzz --target help | sed -n 's/^fuzz_\([a-z0-9_]*\):.*/\1/p' | sort -u)
if [ -n "${HIKYAKU_FUZZ_TARGETS:-}" ]; then targets=$HIKYAKU_FUZZ_TARGETS; fi
if [ -z "$targets" ]; then echo "fuzz: no targets"; exit 1; fi
# shellcheck disable=SC2046
cmake --build build-fuzz -j "${HIKYAKU_JOBS:-$(nproc)}" --target $(printf 'fuzz_%s ' $targets)

rm -rf build-fuzz/seeds
if [ "$mode" != update ]; then
  /usr/bin/python3 scripts/fuzz-seeds.py build-fuzz/seeds "${HIKYAKU_TESTDATA:-../shared/testdata}"
fi
if [ "$mode" = build ]; then exit 0; fi

# "#123 DONE cov: 45 ft: 67 corp: 8/9Kb ..." → "key value" of the line's field.
field() { sed -n "s/.* $1: *\([0-9]*\).*/\1/p" | tail -1; }

status=0
results=${HIKYAKU_FUZZ_RESULTS:-/dev/null}
: >"$results"
for t in $targets; do
  bin=build-fuzz/fuzz/fuzz_$t
  out=build-fuzz/fuzz-out/$t
  rm -rf "$out"
  mkdir -p "$out/corpus" "fuzz/corpus/$t"
  dict=()
  if [ -f "fuzz/dict/$t.dict" ]; then dict=(-dict="fuzz/dict/$t.dict"); fi
  seeds=(fuzz/corpus/"$t")
  if [ -d "build-fuzz/seeds/$t" ]; then seeds+=("build-fuzz/seeds/$t"); fi
  log=$out/fuzz.log
  if "$bin" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/" "$out/corpus" "${seeds[@]}" >"$log" 2>&1; then
    inited=$(grep -m1 'INITED' "$log" || true)
    done_line=$(grep 'DONE' "$log" | tail -1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $t: ${seconds}s, ${runs:-?} runs, cov $(echo "$inited" | field cov) -> $(echo "$done_line" | field cov)," \
      "ft $(echo "$done_line" | field ft), corpus $(echo "$done_line" | field corp) inputs" \
      "($(find "${seeds[@]}" -type f | wc -l) seeds), no findings"
    printf 'fuzz:fuzz_%s\tpassed\t\n' "$t" >>"$results"
  else
    status=1
    echo "fuzz: $t FOUND A PROBLEM:"
    grep -E 'ERROR: |SUMMARY: |Test unit written to|Running:' "$log" | head -20 || true
    tail -40 "$log"
    for f in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* "$out"/slow-unit-*; do
      if [ -e "$f" ]; then echo "fuzz: $t: reproducer: $f (replay: $bin $f)"; fi
    done
    printf 'fuzz:fuzz_%s\tfailed\tfinding, see %s\n' "$t" "$log" >>"$results"
    continue
  fi
  if [ "$mode" = update ]; then
    # Merge into the committed corpus: its files stay, a find is added only
    # when it reaches code edges the corpus does not (-use_counters=0: new
    # hit counts alone do not count, which keeps the corpus a few hundred
    # KB in all).
    before=$(find "fuzz/corpus/$t" -type f | wc -l)
    "$bin" -merge=1 -use_counters=0 "fuzz/corpus/$t" "$out/corpus" >"$out/merge.log" 2>&1
    echo "fuzz: $t: fuzz/corpus/$t: $before -> $(find "fuzz/corpus/$t" -type f | wc -l) inputs," \
      "$(cat fuzz/corpus/"$t"/* 2>/dev/null | wc -c) bytes"
  fi
done
exit $status
