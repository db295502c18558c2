#!/bin/bash
# bench/scan.sh — the filtering forwarder, side by side in one run, loopback only (issue 17
# item 5). Two stacks relay the same mixed traffic to an smtp-sink:
#
#   hikyaku stack: hikyaku (its own SPF, DKIM, DMARC, ARC sealing, SRS) asking clamd for
#                  malware (clamd_scope = "attachments": the attachments only, as rspamd's
#                  antivirus module does by default, so both stacks do the same malware
#                  work) and rspamd for the content verdict only (rspamd's SPF, DKIM,
#                  DMARC, ARC and DKIM-signing modules off: hikyaku has done that work)
#   Postfix stack: Postfix 3.7 + rspamd as a milter (SPF, DKIM, DMARC checks, ARC sealing,
#                  spam verdicts, clamd through its antivirus module) + postsrsd for SRS,
#                  the configuration the forwarding guides describe
#
# Both rspamd instances start from Debian's own configuration (/etc/rspamd) with a private
# local.d; one clamd (a one-line signature database written here: the EICAR file's MD5)
# serves both stacks and is counted in both. Traffic: 80 % clean 4 KiB text (smtp-source),
# 10 % GTUBE spam, 10 % EICAR in an attachment (forward_tool.py refused): both must be
# refused at the end of DATA by both stacks; nothing but the clean mail reaches the sink.
#
#   bash bench/scan.sh                  # RUNS=3
#   RUNS=5 MSGS=5000 bash bench/scan.sh
#
# Environment: HIKYAKU_BIN, RUNS (3), MSGS (5000 per run, all three kinds), SESSIONS (20,
# of which 2 send spam and 2 malware), WARMUP (200), LAT_N (300 clean messages, one at a
# time), TIMEOUT (600 s per run), MAX_TIME (3600), BENCH_TMPDIR (/var/tmp), KEEP=1.
# Every process it starts is stopped on exit. Results and method: bench/SCAN.md.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
MSGS=${MSGS:-5000}
SESSIONS=${SESSIONS:-20}
WARMUP=${WARMUP:-200}
LAT_N=${LAT_N:-300}
TIMEOUT=${TIMEOUT:-600}
MAX_TIME=${MAX_TIME:-3600}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
PY=/usr/bin/python3
TOOL=$ROOT/bench/forward_tool.py
HZ=$(getconf CLK_TCK)
SINK_IP=127.0.0.3    # sink.test MX → smtp-sink
LAT_IP=127.0.0.5     # lat.test  MX → Python far side that timestamps the final "."
BENCH=scan.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- preconditions
[[ $(id -u) == 0 ]] || die "run as root (Postfix's master needs it)"
for b in "$SMTP_SOURCE" "$SMTP_SINK" /usr/sbin/postfix /usr/sbin/dnsmasq /usr/bin/rspamd /usr/sbin/clamd \
         /usr/sbin/postsrsd "$PY"; do
  [[ -x $b ]] || die "$b missing (bash scripts/install-deps.sh installs it)"
done
find_hikyaku_bin "build it (bash scripts/build.sh build)"

T=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/hikyaku-scan.XXXXXX")
chmod 755 "$T"
RES=$T/results.jsonl
: > "$RES"

DNS_PID='' SINK_PID='' HK_PID='' PY_PID='' CLAMD_PID='' SRS_PID='' WATCHDOG='' PF_DIRS=() RS_PIDS=()
cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  stop_pid "$PY_PID" 3
  stop_pid "$HK_PID" 10
  stop_postfixes
  for p in "${RS_PIDS[@]}"; do stop_pid "$p" 20; done
  stop_pid "$SRS_PID" 3
  stop_pid "$CLAMD_PID" 10
  stop_pid "$SINK_PID" 3
  stop_pid "$DNS_PID" 5
  finish_run
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_watchdog

