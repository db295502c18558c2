#!/usr/bin/env bash
# bench/forward.sh — hikyaku vs Postfix as a forwarder, side by side in one run, loopback only:
#   1. relay throughput: smtp-source (20 sessions, 5,000 × 4 KiB) → first hop → smtp-sink,
#      in two DNS conditions: "cold" (every answer TTL 0: the sender domain's SPF and DMARC
#      records and the far side's MX are asked for every message, what the first message of
#      every new sender domain costs) and "warm" (TTL 300: everything cached)
#   2. forward latency at light load: first hop's 250 → far side sees the final "."
#   3. diversion: far side refuses with 550 5.7.1 → message in the fallback Maildir
#      (hikyaku: [[forward]] fallback = ["mailbox:fb"]; Postfix: two MTAs, MTA1 with
#      smtp_reply_filter 5xx→4xx + smtp_fallback_relay = MTA2 + soft_bounce, MTA2 → Maildir),
#      in two far-side conditions: (a) 550 to RCPT at once (its fastest refusal, which
#      reaches the first hop while it is still syncing the message), (b) 550 to the end of
#      the message DIV_DELAY ms after it (Gmail's content refusal, after the whole message)
#
#   bash bench/forward.sh                    # RUNS=3
#   RUNS=5 LAT_N=1000 bash bench/forward.sh
#
# Environment:
#   HIKYAKU_BIN  hikyaku binary (default: the newer of build/ and build-bench/ src/app/hikyaku;
#                never built here — see bench/FORWARD.md)
#   RUNS         relay rounds, order alternating (3)      MSGS      messages per relay run (5000)
#   SESSIONS     smtp-source sessions (20)                SIZE      bytes per message (4096)
#   WARMUP       unmeasured relay messages per server before the rounds (200)
#   LAT_N        light-load latency samples per server (500)
#   DIV_N        diversion samples per server and condition (50)
#   DIV_DELAY    ms from the end of the message to the far side's 550 in condition (b) (20;
#                0 still refuses after DATA; "off" skips (b))
#   TIMEOUT      seconds one relay run may take (300)     MAX_TIME  whole script (1800)
#   BENCH_TMPDIR parent of the temporary directory (/var/tmp); KEEP=1 keeps it
#   HISTORY      off: hikyaku without its delivery history; tmpfs: with it, its
#                database on /dev/shm (the disk's share of its cost); on (default)
#
# Every process it starts (dnsmasq, smtp-sink, three Postfix instances, hikyaku, the Python
# far sides) is stopped on exit. Results and method: bench/FORWARD.md.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
MSGS=${MSGS:-5000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
WARMUP=${WARMUP:-200}
LAT_N=${LAT_N:-500}
DIV_N=${DIV_N:-50}
DIV_DELAY=${DIV_DELAY:-20}
TIMEOUT=${TIMEOUT:-300}
MAX_TIME=${MAX_TIME:-1800}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
PY=/usr/bin/python3
TOOL=$ROOT/bench/forward_tool.py
HZ=$(getconf CLK_TCK)
SINK_IP=127.0.0.3    # sink.test   MX → smtp-sink (throughput)
LAT_IP=127.0.0.5     # lat.test    MX → Python far side that timestamps the final "."
REF_IP=127.0.0.6     # refuse.test MX → Python far side that answers RCPT with 550 5.7.1

BENCH=forward.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- preconditions
[[ $(id -u) == 0 ]] || die "run as root (Postfix's master and virtual(8) need it)"
for b in "$SMTP_SOURCE" "$SMTP_SINK" /usr/sbin/postfix /usr/sbin/dnsmasq "$PY"; do
  [[ -x $b ]] || die "$b missing (apt-get install postfix dnsmasq python3; see /work/shared/PEERS.md)"
done
id postfix >/dev/null 2>&1 || die "no postfix user (is the postfix package installed?)"
find_hikyaku_bin "build it (see bench/FORWARD.md)"

T=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/hikyaku-fwd.XXXXXX")
chmod 755 "$T"   # Postfix's unprivileged daemons must traverse it
RES=$T/results.jsonl
: > "$RES"

DNS_PID= SINK_PID= HK_PID= PY_PID= WATCHDOG= PF_DIRS=()
SHM_HISTORY=/dev/shm/hikyaku-bench-history.$$.sqlite
cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  stop_pid "$PY_PID" 3
  stop_pid "$HK_PID" 10
  stop_postfixes
  stop_pid "$SINK_PID" 3
  stop_pid "$DNS_PID" 5
  rm -f "$SHM_HISTORY" "$SHM_HISTORY-wal" "$SHM_HISTORY-shm"
  finish_run
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_watchdog


server_pids() {
  case $1 in
    hikyaku) echo "$HK_PID" ;;
    postfix) pf_pids "$T/pf-relay" ;;
  esac
}
# shellcheck disable=SC2046  # word splitting of the PID list is intended
server_ticks() { pids_ticks $(server_pids "$1"); }
# The CPU of hikyaku's delivery-history writer thread (src/history), part of
# server_ticks: what the history costs, measured apart from the noise of the
# whole run. 0 for Postfix (and for HISTORY=off).
history_ticks() { if [[ $1 == hikyaku ]]; then thread_ticks "$HK_PID" history; else echo 0; fi; }
# shellcheck disable=SC2046
server_mem() { pids_mem $(server_pids "$1"); }

