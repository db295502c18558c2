#!/bin/sh
# certbot deploy hook for hikyaku: after certbot has written a new
# certificate, make hikyaku re-read its TLS certificate and key files
# (SIGHUP; hikyaku keeps serving and keeps the old certificates if a new
# file fails to load, logging why). README "Certificates with Let's Encrypt
# (certbot)" shows the certbot commands.
#
#   certbot certonly ... --deploy-hook /path/to/contrib/certbot-deploy-hook.sh
#
# Which process gets the signal, the first that applies:
#   HIKYAKU_PID=1234            that process (it must be a hikyaku: see below);
#   HIKYAKU_PID_FILE=/run/...   the process whose id the file holds;
#   systemd                     `systemctl reload HIKYAKU_UNIT` (default
#                               hikyaku.service; the unit's ExecReload should
#                               be `kill -HUP $MAINPID`) when that unit is active;
#   otherwise                   every process named exactly "hikyaku"
#                               (`pkill -HUP -x hikyaku`).
# A PID given by variable or file is signalled only when /proc says its
# program is hikyaku, so a stale pid file never signals another program.
#
# HIKYAKU_KEY_GROUP=hikyaku (optional): before the signal, give that group
# read access to the new private key (chgrp GROUP, chmod 0640), so that
# hikyaku, running as an unprivileged user, can read it on reload. certbot
# keeps the group and group-read bit of the previous key on renewals; this
# covers the first certificate. hikyaku refuses a key any other user may
# read, so the mode is never widened beyond the group.
#
# certbot sets RENEWED_LINEAGE (/etc/letsencrypt/live/NAME) and
# RENEWED_DOMAINS. Exit status: 0 once a process was signalled; 1 when none
# was (certbot reports the hook's failure; the certificate is renewed anyway
# and a restart of hikyaku will pick it up).
set -eu

log() { printf 'hikyaku deploy hook: %s\n' "$*" >&2; }

# Signal PID if it is a running hikyaku.
signal_pid() {
  pid=$1
  case $pid in
    '' | *[!0-9]*) log "not a process id: '$pid'"; return 1 ;;
  esac
  if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" != hikyaku ]; then
    log "process $pid is not hikyaku ($(cat "/proc/$pid/comm")); not signalled"
    return 1
  fi
  kill -HUP "$pid" || { log "cannot signal process $pid"; return 1; }
  log "sent SIGHUP to hikyaku (pid $pid)${RENEWED_DOMAINS:+ for $RENEWED_DOMAINS}"
}

# The key's group, if asked for (the file a live/ link points to).
if [ -n "${HIKYAKU_KEY_GROUP:-}" ] && [ -n "${RENEWED_LINEAGE:-}" ]; then
  key=$(readlink -f "$RENEWED_LINEAGE/privkey.pem")
  chgrp "$HIKYAKU_KEY_GROUP" "$key"
  chmod 0640 "$key"
  log "$key: group $HIKYAKU_KEY_GROUP may read it (0640)"
fi

if [ -n "${HIKYAKU_PID:-}" ]; then
  signal_pid "$HIKYAKU_PID"
  exit
fi
if [ -n "${HIKYAKU_PID_FILE:-}" ]; then
  [ -r "$HIKYAKU_PID_FILE" ] || { log "cannot read $HIKYAKU_PID_FILE"; exit 1; }
  signal_pid "$(head -n 1 "$HIKYAKU_PID_FILE" | tr -d ' \t\r')"
  exit
fi
unit=${HIKYAKU_UNIT:-hikyaku.service}
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] && systemctl is-active --quiet "$unit"; then
  systemctl reload "$unit"
  log "systemctl reload $unit${RENEWED_DOMAINS:+ for $RENEWED_DOMAINS}"
  exit 0
fi
if pkill -HUP -x hikyaku; then
  log "sent SIGHUP to every process named hikyaku${RENEWED_DOMAINS:+ for $RENEWED_DOMAINS}"
  exit 0
fi
log "no running hikyaku found; nothing reloaded"
exit 1