FAR_PORT=$(free_port); DNS_PORT=$(free_port); HK_PORT=$(free_port); PF_PORT=$(free_port)
RS_HK_PORT=$(free_port); RS_PF_PORT=$(free_port); SRS_F=$(free_port); SRS_R=$(free_port)
HEAD_DESC=$(tree_desc)
log "tmp $T; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg); hikyaku $HIKYAKU_BIN (tree at $HEAD_DESC)"

# ---------------------------------------------------------------- keys and messages
mkdir -p "$T/keys"
openssl genrsa -out "$T/keys/example.test.hk1.pem" 2048 2>/dev/null
chmod 644 "$T/keys/example.test.hk1.pem"   # rspamd's workers read it as root here; only a benchmark key
DKIM_P=$(openssl rsa -in "$T/keys/example.test.hk1.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
head -c 32 /dev/urandom | base64 > "$T/keys/srs.secret"

# shellcheck disable=SC2016  # the test strings, literally
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
text_body() {   # about 4 KiB of plain prose, 72-column lines
  local line="The quarterly figures are attached below as plain text; please check the totals for"
  line+=" the northern region before Friday, and tell me if the shipping costs look right to you."
  local i; for (( i = 0; i < 22; i++ )); do echo "$line" | fold -s -w 72; echo; done
}
headers() {   # headers SUBJECT
  printf 'From: Sender <sender@source.test>\nTo: <u@example.test>\nSubject: %s\n' "$1"
  printf 'Date: %s\nMessage-ID: <%s@source.test>\nMIME-Version: 1.0\n' "$(date -R)" "$(head -c 9 /dev/urandom | base64 | tr '+/' '-_')"
}
{ headers "Quarterly figures"; printf 'Content-Type: text/plain; charset=utf-8\n\n'; text_body; } > "$T/clean.eml"
{ headers "Quarterly figures (again)"; printf 'Content-Type: text/plain; charset=utf-8\n\n'
  echo "$GTUBE"; echo; text_body; } > "$T/gtube.eml"
{ headers "Invoice"; printf 'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain\n\n'
  text_body | sed -n 1,20p
  printf '\n--b1\nContent-Type: application/octet-stream; name="invoice.com"\nContent-Transfer-Encoding: base64\n'
  printf 'Content-Disposition: attachment; filename="invoice.com"\n\n%s\n--b1--\n' "$(printf '%s' "$EICAR" | base64 -w0)"
} > "$T/eicar.eml"

# ---------------------------------------------------------------- DNS, sink, clamd
# source.test publishes SPF and DMARC (both stacks check them; TTL 300: cached after the
# first message), example.test the DKIM key both stacks sign and seal with.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --port="$DNS_PORT" --listen-address=127.0.0.1 \
  --bind-interfaces --conf-file=/dev/null --pid-file --local=/test/ --local-ttl=300 \
  --mx-host=sink.test,mx.sink.test,10 --host-record=mx.sink.test,$SINK_IP \
  --mx-host=lat.test,mx.lat.test,10 --host-record=mx.lat.test,$LAT_IP \
  --txt-record=source.test,"v=spf1 ip4:127.0.0.0/8 -all" \
  --txt-record=_dmarc.source.test,"v=DMARC1; p=none" \
  --txt-record=hk1._domainkey.example.test,"v=DKIM1; k=rsa; p=$DKIM_P" \
  >>"$T/dnsmasq.log" 2>&1 &
DNS_PID=$!
for _ in $(seq 100); do dig +short +tries=1 +time=1 -p "$DNS_PORT" @127.0.0.1 source.test TXT >/dev/null 2>&1 && break; sleep 0.05; done

"$SMTP_SINK" -u nobody -c "$SINK_IP:$FAR_PORT" 256 >"$T/sink.counter" 2>"$T/sink.err" &
SINK_PID=$!
wait_port "$SINK_IP" "$FAR_PORT" "$SINK_PID" smtp-sink

d=$T/clamd; mkdir -p "$d/db"
printf '%s:%s:Bench.EICAR\n' "$(printf '%s' "$EICAR" | md5sum | cut -d' ' -f1)" "${#EICAR}" > "$d/db/bench.hdb"
cat > "$d/clamd.conf" <<EOF
Foreground yes
LocalSocket $d/clamd.ctl
DatabaseDirectory $d/db
LogFile $d/clamd.log
TemporaryDirectory $d
EOF
clamd -c "$d/clamd.conf" >"$d/clamd.out" 2>&1 &
CLAMD_PID=$!
for _ in $(seq 600); do [[ -S $d/clamd.ctl ]] && break; kill -0 "$CLAMD_PID" 2>/dev/null || die "clamd exited: $(cat "$d/clamd.out")"; sleep 0.1; done
[[ -S $d/clamd.ctl ]] || die "clamd: no socket"
CLAMD_SOCK=$d/clamd.ctl

# ---------------------------------------------------------------- rspamd ×2
# rspamd_instance NAME PORT — Debian's configuration, private directories, the controller
# off, DNS to the loopback dnsmasq (which answers only *.test; everything else, RBLs
# included, is refused at once), local.d files on stdin as "FILE<TAB>CONTENT" lines.
rspamd_instance() {
  local d=$T/$1
  mkdir -p "$d/local/local.d" "$d/local/override.d" "$d/db" "$d/run" "$d/log"
  cat > "$d/local/override.d/worker-controller.inc" <<< 'enabled = false;'
  cat > "$d/local/local.d/options.inc" <<EOF
dns { nameserver = ["127.0.0.1:$DNS_PORT"]; timeout = 1s; retransmits = 1; }
EOF
  while IFS=$'\t' read -r file content; do printf '%s\n' "$content" >> "$d/local/$file"; done
  rspamd_start "$1" "$2"
}
rspamd_start() {   # rspamd_start NAME PORT
  local d=$T/$1 pid
  rspamd -f -u root -g root -i --var=LOCAL_CONFDIR="$d/local" --var=DBDIR="$d/db" --var=RUNDIR="$d/run" \
    --var=LOGDIR="$d/log" >>"$d/out.txt" 2>&1 &
  pid=$!
  RS_PIDS+=("$pid")
  wait_port 127.0.0.1 "$2" "$pid" "rspamd $1" 2400
  echo "$pid" > "$d/main.pid"
}
# hs_loaded NAME FROM_LINE PROCESS_REGEX → how many such processes logged, from that line of
# rspamd's log on, that they loaded the compiled regular expressions.
hs_loaded() {
  tail -n +"$2" "$T/$1/log/rspamd.log" \
    | grep -cE "$3.*full hyperscan database of [0-9]+ regexps has been loaded" || true
}
# Until its hs_helper has compiled the regular expressions and both scanning workers have
# loaded them, rspamd matches with PCRE, several times slower: nothing is measured before.
wait_hyperscan() {   # wait_hyperscan NAME [FROM_LINE]
  for _ in $(seq 1200); do
    (( $(hs_loaded "$1" "${2:-1}" '\((normal|rspamd_proxy)\)') >= 2 )) && return 0
    sleep 0.25
  done
  die "rspamd $1: hyperscan database not loaded after 300 s"
}
# rspamd_restart NAME PORT: a second start, like every start of rspamd on a host after its
# first. DBDIR keeps the compiled hyperscan databases (the TLD suffixes' and the rules'),
# which the main process then maps from their files before it forks, instead of compiling
# them into a heap its workers share (a first start holds about 150 MiB more Pss per
# instance: bench/SCAN.md). Ready when the new main process has loaded them and the
# hs_helper has compiled what was left (nothing, unless the cache was not reused).
rspamd_restart() {
  local d=$T/$1 from
  stop_pid "$(cat "$d/main.pid")" 30
  from=$(( $(wc -l < "$d/log/rspamd.log") + 1 ))
  rspamd_start "$1" "$2"
  for _ in $(seq 1200); do
    if tail -n +"$from" "$d/log/rspamd.log" | grep -qE 'hs_helper.*compiled [0-9]+ regular expressions'; then
      (( $(hs_loaded "$1" "$from" '\(main\)') >= 1 )) \
        || die "rspamd $1: its restart did not reuse the hyperscan cache (see $d/log/rspamd.log)"
      tail -n +"$from" "$d/log/rspamd.log" | grep -qE 'hs_helper.*compiled 0 regular expressions' \
        || wait_hyperscan "$1" "$from"
      return 0
    fi
    sleep 0.25
  done
  die "rspamd $1: not ready 300 s after its restart"
}
# Both: the checks rspamd skips for clients on 127.0.0.1 (RBLs, hfilter, ASN...) made
# anyway, as for a client on the internet (check_local).
# hikyaku's: a "normal" worker (rspamd's /checkv2 protocol), the checks hikyaku makes
# itself switched off.
rspamd_instance rspamd-hk "$RS_HK_PORT" <<EOF
local.d/options.inc	check_local = true;
override.d/worker-normal.inc	bind_socket = "127.0.0.1:$RS_HK_PORT"; count = 2;
override.d/worker-proxy.inc	enabled = false;
local.d/spf.conf	enabled = false;
local.d/dkim.conf	enabled = false;
local.d/dmarc.conf	enabled = false;
local.d/arc.conf	enabled = false;
local.d/dkim_signing.conf	enabled = false;
EOF
# Postfix's: the proxy in milter mode scanning itself (no normal worker needed), every
# check on (DKIM's own check_local too), ARC sealing for mail to example.test, clamd through the antivirus module.
rspamd_instance rspamd-pf "$RS_PF_PORT" <<EOF
override.d/worker-normal.inc	enabled = false;
override.d/worker-proxy.inc	bind_socket = "127.0.0.1:$RS_PF_PORT"; milter = yes; count = 2; timeout = 120s; upstream "local" { default = yes; self_scan = yes; }
local.d/options.inc	check_local = true;
local.d/dkim.conf	check_local = true;
local.d/arc.conf	sign_local = true; use_domain_sign_local = "recipient"; allow_hdrfrom_mismatch = true; allow_username_mismatch = true; selector = "hk1"; path = "$T/keys/\$domain.\$selector.pem";
local.d/antivirus.conf	clamav { action = "reject"; servers = "$CLAMD_SOCK"; type = "clamav"; symbol = "CLAM_VIRUS"; }
EOF

wait_hyperscan rspamd-hk
wait_hyperscan rspamd-pf
rspamd_restart rspamd-hk "$RS_HK_PORT"
rspamd_restart rspamd-pf "$RS_PF_PORT"

# ---------------------------------------------------------------- postsrsd + Postfix
postsrsd -s"$T/keys/srs.secret" -dexample.test -l127.0.0.1 -f"$SRS_F" -r"$SRS_R" -unobody -4 \
  >"$T/postsrsd.log" 2>&1 &
SRS_PID=$!
wait_port 127.0.0.1 "$SRS_F" "$SRS_PID" postsrsd

d=$T/pf; mkdir -p "$d/conf"
printf 'u@example.test u@sink.test\nl@example.test l@lat.test\n' > "$d/conf/valias"
printf 'sink.test smtp:[%s]:%s\nlat.test smtp:[%s]:%s\n' $SINK_IP "$FAR_PORT" $LAT_IP "$FAR_PORT" > "$d/conf/transport"
pf_instance pf "$PF_PORT" pf.bench.local <<EOF
virtual_alias_domains = example.test
virtual_alias_maps = texthash:$d/conf/valias
transport_maps = texthash:$d/conf/transport
smtpd_milters = inet:127.0.0.1:$RS_PF_PORT
milter_default_action = tempfail
milter_protocol = 6
sender_canonical_maps = tcp:127.0.0.1:$SRS_F
sender_canonical_classes = envelope_sender
recipient_canonical_maps = tcp:127.0.0.1:$SRS_R
recipient_canonical_classes = envelope_recipient, header_recipient
EOF

# ---------------------------------------------------------------- hikyaku
d=$T/hikyaku; mkdir -p "$d"
{ hikyaku_config_head "$d" "$HK_PORT" "$DNS_PORT" "$FAR_PORT"; cat <<EOF

[scan]
clamd = "unix:$CLAMD_SOCK"
clamd_scope = "attachments"
rspamd = "http://127.0.0.1:$RS_HK_PORT"

[srs]
domain = "example.test"
secret_file = "$T/keys/srs.secret"

[[domain]]
name = "example.test"
dkim_selector = "hk1"
dkim_key = "$T/keys/example.test.hk1.pem"

[[address]]
address = "u@example.test"
deliver = ["forward:u@sink.test"]

[[address]]
address = "l@example.test"
deliver = ["forward:l@lat.test"]

[[forward]]
to = "u@sink.test"
hidden = false

[[forward]]
to = "l@lat.test"
hidden = false
EOF
} > "$d/hikyaku.toml"
"$HIKYAKU_BIN" serve --config "$d/hikyaku.toml" >"$d/hikyaku.log" 2>&1 &
HK_PID=$!
wait_port 127.0.0.1 "$HK_PORT" "$HK_PID" hikyaku
log "postfix $(postconf -d -h mail_version) :$PF_PORT (milter rspamd :$RS_PF_PORT, postsrsd :$SRS_F/:$SRS_R);" \
    "hikyaku :$HK_PORT (rspamd :$RS_HK_PORT); clamd $CLAMD_SOCK"

# ---------------------------------------------------------------- measuring
# The processes of each part of a stack; a stack is its parts, clamd in both.
part_pids() {
  case $1 in
    hikyaku) echo "$HK_PID" ;;
    postfix) pf_pids "$T/pf" ;;
    postsrsd) echo "$SRS_PID" ;;
    rspamd-hk|rspamd-pf) cat "$T/$1/main.pid"; pgrep -P "$(cat "$T/$1/main.pid")" || true ;;
    clamd) echo "$CLAMD_PID" ;;
  esac
}
stack_parts() { [[ $1 == postfix ]] && echo "postfix postsrsd rspamd-pf clamd" || echo "hikyaku rspamd-hk clamd"; }
# shellcheck disable=SC2046
stack_ticks() {   # → JSON object: CPU ticks per part
  local p sep='' out="{"
  for p in $(stack_parts "$1"); do out+="$sep\"$p\": $(pids_ticks $(part_pids "$p"))"; sep=", "; done
  echo "$out}"
}
stack_mem() {   # → JSON object: memory per part
  local p sep='' out="{"
  # shellcheck disable=SC2046
  for p in $(stack_parts "$1"); do out+="$sep\"$p\": {$(pids_mem $(part_pids "$p"))}"; sep=", "; done
  echo "$out}"
}
server_port() { [[ $1 == postfix ]] && echo "$PF_PORT" || echo "$HK_PORT"; }

