"""POP3 (RFC 1939, 2449, 2595, 5034) against real clients: Python's poplib
(STLS on 110-style port, implicit TLS on the pop3s port) and fetchmail.

Mail goes in through hikyaku's SMTP listener, comes out by POP3 and must be
byte-exact apart from the trace headers hikyaku prepends (Return-Path,
Received). UIDLs must survive sessions and a restart; DELE must only take
effect at QUIT; a second session on the same maildrop gets [IN-USE];
plain-text logins need TLS unless allow_plaintext; failed logins are slowed.

Run: /usr/bin/python3 -m pytest tests/integration/test_pop3.py
"""
import os
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import maildir_messages, require_programs, wait_for

PASSWORD = "correct horse battery"


def tls_context(server):
    ctx = ssl.create_default_context(cafile=str(server.cert_path))
    # We connect to 127.0.0.1; the certificate names mx.example.test. The
    # chain is still verified; fetchmail below checks the name too.
    ctx.check_hostname = False
    return ctx


def make_message(tag, extra_body=b""):
    return (
        b"From: Sender <sender@example.org>\r\n"
        b"To: alice@example.test\r\n"
        b"Subject: pop3 test " + tag.encode() + b"\r\n"
        b"Message-ID: <" + tag.encode() + b"@example.org>\r\n"
        b"\r\n"
        b"first line of " + tag.encode() + b"\r\n"
        b".a line that starts with a dot\r\n"
        b"..two dots\r\n"
        b"\r\n"
        b"after an empty line\r\n" + extra_body
    )


def send(server, message, rcpt="alice@example.test"):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as s:
        s.sendmail("sender@example.org", [rcpt], message)


def deliver(server, count, name="alice"):
    sent = []
    for i in range(count):
        tag = f"m{i}-{uuid.uuid4().hex[:8]}"
        extra = b"x" * (i * 1000) + b"\r\n" if i else b""
        msg = make_message(tag, extra)
        send(server, msg, f"{name}@example.test")
        sent.append(msg)
    wait_for(lambda: len(maildir_messages(server.maildir(name))) >= count,
             what=f"{count} messages in {name}'s Maildir")
    return sent


def split_trace(retrieved: bytes, sent: bytes):
    """The retrieved message must be `sent` with only header lines before it."""
    assert retrieved.endswith(sent), "message body/headers changed in transit"
    prefix = retrieved[: len(retrieved) - len(sent)]
    lines = prefix.split(b"\r\n")[:-1]
    for line in lines:
        assert re.match(rb"^([A-Za-z0-9-]+:|[ \t])", line), f"unexpected prefix line {line!r}"
    return prefix


def login_stls(server, user="alice", password=PASSWORD):
    pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=30)
    pop.stls(context=tls_context(server))
    pop.user(user)
    pop.pass_(password)
    return pop


def login_ssl(server, user="alice", password=PASSWORD):
    pop = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, timeout=30, context=tls_context(server))
    pop.user(user)
    pop.pass_(password)
    return pop


def retry_login(fn, *args, **kwargs):
    """A dropped session releases its lock when the server notices EOF."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return fn(*args, **kwargs)
        except poplib.error_proto as e:
            if b"[IN-USE]" not in e.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def uidl_map(pop):
    _, lines, _ = pop.uidl()
    out = {}
    for line in lines:
        num, uid = line.split(b" ", 1)
        out[int(num)] = uid.decode()
    return out


def test_greeting_and_capa_without_tls(hikyaku):
    pop = poplib.POP3("127.0.0.1", hikyaku.pop3_port, timeout=30)
    assert pop.getwelcome() == b"+OK hikyaku POP3 ready"
    caps = pop.capa()
    for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS", "IMPLEMENTATION"):
        assert cap in caps, caps
    # RFC 2449 §6.8 / RFC 2595: no clear-text login offered before TLS.
    assert "USER" not in caps and "SASL" not in caps
    pop.quit()


def test_plaintext_login_refused_without_tls(hikyaku):
    hikyaku.set_password("alice", PASSWORD)
    pop = poplib.POP3("127.0.0.1", hikyaku.pop3_port, timeout=30)
    with pytest.raises(poplib.error_proto) as e:
        pop.user("alice")
    assert e.value.args[0].startswith(b"-ERR [AUTH]")
    with pytest.raises(poplib.error_proto) as e:
        pop._shortcmd("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==")
    assert e.value.args[0].startswith(b"-ERR [AUTH]")
    # After STLS the same login works and CAPA now offers USER and SASL.
    pop.stls(context=tls_context(hikyaku))
    caps = pop.capa()
    assert "USER" in caps and "STLS" not in caps and caps.get("SASL") == ["PLAIN", "LOGIN"]
    pop.user("alice")
    assert pop.pass_(PASSWORD).startswith(b"+OK")
    pop.quit()


def read_line_unbuffered(sock):
    """One CRLF line, read byte by byte: nothing after it leaves the socket
    (the bytes that follow belong to the TLS handshake)."""
    line = b""
    while not line.endswith(b"\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise EOFError(line)
        line += byte
    return line


def test_stls_discards_pipelined_plaintext(hikyaku):
    """RFC 2595 §3.1 / CVE-2011-0411: a command pipelined in plaintext after
    STLS must be discarded, never executed as if it came over TLS. The
    injected USER would make the PASS sent inside TLS log in; discarded, that
    PASS gets "send USER first" and the first reply inside TLS is PASS's own."""
    hikyaku.set_password("alice", PASSWORD)
    sock = socket.create_connection(("127.0.0.1", hikyaku.pop3_port), timeout=30)
    try:
        assert read_line_unbuffered(sock).startswith(b"+OK")
        sock.sendall(b"STLS\r\nUSER alice\r\n")  # the second line is the injection
        assert read_line_unbuffered(sock).startswith(b"+OK")
        tls = tls_context(hikyaku).wrap_socket(sock)
        f = tls.makefile("rb")
        tls.sendall(f"PASS {PASSWORD}\r\n".encode())
        assert f.readline() == b"-ERR send USER first\r\n"
        # The session itself works inside TLS.
        tls.sendall(f"USER alice\r\nPASS {PASSWORD}\r\n".encode())
        assert f.readline().startswith(b"+OK")
        assert f.readline().startswith(b"+OK maildrop has")
        tls.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
    finally:
        sock.close()


