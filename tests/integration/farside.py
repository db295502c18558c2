"""Far sides for hikyaku's outbound SMTP: a controllable "gmail" stand-in and
a plain recording sink, both aiosmtpd servers on other loopback addresses.

All far sides of one test listen on the SAME port (hikyaku has one
`[delivery] smtp_port`), each on its own address:

    127.0.0.2  "gmail" (mx.gmail.test in dns_server.py), controllable
    127.0.0.3  a second MX or an implicit-MX host (free for tests)
    127.0.0.4  the original sender's MX (mx.sender.test): a recording sink

Fixture `farside` yields a FarSides object:

    fs.port                      the shared port (use fs.toml() or
                                 `[delivery] smtp_port = fs.port`)
    fs.gmail                     FarSide at 127.0.0.2 (started)
    fs.sender                    FarSide at 127.0.0.4 (started, mode accept)
    fs.add("127.0.0.3")          another FarSide on the same port (started)

FarSide.set_mode(mode, reply=None, times=None, stall=None):

    "accept"          250 everywhere. The content check is always on: a body
                      containing the EICAR test string gets
                      "552 5.7.0 ..." at end of data (Gmail's virus reply).
    "reject_rcpt"     RCPT gets `reply` (default 550 5.7.1 ...)
    "reject_data"     end of data gets `reply` (default 550 5.7.26 ...)
    "tempfail_mail"   MAIL gets `reply` (default 421 4.7.28 ... rate ...);
                      a 421 closes the connection after the reply
    "tempfail_rcpt"   RCPT gets `reply` (default 451 4.7.0 ...); a 421 closes
                      the connection after the reply, as for MAIL
    "tempfail_data"   end of data gets `reply` (default 451 4.7.0 ...)
    "stall_mail" / "stall_rcpt" / "stall_data" ("stall" = "stall_data")
                      wait `stall` seconds (default 30) before answering
    "drop_mail" / "drop_rcpt" / "drop_data" ("drop" = "drop_data")
                      close the connection instead of answering

`times=N` applies the mode to the next N transactions only, then the far side
accepts again (e.g. one 451, then success: the retry test).

FarSide.stalls counts the stalls begun (a test waits on it, not on the clock,
to know the far side is holding the client).

FarSide.set_data_delay(seconds) makes every accepted message wait that long
before its 250 at end of data (a slow far side: deliveries overlap in time
when the client runs them in parallel).

Every message that got 250 at end of data is recorded as a Received
(mail_from, rcpt_tos, data: the bytes exactly as sent, dot-unstuffed, with
CRLF; mail_options, e.g. ["SIZE=123", "BODY=8BITMIME"]; tls: STARTTLS was
used). `attempts` records every transaction that reached end of data,
accepted or not; `connections` counts TCP connections; `session_times()`
gives (opened, closed) per connection (time.monotonic(), closed None while
open) and `max_concurrent()` the most connections open at the same time.

`side.unknown_users` (a set of lower-case addresses) makes RCPT answer
"550 5.1.1 ... User unknown" for those; `side.rcpts` lists every RCPT address
seen (a gateway's recipient checks count there).

Every Received also carries `helo` (the name the client announced) and
`login` (the AUTH user, or None).

FarSide(..., auth={user: password}) is a provider's relay (issue 14): it
offers AUTH only after STARTTLS (so it needs a tls_context) and refuses MAIL
before AUTH (530). CRAM-MD5 (RFC 2195) and LOGIN are implemented here, in
the handler, PLAIN is aiosmtpd's own; `side.mechanisms` (default
{"CRAM-MD5", "LOGIN"}) is what new connections offer. A wrong password gets
"535 5.7.8 Authentication credentials invalid"; `auth_failures` counts them.

The `farside_tls` fixture's gmail stand-in offers STARTTLS with a
certificate that cannot verify: self-signed, and for another name than
mx.gmail.test (opportunistic TLS must use it anyway).

BrokenTlsFarSide(host, port, name) is a small plain-socket SMTP server whose
STARTTLS handshake always fails: it answers "220 Ready to start TLS", reads
the client's ClientHello and answers with bytes that are not TLS, then closes.
Without STARTTLS it accepts a whole transaction. It records `starttls` (how
many handshakes it broke), `connections` and `messages` (Received, tls False).
Built with starttls=False, chunking=True it offers PIPELINING and CHUNKING
(RFC 3030 BDAT) instead, answering each command as it reads it; `rset_reply`
is its answer to RSET (an odd server's error, to test what a client makes
of the commands it pipelined behind one).

Import the fixture in a test module with
    from farside import farside  # noqa: F401  (pytest fixture)
"""
import asyncio
import base64
import hashlib
import hmac
import os
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

