#!/bin/sh
# DNS benchmark: CPU per uncached lookup and lookups/s, old synchronous path
# (ub_resolve per lookup) against the asynchronous one (ub_resolve_async,
# many questions in flight, a poll() loop on ub_fd). bench/dns_bench.cpp
# does the lookups; this script builds it, starts a dnsmasq on a free
# 127.0.0.1 port that answers every name under bench.test (A 127.0.0.1,
# TTL 0, plus one TXT), runs each mode RUNS times (alternating) and prints
# each run and the medians.
# Usage: bench/dns.sh [BUILD_DIR]   (default build; needs hikyaku_dns built)
# Knobs: LOOKUPS (20000), OUTSTANDING (200), RUNS (3), MODES ("sync async async-cache").
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
LOOKUPS=${LOOKUPS:-20000}
OUTSTANDING=${OUTSTANDING:-200}
RUNS=${RUNS:-3}
MODES=${MODES:-"sync async async-cache"}
OUT=$(mktemp -d)
DNSMASQ_PID=
cleanup() {
  if [ -n "$DNSMASQ_PID" ]; then kill "$DNSMASQ_PID" 2>/dev/null || true; wait "$DNSMASQ_PID" 2>/dev/null || true; fi
  rm -rf "$OUT"
}
trap cleanup EXIT INT TERM
for lib in dns config mail base; do
  [ -f "$B/src/$lib/libhikyaku_$lib.a" ] || { echo "missing $B/src/$lib/libhikyaku_$lib.a: run scripts/build.sh" >&2; exit 1; }
done
g++ -std=c++20 -O2 -I"$ROOT/src" "$ROOT/bench/dns_bench.cpp" -o "$OUT/dns_bench" \
  "$B/src/dns/libhikyaku_dns.a" "$B/src/config/libhikyaku_config.a" "$B/src/mail/libhikyaku_mail.a" \
  "$B/src/base/libhikyaku_base.a" $(pkg-config --libs libunbound) -lspdlog -lfmt -lpthread

# A port free on 127.0.0.1 (UDP and TCP) a moment ago.
PORT=$(/usr/bin/python3 -c '
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
t = socket.socket(); t.bind(("127.0.0.1", p)); print(p)')
# --keep-in-foreground, not --no-daemon (PEERS.md); --local-ttl=0: libunbound
# keeps nothing, and every name is distinct anyway.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null --port="$PORT" \
  --listen-address=127.0.0.1 --bind-interfaces --local-ttl=0 --log-facility=/dev/null \
  --address=/bench.test/127.0.0.1 --txt-record=txt.bench.test,"v=spf1 -all" &
DNSMASQ_PID=$!
"$OUT/dns_bench" "$PORT" probe || { echo "dnsmasq on port $PORT did not answer" >&2; exit 1; }

echo "machine: $(nproc) cores, $(dnsmasq --version | head -1), libunbound $(pkg-config --modversion libunbound)"
echo "lookups per run: $LOOKUPS, outstanding (async): $OUTSTANDING, runs: $RUNS"
run=0
while [ "$run" -lt "$RUNS" ]; do
  run=$((run + 1))
  for mode in $MODES; do
    "$OUT/dns_bench" "$PORT" "$mode" "$LOOKUPS" "$OUTSTANDING" "run$run$mode" | tee -a "$OUT/results"
  done
done
echo "medians of $RUNS runs:"
printf '%-12s %18s %14s\n' mode cpu_us/lookup lookups/s
for mode in $MODES; do
  cpu=$(awk -v m="$mode" '$1==m { sub("cpu_us_per_lookup=", "", $6); print $6 }' "$OUT/results" | sort -n | awk '{ v[NR]=$1 } END { print v[int((NR+1)/2)] }')
  rate=$(awk -v m="$mode" '$1==m { sub("lookups_per_s=", "", $7); print $7 }' "$OUT/results" | sort -n | awk '{ v[NR]=$1 } END { print v[int((NR+1)/2)] }')
  printf '%-12s %18s %14s\n' "$mode" "$cpu" "$rate"
done
