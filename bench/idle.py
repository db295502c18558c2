#!/usr/bin/python3
"""bench/idle.py — what an idle IMAPS connection costs hikyaku in memory, loopback only.

    /usr/bin/python3 bench/idle.py                 # 300 connections, 3 rounds
    HIKYAKU_BIN=... CONNS=500 RUNS=5 /usr/bin/python3 bench/idle.py
    COMPRESS=1 /usr/bin/python3 bench/idle.py      # each after COMPRESS DEFLATE (RFC 4978)
    CONNS=10000 RUNS=1 /usr/bin/python3 bench/idle.py   # issue 15's 10,000 (goal: <= 200 MiB)

Each round starts a fresh server (a self-signed certificate, one mailbox with MESSAGES
messages, default 3), opens CONNS IMAPS connections on 127.0.0.1 (TLS 1.3 by default, as phones
negotiate), logs each in, SELECTs INBOX and leaves it in IDLE (RFC 2177) — what a phone
holds open all day. The server's VmRSS and Pss (smaps_rollup) are read before the first
connection and once every connection has its "+ idling"; the difference divided by CONNS
is the cost of one idle connection. Then NOTIFY messages (default 50) are delivered into
the mailbox one at a time, as a delivery agent does (written in tmp/, renamed into new/),
and PROBES of the idle connections (default 10, spread over the opening order) time how
long after the rename their "* n EXISTS" arrives: the IDLE notification latency with all
CONNS connections idle. MAILBOXES (default 1) spreads the connections over that many
mailboxes (connection i on mailbox i % MAILBOXES; the deliveries go to the first): with
1, every connection is told of every delivery, the worst case. Then every connection
sends DONE and LOGOUT and the server is stopped. Prints each round and the medians.

MESSAGES sets how many messages each mailbox holds: a session keeps a view of the folder
it has selected (about 130 bytes a message; what every session of a folder shares is
counted once), so the cost of an idle connection grows with its INBOX. MESSAGES=1000 is
nearer what a phone keeps open all day than the default 3.

FAST_LOGIN=1 stores the bench's passwords as argon2id hashes with libsodium's minimum cost
(1 pass, 8 KiB) instead of `hikyaku user passwd`'s (2 passes, 64 MiB): every LOGIN verifies
one, and on a busy shared machine 10,000 of them take hours. The server verifies whatever
cost the hash names (crypto_pwhash_str_verify), and argon2's memory is freed after each
verification, so what an idle connection costs is not changed by it.
"""
import os
import selectors
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HIKYAKU_BIN", os.path.join(ROOT, "build/src/app/hikyaku"))
CONNS = int(os.environ.get("CONNS", "300"))
TLS = os.environ.get("TLS", "1") != "0"   # TLS=0: plain IMAP on a 143-style port, for comparison
RUNS = int(os.environ.get("RUNS", "3"))
COMPRESS = os.environ.get("COMPRESS", "0") != "0"  # COMPRESS DEFLATE after login, as Thunderbird does
NOTIFY = int(os.environ.get("NOTIFY", "50"))  # deliveries timed while everything idles
PROBES = int(os.environ.get("PROBES", "10"))  # connections that time them
MAILBOXES = int(os.environ.get("MAILBOXES", "1"))  # connection i logs in to mailbox i % MAILBOXES
MESSAGES = int(os.environ.get("MESSAGES", "3"))  # messages in every mailbox at the start
FAST_LOGIN = os.environ.get("FAST_LOGIN", "0") != "0"  # cheap argon2id hashes (docstring)
MAILBOX = """[[mailbox]]
name = "me{m}"
[[address]]
address = "me{m}@bench.test"
deliver = ["mailbox:me{m}"]
"""


class Conn:
    """A socket that speaks raw DEFLATE both ways once compress() is called."""

    def __init__(self, sock):
        self.sock, self.buf, self.deflate, self.inflate = sock, b"", None, None

    def compress(self):
        self.deflate = zlib.compressobj(wbits=-15)
        self.inflate = zlib.decompressobj(wbits=-15)

    def sendall(self, data):
        if self.deflate:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed while waiting for {marker!r}: {self.buf[-200:]!r}")
            self.buf += self.inflate.decompress(chunk) if self.inflate else chunk
        self.buf = self.buf[self.buf.index(marker) + len(marker):]

    def read_available(self):
        """What the socket has now (after select said readable), decompressed."""
        try:
            chunk = self.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return
        if not chunk:
            raise ConnectionError("closed while idling")
        self.buf += self.inflate.decompress(chunk) if self.inflate else chunk

    def close(self):
        self.sock.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 1)) - 1))]


