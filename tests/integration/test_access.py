"""Issue 13: per-listener access lists ([access]) and per-protocol connection
limits ([limits] connections, connections_per_ip), over the real binary.

Clients connect from different loopback source addresses (127.0.0.x, all
routed to lo on Linux): an allowed address gets the normal greeting, a
denied one the protocol's refusal (SMTP `554 5.7.1 Access denied` as the
greeting, RFC 5321 §3.1; POP3 `-ERR access denied`; IMAP `* BYE access
denied`, RFC 3501 §7.1.5) and a closed connection, and the server logs one
info line naming the listener and the address. SMTP clients that fill the
SMTP pool do not shut out IMAP or POP3.
Run: /usr/bin/python3 -m pytest tests/integration/test_access.py
"""
import imaplib
import poplib
import re
import smtplib
import socket
import subprocess

import pytest

from conftest import HIKYAKU_BIN, wait_for

PASSWORD = "correct horse battery"


class Pop3From(poplib.POP3):
    """poplib.POP3 from a chosen source address (poplib has no parameter)."""

    def __init__(self, host, port, source, timeout=10):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))


class Imap4From(imaplib.IMAP4):
    """imaplib.IMAP4 from a chosen source address."""

    def __init__(self, host, port, source, timeout=10):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout=None):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))


def raw_greeting(port, source):
    """Everything the server says to a client from `source` that sends
    nothing, up to the server closing the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk


def denied_lines(server, listener, ip):
    return re.findall(rf" info net: {listener}: access denied for \[{re.escape(ip)}\]$", server.log_text(), re.M)


def test_smtp_deny_list(make_hikyaku):
    h = make_hikyaku(extra='\n[access]\nsmtp = { deny = ["127.0.0.66/32"] }\n')
    # RFC 5321 §3.1: 554 in place of the greeting, then the server closes.
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", h.smtp_port, timeout=10, source_address=("127.0.0.66", 0))
    assert refused.value.smtp_code == 554
    assert refused.value.smtp_error == b"5.7.1 Access denied"
    assert raw_greeting(h.smtp_port, "127.0.0.66") == b"554 5.7.1 Access denied\r\n"
    wait_for(lambda: len(denied_lines(h, "smtp", "127.0.0.66")) == 2, what="two access-denied log lines")

    # Any other address is served: deny-only lists allow the rest.
    with smtplib.SMTP("127.0.0.1", h.smtp_port, timeout=10, source_address=("127.0.0.65", 0)) as s:
        assert s.ehlo()[0] == 250
        s.sendmail("sender@example.org", ["alice@example.test"], b"Subject: allowed\r\n\r\nhello\r\n")
    wait_for(lambda: len(h.messages("alice")) == 1, what="the allowed client's message")
    assert not denied_lines(h, "smtp", "127.0.0.65")

    # The rules are per listener: POP3 and IMAP serve 127.0.0.66.
    assert raw_greeting_start(h.pop3_port, "127.0.0.66").startswith(b"+OK")
    assert raw_greeting_start(h.imap_port, "127.0.0.66").startswith(b"* OK")


def raw_greeting_start(port, source):
    """The first line the server sends a client from `source`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        return s.makefile("rb").readline()


def test_imap_and_pop3_allow_lists(make_hikyaku):
    # Deny wins over allow: 127.0.0.9 is inside the allowed /29 but denied.
    h = make_hikyaku(allow_plaintext=True, extra="""
[access]
imap = { allow = ["192.0.2.0/24", "127.0.0.0/29"], deny = ["127.0.0.5"] }
pop3 = { allow = ["127.0.0.1", "::ffff:127.0.0.2/128"], deny = [] }
""")
    h.set_password("alice", PASSWORD)

    # IMAP: allowed addresses log in; others get BYE at the greeting.
    im = Imap4From("127.0.0.1", h.imap_port, "127.0.0.7")
    assert im.login("alice", PASSWORD)[0] == "OK"
    assert im.select("INBOX")[0] == "OK"
    im.logout()
    for denied in ("127.0.0.5", "127.0.0.8"):  # denied by deny, outside allow
        with pytest.raises(imaplib.IMAP4.error) as refused:
            Imap4From("127.0.0.1", h.imap_port, denied)
        assert "access denied" in str(refused.value)
        assert raw_greeting(h.imap_port, denied) == b"* BYE access denied\r\n"
        wait_for(lambda: len(denied_lines(h, "imap", denied)) == 2, what=f"imap log lines for {denied}")

    # POP3: a mapped-IPv6 rule matches the IPv4 client.
    for allowed in ("127.0.0.1", "127.0.0.2"):
        p = Pop3From("127.0.0.1", h.pop3_port, allowed)
        p.user("alice")
        p.pass_(PASSWORD)
        assert p.stat() == (0, 0)
        p.quit()
    with pytest.raises(poplib.error_proto) as refused:
        Pop3From("127.0.0.1", h.pop3_port, "127.0.0.3")
    assert str(refused.value) == "b'-ERR access denied'"
    assert raw_greeting(h.pop3_port, "127.0.0.3") == b"-ERR access denied\r\n"
    wait_for(lambda: len(denied_lines(h, "pop3", "127.0.0.3")) == 2, what="pop3 log lines")