# ---------------------------------------------------------------- ports, DNS, far side
FAR_PORT=$(free_port)   # the one "port 25" of every far side ([delivery] smtp_port)
DNS_PORT=$(free_port); HK_PORT=$(free_port)
PF_RELAY_PORT=$(free_port); PF1_PORT=$(free_port); PF2_PORT=$(free_port)
HEAD_DESC=$(tree_desc)
log "tmp $T; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg); hikyaku $HIKYAKU_BIN (tree at $HEAD_DESC)"

# The DNS (start_dns, bench/lib.sh): the sender domain's SPF and DMARC, sink.test's MX, and
# the MXs of the latency and diversion far sides.
FAR_RECORDS=("--mx-host=lat.test,mx.lat.test,10" "--host-record=mx.lat.test,$LAT_IP"
             "--mx-host=refuse.test,mx.refuse.test,10" "--host-record=mx.refuse.test,$REF_IP")
start_dns 0 "${FAR_RECORDS[@]}"

# smtp-sink: -c writes "sess=.. quit=.. mesg=N" to stdout after every message.
"$SMTP_SINK" -u nobody -c "$SINK_IP:$FAR_PORT" 256 >"$T/sink.counter" 2>"$T/sink.err" &
SINK_PID=$!
wait_port "$SINK_IP" "$FAR_PORT" "$SINK_PID" smtp-sink

# ---------------------------------------------------------------- Postfix instances
# (a) the relay: example.test rewritten to the far-side domains, sent to [IP]:FAR_PORT.
d=$T/pf-relay; mkdir -p "$d/conf"
printf 'u@example.test u@sink.test\nl@example.test l@lat.test\n' > "$d/conf/valias"
printf 'sink.test smtp:[%s]:%s\nlat.test smtp:[%s]:%s\n' $SINK_IP "$FAR_PORT" $LAT_IP "$FAR_PORT" > "$d/conf/transport"
pf_instance pf-relay "$PF_RELAY_PORT" pf-relay.bench.local <<EOF
virtual_alias_domains = example.test
virtual_alias_maps = texthash:$d/conf/valias
transport_maps = texthash:$d/conf/transport
EOF

# (b) two-MTA fallback. MTA2 = the fallback mailbox (virtual(8) → Maildir).
d=$T/pf-mta2; mkdir -p "$d/conf" "$d/mail/fb/Maildir/"{tmp,new,cur}
chown -R nobody:nogroup "$d/mail"
printf 'r@refuse.test fb/Maildir/\n' > "$d/conf/vmailbox"
pf_instance pf-mta2 "$PF2_PORT" pf-mta2.bench.local <<EOF
virtual_mailbox_domains = refuse.test
virtual_mailbox_base = $d/mail
virtual_mailbox_maps = texthash:$d/conf/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
EOF
PF_FB_MAILDIR=$d/mail/fb/Maildir
# MTA1 = the forwarder. Postfix never tries smtp_fallback_relay after a 5xx (smtp_rcpt_fail:
# only soft errors from a non-final server are kept for the next server), so the reply
# filter turns the far side's 5xx into 4xx; the 4xx from the (non-final) far side then sends
# the recipient on to the fallback relay in the same delivery attempt. soft_bounce = yes:
# should MTA2 refuse too, the message stays queued instead of bouncing.
d=$T/pf-mta1; mkdir -p "$d/conf"
printf 'r@example.test r@refuse.test\n' > "$d/conf/valias"
printf 'refuse.test smtp:[%s]:%s\n' $REF_IP "$FAR_PORT" > "$d/conf/transport"
printf '/^5([0-9][0-9])([ -])5\\.(.*)$/ 4${1}${2}4.${3}\n/^5([0-9][0-9])([ -])(.*)$/ 4${1}${2}${3}\n' > "$d/conf/reply_filter"
pf_instance pf-mta1 "$PF1_PORT" pf-mta1.bench.local <<EOF
virtual_alias_domains = example.test
virtual_alias_maps = texthash:$d/conf/valias
transport_maps = texthash:$d/conf/transport
smtp_fallback_relay = [127.0.0.1]:$PF2_PORT
smtp_reply_filter = regexp:$d/conf/reply_filter
soft_bounce = yes
EOF
log "postfix $(postconf -d -h mail_version): relay :$PF_RELAY_PORT, MTA1 :$PF1_PORT → MTA2 :$PF2_PORT"

