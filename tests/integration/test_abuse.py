"""Limits that hold under abuse (issue 13 item 4), against the real server
with Python's imaplib, poplib and smtplib from several loopback source
addresses:

  * failed logins are counted per source address across POP3, IMAP and
    submission; past [auth] failure_limit that address is locked out (even
    its right password is refused) while another address logs in;
  * password checks run in a bounded pool below mail's priority: a storm of
    parallel wrong logins does not delay SMTP replies.

Run: HIKYAKU_BIN=build/src/app/hikyaku /usr/bin/python3 -m pytest -q tests/integration/test_abuse.py
"""
import imaplib
import poplib
import smtplib
import socket
import ssl
import threading
import time

import pytest

from conftest import wait_for

PASSWORD = "the right password"


def no_verify():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SourceImap(imaplib.IMAP4):
    """IMAP from a chosen loopback source address."""

    def __init__(self, host, port, source):
        self._source = source
        super().__init__(host, port)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout=timeout, source_address=(self._source, 0))


class SourcePop3(poplib.POP3):
    def __init__(self, host, port, source):
        self._source = source
        super().__init__(host, port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))


def imap_login(server, source, password):
    """True when the login succeeds."""
    m = SourceImap("127.0.0.1", server.imap_port, source)
    try:
        m.login("alice", password)
        m.logout()
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def pop3_login(server, source, password):
    p = SourcePop3("127.0.0.1", server.pop3_port, source)
    try:
        p.user("alice")
        p.pass_(password)
        p.quit()
        return True
    except poplib.error_proto:
        return False
    finally:
        p.close()


def submission_login(server, source, password):
    with smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, timeout=30, context=no_verify(),
                          source_address=(source, 0)) as s:
        try:
            s.login("alice", password)
            return True
        except smtplib.SMTPAuthenticationError:
            return False


def test_failed_logins_lock_out_one_source_across_protocols(make_hikyaku):
    srv = make_hikyaku(allow_plaintext=True, failure_delay="0s",
                       auth_extra='failure_limit = 10\nfailure_window = "10m"\nlockout = "10m"')
    srv.set_password("alice", PASSWORD)
    attacker, neighbour = "127.0.0.7", "127.0.0.8"
    logins = [imap_login, pop3_login, submission_login]
    for i in range(12):
        assert not logins[i % 3](srv, attacker, f"guess {i}")
    wait_for(lambda: f"[{attacker}] locked out for 600 s after 10 failed logins" in srv.log_text(),
             what="the lockout log line")
    # Locked: the right password is refused too, on every protocol.
    for login in logins:
        assert not login(srv, attacker, PASSWORD), login.__name__
    assert f"[{attacker}] is locked out after too many failed logins" in srv.log_text()
    # Another source address logs in normally, on every protocol.
    for login in logins:
        assert login(srv, neighbour, PASSWORD), login.__name__


def smtp_noop_times(port, stop, out):
    """Round trips of NOOP on one SMTP connection until `stop` is set."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("probe.example")
        while not stop.is_set():
            t0 = time.monotonic()
            code, _ = s.noop()
            out.append(time.monotonic() - t0)
            assert code == 250
            time.sleep(0.02)


def test_a_password_storm_does_not_slow_smtp(make_hikyaku):
    """30 parallel wrong logins (each source once: no lockout helps here):
    argon2id runs in its own small pool below mail's priority, so SMTP
    replies stay fast while the guesses are checked one by one."""
    srv = make_hikyaku(failure_delay="0s")
    srv.set_password("alice", PASSWORD)
    stop = threading.Event()
    times = []
    prober = threading.Thread(target=smtp_noop_times, args=(srv.smtp_port, stop, times))
    prober.start()
    wait_for(lambda: len(times) >= 5, what="the SMTP probe to run")
    results = []

    def guess(i):
        results.append(submission_login(srv, f"127.0.1.{i + 1}", f"wrong {i}"))

    storm = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
    before = len(times)
    for t in storm:
        t.start()
    for t in storm:
        t.join(timeout=120)
    during = times[before:]
    stop.set()
    prober.join(timeout=30)
    assert results == [False] * 30
    assert srv.log_text().count("login failed: user=alice mechanism=PLAIN") == 30
    assert len(during) >= 10, f"only {len(during)} SMTP round trips during the storm"
    slowest = max(during)
    print(f"storm: {len(during)} replies, slowest {slowest*1000:.1f} ms, median {sorted(during)[len(during)//2]*1000:.1f} ms")
    assert slowest < 0.3, f"an SMTP reply took {slowest * 1000:.0f} ms during the storm (median " \
                          f"{sorted(during)[len(during) // 2] * 1000:.1f} ms, {len(during)} replies)"