from conftest import _port_share, wait_for

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

DEFAULT_REPLIES = {
    "reject_rcpt": "550 5.7.1 The email account that you tried to reach is disabled. gsmtp",
    "reject_data": "550 5.7.26 Unauthenticated email from example.test is not accepted due to "
                   "domain's DMARC policy. gsmtp",
    "tempfail_mail": "421 4.7.28 Our system has detected an unusual rate of unsolicited mail. gsmtp",
    "tempfail_rcpt": "451 4.7.0 Temporary System Problem. Try again later. gsmtp",
    "tempfail_data": "451 4.7.0 Temporary System Problem. Try again later. gsmtp",
}
VIRUS_REPLY = "552 5.7.0 This message was blocked because its content presents a potential security issue. gsmtp"
MODES = {"accept", "reject_rcpt", "reject_data", "tempfail_mail", "tempfail_rcpt", "tempfail_data",
         "stall_mail", "stall_rcpt", "stall_data", "drop_mail", "drop_rcpt", "drop_data"}


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    data: bytes
    mail_options: list = field(default_factory=list)
    tls: bool = False
    peer: tuple = ()
    reply: str = "250 OK"
    at: float = 0.0  # time.monotonic() at end of data
    helo: str = ""
    login: str = None


def make_self_signed(directory, cn="mx.gmail.test"):
    """A throwaway certificate for STARTTLS (the client must not verify it)."""
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class _Handler:
    def __init__(self, side):
        self.side = side

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """FarSide.eightbitmime = False: a server that does not offer 8BITMIME;
        FarSide.pipelining = True: one that offers PIPELINING, as Gmail does
        (aiosmtpd answers pipelined commands in order anyway)."""
        session.host_name = hostname
        if not self.side.eightbitmime:
            responses = [r for r in responses if r[4:] != "8BITMIME"]
        if self.side.pipelining:
            responses = responses[:-1] + ["250-PIPELINING", responses[-1]]
        return responses

    # AUTH mechanisms of a relay (FarSide(auth=...)); aiosmtpd maps
    # auth_CRAM__MD5 to "CRAM-MD5" and prefers these to its own.
    def _login(self, user, password):
        side = self.side
        if side.auth is not None and side.auth.get(user) == password:
            return AuthResult(success=True, auth_data=user)
        with side.lock:
            side.auth_failures += 1
        return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

    def plain_authenticator(self, server, session, envelope, mechanism, auth_data):
        """aiosmtpd's own PLAIN hands over a LoginPassword."""
        return self._login(auth_data.login.decode(errors="replace"), auth_data.password.decode(errors="replace"))

    async def auth_CRAM__MD5(self, server, args):
        challenge = f"<{os.getpid()}.{time.monotonic_ns()}@{self.side.name}>".encode()
        response = await server.challenge_auth(challenge)
        if not isinstance(response, bytes) or b" " not in response:
            return AuthResult(success=False, handled=True)
        user, digest = response.decode(errors="replace").rsplit(" ", 1)
        password = (self.side.auth or {}).get(user)
        if password is not None:
            want = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
            if hmac.compare_digest(want, digest):
                return AuthResult(success=True, auth_data=user)
        return self._login(user, None)

    async def auth_LOGIN(self, server, args):
        if len(args) > 1:
            user = base64.b64decode(args[1]).decode(errors="replace")
        else:
            u = await server.challenge_auth("Username:")
            if not isinstance(u, bytes):
                return AuthResult(success=False, handled=True)
            user = u.decode(errors="replace")
        p = await server.challenge_auth("Password:")
        if not isinstance(p, bytes):
            return AuthResult(success=False, handled=True)
        return self._login(user, p.decode(errors="replace"))

    async def _apply(self, stage, server, default_reply):
        """The reply of the current mode at `stage`, or None to go on."""
        side = self.side
        action = side._action(stage)
        if action is None:
            return None
        kind, reply = action
        if kind == "stall":
            with side.lock:
                side.stalls += 1
            await asyncio.sleep(side.stall)
            return None
        if kind == "drop":
            server.transport.close()
            return "DROP"
        if reply.startswith("421"):
            # RFC 5321 §3.8: 421 means the server closes the channel: the
            # reply is written and the channel closed at once, so that no
            # pipelined command after it gets a reply (what aiosmtpd sends
            # for the returned reply is dropped: the connection is lost).
            server.transport.write(reply.encode() + b"\r\n")
            server.transport.close()
        return reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        r = await self._apply("mail", server, None)
        if r == "DROP":
            return "421 4.4.2 dropping"  # never reaches the client
        if r:
            return r
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.side.lock:
            self.side.rcpts.append(address)
            unknown = address.lower() in self.side.unknown_users
        if unknown:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        r = await self._apply("rcpt", server, None)
        if r == "DROP":
            return "421 4.4.2 dropping"
        if r:
            return r
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        side = self.side
        data = envelope.original_content or b""
        r = await self._apply("data", server, None)
        if r == "DROP":
            side._record_attempt(envelope, data, "(dropped)", server)
            return "421 4.4.2 dropping"
        if r is None and EICAR in data:
            r = VIRUS_REPLY
        if r is None and side.data_delay > 0:
            await asyncio.sleep(side.data_delay)
        reply = r or "250 2.0.0 OK queued"
        side._record_attempt(envelope, data, reply, server)
        return reply


