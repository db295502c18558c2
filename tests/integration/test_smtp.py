"""Inbound SMTP server against real clients: smtplib (plain and STARTTLS)
and swaks edge cases with exact reply codes (RFC 5321, 1870, 2920, 3207,
6152, 6531). Mail must land in the Maildir byte-exact apart from the trace
fields we add.

Run: HIKYAKU_BIN=build/src/app/hikyaku /usr/bin/python3 -m pytest tests/integration/test_smtp.py
"""
import smtplib
import socket
import ssl
import subprocess

from conftest import require_programs, wait_for

TRACE_FIELDS = (b"received:", b"authentication-results:", b"return-path:", b"delivered-to:", b"x-hikyaku-")


def strip_trace(data: bytes) -> bytes:
    """Drop the trace/delivery fields a receiving MTA may prepend (Received,
    our Authentication-Results since issue 4, …) (and their
    folded continuation lines) from the top of a stored message."""
    lines = data.split(b"\r\n") if b"\r\n" in data else data.split(b"\n")
    sep = b"\r\n" if b"\r\n" in data else b"\n"
    i = 0
    while i < len(lines):
        if lines[i].lower().startswith(TRACE_FIELDS):
            i += 1
            while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                i += 1
        else:
            break
    return sep.join(lines[i:])


def as_stored(message: bytes, stored: bytes) -> bytes:
    """Maildir files use the local line ending (LF, as Dovecot and mutt
    expect); compare in the file's convention, byte for byte otherwise."""
    return message if b"\r\n" in stored else message.replace(b"\r\n", b"\n")


def wait_messages(server, mailbox, n, timeout=20):
    return wait_for(lambda: len(server.messages(mailbox)) >= n and server.messages(mailbox),
                    timeout=timeout, what=f"{n} message(s) in {mailbox}")


def swaks(server, *args, timeout=60):
    require_programs("swaks")
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(server.smtp_port),
           "--helo", "client.example", "--from", "sender@remote.example", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


MESSAGE = (b"From: Sender <sender@remote.example>\r\n"
           b"To: Alice <alice@example.test>\r\n"
           b"Subject: integration\r\n"
           b"Message-ID: <smtp-it-1@remote.example>\r\n"
           b"\r\n"
           b"Hello Alice,\r\n"
           b".a line that starts with a dot\r\n"
           b"..two dots\r\n"
           b"\r\n"
           b"bye\r\n")


def test_greeting_and_ehlo_rfc5321_4_1_1_1(hikyaku):
    with smtplib.SMTP("127.0.0.1", hikyaku.smtp_port, timeout=10) as s:
        code, banner = s.ehlo("client.example")
        assert code == 250
        assert s.has_extn("pipelining")
        assert s.has_extn("8bitmime")
        assert s.has_extn("smtputf8")
        assert s.has_extn("enhancedstatuscodes")
        assert s.has_extn("starttls")
        assert s.esmtp_features["size"] == str(1024 * 1024)