def test_plaintext_allowed_by_config(make_hikyaku):
    server = make_hikyaku(allow_plaintext=True)
    server.set_password("alice", PASSWORD)
    pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=30)
    assert "USER" in pop.capa()
    pop.user("alice")
    assert pop.pass_(PASSWORD).startswith(b"+OK")
    assert pop.stat() == (0, 0)
    pop.quit()


def test_retr_byte_exact_over_stls_and_pop3s(hikyaku):
    hikyaku.set_password("alice", PASSWORD)
    sent = deliver(hikyaku, 3)
    for login in (login_stls, login_ssl):
        pop = login(hikyaku)
        count, total = pop.stat()
        assert count == 3
        _, listing, _ = pop.list()
        sizes = {int(n): int(s) for n, s in (l.split() for l in listing)}
        assert sum(sizes.values()) == total
        for i, msg in enumerate(sent, start=1):
            resp, lines, octets = pop.retr(i)
            retrieved = b"\r\n".join(lines) + b"\r\n"
            assert octets == len(retrieved) == sizes[i], "RFC 1939 octet counts are the CRLF size"
            assert resp == f"+OK {sizes[i]} octets".encode()
            prefix = split_trace(retrieved, msg)
            assert b"Received:" in prefix
        # TOP with fetchmail's huge count gives the whole message, too.
        _, lines, _ = pop.top(2, 99999999)
        assert b"\r\n".join(lines) + b"\r\n" == b"\r\n".join(pop.retr(2)[1]) + b"\r\n"
        _, lines, _ = pop.top(1, 0)
        assert lines[-1] == b"" and b"first line" not in b"\r\n".join(lines)
        pop.quit()


def test_uidl_stable_across_sessions_and_restart(hikyaku):
    hikyaku.set_password("alice", PASSWORD)
    deliver(hikyaku, 2)
    pop = login_stls(hikyaku)
    first = uidl_map(pop)
    assert len(first) == 2 and len(set(first.values())) == 2
    for uid in first.values():
        assert 1 <= len(uid) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in uid)  # RFC 1939 §7
    pop.retr(1)  # RETR marks it seen (moves new/ → cur/): the UIDL must not change
    pop.quit()
    pop = retry_login(login_stls, hikyaku)
    assert uidl_map(pop) == first
    assert pop.uidl(2).split()[-1].decode() == first[2]
    pop.quit()
    hikyaku.restart()
    pop = login_ssl(hikyaku)
    assert uidl_map(pop) == first
    pop.quit()


def test_retr_of_a_message_another_program_removed_is_no_temporary_failure(hikyaku):
    """After login an IMAP client (here: a plain unlink) removes message 1:
    RETR answers that it was removed, not [SYS/TEMP] (which invites the
    client to retry for ever), and the server logs no error. The others
    are still served."""
    hikyaku.set_password("alice", PASSWORD)
    deliver(hikyaku, 2)
    pop = login_stls(hikyaku)
    first = uidl_map(pop)[1]
    [gone] = [m for m in maildir_messages(hikyaku.maildir("alice")) if m.name.startswith(first)]
    gone.unlink()
    with pytest.raises(poplib.error_proto) as refused:
        pop.retr(1)
    assert refused.value.args[0] == b"-ERR message was removed by another program since login"
    assert pop.retr(2)[0].startswith(b"+OK")
    pop.quit()
    assert " error " not in hikyaku.log_text()