# mix_run STACK N [label]: N messages, 80 % clean (smtp-source, SESSIONS-4 sessions) and
# 10 % each of GTUBE and EICAR (2 sessions each), all at once; done when the sink has every
# clean message and both refused senders have had all their 5xx replies.
mix_run() {
  local srv=$1 n=$2 label=${3:-mix} port nc ns ne t0 b0 out g e busy
  port=$(server_port "$srv")
  ns=$(( n / 10 )); ne=$(( n / 10 )); nc=$(( n - ns - ne ))
  t0=$(stack_ticks "$srv"); b0=$(machine_busy)
  "$PY" "$TOOL" refused --to "127.0.0.1:$port" --rcpt u@example.test --file "$T/gtube.eml" --n "$ns" \
    --sessions 2 > "$T/gtube.json" 2>"$T/gtube.err" & g=$!
  "$PY" "$TOOL" refused --to "127.0.0.1:$port" --rcpt u@example.test --file "$T/eicar.eml" --n "$ne" \
    --sessions 2 > "$T/eicar.json" 2>"$T/eicar.err" & e=$!
  out=$(py relay --counter "$T/sink.counter" --n "$nc" --timeout "$TIMEOUT" --source \
      "$SMTP_SOURCE" -4 -s $(( SESSIONS - 4 )) -m "$nc" -F "$T/clean.eml" -M source.test \
      -f sender@source.test -t u@example.test "127.0.0.1:$port") || die "$srv: clean mail failed"
  wait "$g" || die "$srv: GTUBE: $(cat "$T/gtube.json" "$T/gtube.err")"
  wait "$e" || die "$srv: EICAR: $(cat "$T/eicar.json" "$T/eicar.err")"
  sleep 0.2
  busy=$(awk -v a="$(machine_busy)" -v b="$b0" -v hz="$HZ" 'BEGIN{printf "%.2f", (a-b)/hz}')
  echo "{\"kind\": \"$label\", \"server\": \"$srv\", \"n\": $n, \"hz\": $HZ, \"ticks0\": $t0," \
       "\"ticks1\": $(stack_ticks "$srv"), \"busy_s\": $busy, \"clean\": $out, \"gtube\": $(cat "$T/gtube.json")," \
       "\"eicar\": $(cat "$T/eicar.json"), \"mem\": $(stack_mem "$srv")}" >> "$RES"
  log "$srv $label: clean $out; gtube $(cat "$T/gtube.json"); eicar $(cat "$T/eicar.json"); machine busy ${busy}s"
  SENT_CLEAN=$(( SENT_CLEAN + nc ))
}

