#!/usr/bin/env bash
# bench/accept.sh — hikyaku vs Postfix: messages accepted per second over SMTP and
# delivered per second into a Maildir, same machine, loopback only.
#
#   bash bench/accept.sh                 # both servers, RUNS=3
#   RUNS=5 MSGS=5000 bash bench/accept.sh
#   SERVERS=postfix bash bench/accept.sh # one server only (postfix|hikyaku)
#
# Environment:
#   HIKYAKU_BIN  hikyaku binary (default build/src/app/hikyaku; never built here)
#   RUNS         measured rounds, each round runs both servers, order alternating (3)
#   MSGS         messages per run (5000)     SESSIONS  parallel SMTP sessions (20)
#   SIZE         payload bytes per message (4096)
#   WARMUP       unmeasured messages sent to each server first (200; 0 = none)
#   SERVERS      "postfix hikyaku" (default) or one of them
#   TIMEOUT      seconds to wait for a run to be fully delivered (600)
#   BENCH_TMPDIR parent of the temporary directory (/var/tmp); KEEP=1 keeps it
#
# See bench/README.md for what is measured and the results.
set -euo pipefail
export LC_ALL=C   # cheap, locale-free glob sorting in the Maildir poller

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HIKYAKU_BIN=${HIKYAKU_BIN:-$ROOT/build/src/app/hikyaku}
RUNS=${RUNS:-3}
MSGS=${MSGS:-5000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
WARMUP=${WARMUP:-200}
SERVERS=${SERVERS:-postfix hikyaku}
TIMEOUT=${TIMEOUT:-600}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
HZ=$(getconf CLK_TCK)
DOMAIN=bench.test
RCPT=bench@$DOMAIN
SENDER=sender@source.test

die() { echo "accept.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

want() { [[ " $SERVERS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- preconditions
[[ $(id -u) == 0 ]] || die "run as root (Postfix's master and virtual(8) need it)"
[[ -x $SMTP_SOURCE ]] || die "$SMTP_SOURCE missing: apt-get install postfix (see /work/shared/PEERS.md)"
if want postfix; then
  command -v postfix >/dev/null || die "postfix missing: apt-get install postfix"
  id postfix >/dev/null 2>&1 || die "no postfix user (is the postfix package installed?)"
fi
if want hikyaku && [[ ! -x $HIKYAKU_BIN ]]; then
  die "hikyaku binary not found at $HIKYAKU_BIN
  build it first:   cd $ROOT && bash scripts/build.sh build
  or point HIKYAKU_BIN at an existing binary (or run SERVERS=postfix for the Postfix half)"
fi

T=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/hikyaku-bench.XXXXXX")
chmod 755 "$T"   # Postfix's unprivileged daemons must traverse it
mkfifo "$T/nap.fifo"; exec {NAP_FD}<>"$T/nap.fifo"

PF_MASTER= HK_PID= SRC_PID= DNS_PID=
cleanup() {
  local rc=$?
  set +e
  [[ -n $SRC_PID ]] && kill "$SRC_PID" 2>/dev/null && wait "$SRC_PID" 2>/dev/null
  [[ -n $DNS_PID ]] && kill "$DNS_PID" 2>/dev/null && wait "$DNS_PID" 2>/dev/null
  if [[ -n $HK_PID ]] && kill -0 "$HK_PID" 2>/dev/null; then
    kill -TERM "$HK_PID"
    for _ in $(seq 100); do kill -0 "$HK_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$HK_PID" 2>/dev/null && kill -KILL "$HK_PID"
    wait "$HK_PID" 2>/dev/null
  fi
  if [[ -n $PF_MASTER ]]; then
    postfix -c "$T/postfix/conf" stop >/dev/null 2>&1
    for _ in $(seq 100); do kill -0 "$PF_MASTER" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PF_MASTER" 2>/dev/null && postfix -c "$T/postfix/conf" abort >/dev/null 2>&1
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- /proc helpers
# CPU ticks (utime+stime+cutime+cstime) of one process; children that already exited
# and were reaped are in the parent's cutime/cstime.
proc_ticks() {
  local line rest a
  read -r line < "/proc/$1/stat" 2>/dev/null || { echo 0; return; }
  rest=${line##*) }
  read -r -a a <<< "$rest"
  echo $(( a[11] + a[12] + a[13] + a[14] ))
}

# Server process set: hikyaku = its PID; Postfix = master + its children.
server_pids() {
  case $1 in
    hikyaku) echo "$HK_PID" ;;
    postfix) echo "$PF_MASTER"; pgrep -P "$PF_MASTER" || true ;;
  esac
}

server_ticks() {
  local sum=0 p
  for p in $(server_pids "$1"); do sum=$(( sum + $(proc_ticks "$p") )); done
  echo "$sum"
}

# Sum of VmHWM (peak RSS, kB) and of Pss (kB, shared pages split fairly) over the set.
server_mem() {
  local hwm=0 pss=0 n=0 p v
  for p in $(server_pids "$1"); do
    v=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null) || v=
    [[ -n $v ]] && hwm=$(( hwm + v )) && n=$(( n + 1 ))
    v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || v=
    [[ -n $v ]] && pss=$(( pss + v ))
  done
  echo "$hwm $pss $n"
}

# Busy jiffies of the whole machine (all CPUs), to show how much else was running.
machine_busy() {
  local cpu u n s idle iow irq sirq steal rest
  read -r cpu u n s idle iow irq sirq steal rest < /proc/stat
  echo $(( u + n + s + irq + sirq + steal ))
}

# 10 ms pause without forking sleep(1): a read that times out on a FIFO nobody writes.
nap() { read -r -t 0.01 -u "$NAP_FD" _ || true; }

# Number of message files in a Maildir's new/ and cur/ (no forks).
shopt -s nullglob
maildir_count() {
  local f=( "$1"/new/* "$1"/cur/* )
  COUNT=${#f[@]}
}
# Empties a Maildir between runs (files only: the servers may hold the directories open),
# then syncs so the deletion's metadata writes do not spill into the next timed run.
maildir_clear() {
  local sub
  for sub in new cur tmp; do
    [[ -d $1/$sub ]] && find "$1/$sub" -mindepth 1 -maxdepth 1 -type f -delete
  done
  sync
}

# ---------------------------------------------------------------- Postfix
PF_PORT= PF_MAILDIR=$T/postfix/mail/bench/Maildir
postfix_start() {
  local d=$T/postfix
  PF_PORT=$(free_port)
  mkdir -p "$d/conf" "$d/queue" "$d/data" "$d/mail"
  chown postfix:postfix "$d/data"
  chown nobody:nogroup "$d/mail"    # virtual(8) delivers as static:65534
  echo "$RCPT bench/Maildir/" > "$d/conf/vmailbox"
  cat > "$d/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/postfix.log
maillog_file_prefixes = $d
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.local
mydomain = bench.local
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_banner = \$myhostname ESMTP
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $d/mail
virtual_mailbox_maps = texthash:$d/conf/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
EOF
  # Debian's services, chroot off, smtpd on a private loopback port.
  { echo "127.0.0.1:$PF_PORT inet n - n - - smtpd"; cat "$ROOT/bench/postfix-master.cf"; } > "$d/conf/master.cf"
  postfix -c "$d/conf" check >"$d/check.out" 2>&1 || { cat "$d/check.out" >&2; die "postfix check failed"; }
  postfix -c "$d/conf" start >"$d/start.out" 2>&1 || { cat "$d/start.out" "$d/postfix.log" >&2 2>/dev/null; die "postfix start failed"; }
  for _ in $(seq 200); do
    [[ -s $d/queue/pid/master.pid ]] && port_open "$PF_PORT" && break
    sleep 0.05
  done
  PF_MASTER=$(tr -d ' \n' < "$d/queue/pid/master.pid")
  kill -0 "$PF_MASTER" 2>/dev/null || die "postfix master not running"
  port_open "$PF_PORT" || die "postfix not listening on 127.0.0.1:$PF_PORT"
  log "postfix $(postconf -d -h mail_version) master pid $PF_MASTER on 127.0.0.1:$PF_PORT"
}

# ---------------------------------------------------------------- hikyaku
HK_PORT= HK_MAILDIR=$T/hikyaku/data/mailboxes/bench
hikyaku_start() {
  local d=$T/hikyaku
  HK_PORT=$(free_port)
  mkdir -p "$d"
  # Loopback only: hikyaku checks SPF/DMARC of the sender's domain, so it gets
  # a DNS server on 127.0.0.1 (dnsmasq answering *.test) instead of the
  # machine's resolvers.
  if [[ -z $DNS_PID ]]; then
    DNS_PORT=$(free_port)
    dnsmasq --no-daemon --no-resolv --no-hosts --port="$DNS_PORT" --listen-address=127.0.0.1 \
      --bind-interfaces --conf-file=/dev/null --pid-file --local=/test/ 2>"$T/dnsmasq.log" &
    DNS_PID=$!
  fi
  cat > "$d/hikyaku.toml" <<EOF
hostname = "hikyaku.bench.local"
data_dir = "$d/data"
log_level = "warn"

[dns]
servers = ["127.0.0.1:$DNS_PORT"]

[listen]
smtp = ["127.0.0.1:$HK_PORT"]

[limits]
connections = 1000
connections_per_ip = 1000

[[domain]]
name = "$DOMAIN"

[[mailbox]]
name = "bench"

[[address]]
address = "$RCPT"
deliver = ["mailbox:bench"]
EOF
  "$HIKYAKU_BIN" serve --config "$d/hikyaku.toml" >"$d/hikyaku.log" 2>&1 &
  HK_PID=$!
  for _ in $(seq 400); do
    kill -0 "$HK_PID" 2>/dev/null || { cat "$d/hikyaku.log" >&2; HK_PID=; die "hikyaku exited at start"; }
    port_open "$HK_PORT" && break
    sleep 0.05
  done
  port_open "$HK_PORT" || die "hikyaku not listening on 127.0.0.1:$HK_PORT"
  log "hikyaku ($HIKYAKU_BIN) pid $HK_PID on 127.0.0.1:$HK_PORT"
}

server_port()    { [[ $1 == postfix ]] && echo "$PF_PORT" || echo "$HK_PORT"; }
server_maildir() { [[ $1 == postfix ]] && echo "$PF_MAILDIR" || echo "$HK_MAILDIR"; }

# ---------------------------------------------------------------- one run
# "1m2.345s" → 62.345
tosec() { awk -v t="$1" 'BEGIN{split(t, a, "m"); sub("s", "", a[2]); printf "%.3f", a[1]*60 + a[2]}'; }

# run_one SERVER N → sets R_ACC R_DEL (seconds) R_CPU (server CPU s) R_BUSY (machine busy s)
#   R_OTHER (busy CPU s used by neither the server nor smtp-source: other work on the machine)
run_one() {
  local srv=$1 n=$2 port maildir done_f t0 t_acc= t_del= rc ticks0 busy0 deadline src_u src_s tick near
  port=$(server_port "$srv"); maildir=$(server_maildir "$srv")
  done_f=$T/source.done
  maildir_clear "$maildir"; rm -f "$done_f"
  ticks0=$(server_ticks "$srv"); busy0=$(machine_busy)
  t0=$EPOCHREALTIME
  ( rc=0
    "$SMTP_SOURCE" -4 -s "$SESSIONS" -m "$n" -l "$SIZE" -M source.test \
        -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >"$T/source.out" 2>&1 || rc=$?
    t=$EPOCHREALTIME
    times > "$T/times.out"   # builtin, no fork: line 2 = children's CPU, i.e. smtp-source's
    { read -r _; read -r cu cs; } < "$T/times.out"
    echo "$rc $t $cu $cs" > "$done_f.part" && mv "$done_f.part" "$done_f" ) &
  SRC_PID=$!
  deadline=$(( ${t0%.*} + TIMEOUT ))
  COUNT=0 tick=0 near=$(( n / 10 > 500 ? n / 10 : 500 ))
  while :; do
    if [[ -z $t_acc && -f $done_f ]]; then
      read -r rc t_acc src_u src_s < "$done_f"
      [[ $rc == 0 ]] || { cat "$T/source.out" >&2; die "$srv: smtp-source exited $rc"; }
    fi
    # Counting a Maildir of thousands of files costs a few ms of CPU, stolen from the
    # servers on a small machine: count every 250 ms while far from the end, every 10 ms
    # once smtp-source is done or the count is within `near` of the target.
    if [[ -z $t_del ]] && { [[ -n $t_acc ]] || (( COUNT >= n - near || tick % 25 == 0 )); }; then
      maildir_count "$maildir"
      (( COUNT >= n )) && t_del=$EPOCHREALTIME
    fi
    [[ -n $t_acc && -n $t_del ]] && break
    (( ${EPOCHREALTIME%.*} < deadline )) || { maildir_count "$maildir"
      die "$srv: timeout after ${TIMEOUT}s, $COUNT/$n delivered, smtp-source ${t_acc:+done}${t_acc:-running}"; }
    nap
    tick=$(( tick + 1 ))
  done
  wait "$SRC_PID" || true; SRC_PID=
  maildir_count "$maildir"
  (( COUNT == n )) || die "$srv: $COUNT messages in the Maildir, expected $n"
  # delivery can finish before smtp-source has read the last 250 and closed
  [[ $(awk -v a="$t_acc" -v d="$t_del" 'BEGIN{print (d<a)}') == 1 ]] && t_del=$t_acc
  R_ACC=$(awk -v a="$t_acc" -v b="$t0" 'BEGIN{printf "%.3f", a-b}')
  R_DEL=$(awk -v a="$t_del" -v b="$t0" 'BEGIN{printf "%.3f", a-b}')
  sleep 0.2   # let the last processes account their CPU
  R_CPU=$(awk -v a="$(server_ticks "$srv")" -v b="$ticks0" -v hz="$HZ" 'BEGIN{printf "%.2f", (a-b)/hz}')
  R_BUSY=$(awk -v a="$(machine_busy)" -v b="$busy0" -v hz="$HZ" 'BEGIN{printf "%.2f", (a-b)/hz}')
  R_OTHER=$(awk -v b="$R_BUSY" -v c="$R_CPU" -v u="$(tosec "$src_u")" -v s="$(tosec "$src_s")" \
    'BEGIN{o = b - c - u - s; if (o < 0) o = 0; printf "%.2f", o}')
}

median() { sort -g | awk -v f="${1:-%.1f}" '{v[NR]=$1} END{ if (NR%2) m = v[(NR+1)/2]; else m = (v[NR/2]+v[NR/2+1])/2; printf f "\n", m }'; }

# ---------------------------------------------------------------- main
log "tmp $T; load average $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
want postfix && postfix_start
want hikyaku && hikyaku_start

if (( WARMUP > 0 )); then
  for srv in $SERVERS; do
    run_one "$srv" "$WARMUP"
    log "warm-up $srv: $WARMUP messages accepted in ${R_ACC}s, delivered in ${R_DEL}s"
  done
fi

declare -A ACC DEL CPU BUSY HWM PSS NPROC
ROWS=()
read -r -a ORDER <<< "$SERVERS"
for (( i = 1; i <= RUNS; i++ )); do
  if (( i % 2 == 0 )); then seq_=( $(printf '%s\n' "${ORDER[@]}" | tac) ); else seq_=( "${ORDER[@]}" ); fi
  for srv in "${seq_[@]}"; do
    run_one "$srv" "$MSGS"
    ACC[$srv]+="$(awk -v n="$MSGS" -v t="$R_ACC" 'BEGIN{printf "%.1f", n/t}') "
    DEL[$srv]+="$(awk -v n="$MSGS" -v t="$R_DEL" 'BEGIN{printf "%.1f", n/t}') "
    CPU[$srv]+="$R_CPU "
    read -r hwm pss np <<< "$(server_mem "$srv")"
    (( hwm > ${HWM[$srv]:-0} )) && HWM[$srv]=$hwm
    (( pss > ${PSS[$srv]:-0} )) && PSS[$srv]=$pss && NPROC[$srv]=$np
    ROWS+=("$(printf '%-8s %3d %8s %9s %10.1f %11.1f %8s %10s %8s %8s' "$srv" "$i" "$R_ACC" "$R_DEL" \
      "$(awk -v n="$MSGS" -v t="$R_ACC" 'BEGIN{print n/t}')" \
      "$(awk -v n="$MSGS" -v t="$R_DEL" 'BEGIN{print n/t}')" "$R_CPU" \
      "$(awk -v c="$R_CPU" -v n="$MSGS" 'BEGIN{printf "%.2f", 1000*c/n}')" "$R_BUSY" "$R_OTHER")")
    log "run $i $srv: accepted in ${R_ACC}s, delivered in ${R_DEL}s, server CPU ${R_CPU}s, machine busy ${R_BUSY}s (other work ${R_OTHER}s)"
  done
done

echo
echo "hikyaku vs Postfix — $MSGS messages x $SIZE B, $SESSIONS sessions (smtp-source), RUNS=$RUNS, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs"
echo
printf '%-8s %3s %8s %9s %10s %11s %8s %10s %8s %8s\n' server run accept_s deliver_s accepted/s delivered/s cpu_s cpu_ms/msg busy_s other_s
printf '%s\n' "${ROWS[@]}"
echo
printf '%-8s %12s %13s %12s %14s %12s\n' median accepted/s delivered/s cpu_ms/msg peak_rss_MiB pss_MiB
for srv in "${ORDER[@]}"; do
  a=$(tr ' ' '\n' <<< "${ACC[$srv]}" | grep . | median)
  d=$(tr ' ' '\n' <<< "${DEL[$srv]}" | grep . | median)
  c=$(tr ' ' '\n' <<< "${CPU[$srv]}" | grep . | median %.3f)
  printf '%-8s %12s %13s %12s %14s %12s\n' "$srv" "$a" "$d" \
    "$(awk -v c="$c" -v n="$MSGS" 'BEGIN{printf "%.2f", 1000*c/n}')" \
    "$(awk -v k="${HWM[$srv]}" 'BEGIN{printf "%.1f", k/1024}')" \
    "$(awk -v k="${PSS[$srv]}" 'BEGIN{printf "%.1f", k/1024}')"
  eval "MED_ACC_$srv=$a MED_DEL_$srv=$d"
done
if want postfix && want hikyaku; then
  echo
  printf 'ratio hikyaku/postfix: accepted %s, delivered %s\n' \
    "$(awk -v h="$MED_ACC_hikyaku" -v p="$MED_ACC_postfix" 'BEGIN{printf "%.2f", h/p}')" \
    "$(awk -v h="$MED_DEL_hikyaku" -v p="$MED_DEL_postfix" 'BEGIN{printf "%.2f", h/p}')"
fi
echo
echo "peak_rss: sum of VmHWM over the server's processes (Postfix: master + ${NPROC[postfix]:-its} children alive at"
echo "the end of a run; shared pages counted once per process). pss: sum of Pss at the end of a run."
echo "busy_s: CPU seconds the whole machine used during the run (server + smtp-source + anything else);"
echo "other_s: the part of busy_s used by neither the server nor smtp-source (other work on the machine)."
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