def test_implicit_tls_listener_denied_is_closed_without_tls(make_hikyaku):
    # A denied network never reaches the TLS stack: closed at once.
    h = make_hikyaku(extra='\n[access]\nimaps = { allow = ["127.0.0.1"] }\npop3s = { deny = ["127.0.0.0/8"] }\n')
    assert raw_greeting(h.imaps_port, "127.0.0.20") == b""
    assert raw_greeting(h.pop3s_port, "127.0.0.1") == b""
    wait_for(lambda: denied_lines(h, "imaps", "127.0.0.20") and denied_lines(h, "pop3s", "127.0.0.1"),
             what="imaps and pop3s log lines")


def test_bad_cidr_is_a_configuration_error(tmp_path):
    cfg = tmp_path / "h.toml"
    cfg.write_text('[access]\nimap = { allow = ["192.0.2.1/24"] }\n')
    r = subprocess.run([HIKYAKU_BIN, "check-config", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert (f"{cfg}:2:19: access.imap.allow: '192.0.2.1/24' is not an address or ADDRESS/LENGTH prefix: "
            "host bits set after /24 (the network is 192.0.2.0/24)") in r.stderr + r.stdout


def test_full_smtp_pool_does_not_shut_out_imap_and_pop3(make_hikyaku):
    # Issue 13: 100 idle SMTP connections from 50 addresses fill the SMTP
    # pool (stress_timeout long enough that none of them is cut off while
    # the test runs).
    h = make_hikyaku(allow_plaintext=True,
                     limits_extra='connections = 100\nconnections_per_ip = 2\nstress_timeout = "5m"')
    h.set_password("alice", PASSWORD)
    # start() probed every port from 127.0.0.1: let that SMTP session end so
    # that it holds no slot of the pool this test fills.
    wait_for(lambda: re.search(r"smtpd: \S+ disconnect from \[127\.0\.0\.1\]", h.log_text()),
             what="the start-up probe's SMTP session to end")

    idle = []
    try:
        for n in range(100):
            source = f"127.0.0.{11 + n // 2}"
            s = socket.create_connection(("127.0.0.1", h.smtp_port), timeout=10, source_address=(source, 0))
            idle.append(s)
            assert s.makefile("rb").readline().startswith(b"220 "), source
        # The pool is full: the next address, and a second connection from
        # one already in, get 421 (RFC 5321 §3.8).
        assert raw_greeting(h.smtp_port, "127.0.0.100").startswith(b"421 4.7.0 ")
        assert raw_greeting(h.smtp_port, "127.0.0.11").startswith(b"421 4.7.0 ")

        # IMAP and POP3 have pools of their own, even for the same addresses.
        im = Imap4From("127.0.0.1", h.imap_port, "127.0.0.11")
        assert im.login("alice", PASSWORD)[0] == "OK"
        assert im.select("INBOX")[0] == "OK"
        p = Pop3From("127.0.0.1", h.pop3_port, "127.0.0.11")
        assert p.getwelcome().startswith(b"+OK")
        p.user("alice")
        p.pass_(PASSWORD)
        assert p.stat() == (0, 0)
        p.quit()
        im.logout()
        # ...and the SMTP pool is still full.
        assert raw_greeting(h.smtp_port, "127.0.0.101").startswith(b"421 4.7.0 ")
    finally:
        for s in idle:
            s.close()
    # A slot comes back when its client leaves.
    def greeted():
        line = raw_greeting_start(h.smtp_port, "127.0.0.102")
        return line.startswith(b"220 ")
    wait_for(greeted, what="an SMTP slot after the idle clients left")