# ---------------------------------------------------------------- hikyaku
d=$T/hikyaku; mkdir -p "$d"
# HISTORY=off: a directory where the delivery history's file would be, so the
# server runs without it (it logs that it cannot open it) — to measure what
# the history costs.
# HISTORY=tmpfs: the database on /dev/shm through a link (SQLite keeps its WAL
# beside the file the link names), to tell its CPU from its disk writes.
case ${HISTORY:-on} in
  off) mkdir -p "$d/data/history.sqlite" ;;
  tmpfs) mkdir -p "$d/data" && ln -s "$SHM_HISTORY" "$d/data/history.sqlite" ;;
  on) ;;
  *) die "HISTORY is on, off or tmpfs" ;;
esac
{ hikyaku_config_head "$d" "$HK_PORT" "$DNS_PORT" "$FAR_PORT"; cat <<EOF

[[domain]]
name = "example.test"

[[mailbox]]
name = "fb"

[[address]]
address = "u@example.test"
deliver = ["forward:u@sink.test"]

[[address]]
address = "l@example.test"
deliver = ["forward:l@lat.test"]

[[address]]
address = "r@example.test"
deliver = ["forward:r@refuse.test"]

[[forward]]
to = "u@sink.test"
hidden = false

[[forward]]
to = "l@lat.test"
hidden = false

[[forward]]
to = "r@refuse.test"
hidden = true
fallback = ["mailbox:fb"]
EOF
} > "$d/hikyaku.toml"
"$HIKYAKU_BIN" serve --config "$d/hikyaku.toml" >"$d/hikyaku.log" 2>&1 &
HK_PID=$!
wait_port 127.0.0.1 "$HK_PORT" "$HK_PID" hikyaku
HK_FB_MAILDIR=$d/data/mailboxes/fb
port_open 127.0.0.1 "$DNS_PORT" 2>/dev/null || true   # dnsmasq is UDP+TCP; started long ago
kill -0 "$DNS_PID" 2>/dev/null || { cat "$T/dnsmasq.log" >&2; die "dnsmasq exited"; }

server_port() { [[ $1 == postfix ]] && echo "$PF_RELAY_PORT" || echo "$HK_PORT"; }

# ---------------------------------------------------------------- 1. relay throughput
relay_run() {   # relay_run SERVER N [label]
  local srv=$1 n=$2 t0 out b0 h0
  t0=$(server_ticks "$srv"); b0=$(machine_busy); h0=$(history_ticks "$srv")
  out=$(py relay --counter "$T/sink.counter" --n "$n" --timeout "$TIMEOUT" --source \
      "$SMTP_SOURCE" -4 -s "$SESSIONS" -m "$n" -l "$SIZE" -M source.test \
      -f sender@source.test -t u@example.test "127.0.0.1:$(server_port "$srv")") \
    || die "$srv: relay run failed"
  sleep 1.5   # past the history writer's last batch (a second)
  local cpu busy hist
  cpu=$(awk -v a="$(server_ticks "$srv")" -v b="$t0" -v hz="$HZ" 'BEGIN{printf "%.2f", (a-b)/hz}')
  busy=$(awk -v a="$(machine_busy)" -v b="$b0" -v hz="$HZ" 'BEGIN{printf "%.2f", (a-b)/hz}')
  hist=$(awk -v a="$(history_ticks "$srv")" -v b="$h0" -v hz="$HZ" 'BEGIN{printf "%.2f", (a-b)/hz}')
  echo "{\"kind\": \"${3:-relay}\", \"server\": \"$srv\", \"cpu_s\": $cpu, \"busy_s\": $busy," \
    "\"history_cpu_s\": $hist, \"result\": $out}" >> "$RES"
  echo "{\"kind\": \"mem\", \"server\": \"$srv\", $(server_mem "$srv")}" >> "$RES"
  log "$srv ${3:-relay}: $out, server CPU ${cpu}s (history writer ${hist}s), machine busy ${busy}s"
}

