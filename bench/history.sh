#!/usr/bin/env bash
# bench/history.sh — what hikyaku's delivery history (src/history) costs the relay, measured
# the way a 5 % effect can be seen on a noisy machine: one hikyaku server, started for each
# round with its history (DATA_DIR/history.sqlite on the disk) or without it, the rounds
# alternating (on, off, off, on, …) in one run, so that whatever slows the machine down
# during the run falls on both alike. Loopback only.
#
#   smtp-source (20 sessions, 5,000 × 4 KiB) → hikyaku (inbound checks, forward) → smtp-sink,
#   in the two DNS conditions of bench/forward.sh: cold (TTL 0) and warm (TTL 300).
#
#   bash bench/history.sh                    # RUNS=8
#   RUNS=12 MSGS=3000 bash bench/history.sh
#
# Environment:
#   HIKYAKU_BIN  hikyaku binary (default: the newer of build/ and build-bench/)
#   RUNS         pairs of rounds per DNS condition (8)    MSGS      messages per round (5000)
#   SESSIONS     smtp-source sessions (20)                SIZE      bytes per message (4096)
#   WARMUP       unmeasured messages after each start, before the round (200)
#   TIMEOUT      seconds one round may take (300)         MAX_TIME  whole script (1800)
#   AA           1: the "off" rounds keep the history too (an A/A run: what the method reads
#                where there is no difference, its own noise)
#   BENCH_TMPDIR parent of the temporary directory (/var/tmp); KEEP=1 keeps it
#
# The report: per condition, the median msg/s of each server, the median of the paired
# ratios (each round with history against the round without it next to it), and the
# history writer thread's share of the CPU of the server that has it. Method and figures:
# bench/FORWARD.md, "What the delivery history costs".
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-8}
MSGS=${MSGS:-5000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
WARMUP=${WARMUP:-200}
TIMEOUT=${TIMEOUT:-300}
MAX_TIME=${MAX_TIME:-1800}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
PY=/usr/bin/python3
TOOL=$ROOT/bench/forward_tool.py
HZ=$(getconf CLK_TCK)
SINK_IP=127.0.0.3    # sink.test MX → smtp-sink

BENCH=history.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for b in "$SMTP_SOURCE" "$SMTP_SINK" /usr/sbin/dnsmasq "$PY"; do
  [[ -x $b ]] || die "$b missing (apt-get install postfix dnsmasq python3; see /work/shared/PEERS.md)"
done
find_hikyaku_bin "build it (see bench/FORWARD.md)"

T=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/hikyaku-hist.XXXXXX")
RES=$T/results.jsonl
: > "$RES"

DNS_PID= SINK_PID= PY_PID= WATCHDOG= HK_PID=
cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  stop_pid "$PY_PID" 3
  stop_pid "$HK_PID" 10
  stop_pid "$SINK_PID" 3
  stop_pid "$DNS_PID" 5
  finish_run
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_watchdog

FAR_PORT=$(free_port); DNS_PORT=$(free_port)
log "tmp $T; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg); hikyaku $HIKYAKU_BIN (tree at $(tree_desc))"

# The sender domain's SPF and DMARC, sink.test's MX (bench/lib.sh); TTL 0 ("cold") or 300 ("warm").
start_dns 0

"$SMTP_SINK" -u nobody -c "$SINK_IP:$FAR_PORT" 256 >"$T/sink.counter" 2>"$T/sink.err" &
SINK_PID=$!
wait_port "$SINK_IP" "$FAR_PORT" "$SINK_PID" smtp-sink

# One server, one data directory, restarted for every round with its history or without
# it: two servers side by side have a spool directory each, and on this disk that alone
# moved one server's figure against the other's by up to 10 % from run to run, in either
# direction. Without: the database is moved aside and a directory put where it was, so
# the server runs without a history (it logs that it cannot open it).
D=$T/hikyaku; HK_PORT=$(free_port)
mkdir -p "$D/data"
{ hikyaku_config_head "$D" "$HK_PORT" "$DNS_PORT" "$FAR_PORT"; cat <<EOF

[[domain]]
name = "example.test"

[[address]]
address = "u@example.test"
deliver = ["forward:u@sink.test"]

[[forward]]
to = "u@sink.test"
hidden = false
EOF
} > "$D/hikyaku.toml"

start_server() {   # start_server on|off
  local f=$D/data/history.sqlite x
  if [[ $1 == on || ${AA:-0} == 1 ]]; then
    [[ -d $f ]] && rmdir "$f"
    for x in "" -wal -shm; do [[ -e $T/aside$x ]] && mv "$T/aside$x" "$f$x"; done
  else
    for x in "" -wal -shm; do [[ -f $f$x ]] && mv "$f$x" "$T/aside$x"; done
    mkdir -p "$f"
  fi
  "$HIKYAKU_BIN" serve --config "$D/hikyaku.toml" >>"$D/hikyaku.log" 2>&1 &
  HK_PID=$!
  wait_port 127.0.0.1 "$HK_PORT" "$HK_PID" "hikyaku (history $1)"
}

# Until the spool is empty again (the server unlinks after smtp-sink counted the last
# message), so that nothing of a round is left for the next.
drained() {
  local i
  for i in $(seq 300); do
    [[ -z $(find "$D/data/spool/queue" -type f -print -quit 2>/dev/null) ]] && return 0
    sleep 0.05
  done
  log "WARNING: the spool is not empty after 15 s"
}

relay() {   # relay N → forward_tool's JSON
  py relay --counter "$T/sink.counter" --n "$1" --timeout "$TIMEOUT" --source \
    "$SMTP_SOURCE" -4 -s "$SESSIONS" -m "$1" -l "$SIZE" -M source.test \
    -f sender@source.test -t u@example.test "127.0.0.1:$HK_PORT" || die "relay round failed"
}

round() {   # round on|off CONDITION: start, warm up (unmeasured), measure, stop
  local s=$1 t0 h0 out cpu hist
  start_server "$s"
  if (( WARMUP > 0 )); then relay "$WARMUP" >/dev/null; drained; fi
  t0=$(proc_ticks "$HK_PID"); h0=$(thread_ticks "$HK_PID" history)
  out=$(relay "$MSGS")
  drained
  sleep 1.5   # past the history writer's last batch (a second)
  cpu=$(awk -v a="$(proc_ticks "$HK_PID")" -v b="$t0" -v hz="$HZ" 'BEGIN{printf "%.2f", (a-b)/hz}')
  hist=$(awk -v a="$(thread_ticks "$HK_PID" history)" -v b="$h0" -v hz="$HZ" 'BEGIN{printf "%.2f", (a-b)/hz}')
  stop_pid "$HK_PID" 10; HK_PID=
  echo "{\"kind\": \"$2\", \"history\": \"$s\", \"cpu_s\": $cpu, \"history_cpu_s\": $hist, \"result\": $out}" >> "$RES"
  log "history $s $2: $(grep -o '"relay_per_s": [0-9.]*' <<< "$out" | cut -d' ' -f2) msg/s," \
    "CPU ${cpu}s (history writer ${hist}s)"
}

for cond in cold warm; do
  [[ $cond == warm ]] && start_dns 300
  for (( i = 1; i <= RUNS; i++ )); do
    if (( i % 2 )); then order=(on off); else order=(off on); fi
    for s in "${order[@]}"; do round "$s" "$cond"; done
  done
done

echo
echo "hikyaku with and without its delivery history — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs," \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "relay: $MSGS × $SIZE B, $SESSIONS smtp-source sessions, $RUNS pairs per condition (alternating);" \
     "$HIKYAKU_BIN, tree at $(tree_desc)"
"$PY" "$TOOL" history-report "$RES"