# Nothing but clean mail may reach the far side: the sink's count is checked by relay (it
# waits for exactly the clean messages; a spam or malware message would show up as an
# extra one at the end).
check_sink() {
  local want=$1 got
  got=$(py sink-count "$T/sink.counter")
  (( got == want )) || die "the sink has $got messages, expected $want (did spam or malware get through?)"
}

SENT_CLEAN=0   # clean messages sent so far (mix_run adds)
if (( WARMUP > 0 )); then
  for srv in hikyaku postfix; do mix_run "$srv" "$WARMUP" warmup; done
fi
for (( i = 1; i <= RUNS; i++ )); do
  if (( i % 2 )); then order=(postfix hikyaku); else order=(hikyaku postfix); fi
  for srv in "${order[@]}"; do
    mix_run "$srv" "$MSGS"
  done
done
sleep 1
check_sink "$SENT_CLEAN"

# ---------------------------------------------------------------- light-load latency
log "latency: $LAT_N clean messages each, one at a time"
out=$(py latency --listen "$LAT_IP:$FAR_PORT" --n "$LAT_N" --chunk 25 \
  --hop "hikyaku=127.0.0.1:$HK_PORT,l@example.test" \
  --hop "postfix=127.0.0.1:$PF_PORT,l@example.test") || die "latency run failed"
echo "{\"kind\": \"latency\", \"result\": $out}" >> "$RES"

echo
echo "hikyaku + rspamd + clamd vs Postfix $(postconf -d -h mail_version) + rspamd milter + postsrsd + clamd —" \
     "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mix: $MSGS messages per run (80 % clean 4 KiB, 10 % GTUBE, 10 % EICAR), $SESSIONS sessions, RUNS=$RUNS" \
     "(alternating); latency: $LAT_N; hikyaku: $HIKYAKU_BIN, tree at $HEAD_DESC"
"$PY" "$TOOL" scan-report "$RES"
