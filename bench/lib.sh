# shellcheck shell=bash
# bench/lib.sh — helpers shared by the side-by-side benchmarks (forward.sh, history.sh, scan.sh).
# Sourced, not run. The including script sets BENCH (its name, for messages), ROOT, T (its
# temporary directory), PY, TOOL (for py), MAX_TIME (for start_watchdog), and an array
# PF_DIRS=() before calling pf_instance, DNS_PORT and SINK_IP before calling start_dns.

die() { echo "$BENCH: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

stop_pid() {   # stop_pid PID [seconds]: TERM, wait, KILL
  local p=$1 n=$(( ${2:-5} * 10 ))
  [[ -n $p ]] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for (( k = 0; k < n; k++ )); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null || true
}

# Stops every Postfix instance pf_instance started (stop, then abort after 10 s).
stop_postfixes() {
  local d m
  for d in "${PF_DIRS[@]}"; do
    postfix -c "$d/conf" stop >/dev/null 2>&1
    m=$(tr -d ' \n' 2>/dev/null < "$d/queue/pid/master.pid")
    for _ in $(seq 100); do if [[ -z $m ]] || ! kill -0 "$m" 2>/dev/null; then break; fi; sleep 0.1; done
    [[ -n $m ]] && kill -0 "$m" 2>/dev/null && postfix -c "$d/conf" abort >/dev/null 2>&1
  done
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() {   # wait_port IP PORT PID WHAT [tries of 50 ms]
  for _ in $(seq "${5:-400}"); do
    port_open "$1" "$2" && return 0
    kill -0 "$3" 2>/dev/null || die "$4 exited at start"
    sleep 0.05
  done
  die "$4 not listening on $1:$2"
}

# CPU ticks of a process incl. its reaped children.
proc_ticks() {
  local line rest a
  read -r line < "/proc/$1/stat" 2>/dev/null || { echo 0; return; }
  rest=${line##*) }; read -r -a a <<< "$rest"
  echo $(( a[11] + a[12] + a[13] + a[14] ))
}
# Busy jiffies of the whole machine (all CPUs): shows how much else was running.
machine_busy() {
  local _cpu u n s _idle _iow irq sirq steal _rest
  read -r _cpu u n s _idle _iow irq sirq steal _rest < /proc/stat
  echo $(( u + n + s + irq + sirq + steal ))
}
# thread_ticks PID NAME → CPU ticks of PID's threads named NAME (comm).
thread_ticks() {
  local s=0 t comm line rest a
  for t in /proc/"$1"/task/*; do
    read -r comm < "$t/comm" 2>/dev/null || continue
    [[ $comm == "$2" ]] || continue
    read -r line < "$t/stat" 2>/dev/null || continue
    rest=${line##*) }; read -r -a a <<< "$rest"
    s=$(( s + a[11] + a[12] ))
  done
  echo "$s"
}
pids_ticks() { local s=0 p; for p in "$@"; do s=$(( s + $(proc_ticks "$p") )); done; echo "$s"; }
pids_mem() {   # pids_mem PID... → JSON fields: summed VmHWM and Pss, process count
  local hwm=0 pss=0 n=0 p v
  for p in "$@"; do
    v=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null) || v=
    [[ -n $v ]] && hwm=$(( hwm + v )) && n=$(( n + 1 ))
    v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || v=
    [[ -n $v ]] && pss=$(( pss + v ))
  done
  echo "\"hwm_kb\": $hwm, \"pss_kb\": $pss, \"procs\": $n"
}
pf_pids() {   # pf_pids DIR: a Postfix instance's master and its children
  local m; m=$(tr -d ' \n' < "$1/queue/pid/master.pid"); echo "$m"; pgrep -P "$m" || true
}

# pf_instance NAME PORT MYHOSTNAME — a private Postfix in $T/NAME listening on
# 127.0.0.1:PORT; main.cf extras on stdin.
pf_instance() {
  local name=$1 port=$2 host=$3 d=$T/$1
  mkdir -p "$d/conf" "$d/queue" "$d/data" "$d/mail"
  chown postfix:postfix "$d/data"
  chown nobody:nogroup "$d/mail"
  { cat <<EOT
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/postfix.log
maillog_file_prefixes = $d
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = $host
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
EOT
    cat; } > "$d/conf/main.cf"
  { echo "127.0.0.1:$port inet n - n - - smtpd"; cat "$ROOT/bench/postfix-master.cf"; } > "$d/conf/master.cf"
  PF_DIRS+=("$d")
  postfix -c "$d/conf" check >"$d/check.out" 2>&1 || { cat "$d/check.out" >&2; die "$name: postfix check failed"; }
  postfix -c "$d/conf" start >"$d/start.out" 2>&1 || { cat "$d/start.out" "$d/postfix.log" >&2 2>/dev/null; die "$name: postfix start failed"; }
  for _ in $(seq 200); do [[ -s $d/queue/pid/master.pid ]] && port_open 127.0.0.1 "$port" && break; sleep 0.05; done
  port_open 127.0.0.1 "$port" || die "$name: not listening on 127.0.0.1:$port"
}

# hikyaku_config_head DIR SMTP_PORT DNS_PORT FAR_PORT — the start of the benchmarks'
# hikyaku.toml: data in DIR/data, SMTP on 127.0.0.1, connection limits out of the way,
# the loopback DNS server, every far side on FAR_PORT. The caller appends the rest.
hikyaku_config_head() {
  cat <<EOT
hostname = "hikyaku.bench.local"
data_dir = "$1/data"
log_level = "warn"

[listen]
smtp = ["127.0.0.1:$2"]

[limits]
connections = 1000
connections_per_ip = 1000

[dns]
servers = ["127.0.0.1:$3"]

[delivery]
smtp_port = $4
EOT
}

# find_hikyaku_bin HINT — HIKYAKU_BIN, else the newer of build/ and build-bench/; dies with
# HINT (how to build one) when there is none, warns when it is older than src/'s last commit.
find_hikyaku_bin() {
  local c src_commit
  if [[ -z ${HIKYAKU_BIN:-} ]]; then
    for c in "$ROOT/build/src/app/hikyaku" "$ROOT/build-bench/src/app/hikyaku"; do
      [[ -x $c ]] && { [[ -z ${HIKYAKU_BIN:-} || $c -nt $HIKYAKU_BIN ]] && HIKYAKU_BIN=$c; }
    done
  fi
  [[ -x ${HIKYAKU_BIN:-} ]] || die "no hikyaku binary: $1 or set HIKYAKU_BIN"
  src_commit=$(git -C "$ROOT" log -1 --format=%ct -- src 2>/dev/null || echo 0)
  if (( $(stat -c %Y "$HIKYAKU_BIN") < src_commit )); then
    log "WARNING: $HIKYAKU_BIN is older than the newest commit touching src/"
  fi
}

# The commit the tree is at, and whether src/ differs from it (for the report).
tree_desc() {
  local d
  d=$(git -C "$ROOT" log -1 --format=%h 2>/dev/null || echo '?')
  [[ -z $(git -C "$ROOT" status --porcelain -- src 2>/dev/null) ]] || d+=" (src/ has uncommitted changes)"
  echo "$d"
}

# start_watchdog: TERM this script after MAX_TIME seconds (sets WATCHDOG);
# finish_run (from the EXIT trap, after the script's own stops): end the watchdog and
# remove $T unless KEEP=1.
start_watchdog() {
  exec {ERR_FD}>&2
  { sleep "$MAX_TIME" && { echo "$BENCH: MAX_TIME=${MAX_TIME}s reached" >&"$ERR_FD"; kill -TERM $$; }; } 2>/dev/null &
  WATCHDOG=$!
}
finish_run() {
  if [[ -n ${WATCHDOG:-} ]]; then pkill -P "$WATCHDOG" 2>/dev/null; kill "$WATCHDOG" 2>/dev/null; wait "$WATCHDOG" 2>/dev/null; fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}

# py ARGS: $TOOL in the background, so that a signal interrupts `wait` at once (PY_PID
# is what the EXIT trap stops).
py() { "$PY" "$TOOL" "$@" & PY_PID=$!; local rc=0; wait "$PY_PID" || rc=$?; PY_PID=; return $rc; }

# start_dns TTL [dnsmasq options...]: (re)start dnsmasq on 127.0.0.1:$DNS_PORT (DNS_PID),
# answering every *.test record with TTL (--local-ttl): 0 ("cold", nothing may be cached,
# every message asks again) or 300 ("warm"). The sender domain source.test publishes SPF
# and DMARC, so hikyaku's inbound checks ask real questions; sink.test's MX is $SINK_IP;
# the options add the caller's records. Logs to $T/dnsmasq.log.
start_dns() {
  local ttl=$1; shift
  [[ -n ${DNS_PID:-} ]] && { kill "$DNS_PID" 2>/dev/null; wait "$DNS_PID" 2>/dev/null || true; }
  dnsmasq --keep-in-foreground --no-resolv --no-hosts --port="$DNS_PORT" --listen-address=127.0.0.1 \
    --bind-interfaces --conf-file=/dev/null --pid-file --local=/test/ --local-ttl="$ttl" \
    --mx-host=sink.test,mx.sink.test,10 --host-record=mx.sink.test,"$SINK_IP" \
    --txt-record=source.test,"v=spf1 ip4:127.0.0.0/8 -all" \
    --txt-record=_dmarc.source.test,"v=DMARC1; p=none" \
    "$@" >>"$T/dnsmasq.log" 2>&1 &
  DNS_PID=$!
  for _ in $(seq 100); do dig +short +tries=1 +time=1 -p "$DNS_PORT" @127.0.0.1 source.test TXT >/dev/null 2>&1 && break; sleep 0.05; done
}