def test_dele_applies_only_at_quit(hikyaku):
    hikyaku.set_password("alice", PASSWORD)
    deliver(hikyaku, 3)
    pop = login_stls(hikyaku)
    uids = uidl_map(pop)
    pop.dele(1)
    pop.dele(3)
    assert pop.stat()[0] == 1
    # Drop the connection without QUIT: no UPDATE state, nothing deleted.
    pop.close()  # no QUIT sent
    pop = retry_login(login_stls, hikyaku)
    assert uidl_map(pop) == uids
    # RSET undoes DELE.
    pop.dele(2)
    pop.rset()
    assert pop.stat()[0] == 3
    pop.dele(2)
    assert len(maildir_messages(hikyaku.maildir("alice"))) == 3
    assert pop.quit() == b"+OK hikyaku POP3 server signing off (2 messages left)"
    wait_for(lambda: len(maildir_messages(hikyaku.maildir("alice"))) == 2, what="deletion at QUIT")
    pop = retry_login(login_stls, hikyaku)
    assert sorted(uidl_map(pop).values()) == sorted([uids[1], uids[3]])
    pop.quit()


def test_second_session_gets_in_use(hikyaku):
    hikyaku.set_password("alice", PASSWORD)
    hikyaku.set_password("bob", "bob password")
    first = login_stls(hikyaku)
    second = poplib.POP3("127.0.0.1", hikyaku.pop3_port, timeout=30)
    second.stls(context=tls_context(hikyaku))
    second.user("alice")
    with pytest.raises(poplib.error_proto) as e:
        second.pass_(PASSWORD)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    # Another mailbox is independent.
    bob = login_ssl(hikyaku, "bob", "bob password")
    bob.quit()
    first.quit()
    # Once the first session has quit, the maildrop is free again.
    second.user("alice")
    assert second.pass_(PASSWORD).startswith(b"+OK")
    second.quit()


def test_bad_password_is_auth_error_and_delayed(hikyaku):
    hikyaku.set_password("alice", PASSWORD)
    pop = poplib.POP3("127.0.0.1", hikyaku.pop3_port, timeout=30)
    pop.stls(context=tls_context(hikyaku))
    for user in ("alice", "nobody"):
        pop.user(user)
        start = time.monotonic()
        with pytest.raises(poplib.error_proto) as e:
            pop.pass_("wrong password")
        elapsed = time.monotonic() - start
        assert e.value.args[0].startswith(b"-ERR [AUTH]")
        assert elapsed >= 0.9, f"failed login answered after {elapsed:.2f}s (failure_delay is 1s)"
    pop.close()
    log = hikyaku.log_text()
    assert "login failed: user=alice" in log
    assert "wrong password" not in log, "passwords must never be logged"


def test_auth_plain_initial_response_and_continuation(hikyaku):
    import base64
    hikyaku.set_password("alice", PASSWORD)
    token = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
    pop = poplib.POP3_SSL("127.0.0.1", hikyaku.pop3s_port, timeout=30, context=tls_context(hikyaku))
    assert pop._shortcmd("AUTH PLAIN " + token).startswith(b"+OK")
    pop.quit()
    pop = retry_login(lambda: _auth_plain_continuation(hikyaku, token))
    pop.quit()
    # "*" cancels (RFC 5034 §4).
    pop = poplib.POP3_SSL("127.0.0.1", hikyaku.pop3s_port, timeout=30, context=tls_context(hikyaku))
    pop._putcmd("AUTH PLAIN")
    assert pop._getline()[0].startswith(b"+")
    pop._putcmd("*")
    assert pop._getline()[0].startswith(b"-ERR")
    pop.quit()


def _auth_plain_continuation(server, token):
    pop = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, timeout=30, context=tls_context(server))
    pop._putcmd("AUTH PLAIN")
    assert pop._getline()[0].startswith(b"+")
    pop._putcmd(token)
    line = pop._getline()[0]
    if not line.startswith(b"+OK"):
        pop.close()
        raise poplib.error_proto(line)
    return pop


