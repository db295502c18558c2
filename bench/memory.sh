#!/usr/bin/env bash
# bench/memory.sh — how much memory hikyaku needs for large messages, loopback only.
#   1. 20 clients at once, each sending one 10 MiB message (to a local mailbox and a forward)
#   2. one 40 MiB message
# For each: the server's peak RSS (VmHWM) above its idle RSS before the messages. The
# issue's goal: at most 64 MiB above idle in both cases (the server would then hold a
# message in constant memory past a threshold, as Postfix's smtpd streams into its queue
# file). Each case runs RUNS times on a fresh server; medians are printed.
#
#   bash bench/memory.sh          # RUNS=3
#   HIKYAKU_BIN=... RUNS=5 bash bench/memory.sh
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
PY=/usr/bin/python3
HIKYAKU_BIN=${HIKYAKU_BIN:-$ROOT/build/src/app/hikyaku}
[[ -x $HIKYAKU_BIN ]] || { echo "memory.sh: $HIKYAKU_BIN missing (bash scripts/build.sh)" >&2; exit 1; }
T=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/hikyaku-memory.XXXXXX")
HK_PID= FAR_PID= DNS_PID=
cleanup() {
  [[ -n $HK_PID ]] && kill "$HK_PID" 2>/dev/null && wait "$HK_PID" 2>/dev/null || true
  [[ -n $FAR_PID ]] && kill "$FAR_PID" 2>/dev/null && wait "$FAR_PID" 2>/dev/null || true
  [[ -n $DNS_PID ]] && kill "$DNS_PID" 2>/dev/null && wait "$DNS_PID" 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$T"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
FAR_PORT=$(free_port)
# The far side: a sink that accepts everything (smtp-sink, from Postfix's package).
/usr/sbin/smtp-sink -u nobody 127.0.0.2:"$FAR_PORT" 256 >/dev/null 2>&1 &
FAR_PID=$!
DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --no-resolv --no-hosts --port="$DNS_PORT" --listen-address=127.0.0.1 \
  --bind-interfaces --conf-file=/dev/null --pid-file --local=/test/ --local-ttl=300 \
  --mx-host=far.test,mx.far.test,10 --host-record=mx.far.test,127.0.0.2 >/dev/null 2>&1 &
DNS_PID=$!

run_case() {  # run_case LABEL CLIENTS MIB → prints "LABEL idle_kb hwm_kb"
  local label=$1 clients=$2 mib=$3 d=$T/run port
  rm -rf "$d"; mkdir -p "$d"
  port=$(free_port)
  cat > "$d/hikyaku.toml" <<CONF
hostname = "mx.bench.test"
data_dir = "$d/data"
log_level = "warn"
[listen]
smtp = ["127.0.0.1:$port"]
[limits]
message_size = "60M"
connections_per_ip = 100
[dns]
servers = ["127.0.0.1:$DNS_PORT"]
[delivery]
smtp_port = $FAR_PORT
[[domain]]
name = "bench.test"
[[mailbox]]
name = "me"
[[address]]
address = "me@bench.test"
deliver = ["mailbox:me", "forward:me@far.test"]
[[forward]]
to = "me@far.test"
hidden = false
CONF
  "$HIKYAKU_BIN" serve --config "$d/hikyaku.toml" >"$d/log" 2>&1 &
  HK_PID=$!
  for _ in $(seq 200); do "$PY" -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && break; sleep 0.05; done
  local idle
  idle=$(awk '/^VmRSS/{print $2}' "/proc/$HK_PID/status")
  "$PY" - "$port" "$clients" "$mib" <<'PYEOF'
import smtplib, sys, threading
port, clients, mib = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
line = b"x" * 998 + b"\r\n"
body = line * (mib * 1024 * 1024 // len(line))
msg = b"From: a@source.test\r\nTo: me@bench.test\r\nSubject: big\r\n\r\n" + body
errors = []
def send():
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=300) as s:
            s.sendmail("a@source.test", ["me@bench.test"], msg)
    except Exception as e:
        errors.append(e)
ts = [threading.Thread(target=send) for _ in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
if errors:
    print("errors:", errors[:3], file=sys.stderr); sys.exit(1)
PYEOF
  # Both copies delivered (the Maildir and the far side) before reading the peak.
  for _ in $(seq 600); do [[ -z $(ls -A "$d/data/spool/queue" 2>/dev/null) ]] && break; sleep 0.1; done
  local hwm
  hwm=$(awk '/^VmHWM/{print $2}' "/proc/$HK_PID/status")
  kill "$HK_PID"; wait "$HK_PID" 2>/dev/null || true; HK_PID=
  echo "$label $idle $hwm"
}

results=()
for (( i = 1; i <= RUNS; i++ )); do
  results+=("$(run_case "20x10MiB" 20 10)")
  results+=("$(run_case "1x40MiB" 1 40)")
done
printf '%s\n' "${results[@]}" > "$T/results"
"$PY" - "$T/results" <<'PYEOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    label, idle, hwm = line.split()
    rows.setdefault(label, []).append((int(idle), int(hwm)))
print(f"{'case':10} {'runs':>4} {'idle MiB':>9} {'peak MiB':>9} {'above idle MiB':>15}  goal <= 64")
for label, v in rows.items():
    idle = statistics.median(i for i, _ in v) / 1024
    peak = statistics.median(h for _, h in v) / 1024
    above = statistics.median((h - i) for i, h in v) / 1024
    print(f"{label:10} {len(v):4} {idle:9.1f} {peak:9.1f} {above:15.1f}  {'met' if above <= 64 else 'NOT met'}")
PYEOF