class FarSide:
    """One aiosmtpd server on HOST:PORT with a switchable failure mode."""

    def __init__(self, host, port, name=None, tls_context=None, auth=None):
        self.auth = auth
        self.eightbitmime = True    # offered in EHLO (False: RFC 6152 §3 forbids 8-bit data)
        self.pipelining = False     # PIPELINING offered in EHLO (RFC 2920)
        self.mechanisms = {"CRAM-MD5", "LOGIN"}
        self.unknown_users = set()  # RCPT gets 550 5.1.1 for these (lower case)
        self.rcpts = []             # every RCPT address seen, in order
        self.auth_failures = 0
        self.host = host
        self.port = port
        self.name = name or host
        self.tls_context = tls_context
        self.lock = threading.Lock()
        self.messages = []   # accepted (250 at end of data)
        self.attempts = []   # every transaction that reached end of data
        self.connections = 0
        self.sessions = []   # [opened, closed or None] per TCP connection
        self.data_delay = 0.0
        self.mode = "accept"
        self.reply = None
        self.times = None
        self.stall = 30.0
        self.stalls = 0      # stalls begun (wait on this, not on the clock)
        self.controller = None

    # Control.
    def set_mode(self, mode, reply=None, times=None, stall=None):
        mode = {"stall": "stall_data", "drop": "drop_data"}.get(mode, mode)
        if mode not in MODES:
            raise ValueError(f"unknown far-side mode {mode!r}")
        with self.lock:
            self.mode = mode
            self.reply = reply or DEFAULT_REPLIES.get(mode)
            self.times = times
            if stall is not None:
                self.stall = float(stall)

    def set_data_delay(self, seconds):
        with self.lock:
            self.data_delay = float(seconds)

    def _action(self, stage):
        with self.lock:
            if self.mode == "accept":
                return None
            kind, _, mode_stage = self.mode.partition("_")
            if mode_stage != stage:
                return None
            if self.times is not None:
                if self.times <= 0:
                    return None
                self.times -= 1
            return kind, self.reply

    def _record_attempt(self, envelope, data, reply, server):
        item = Received(mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), data=bytes(data),
                        mail_options=list(envelope.mail_options),
                        tls=getattr(server, "_tls_protocol", None) is not None,
                        peer=tuple(server.session.peer or ()), reply=reply, at=time.monotonic(),
                        helo=server.session.host_name or "",
                        login=server.session.auth_data if server.session.authenticated else None)
        with self.lock:
            self.attempts.append(item)
            if reply.startswith("250"):
                self.messages.append(item)

    def _connected(self):
        with self.lock:
            self.connections += 1
            record = [time.monotonic(), None]
            self.sessions.append(record)
            return record

    def _disconnected(self, record):
        with self.lock:
            record[1] = time.monotonic()

    # Queries.
    def received(self):
        with self.lock:
            return list(self.messages)

    def session_times(self):
        """(opened, closed) of every TCP connection, in connection order."""
        with self.lock:
            return [tuple(s) for s in self.sessions]

    def max_concurrent(self, opened_before=None):
        """The most TCP connections open at the same moment, counting only the
        connections opened before `opened_before` (time.monotonic()) if given."""
        events = []
        for opened, closed in self.session_times():
            if opened_before is not None and opened >= opened_before:
                continue
            events.append((opened, 1))
            if closed is not None:
                events.append((closed, -1))
        best = current = 0
        for _, step in sorted(events):  # at equal times a close (-1) sorts first
            current += step
            best = max(best, current)
        return best

    def wait_messages(self, n, timeout=20.0):
        """Wait until at least `n` messages were accepted; return them."""
        wait_for(lambda: len(self.received()) >= n, timeout=timeout,
                 what=f"{n} message(s) at far side {self.name}")
        return self.received()

    def wait_attempts(self, n, timeout=20.0):
        def got():
            with self.lock:
                return len(self.attempts) >= n
        wait_for(got, timeout=timeout, what=f"{n} attempt(s) at far side {self.name}")
        with self.lock:
            return list(self.attempts)

    # Process control.
    def start(self):
        side = self

        class CountingSMTP(SMTP):
            def connection_made(self, transport):
                if getattr(self, "_original_transport", None) is None:  # not the STARTTLS upgrade
                    self._session_record = side._connected()
                super().connection_made(transport)

            def connection_lost(self, error):
                record = getattr(self, "_session_record", None)
                if record is not None:
                    side._disconnected(record)
                    self._session_record = None
                super().connection_lost(error)

        class _Controller(Controller):
            def factory(self):
                kwargs = dict(self.SMTP_kwargs)
                if side.auth is not None:
                    # Per connection: what the relay offers right now.
                    kwargs.update(auth_required=True, auth_require_tls=True,
                                  authenticator=self.handler.plain_authenticator,
                                  auth_exclude_mechanism=[m for m in ("CRAM-MD5", "LOGIN", "PLAIN")
                                                          if m not in side.mechanisms])
                return CountingSMTP(self.handler, **kwargs)

        kwargs = {"server_hostname": self.name, "data_size_limit": 64 * 1024 * 1024}
        if self.tls_context is not None:
            kwargs["tls_context"] = self.tls_context
        self.controller = _Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        self.controller.start()
        with self.lock:
            self.connections = 0  # the controller's own start-up probe
            self.sessions = []
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class _BrokenTlsHandler(socketserver.StreamRequestHandler):
    """One SMTP session of a BrokenTlsFarSide."""

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        side = self.server.side
        with side.lock:
            side.connections += 1
        self.reply(f"220 {side.name} ESMTP broken TLS")
        mail_from, rcpts, chunks = None, [], b""
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            command = line.decode("latin-1").rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply(f"250-{side.name}")
                if side.chunking:
                    self.reply("250-PIPELINING")
                    self.reply("250-CHUNKING")
                self.reply("250-8BITMIME")
                self.reply("250 STARTTLS" if side.offer_starttls else "250 ENHANCEDSTATUSCODES")
            elif verb == "HELO":
                self.reply(f"250 {side.name}")
            elif verb == "STARTTLS":
                self.reply("220 2.0.0 Ready to start TLS")
                # Wait for the ClientHello, so that the client is inside its
                # handshake (bytes right behind the 220 would be refused as
                # pipelined data instead), then answer with what is not TLS.
                self.request.settimeout(10)
                try:
                    self.request.recv(4096)
                    self.request.sendall(b"this is not a TLS ServerHello\r\n")
                except OSError:
                    pass
                with side.lock:
                    side.starttls += 1
                return
            elif verb == "MAIL":
                mail_from, rcpts, chunks = command[10:].strip("<>"), [], b""
                self.reply("250 2.1.0 OK")
            elif verb == "RCPT":
                rcpts.append(command[8:].strip("<>"))
                self.reply("250 2.1.5 OK")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = b""
                while True:
                    chunk = self.rfile.readline(1 << 20)
                    if not chunk or chunk == b".\r\n":
                        break
                    data += chunk[1:] if chunk.startswith(b".") else chunk
                with side.lock:
                    side.messages.append(Received(mail_from=mail_from, rcpt_tos=list(rcpts), data=data,
                                                  tls=False, at=time.monotonic()))
                self.reply("250 2.0.0 OK queued")
            elif verb == "BDAT" and side.chunking:
                words = command.split()
                chunks += self.rfile.read(int(words[1]))
                if len(words) > 2 and words[2].upper() == "LAST":
                    with side.lock:
                        side.messages.append(Received(mail_from=mail_from, rcpt_tos=list(rcpts), data=chunks,
                                                      tls=False, at=time.monotonic()))
                    self.reply("250 2.0.0 OK queued")
                else:
                    self.reply("250 2.0.0 chunk received")
            elif verb == "RSET":
                self.reply(side.rset_reply)
            elif verb == "NOOP":
                self.reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("502 5.5.2 not implemented")


