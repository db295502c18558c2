#!/usr/bin/env bash
# Install every build, test and benchmark dependency of hikyaku from Debian's
# packages (bookworm). Idempotent; safe to run on a fresh machine as root.
# Nothing is downloaded at build time: CMake finds only what this installs.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
# Postfix is a test peer and benchmark reference only: install it without
# asking questions and without configuring a system instance. sasl2-bin
# (saslpasswd2), libsasl2-modules (PLAIN, LOGIN, CRAM-MD5) and
# libsasl2-modules-db (sasldb) make a private Postfix an authenticating relay
# (PostfixSaslRelay in tests/integration/postfix_peer.py).
# swaks's TLS (Net::SSLeay) and CRAM-MD5 (Authen::SASL, Digest::HMAC) are
# only Recommends/Suggests of its package: named here, since recommends are
# not installed.
# rspamd and clamav-daemon: tests/integration/test_scan.py runs private
# instances ([scan], issue 17) with their own configuration and a signature
# database written by the test (nothing downloaded; freshclam is not used).
# postsrsd: the SRS daemon of the Postfix stack that bench/scan.sh compares
# with (started privately by the benchmark, never as a system service).
# groff-base: tests/integration/test_man_pages.py renders man/*.[58] with
# `groff -man -ww` (warnings fail the test).
# chromium: tests/integration/test_history.py renders the status page
# headless (its DOM text asserted, a screenshot kept), on loopback only.
# libsqlite3-dev: the delivery history (src/history).
# zlib1g-dev: IMAP COMPRESS=DEFLATE (RFC 4978, src/imap/protocol/compression.hpp).
# python3-pytest-xdist: scripts/test.sh runs the integration tests in several
# processes (they mostly wait on sockets and disks).
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates ccache \
  clang clang-tidy clang-format libclang-rt-14-dev \
  libboost1.81-dev \
  libssl-dev libunbound-dev libevent-dev libsodium-dev libsqlite3-dev sqlite3 zlib1g-dev \
  libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev \
  libgtest-dev libgmock-dev googletest libyaml-cpp-dev \
  openssl \
  python3 python3-pytest python3-pytest-xdist python3-dkim python3-spf python3-aiosmtpd python3-dnspython python3-prometheus-client \
  swaks libnet-ssleay-perl libauthen-sasl-perl libdigest-hmac-perl msmtp fetchmail mutt postfix sasl2-bin libsasl2-modules libsasl2-modules-db dnsmasq-base dovecot-core dovecot-imapd dovecot-pop3d isync offlineimap3 bind9-dnsutils tmux procps psmisc strace \
  pebble certbot \
  rspamd clamav-daemon postsrsd \
  publicsuffix groff-base chromium >/dev/null