def test_smtplib_plain_lands_byte_exact_rfc5321_4_5_2(hikyaku):
    with smtplib.SMTP("127.0.0.1", hikyaku.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        refused = s.sendmail("sender@remote.example", ["alice@example.test"], MESSAGE)
        assert refused == {}
    files = wait_messages(hikyaku, "alice", 1)
    data = files[0].read_bytes()
    assert strip_trace(data) == as_stored(MESSAGE, data)
    # RFC 5321 §4.4: our Received comes first and names both ends.
    assert data.lower().count(b"received: from client.example ([127.0.0.1])") == 1
    assert b"by mx.example.test (hikyaku) with ESMTP id " in data


def test_postmaster_is_always_accepted_rfc5321_4_5_1(hikyaku):
    """No [[address]] names postmaster: the bare form and postmaster@ the
    domain, in any case, are accepted and land in the first [[mailbox]]."""
    with smtplib.SMTP("127.0.0.1", hikyaku.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail("sender@remote.example")
        assert s.rcpt("<postmaster>")[0] == 250
        assert s.rcpt("PostMaster@Example.Test")[0] == 250
        assert s.data(MESSAGE)[0] == 250
    files = wait_messages(hikyaku, "alice", 1)
    assert strip_trace(files[0].read_bytes()) == as_stored(MESSAGE, files[0].read_bytes())
    r = hikyaku.run_cli("check-config")
    assert "postmaster@ your domains goes to mailbox alice" in r.stdout, r.stdout


def test_smtplib_starttls_rfc3207(hikyaku):
    ctx = ssl.create_default_context(cafile=str(hikyaku.cert_path))
    ctx.check_hostname = False  # we connect to 127.0.0.1; the cert names mx.example.test
    with smtplib.SMTP("127.0.0.1", hikyaku.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        code, _ = s.starttls(context=ctx)
        assert code == 220
        s.ehlo("client.example")
        assert not s.has_extn("starttls")  # RFC 3207 §4.2: not offered again
        s.sendmail("sender@remote.example", ["bob@example.test"], MESSAGE)
    files = wait_messages(hikyaku, "bob", 1)
    data = files[0].read_bytes()
    assert strip_trace(data) == as_stored(MESSAGE, data)
    assert b" with ESMTPS id " in data


def test_smtputf8_and_8bitmime_rfc6531_rfc6152(hikyaku):
    body = ("From: δοκιμή@παράδειγμα.example\r\nTo: alice@example.test\r\n"
            "Subject: ünïcödé\r\n\r\nκαλημέρα\r\n").encode()
    with smtplib.SMTP("127.0.0.1", hikyaku.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        # A UTF-8 reverse-path without SMTPUTF8 is refused (RFC 6531 §3.4).
        s.send("MAIL FROM:<δοκιμή@παράδειγμα.example>\r\n".encode())
        code, msg = s.getreply()
        assert code == 553 and msg.startswith(b"5.6.7"), (code, msg)
        s.rset()
        s.sendmail("δοκιμή@παράδειγμα.example", ["alice@example.test"], body,
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    files = wait_messages(hikyaku, "alice", 1)
    data = files[0].read_bytes()
    assert strip_trace(data) == as_stored(body, data)
    assert b" with UTF8SMTP id " in data


def test_swaks_pipelining_rfc2920(hikyaku):
    r = swaks(hikyaku, "--to", "alice@example.test", "--pipeline", "--body", "pipelined body")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    wait_messages(hikyaku, "alice", 1)


def test_swaks_unknown_recipient_550_5_1_1(hikyaku):
    r = swaks(hikyaku, "--to", "nobody@example.test")
    assert r.returncode == 24, r.stdout
    assert "550 5.1.1" in r.stdout


def test_swaks_relay_attempt_554_5_7_1(hikyaku):
    r = swaks(hikyaku, "--to", "victim@elsewhere.example")
    assert r.returncode == 24, r.stdout
    assert "554 5.7.1" in r.stdout


def test_swaks_oversize_552_5_3_4_rfc1870(hikyaku, tmp_path):
    big = tmp_path / "big.eml"
    line = b"x" * 998 + b"\r\n"
    big.write_bytes(b"Subject: big\r\n\r\n" + line * 1100)  # > 1M
    r = swaks(hikyaku, "--to", "alice@example.test", "--data", "@" + str(big))
    assert r.returncode == 26, r.stdout
    assert "552 5.3.4" in r.stdout
    # The declared SIZE is refused at MAIL (RFC 1870 §6.2).
    with smtplib.SMTP("127.0.0.1", hikyaku.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        code, msg = s.mail("sender@remote.example", ["SIZE=2000000"])
        assert (code, msg[:5]) == (552, b"5.3.4")


def test_swaks_bare_lf_body_550_5_5_2_rfc5321_2_3_8(hikyaku, tmp_path):
    # swaks turns "--body $'a\\nb'" into CRLF lines unless --no-data-fixup
    # (checked against a byte-capturing sink); then the data must carry its
    # own terminator, which swaks completes with the final CRLF.
    msg = tmp_path / "barelf.eml"
    msg.write_bytes(b"Subject: bare LF\r\n\r\na\nb\r\n.")
    r = swaks(hikyaku, "--to", "alice@example.test", "--data", "@" + str(msg), "--no-data-fixup")
    assert r.returncode == 26, r.stdout
    assert "550 5.5.2" in r.stdout
    # The session stayed in sync: a normal message right after is accepted.
    r = swaks(hikyaku, "--to", "alice@example.test", "--body", "clean")
    assert r.returncode == 0, r.stdout
    files = wait_messages(hikyaku, "alice", 1)
    assert len(files) == 1


def test_swaks_too_many_received_554_5_4_6_rfc5321_6_3(hikyaku, tmp_path):
    hops = b"".join(b"Received: from hop%d.example by hop%d.example; Thu, 1 Jan 2026 00:00:00 +0000\r\n" % (i, i + 1)
                    for i in range(51))
    msg = tmp_path / "loop.eml"
    msg.write_bytes(hops + b"Subject: loop\r\n\r\nbody\r\n")
    r = swaks(hikyaku, "--to", "alice@example.test", "--data", "@" + str(msg))
    assert r.returncode == 26, r.stdout
    assert "554 5.4.6" in r.stdout


def test_sequence_errors_and_misc_rfc5321_4_3_2(hikyaku):
    with socket.create_connection(("127.0.0.1", hikyaku.smtp_port), timeout=10) as sock:
        f = sock.makefile("rb")

        def reply():
            lines = []
            while True:
                line = f.readline()
                assert line, "connection closed"
                lines.append(line.rstrip(b"\r\n"))
                if line[3:4] != b"-":
                    return b"\n".join(lines)

        assert reply().startswith(b"220 mx.example.test ESMTP")
        for cmd, want in [(b"MAIL FROM:<a@remote.example>", b"503 5.5.1"),
                          (b"EHLO client.example", b"250-mx.example.test"),
                          (b"DATA", b"503 5.5.1"),
                          (b"VRFY alice", b"252 2.5.2"),
                          (b"HELP", b"214"),
                          (b"NOOP", b"250 2.0.0"),
                          (b"XYZZY", b"500 5.5.2"),
                          (b"MAIL FROM:<a@remote.example>", b"250 2.1.0"),
                          (b"DATA", b"554 5.5.1"),
                          (b"RSET", b"250 2.0.0"),
                          (b"NOOP " + b"x" * 5000, b"500 5.5.6"),
                          (b"QUIT", b"221 2.0.0")]:
            sock.sendall(cmd + b"\r\n")
            got = reply()
            assert got.startswith(want), (cmd[:40], got)
