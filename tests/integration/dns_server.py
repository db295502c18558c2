"""A real DNS server on loopback for integration tests: dnsmasq (PEERS.md).

The fixture `dns_server` starts dnsmasq on 127.0.0.1:<free port> answering
for `*.test` only (`--local=/test/`: unknown names under test. are NXDOMAIN,
everything else REFUSED). Default records:

    gmail.test   MX 10 mx.gmail.test     mx.gmail.test   A 127.0.0.2
    sender.test  MX 10 mx.sender.test    mx.sender.test  A 127.0.0.4

(127.0.0.2 is the "gmail" stand-in, 127.0.0.4 the original sender's MX; see
farside.py.) A test adds records with add_mx / add_host / add_txt /
add_null_mx / add_address / add_ptr; when dnsmasq already runs it is restarted with the new records
(dnsmasq has no dynamic updates), and the port stays the same; inside
`with dns_server.batch():` the restart happens once, at the end.

Use it from hikyaku's configuration with `dns_server.toml()` →
`[dns]\nservers = ["127.0.0.1:PORT"]` (the [dns] table may appear only once).

Import the fixture in a test module with
    from dns_server import dns_server  # noqa: F401  (pytest fixture)
"""
import contextlib
import re
import socket
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.resolver
import pytest

from conftest import free_port, wait_for


class DnsServer:
    """dnsmasq with a record list that tests can extend."""

    def __init__(self):
        self.port = self._free_udp_and_tcp_port()
        self.proc = None
        self.records = []
        self.local_ttl = 0  # dnsmasq's default: answers are not to be cached
        self.query_log = None  # log_queries(): dnsmasq's own log of every query
        self._batching = False
        self.add_mx("gmail.test", "mx.gmail.test", 10)
        self.add_host("mx.gmail.test", "127.0.0.2")
        self.add_mx("sender.test", "mx.sender.test", 10)
        self.add_host("mx.sender.test", "127.0.0.4")

    # Records. Each restarts a running server so the change is visible at once.
    def add_mx(self, domain, exchange, preference=10):
        """MX: `domain` → `exchange` with `preference`."""
        self._add(f"--mx-host={domain},{exchange},{preference}")

    def add_null_mx(self, domain):
        """RFC 7505 null MX: a single MX 0 "." (the domain accepts no mail)."""
        # dnsmasq writes the target name as given; "." is the root name.
        self._add(f"--mx-host={domain},.,0")

    def add_host(self, name, *addresses):
        """A/AAAA records for `name` (IPv4 or IPv6 text)."""
        self._add(f"--host-record={name}," + ",".join(addresses))

    def add_address(self, name, address):
        """An A/AAAA record for `name` (and names under it) without the PTR
        record add_host makes (dnsmasq --address)."""
        self._add(f"--address=/{name}/{address}")

    def add_ptr(self, address, name):
        """A PTR record: the reverse name of `address` (IPv4) names `name`."""
        reverse = ".".join(reversed(address.split("."))) + ".in-addr.arpa"
        self._add(f"--ptr-record={reverse},{name}")

    def add_txt(self, name, *strings):
        """TXT record; strings longer than 255 octets are split for you."""
        parts = []
        for s in strings:
            while len(s) > 255:
                parts.append(s[:255])
                s = s[255:]
            parts.append(s)
        # On the command line dnsmasq takes the strings as they are, separated
        # by commas (quotes would be kept literally).
        if any("," in p for p in parts):
            raise ValueError("dnsmasq --txt-record strings cannot contain commas")
        self._add(f"--txt-record={name}," + ",".join(parts))

    def set_local_ttl(self, seconds):
        """The TTL of every answer (dnsmasq --local-ttl). The default 0 makes
        hikyaku's answer cache keep nothing, so every message asks again."""
        self.local_ttl = seconds
        if self.proc is not None:
            self.restart()

    def log_queries(self, path):
        """Log every query dnsmasq receives to `path` (queries(), mark())."""
        self.query_log = Path(path)
        if self.proc is not None:
            self.restart()

    def queries(self):
        """The names asked so far, as "TYPE name" in arrival order."""
        if self.query_log is None or not self.query_log.exists():
            return []
        out = []
        for line in self.query_log.read_text(errors="replace").splitlines():
            m = re.search(r"query\[(\w+)\] (\S+) from", line)
            if m:
                out.append(f"{m.group(1)} {m.group(2)}")
        return out

    def mark(self, name):
        """Ask dnsmasq for `name` ourselves and wait until its log shows it:
        every query that arrived before is in the log too (one log, in
        order), so a test can count queries without sleeping."""
        subprocess.run(["dig", "+short", "+tries=1", "+time=2", "-p", str(self.port), "@127.0.0.1", name, "TXT"],
                       capture_output=True, timeout=10)
        wait_for(lambda: f"TXT {name}" in self.queries(), what=f"dnsmasq to log {name}")

    def _add(self, arg):
        self.records.append(arg)
        if self.proc is not None and not self._batching:
            self.restart()

    @contextlib.contextmanager
    def batch(self):
        """Add several records with one restart (each costs about a second):
        `with dns_server.batch(): dns_server.add_txt(...); ...`."""
        self._batching = True
        try:
            yield self
        finally:
            self._batching = False
            if self.proc is not None:
                self.restart()

    @staticmethod
    def _free_udp_and_tcp_port():
        """free_port() checks TCP; dnsmasq binds UDP too, and other programs'
        UDP sockets (resolvers' random source ports) take ports from the same
        range: a port free for both."""
        while True:
            port = free_port()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port

    # Process control.
    def start(self):
        assert self.proc is None
        self.proc = subprocess.Popen(
            ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", f"--port={self.port}",
             "--listen-address=127.0.0.1", "--bind-interfaces", "--conf-file=/dev/null",
             "--pid-file", "--local=/test/", f"--local-ttl={self.local_ttl}",
             *([f"--log-queries", f"--log-facility={self.query_log}"] if self.query_log else []), *self.records],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(self._answers, timeout=10, what=f"dnsmasq on 127.0.0.1:{self.port}")
        return self

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()  # the PID itself; it takes about a second
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self):
        self.stop()
        # The same port again: wait until the old socket is gone.
        deadline = time.monotonic() + 5
        while True:
            try:
                return self.start()
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                self.proc = None
                time.sleep(0.1)

    def _answers(self):
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace")
            raise AssertionError(f"dnsmasq exited: {err}")
        try:
            self.resolver().resolve("mx.gmail.test", "A")
        except dns.exception.DNSException:
            return False
        return True

    # Helpers for tests.
    def resolver(self):
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ["127.0.0.1"]
        r.port = self.port
        r.lifetime = 2
        return r

    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def toml(self):
        """The [dns] table for hikyaku's configuration."""
        return f'\n[dns]\nservers = ["{self.endpoint()}"]\n'


@pytest.fixture
def dns_server():
    """A started DnsServer (default records above); stopped at the end."""
    server = DnsServer()
    server.start()
    yield server
    server.stop()
