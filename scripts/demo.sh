#!/usr/bin/env bash
# README command 1: install dependencies, build, and run hikyaku with its
# embedded demo configuration (loopback only: SMTP 2525, POP3 1110, POP3S
# 1995, IMAP 1143, IMAPS 1993; data in ./var; the demo mailbox password is printed at start).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
exec build/src/app/hikyaku serve