class BrokenTlsFarSide:
    """An SMTP far side on HOST:PORT whose STARTTLS handshake always fails."""

    def __init__(self, host, port, name=None, starttls=True, chunking=False, rset_reply="250 2.0.0 OK"):
        self.host, self.port, self.name = host, port, name or host
        self.offer_starttls, self.chunking, self.rset_reply = starttls, chunking, rset_reply
        self.lock = threading.Lock()
        self.connections = 0
        self.starttls = 0
        self.messages = []
        self.server = None
        self.thread = None

    class _Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    def start(self):
        self.server = self._Server((self.host, self.port), _BrokenTlsHandler)
        self.server.side = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def received(self):
        with self.lock:
            return list(self.messages)

    def wait_messages(self, n, timeout=20.0):
        wait_for(lambda: len(self.received()) >= n, timeout=timeout,
                 what=f"{n} message(s) at far side {self.name}")
        return self.received()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()
            self.server = None


def free_shared_port(hosts):
    """A port that is free on every host address (loopback binds per address),
    from this pytest-xdist worker's share (conftest._port_share)."""
    for _ in range(500):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        index, count = _port_share()
        ok = (port >> 1) % count == index
        if not ok:
            continue
        for h in hosts[1:]:
            with socket.socket() as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free shared port")


class FarSides:
    """The far sides of one test; all on one port."""

    HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]

    def __init__(self, gmail_tls=False):
        self.port = free_shared_port(self.HOSTS)
        self.tmp = tempfile.TemporaryDirectory()
        self.sides = {}
        # Self-signed and for another name: a certificate that verifies
        # neither by chain nor by name (opportunistic TLS uses it anyway).
        tls = make_self_signed(self.tmp.name, cn="another-name.invalid") if gmail_tls else None
        self.gmail = self.add("127.0.0.2", name="mx.gmail.test", tls_context=tls)
        self.sender = self.add("127.0.0.4", name="mx.sender.test")

    def add(self, host, name=None, tls_context=None):
        side = FarSide(host, self.port, name=name, tls_context=tls_context).start()
        self.sides[host] = side
        return side

    def add_broken_tls(self, host, name=None, **options):
        """A BrokenTlsFarSide on `host` and the shared port (started); `options`
        as its constructor's (starttls, chunking, rset_reply)."""
        side = BrokenTlsFarSide(host, self.port, name=name, **options).start()
        self.sides[host] = side
        return side

    def stop(self):
        for side in self.sides.values():
            side.stop()
        self.tmp.cleanup()

    def toml(self, extra=""):
        """A [delivery] table naming the shared port (the table may appear once)."""
        return f"\n[delivery]\nsmtp_port = {self.port}\n{extra}\n"


@pytest.fixture
def farside():
    sides = FarSides()
    yield sides
    sides.stop()


@pytest.fixture
def farside_tls():
    """Like `farside`, but the gmail stand-in offers STARTTLS with a
    certificate that does not verify (self-signed, for another name)."""
    sides = FarSides(gmail_tls=True)
    yield sides
    sides.stop()