def notification_latencies(socks, maildir, existing):
    """Deliver NOTIFY messages one at a time; the seconds from each rename
    into new/ to each probe's "* n EXISTS"."""
    step = max(1, len(socks) // PROBES)
    probes = socks[step - 1::step][:PROBES]
    sel = selectors.DefaultSelector()
    for p in probes:
        p.sock.setblocking(False)
        sel.register(p.sock, selectors.EVENT_READ, p)
    latencies = []
    for k in range(NOTIFY):
        want = f"* {existing + k + 1} EXISTS".encode()
        name = f"1800000000.{k}.bench"
        with open(os.path.join(maildir, "tmp", name), "w") as f:
            f.write(f"From: a@b.test\r\nSubject: notify {k}\r\n\r\nbody\r\n")
        waiting = set(probes)
        t0 = time.perf_counter()
        os.rename(os.path.join(maildir, "tmp", name), os.path.join(maildir, "new", name))
        deadline = t0 + 30
        while waiting:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{len(waiting)} probes had no {want!r} after 30 s")
            ready = [key.data for key, _ in sel.select(timeout=left)]
            # TLS may hold decrypted bytes the socket no longer signals.
            ready += [p for p in waiting if TLS and p not in ready and p.sock.pending()]
            now = time.perf_counter()
            for p in ready:
                p.read_available()
                if want in p.buf and p in waiting:
                    latencies.append(now - t0)
                    waiting.discard(p)
                    p.buf = p.buf[p.buf.index(want) + len(want):]
    for p in probes:
        sel.unregister(p.sock)
        p.sock.setblocking(True)
    return latencies


def cheap_hash(password):
    """An argon2id hash string at libsodium's minimum cost (FAST_LOGIN)."""
    import ctypes
    sodium = ctypes.CDLL("libsodium.so.23")
    if sodium.sodium_init() < 0:
        sys.exit("idle.py: sodium_init failed")
    out = ctypes.create_string_buffer(128)  # crypto_pwhash_STRBYTES
    pw = password.encode()
    if sodium.crypto_pwhash_argon2id_str(out, pw, ctypes.c_ulonglong(len(pw)), ctypes.c_ulonglong(1),
                                         ctypes.c_size_t(8192)) != 0:
        sys.exit("idle.py: crypto_pwhash_argon2id_str failed")
    return out.value.decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mem_kb(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def read_until(sock, marker, buf=b""):
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed while waiting for {marker!r}: {buf[-200:]!r}")
        buf += chunk
    return buf


def wait_port(port, proc, what):
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"idle.py: {what} exited at start")
            time.sleep(0.05)
    sys.exit(f"idle.py: {what} not listening on {port}")


def one_round(tmp):
    port = free_port()
    conf = os.path.join(tmp, "hikyaku.toml")
    data = os.path.join(tmp, "data")
    with open(conf, "w") as f:
        f.write(f'''hostname = "mx.bench.test"
data_dir = "{data}"
log_level = "warn"
[listen]
{"imaps" if TLS else "imap"} = ["127.0.0.1:{port}"]
[limits]
connections = {2 * CONNS + 100}
connections_per_ip = {2 * CONNS + 100}
[auth]
allow_plaintext = true
[tls]
self_signed = true
[[domain]]
name = "bench.test"
''' + "".join(MAILBOX.format(m=m) for m in range(MAILBOXES)))
    # (the connections stay below 80 % of the limit: no stress-mode autologout)
    for m in range(MAILBOXES):
        subprocess.run([BIN, "user", "passwd", f"me{m}", "--config", conf], input="secret-pass\n", text=True,
                       check=True, capture_output=True)
    if FAST_LOGIN:
        users = os.path.join(data, "users")
        with open(users) as f:
            lines = [line.split(":", 1)[0] for line in f.read().splitlines() if line]
        with open(users, "w") as f:
            f.write("".join(f"{name}:{cheap_hash('secret-pass')}\n" for name in lines))
    for m in range(MAILBOXES):  # MESSAGES in every mailbox (the probes count on it)
        new = os.path.join(data, "mailboxes", f"me{m}", "new")
        os.makedirs(new, exist_ok=True)
        for i in range(MESSAGES):
            with open(os.path.join(new, f"1700000000.M{i}P4242.mx.bench.test"), "w") as f:  # a real-looking unique name
                f.write(f"From: a@b.test\r\nSubject: {i}\r\n\r\nbody {i}\r\n")
    proc = subprocess.Popen([BIN, "serve", "--config", conf], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "hikyaku.log"), "ab"))
    socks = []
    try:
        wait_port(port, proc, "hikyaku")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        # One connection first, dropped: lazily built state (the TLS context's
        # session cache, the mailbox index) is not counted per connection.
        def connect():
            plain = socket.create_connection(("127.0.0.1", port))
            return ctx.wrap_socket(plain) if TLS else plain

        warm = connect()
        read_until(warm, b"\r\n")
        warm.close()
        time.sleep(0.2)
        before = mem_kb(proc.pid)
        for i in range(CONNS):
            s = Conn(connect())
            s.read_until(b"\r\n")
            s.sendall(f"a LOGIN me{i % MAILBOXES} secret-pass\r\n".encode())
            s.read_until(b"a OK")
            s.read_until(b"\r\n")
            if COMPRESS:
                s.sendall(b"z COMPRESS DEFLATE\r\n")
                s.read_until(b"z OK DEFLATE active\r\n")
                s.compress()
            s.sendall(b"b SELECT INBOX\r\n")
            s.read_until(b"b OK")
            s.sendall(b"c IDLE\r\n")
            s.read_until(b"+ ")
            s.buf = b""
            socks.append(s)
        time.sleep(0.5)
        after = mem_kb(proc.pid)
        # The deliveries go to me0; the probes are among its connections.
        latencies = (notification_latencies(socks[::MAILBOXES], os.path.join(data, "mailboxes", "me0"), MESSAGES)
                     if NOTIFY else [])
        for s in socks:
            s.sendall(b"DONE\r\nd LOGOUT\r\n")
        for s in socks:
            s.read_until(b"d OK")
        return {"conns": CONNS, "rss_per_conn_kb": (after[0] - before[0]) / CONNS,
                "pss_per_conn_kb": (after[1] - before[1]) / CONNS, "idle_rss_kb": before[0],
                "rss_kb": after[0], "latencies": latencies}
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(timeout=30)


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"idle.py: {BIN} missing (bash scripts/build.sh build, or set HIKYAKU_BIN)")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, CONNS * 2 + 200)), hard))
    rows = []
    for r in range(RUNS):
        with tempfile.TemporaryDirectory(prefix="hikyaku-idle.", dir=os.environ.get("BENCH_TMPDIR", "/var/tmp")) as tmp:
            row = one_round(tmp)
        rows.append(row)
        kind = (("IMAPS" if TLS else "plain IMAP") + (" + COMPRESS" if COMPRESS else "")
                + f" ({MESSAGES} messages)")
        lat = row["latencies"]
        notify = (f"; IDLE notification over {len(lat)} (delivery, probe) pairs: p50 "
                  f"{percentile(lat, 0.5) * 1000:.2f} ms, p99 {percentile(lat, 0.99) * 1000:.2f} ms, max "
                  f"{max(lat) * 1000:.2f} ms" if lat else "")
        print(f"round {r + 1}: {row['conns']} idle {kind} connections: "
              f"{row['rss_per_conn_kb']:.1f} KiB RSS, {row['pss_per_conn_kb']:.1f} KiB Pss each "
              f"(server idle at {row['idle_rss_kb'] / 1024:.1f} MiB, {row['rss_kb'] / 1024:.1f} MiB with them){notify}",
              flush=True)
    print(f"median: {statistics.median(r['rss_per_conn_kb'] for r in rows):.1f} KiB RSS, "
          f"{statistics.median(r['pss_per_conn_kb'] for r in rows):.1f} KiB Pss per idle {kind} connection, "
          f"{statistics.median(r['rss_kb'] for r in rows) / 1024:.1f} MiB RSS with {CONNS}"
          + (f"; IDLE notification p99 {statistics.median(percentile(r['latencies'], 0.99) for r in rows) * 1000:.2f} ms"
             if NOTIFY else "") + f" ({BIN})")


if __name__ == "__main__":
    main()
