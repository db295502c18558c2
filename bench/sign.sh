#!/bin/sh
# Issue 4 benchmark: messages DKIM-signed + ARC-sealed per second by hikyaku
# (bench/sign_bench.cpp: 1 DKIM signature + 1 ARC set = 3 signatures per
# message, 4 KiB body, one thread) against the bare OpenSSL signature rate
# on the same machine (`openssl speed -seconds 3 rsa2048 ed25519`, one
# thread). Overhead = 1 - (messages/s × 3) / (OpenSSL signs/s): the share of
# time spent on anything but the private-key operation (canonicalisation,
# hashing, header assembly, key handling).
# Usage: bench/sign.sh [BUILD_DIR]   (default build; needs hikyaku_auth built)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
g++ -std=c++20 -O2 -I"$ROOT/src" "$ROOT/bench/sign_bench.cpp" -o "$OUT/sign_bench" \
  "$B/src/auth/libhikyaku_auth.a" "$B/src/crypto/libhikyaku_crypto.a" "$B/src/dns/libhikyaku_dns.a" \
  "$B/src/mail/libhikyaku_mail.a" "$B/src/base/libhikyaku_base.a" \
  $(pkg-config --libs libunbound) -lspdlog -lfmt -lssl -lcrypto -lpthread
"$OUT/sign_bench" 3 > "$OUT/ours"
openssl speed -seconds 3 rsa2048 ed25519 2>/dev/null > "$OUT/openssl"
rsa_sign=$(awk '/^rsa 2048 bits/ {print $6}' "$OUT/openssl")
ed_sign=$(awk '/EdDSA \(Ed25519\)/ {print $(NF-1)}' "$OUT/openssl")
rsa_ours=$(awk '$1=="rsa" {print $2}' "$OUT/ours")
ed_ours=$(awk '$1=="ed25519" {print $2}' "$OUT/ours")
echo "machine: $(nproc) cores, $(openssl version)"
printf '%-8s %14s %16s %18s %10s\n' algo "msgs/s (ours)" "sigs/s (ours x3)" "openssl sign/s" overhead
for a in rsa ed25519; do
  if [ $a = rsa ]; then o=$rsa_ours; s=$rsa_sign; else o=$ed_ours; s=$ed_sign; fi
  awk -v a=$a -v o="$o" -v s="$s" 'BEGIN { printf "%-8s %14.1f %16.1f %18.1f %9.1f%%\n", a, o, o*3, s, (1 - o*3/s)*100 }'
done