def test_pipelined_commands(hikyaku):
    hikyaku.set_password("alice", PASSWORD)
    deliver(hikyaku, 2)
    ctx = tls_context(hikyaku)
    with socket.create_connection(("127.0.0.1", hikyaku.pop3s_port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="mx.example.test") as s:
            f = s.makefile("rb")
            assert f.readline().startswith(b"+OK")
            s.sendall(f"USER alice\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST 2\r\nNOOP\r\nQUIT\r\n".encode())
            replies = [f.readline() for _ in range(6)]
            assert [r[:3] for r in replies] == [b"+OK"] * 6, replies
            assert replies[2].startswith(b"+OK 2 ")


def test_fetchmail_ssl_fetches_all_then_nothing(hikyaku, tmp_path):
    require_programs("fetchmail")
    hikyaku.set_password("alice", PASSWORD)
    sent = deliver(hikyaku, 3)
    home = tmp_path / "fmhome"
    out = tmp_path / "fetched"
    home.mkdir()
    out.mkdir()
    mda = home / "mda.sh"
    mda.write_text(f'#!/bin/sh\nexec cat > "$(mktemp -p {out} msg.XXXXXX)"\n')
    mda.chmod(0o755)
    rc = home / "fetchmailrc"
    rc.write_text(
        f'poll 127.0.0.1 port {hikyaku.pop3s_port} with proto POP3 uidl\n'
        f'  user "alice" there with password "{PASSWORD}" is "root" here\n'
        f'  options keep ssl sslcertck sslcertfile "{hikyaku.cert_path}" '
        f'sslcommonname "mx.example.test" mda "{mda}"\n')
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))

    def run():
        return subprocess.run(
            ["fetchmail", "-f", str(rc), "--idfile", str(home / "ids"), "--nosyslog",
             "--pidfile", str(home / "pid"), "-v"],
            env=env, capture_output=True, text=True, timeout=120)

    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    files = sorted(out.iterdir())
    assert len(files) == 3, first.stdout + first.stderr
    got = sorted(p.read_bytes() for p in files)
    # fetchmail hands the MDA LF line endings and may add its own trace header.
    for msg in sent:
        body = msg.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
        assert any(g.endswith(body) for g in got)
    assert "TOP 1 99999999" in first.stdout + first.stderr or "RETR 1" in first.stdout + first.stderr

    second = run()
    assert second.returncode == 1, second.stdout + second.stderr  # 1: no new mail
    assert len(list(out.iterdir())) == 3
    # keep: nothing was deleted on the server.
    assert len(maildir_messages(hikyaku.maildir("alice"))) == 3


def test_idle_timeout_logs_out_without_update(make_hikyaku):
    server = make_hikyaku(limits_extra='pop3_idle_timeout = "2s"')
    server.set_password("alice", PASSWORD)
    deliver(server, 1)
    pop = login_ssl(server)
    pop.dele(1)
    start = time.monotonic()
    # RFC 1939 §3: the autologout timer ends the session without UPDATE.
    line = pop._getline()[0]
    assert line.startswith(b"-ERR"), line
    assert time.monotonic() - start < 10
    pop.close()
    pop = retry_login(login_ssl, server)
    assert pop.stat()[0] == 1
    pop.quit()


def test_a_client_that_stops_reading_is_cut_off(make_hikyaku):
    """A RETR whose answer the client never reads: each 64 KiB block of the
    reply must leave within pop3_idle_timeout, so the session ends (with its
    connection slot and maildrop lock) instead of waiting forever. 20 MB is
    more than loopback's socket buffers hold."""
    server = make_hikyaku(limits_extra='pop3_idle_timeout = "2s"', message_size="30M")
    server.set_password("alice", PASSWORD)
    send(server, make_message("big-" + uuid.uuid4().hex[:8], (b"y" * 998 + b"\r\n") * 20000))
    wait_for(lambda: len(maildir_messages(server.maildir("alice"))) == 1, what="the big message delivered")
    pop = login_ssl(server)
    pop.sock.sendall(b"RETR 1\r\n")  # and never read the answer
    wait_for(lambda: "write timeout: the client stopped reading" in server.log_text(), timeout=30,
             what="the server to give up writing")
    pop.close()
    pop = retry_login(login_ssl, server)
    assert pop.stat()[0] == 1
    pop.quit()


def test_connection_limit_answers_sys_temp(make_hikyaku):
    server = make_hikyaku(limits_extra="connections_per_ip = 2")
    held = []
    deadline = time.monotonic() + 10
    try:
        # The fixture's start-up probes hold slots until the server sees them
        # close, so take the two slots as soon as they are free.
        while len(held) < 2:
            s = socket.create_connection(("127.0.0.1", server.pop3_port), timeout=30)
            if s.makefile("rb").readline().startswith(b"+OK"):
                held.append(s)
            else:
                s.close()
                assert time.monotonic() < deadline, "connection slots never freed"
                time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", server.pop3_port), timeout=30) as third:
            assert third.makefile("rb").readline() == b"-ERR [SYS/TEMP] too many connections\r\n"
    finally:
        for s in held:
            s.close()