if (( WARMUP > 0 )); then
  relay_run hikyaku "$WARMUP" warmup
  relay_run postfix "$WARMUP" warmup
fi
# Cold first: hikyaku's answer cache then holds nothing a warm phase left behind.
for cond in cold warm; do
  if [[ $cond == warm ]]; then start_dns 300 "${FAR_RECORDS[@]}"; fi
  for (( i = 1; i <= RUNS; i++ )); do
    if (( i % 2 )); then order=(postfix hikyaku); else order=(hikyaku postfix); fi
    for srv in "${order[@]}"; do relay_run "$srv" "$MSGS" "relay-$cond"; done
  done
done

# "Light load" means nothing else going on: before parts 2 and 3, wait until both servers
# have finished with the relay runs' messages (hikyaku still unlinks spool files after
# smtp-sink has counted the last message; Postfix's qmgr likewise) and the page cache is
# written back. Without this the first latency samples share the disk with thousands of
# unlinks and writebacks (p95 up to 2 ms for either server).
queued_files() {
  local n=0 d
  for d in "$T/hikyaku/data/spool/queue" "$T"/pf-*/queue/{incoming,active,deferred,maildrop}; do
    [[ -d $d ]] && n=$(( n + $(find "$d" -type f | wc -l) ))
  done
  echo "$n"
}
wait_quiet() {
  local t0=$SECONDS
  for _ in $(seq 600); do (( $(queued_files) == 0 )) && break; sleep 0.1; done
  (( $(queued_files) == 0 )) || log "WARNING: $(queued_files) queue file(s) still present after 60 s"
  sync
  log "queues empty and page cache written back after $(( SECONDS - t0 )) s"
}

# ---------------------------------------------------------------- 2. forward latency
wait_quiet
log "latency: $LAT_N messages each, one at a time"
out=$(py latency --listen "$LAT_IP:$FAR_PORT" --n "$LAT_N" --chunk 25 --raw \
  --hop "hikyaku=127.0.0.1:$HK_PORT,l@example.test" \
  --hop "postfix=127.0.0.1:$PF_RELAY_PORT,l@example.test") || die "latency run failed"
echo "{\"kind\": \"latency\", \"result\": $out}" >> "$RES"
echo "{\"kind\": \"mem\", \"server\": \"hikyaku\", $(server_mem hikyaku)}" >> "$RES"

# ---------------------------------------------------------------- 3. diversion
wait_quiet
log "diversion (a): $DIV_N messages each, refused with 550 5.7.1 at RCPT"
out=$(py divert --listen "$REF_IP:$FAR_PORT" --n "$DIV_N" --chunk 10 --warmup 3 --raw \
  --hop "hikyaku=127.0.0.1:$HK_PORT,r@example.test,$HK_FB_MAILDIR" \
  --hop "postfix=127.0.0.1:$PF1_PORT,r@example.test,$PF_FB_MAILDIR") || die "diversion run failed"
echo "{\"kind\": \"divert\", \"result\": $out}" >> "$RES"
echo "{\"kind\": \"mem\", \"server\": \"hikyaku\", $(server_mem hikyaku)}" >> "$RES"
if [[ $DIV_DELAY != off ]]; then
  wait_quiet
  log "diversion (b): $DIV_N messages each, refused with 550 5.7.1 ${DIV_DELAY} ms after the end of the message"
  out=$(py divert --listen "$REF_IP:$FAR_PORT" --n "$DIV_N" --chunk 10 --warmup 3 --raw \
    --refuse-at data --reply-delay "$DIV_DELAY" \
    --hop "hikyaku=127.0.0.1:$HK_PORT,r@example.test,$HK_FB_MAILDIR" \
    --hop "postfix=127.0.0.1:$PF1_PORT,r@example.test,$PF_FB_MAILDIR") || die "diversion run (b) failed"
  echo "{\"kind\": \"divert-data\", \"delay_ms\": $DIV_DELAY, \"result\": $out}" >> "$RES"
fi
# what the two MTAs logged for the last diverted message (shows the path taken)
grep -h 'r@refuse.test' "$T/pf-mta1/postfix.log" | tail -2 | sed 's/^/  pf-mta1: /' >&2 || true

# ---------------------------------------------------------------- report
echo
echo "hikyaku vs Postfix $(postconf -d -h mail_version) as forwarders — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs," \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "relay: $MSGS × $SIZE B, $SESSIONS smtp-source sessions, RUNS=$RUNS (alternating); latency: $LAT_N;" \
     "diversion: $DIV_N; hikyaku: $HIKYAKU_BIN, tree at $HEAD_DESC"
"$PY" "$TOOL" report "$RES" "$MSGS"
