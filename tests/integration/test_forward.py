"""Forward at once, divert on refusal (issue 3: fallback, DSN, notice, no leak, loops).

The real binary, a real dnsmasq (gmail.test MX → 127.0.0.2, sender.test MX →
127.0.0.4) and aiosmtpd far sides (farside.py): `ituki@example.test` is
delivered to mailbox `ituki` (the PC copy) and forwarded to
`ituki-ex@gmail.test` with fallback mailbox `ituki-gm`. The original sender
is `someone@sender.test`, whose MX is the recording sink at 127.0.0.4.

For every scenario: where the message ended, that the PC copy arrived
exactly once, that the sender's sink got nothing (hidden) or exactly one
RFC 3464 DSN (non-hidden), and that the hidden address occurs in no byte
that reached the sender side (SMTP replies and everything the sink got).
Waits are on conditions (wait_for), never sleeps.
"""
import email
import email.policy
import smtplib
import time

import pytest

from conftest import wait_for
from forward_client import FORWARD, RCPT, SENDER, Client, config, message
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import EICAR, farside  # noqa: F401  (pytest fixture)



def sender_side_bytes(fs, client):
    data = b"".join(m.data for m in fs.sender.attempts)
    data += " ".join(client.replies).encode()
    data += " ".join(str(m.rcpt_tos) + str(m.mail_from) for m in fs.sender.attempts).encode()
    return data


def assert_no_leak(fs, client, hk=None):
    blob = sender_side_bytes(fs, client).lower()
    assert FORWARD.encode() not in blob
    assert b"ituki-ex" not in blob


def read(path):
    return path.read_bytes()


def wait_mailbox(hk, name, n, timeout=20):
    return wait_for(lambda: len(hk.messages(name)) >= n and hk.messages(name), timeout=timeout,
                    what=f"{n} message(s) in mailbox {name}")


def wait_spool_empty(hk, timeout=20):
    q = hk.data_dir / "spool" / "queue"
    wait_for(lambda: q.is_dir() and not any(q.iterdir()), timeout=timeout, what="an empty queue")


def diverted_header(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return msg.get("X-Hikyaku-Diverted")


def parse_dsn(raw):
    """Parse with Python's email package; return (msg, per-recipient fields)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status",
                                                     "text/rfc822-headers"]
    # email parses message/delivery-status into a list of header blocks.
    blocks = parts[1].get_payload()
    per_message, per_recipient = blocks[0], blocks[1:]
    assert per_message["Reporting-MTA"].startswith("dns;")
    return msg, per_recipient


# --- hidden forward ---------------------------------------------------------

def test_accept_forwards_once_and_no_fallback(make_hikyaku, dns_server, farside):
    hk = make_hikyaku(extra=config(dns_server, farside))
    c = Client(hk)
    c.send(message("accepted"))
    got = farside.gmail.wait_messages(1)
    assert got[0].rcpt_tos == [FORWARD]
    # The forwarded copy names the original recipient for loop detection.
    assert f"X-Forwarded-For: {RCPT}\r\n".encode() in got[0].data
    assert f"X-Forwarded-To: {FORWARD}\r\n".encode() in got[0].data
    assert b"X-Hikyaku-Forwarded-For" not in got[0].data
    wait_mailbox(hk, "ituki", 1)
    wait_spool_empty(hk)
    assert len(hk.messages("ituki")) == 1
    assert hk.messages("ituki-gm") == []
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


def test_long_lines_and_nul_kept_locally_and_broken_at_998_when_forwarded(make_hikyaku, dns_server, farside):
    """Issue 13 item 7, as Postfix: lines over 998 octets and NUL bytes are
    accepted and stored unchanged (the PC copy is byte-exact); forwarded by
    SMTP, a line over 998 octets is broken with CRLF SPACE every 998 octets
    (smtp_line_length_limit), so no line on the wire exceeds RFC 5321's 1000."""
    hk = make_hikyaku(extra=config(dns_server, farside))
    long_header = "X-Long: " + "h" * 1500
    body_line = "b" * 2500
    msg = message("long lines").replace(b"Subject:", long_header.encode() + b"\r\nSubject:", 1)
    msg = msg.replace(b"Hello from the sender.\r\n", body_line.encode() + b"\r\nNUL\x00here\r\n")
    Client(hk).send(msg)
    local = wait_mailbox(hk, "ituki", 1)[0].read_bytes()  # Maildir: LF line endings
    assert body_line.encode() + b"\nNUL\x00here\n" in local and long_header.encode() + b"\n" in local
    got = farside.gmail.wait_messages(1)[0].data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert all(len(line) <= 998 for line in got.split(b"\r\n")), max(len(x) for x in got.split(b"\r\n"))
    assert ("b" * 998 + "\r\n " + "b" * 997 + "\r\n " + "b" * 505 + "\r\n").encode() in got
    assert ("X-Long: " + "h" * 990 + "\r\n " + "h" * 510 + "\r\n").encode() in got  # a folded header
    assert b"NUL\x00here\r\n" in got
    wait_spool_empty(hk)


def test_dns_answers_are_cached_by_their_ttl_and_asked_without_blocking(make_hikyaku, dns_server, farside,
                                                                         tmp_path):
    """DNS runs on the event loop, asynchronously (libunbound's result fd in
    the loop; the verifiers decide as the answers arrive). The first message
    from a domain asks dnsmasq for what its checks and its forward need;
    with answers that may be cached (--local-ttl=300) the next message asks
    nothing at all, and gets the same stamp and forward; a refusal still
    diverts at once, hidden."""
    dns_server.log_queries(tmp_path / "dnsmasq.log")
    dns_server.set_local_ttl(300)
    hk = make_hikyaku(extra=config(dns_server, farside))
    c = Client(hk)
    c.send(message("cold cache"))
    farside.gmail.wait_messages(1)
    dns_server.mark("first.mark.test")
    cold = dns_server.queries()
    # SPF and DMARC of the sender's domain, the forward's MX and its host.
    for asked in ("TXT sender.test", "TXT _dmarc.sender.test", "MX gmail.test", "A mx.gmail.test"):
        assert asked in cold, cold

    c.send(message("warm cache"))
    got = farside.gmail.wait_messages(2)
    dns_server.mark("second.mark.test")
    warm = dns_server.queries()
    assert warm[len(cold):] == ["TXT second.mark.test"], "cached answers are not asked again"
    assert [m.rcpt_tos for m in got] == [[FORWARD], [FORWARD]]
    assert b"warm cache" in got[1].data
    for m in got:
        assert b"Authentication-Results: " in m.data
        assert f"X-Forwarded-For: {RCPT}\r\n".encode() in m.data

    farside.gmail.set_mode("reject_rcpt")
    c.send(message("refused with a warm cache"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    assert b"refused with a warm cache" in read(copy)
    assert "550 5.7.1" in diverted_header(read(copy))
    wait_mailbox(hk, "ituki", 3)
    wait_spool_empty(hk)
    assert len(hk.messages("ituki")) == 3
    assert len(farside.gmail.received()) == 2
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


@pytest.mark.parametrize("mode,reply_part", [
    ("reject_rcpt", b"550 5.7.1"),
    ("reject_data", b"550 5.7.26"),
])
def test_5xx_diverts_at_once_hidden(make_hikyaku, dns_server, farside, mode, reply_part):
    farside.gmail.set_mode(mode)
    hk = make_hikyaku(extra=config(dns_server, farside))
    c = Client(hk)
    t0 = time.monotonic()
    c.send(message(f"refused {mode}"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    assert time.monotonic() - t0 < 5  # at once, not after a retry interval
    raw = read(copy)
    head = diverted_header(raw)
    assert head is not None
    assert reply_part.decode() in head
    assert "\r" not in head and "\n" not in head
    assert raw.count(b"X-Hikyaku-Diverted:") == 1
    assert b"Hello from the sender." in raw  # the original message, unchanged body
    # X-Forwarded-To names the hidden address: only in the copy sent to that
    # address (refused at end of data, the far side saw it), never in the
    # diverted copy, the PC copy or a log line (issue 17).
    if mode == "reject_data":
        assert f"X-Forwarded-To: {FORWARD}\r\n".encode() in farside.gmail.attempts[0].data
    assert b"X-Forwarded-To" not in raw and b"X-Forwarded-For" not in raw
    assert FORWARD.encode() not in raw.lower()
    wait_mailbox(hk, "ituki", 1)
    wait_spool_empty(hk)
    assert len(hk.messages("ituki")) == 1
    pc = read(hk.messages("ituki")[0])
    assert b"X-Forwarded-To" not in pc and FORWARD.encode() not in pc.lower()
    assert len(hk.messages("ituki-gm")) == 1
    assert farside.gmail.received() == []
    assert farside.sender.attempts == []  # hidden: never a DSN
    assert FORWARD not in hk.log_text().lower()
    assert_no_leak(farside, c)


def test_eicar_552_at_end_of_data_diverts(make_hikyaku, dns_server, farside):
    hk = make_hikyaku(extra=config(dns_server, farside))
    c = Client(hk)
    c.send(message("virus", "see attachment\r\n" + EICAR.decode() + "\r\n"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    head = diverted_header(read(copy))
    assert head.split(";")[0]  # an RFC 5322 date first
    assert 'reason="552 5.7.0' in head
    assert len(farside.gmail.attempts) == 1 and farside.gmail.received() == []
    wait_spool_empty(hk)
    assert len(hk.messages("ituki")) == 1
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


def test_421_until_defer_limit_then_diverted(make_hikyaku, dns_server, farside):
    """421 4.7.28 pauses gmail.test for rate_limit_pause (default 10 min),
    longer than this defer_limit: no start fits the deadline, so the message
    diverts when its defer_limit ends (not later), with the 421 as the reason."""
    farside.gmail.set_mode("tempfail_mail")  # 421 4.7.28 and close, every time
    hk = make_hikyaku(extra=config(dns_server, farside, defer_limit="2s", retry='["1s"]'))
    c = Client(hk)
    t0 = time.monotonic()
    c.send(message("deferred"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1, timeout=30)
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.9, elapsed  # not before the defer limit
    assert elapsed < 8, elapsed
    head = diverted_header(read(copy))
    assert "421 4.7.28" in head
    wait_spool_empty(hk)
    assert farside.gmail.received() == []
    assert farside.gmail.connections == 1  # paused after the 421: no retry reached gmail
    assert len(hk.messages("ituki")) == 1
    assert len(hk.messages("ituki-gm")) == 1
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


def test_waiting_behind_a_rate_limited_destination_diverts_at_defer_limit(make_hikyaku, dns_server, farside):
    """Issues 3 and 17: after its rate-limit pause a destination gets one
    connection at a time, but each message still diverts when its own
    defer_limit ends — also one that never got a connection because another
    message holds the only one. (A 1 s pause: message 1's retry gets the one
    connection right after it.)"""
    farside.gmail.set_mode("tempfail_mail", times=1)  # one 421 4.7.28: the destination is paused
    farside.gmail.set_data_delay(8.0)  # the retry of message 1 then holds the one connection for 8 s
    hk = make_hikyaku(extra=config(dns_server, farside, defer_limit="3s", retry='["1s"]',
                                   delivery_extra='rate_limit_pause = "1s"'))
    c = Client(hk)
    c.send(message("holds the connection"))
    wait_for(lambda: "is rate-limiting us" in hk.log_text(), what="the rate-limit deferral")
    wait_for(lambda: farside.gmail.session_times() and len(farside.gmail.session_times()) >= 2,
             what="message 1 retried on the one allowed connection")
    t0 = time.monotonic()
    c.send(message("waits behind it"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1, timeout=20)
    elapsed = time.monotonic() - t0
    assert elapsed >= 2.9, elapsed  # not before its defer limit
    assert elapsed < 7.5, elapsed   # not after the connection it waited for was free
    assert b"waits behind it" in read(copy)
    assert "rate-limiting us" in diverted_header(read(copy))
    assert farside.gmail.max_concurrent() == 1, farside.gmail.session_times()
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


def test_one_451_then_success_is_not_diverted(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("tempfail_rcpt", times=1)
    hk = make_hikyaku(extra=config(dns_server, farside, defer_limit="30s", retry='["1s"]'))
    c = Client(hk)
    c.send(message("retried"))
    farside.gmail.wait_messages(1, timeout=20)
    wait_spool_empty(hk)
    assert len(farside.gmail.received()) == 1
    assert hk.messages("ituki-gm") == []
    assert len(hk.messages("ituki")) == 1


def test_drop_until_defer_limit_then_diverted(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("drop")
    hk = make_hikyaku(extra=config(dns_server, farside, defer_limit="2s", retry='["1s"]'))
    c = Client(hk)
    c.send(message("dropped"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1, timeout=30)
    assert diverted_header(read(copy)) is not None
    wait_spool_empty(hk)
    assert farside.gmail.received() == []
    assert len(hk.messages("ituki")) == 1
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


def test_slow_accept_past_defer_limit_is_not_diverted(make_hikyaku, dns_server, farside):
    # A stall shorter than the client's timeouts (which [delivery] cannot
    # shorten): the attempt is in flight past the defer limit and succeeds;
    # the defer limit only judges failures, so nothing is diverted.
    farside.gmail.set_mode("stall", stall=3)
    hk = make_hikyaku(extra=config(dns_server, farside, defer_limit="1s", retry='["1s"]'))
    c = Client(hk)
    c.send(message("slow"))
    farside.gmail.wait_messages(1, timeout=30)
    wait_spool_empty(hk, timeout=30)
    assert len(farside.gmail.received()) == 1
    assert hk.messages("ituki-gm") == []
    assert farside.sender.attempts == []


def test_stall_times_out_until_defer_limit_then_diverted(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("stall", stall=5)
    hk = make_hikyaku(extra=config(dns_server, farside, defer_limit="2s", retry='["1s"]',
                                   delivery_extra='command_timeout = "1s"'))
    c = Client(hk)
    c.send(message("stalled"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1, timeout=30)
    assert diverted_header(read(copy)) is not None
    wait_spool_empty(hk)
    assert len(hk.messages("ituki")) == 1
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


def test_unreachable_mx_until_defer_limit_then_diverted(make_hikyaku, dns_server, farside):
    # gmail.test's MX host has an address where nothing listens: connection
    # refused (4.4.1) on every attempt.
    farside.gmail.stop()
    hk = make_hikyaku(extra=config(dns_server, farside, defer_limit="2s", retry='["1s"]'))
    c = Client(hk)
    c.send(message("unreachable"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1, timeout=30)
    assert diverted_header(read(copy)) is not None
    wait_spool_empty(hk)
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


@pytest.mark.parametrize("notify", [False, True], ids=["no-notice", "notice"])
def test_queue_log_hides_hidden_forward(make_hikyaku, dns_server, farside, notify):
    # With notify, the owner's notice (itself refused here) is a message to
    # the hidden address: its queue lines must not name it either.
    farside.gmail.set_mode("reject_rcpt", reply=f"550 5.1.1 <{FORWARD}>: Recipient address rejected")
    hk = make_hikyaku(extra=config(dns_server, farside, notify=notify))
    c = Client(hk)
    c.send(message("log check"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    wait_spool_empty(hk)
    queue_lines = [l for l in hk.log_text().splitlines() if "[queue]" in l or " queue" in l]
    assert queue_lines
    for line in queue_lines:
        assert FORWARD not in line, line
    assert any("forward:<hidden>" in l for l in queue_lines)
    if notify:
        assert any("notice" in l and "queued about" in l for l in queue_lines), queue_lines
    # Not in any log line at all: the SMTP client's lines (to=, remote reply)
    # are redacted too — logs may reach a status page.
    leaked = [l for l in hk.log_text().splitlines() if FORWARD in l.lower()]
    assert leaked == []
    # The remote reply named the hidden address: the diverted header, which
    # may travel on, carries it redacted.
    head = diverted_header(read(copy))
    assert FORWARD not in head and "<hidden>" in head
    assert_no_leak(farside, c)


def test_diverted_header_is_quoted_safely(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("reject_rcpt", reply='550 5.7.1 bad "quoted" \\ text')
    hk = make_hikyaku(extra=config(dns_server, farside))
    Client(hk).send(message("quoting"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    head = diverted_header(read(copy))
    assert head.endswith('reason="550 5.7.1 bad \\"quoted\\" \\\\ text"'), head


# --- notice -----------------------------------------------------------------

def test_notice_to_owner_on_diversion(make_hikyaku, dns_server, farside):
    # The first transaction (the forwarded copy) is refused; the next one —
    # the notice — is accepted.
    farside.gmail.set_mode("reject_data", times=1)
    hk = make_hikyaku(extra=config(dns_server, farside, notify=True))
    c = Client(hk)
    secret_body = "SECRET BODY LINE\r\n"
    c.send(message("notice me", secret_body))
    wait_mailbox(hk, "ituki-gm", 1)
    notices = farside.gmail.wait_messages(1, timeout=20)
    assert len(notices) == 1
    n = notices[0]
    assert n.mail_from in ("", "<>")  # null sender: nothing answers a notice
    assert n.rcpt_tos == [FORWARD]
    msg = email.message_from_bytes(n.data, policy=email.policy.compat32)
    assert msg["From"].endswith("<postmaster@example.test>")
    assert msg["To"] == f"<{FORWARD}>"
    assert "Diverted" in msg["Subject"]
    body = msg.get_payload()
    assert "Someone <someone@sender.test>" in body
    assert "notice me" in body
    assert "<notice-me@sender.test>" in body
    assert "Mon, 1 Jan 2024 00:00:00 +0000" in body
    assert "550 5.7.26" in body
    assert "ituki-gm" in body
    assert "SECRET BODY LINE" not in n.data.decode()
    assert farside.sender.attempts == []
    assert_no_leak(farside, c)


def test_refused_notice_is_dropped_not_bounced_or_diverted(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("reject_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, notify=True))
    c = Client(hk)
    c.send(message("notice refused"))
    wait_mailbox(hk, "ituki-gm", 1)
    # The original's attempt, then the notice's: both refused at RCPT.
    wait_for(lambda: "notice to forward:<hidden> not delivered, dropped" in hk.log_text(),
             what="the dropped-notice log line")
    wait_spool_empty(hk)
    assert len(hk.messages("ituki-gm")) == 1  # the notice is never diverted
    assert len(hk.messages("ituki")) == 1
    assert farside.sender.attempts == []      # never bounced
    assert_no_leak(farside, c)


# --- non-hidden forward: DSN ------------------------------------------------

# plain@example.test: an ordinary (not hidden) forward without fallback.
PLAIN_FORWARD = """
[[address]]
address = "plain@example.test"
deliver = ["forward:other@gmail.test"]

[[forward]]
to = "other@gmail.test"
hidden = false
"""


def test_non_hidden_5xx_without_fallback_sends_one_dsn(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("reject_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, hidden=False, fallback=""))
    c = Client(hk)
    c.send(message("bounce me"))
    dsns = farside.sender.wait_messages(1, timeout=20)
    wait_spool_empty(hk)
    assert len(farside.sender.received()) == 1
    d = dsns[0]
    assert d.mail_from in ("", "<>")  # RFC 3464: null reverse-path
    assert d.rcpt_tos == [SENDER]
    msg, recipients = parse_dsn(d.data)
    assert msg["From"] == f"Mail Delivery System <MAILER-DAEMON@{hk.hostname}>"
    assert msg["To"] == f"<{SENDER}>"
    assert len(recipients) == 1
    r = recipients[0]
    assert r["Final-Recipient"] == f"rfc822; {RCPT}"  # the original recipient
    assert r["Action"] == "failed"
    assert r["Status"] == "5.7.1"
    assert r["Diagnostic-Code"].startswith("smtp; 550 5.7.1")
    headers_part = msg.get_payload()[2].get_payload()
    assert "Subject: bounce me" in str(headers_part)
    assert len(hk.messages("ituki")) == 1
    assert hk.messages("ituki-gm") == []


def test_non_hidden_with_fallback_diverts_without_dsn(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("reject_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, hidden=False))
    c = Client(hk)
    c.send(message("kept"))
    wait_mailbox(hk, "ituki-gm", 1)
    wait_spool_empty(hk)
    assert farside.sender.attempts == []


def test_non_hidden_tempfail_dsn_after_expire(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("tempfail_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, hidden=False, fallback="", expire="3s",
                                   retry='["1s"]'))
    c = Client(hk)
    c.send(message("expire me"))
    dsns = farside.sender.wait_messages(1, timeout=30)
    wait_spool_empty(hk)
    assert len(farside.sender.received()) == 1
    _, recipients = parse_dsn(dsns[0].data)
    assert recipients[0]["Status"] == "5.7.0"  # 4.7.0 reported as failed
    assert "451 4.7.0" in recipients[0]["Diagnostic-Code"]


def test_no_dsn_to_null_sender(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("reject_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, hidden=False, fallback=""))
    c = Client(hk)
    c.send(message("from null"), sender="")
    # The refusal comes at RCPT, before end of data: the far side records a
    # connection, not an attempt. The queue's line says the slot failed for
    # good with the far side's reply.
    wait_for(lambda: farside.gmail.connections >= 1 and "status=failed (5.7.1 550 5.7.1" in hk.log_text(),
             what="the forward refused at RCPT and failed for good")
    wait_spool_empty(hk)
    assert farside.sender.attempts == []


def test_dsn_never_names_a_hidden_forward(make_hikyaku, dns_server, farside):
    # A non-hidden forward whose chain goes through a hidden one: the hidden
    # link makes the slot hidden, so no DSN at all — and the non-hidden
    # forward's own DSN (another recipient) never names the hidden address.
    farside.gmail.set_mode("reject_rcpt", reply=f"550 5.1.1 <{FORWARD}> and <other@gmail.test> unknown")
    hk = make_hikyaku(extra=config(dns_server, farside, extra=PLAIN_FORWARD))
    c = Client(hk)
    c.send(message("to plain"), rcpt="plain@example.test")
    dsns = farside.sender.wait_messages(1, timeout=20)
    wait_spool_empty(hk)
    _, recipients = parse_dsn(dsns[0].data)
    assert recipients[0]["Final-Recipient"] == "rfc822; plain@example.test"
    assert FORWARD.encode() not in dsns[0].data
    assert b"<hidden>" in dsns[0].data
    assert_no_leak(farside, c)


def test_mail_from_the_hidden_address_is_not_logged_by_name(make_hikyaku, dns_server, farside):
    # The owner writes from the hidden address to a plain forward that
    # refuses: the DSN goes back to the hidden address (its own owner), and
    # no line about the message or its DSN names that address.
    farside.gmail.set_mode("reject_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, extra=PLAIN_FORWARD))
    Client(hk).send(message("from the owner"), rcpt="plain@example.test", sender=FORWARD)
    wait_for(lambda: "DSN to" in hk.log_text() and "not delivered, dropped" in hk.log_text(),
             what="the DSN to the owner refused and dropped")
    wait_spool_empty(hk)
    log = hk.log_text()
    assert "DSN" in log and "queued about" in log
    # No line names it: not the queue's (the DSN's, above all), nor smtpd's
    # and intake's about the message it sent.
    assert "from=<<hidden>>" in log
    assert [l for l in log.splitlines() if FORWARD in l.lower()] == []


def restart_without_the_forward(hk, and_its_mailbox=False):
    """Stop, remove FORWARD's [[forward]] and the address's forward target
    (and the fallback mailbox ituki-gm's [[mailbox]]), start again."""
    hk.stop()
    text = hk.config_path.read_text()
    start = text.index("[[forward]]")
    end = text.index("\n", text.index("notify = ", start)) + 1
    text = text[:start] + text[end:]
    text = text.replace(f'deliver = ["mailbox:ituki", "forward:{FORWARD}"]', 'deliver = ["mailbox:ituki"]')
    assert FORWARD not in text
    if and_its_mailbox:
        block = '[[mailbox]]\nname = "ituki-gm"\n'
        assert block in text
        text = text.replace(block, "")
    hk.config_path.write_text(text)
    hk.start()


def refuse_the_waiting_copy(hk, farside):
    """The far side now refuses for good and the queue is flushed: the
    waiting copy is diverted into ituki-gm, nothing goes to the sender.
    Returns the log."""
    farside.gmail.set_mode("reject_rcpt")
    r = hk.run_cli("queue", "flush")
    assert r.returncode == 0, r.stderr
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    assert "550 5.7.1" in diverted_header(read(copy))
    wait_spool_empty(hk)
    assert farside.sender.attempts == []
    return hk.log_text()


def test_a_removed_hidden_forward_is_still_hidden_after_a_restart(make_hikyaku, dns_server, farside):
    # A message waits for a hidden forward (the far side defers it); the
    # operator removes that [[forward]] and restarts. The server remembers
    # the removed forward (DATA_DIR/state/known-forwards): when the far side
    # then refuses the waiting copy for good, it is diverted to the
    # forward's fallback mailbox — no DSN to the sender, no line naming the
    # address, and no `queue show` printing it.
    farside.gmail.set_mode("tempfail_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, retry='["1h"]'))
    Client(hk).send(message("waiting"))
    wait_for(lambda: "status=deferred" in hk.log_text(), what="the forward deferred")
    restart_without_the_forward(hk)
    wait_for(lambda: "1 removed hidden forward(s) still known" in hk.log_text(), what="the removed forward known")
    listed = hk.run_cli("queue", "list").stdout
    [qid] = [line.split()[0] for line in listed.splitlines() if "pending" in line]
    shown = hk.run_cli("queue", "show", qid)
    assert shown.returncode == 0 and "forward:" in shown.stdout, shown.stdout + shown.stderr
    assert FORWARD not in shown.stdout.lower(), shown.stdout

    log = refuse_the_waiting_copy(hk, farside)
    assert "wait for a forward the configuration no longer has" not in log
    assert FORWARD not in log.lower()


def test_a_removed_fallback_mailbox_still_takes_the_diverted_copy(make_hikyaku, dns_server, farside):
    # The operator removes the hidden forward and its fallback mailbox while
    # a copy waits, and restarts. The start warns; when the far side then
    # refuses the copy for good, it is diverted into the mailbox's Maildir
    # all the same: not dropped, not bounced, the address named nowhere.
    farside.gmail.set_mode("tempfail_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, retry='["1h"]'))
    Client(hk).send(message("waiting"))
    wait_for(lambda: "status=deferred" in hk.log_text(), what="the forward deferred")
    restart_without_the_forward(hk, and_its_mailbox=True)
    wait_for(lambda: "1 fallback mailbox(es) of removed hidden forwards are no longer configured" in hk.log_text(),
             what="the warning at start")

    log = refuse_the_waiting_copy(hk, farside)
    assert "mailbox ituki-gm is no longer configured: delivered into" in log
    assert "status=failed" not in log
    assert FORWARD not in log.lower()


def test_a_known_forwards_file_that_cannot_be_read_is_moved_aside(make_hikyaku, dns_server, farside):
    # The state file replaced by something else (another version, a bad
    # edit): the server says so, keeps it aside for the operator, and
    # writes its own again.
    hk = make_hikyaku(extra=config(dns_server, farside))
    state = hk.data_dir / "state" / "known-forwards"
    assert state.read_text().startswith("hikyaku-known-forwards 1\n")
    assert FORWARD in state.read_text()
    hk.stop()
    state.write_text("hikyaku-known-forwards 9\nsomething@else.test in a newer format\n")
    hk.expect_log(r"known-forwards was not read \(moved aside")
    hk.start()
    wait_for(lambda: "was not read (moved aside to" in hk.log_text(), what="the file moved aside")
    assert (hk.data_dir / "state" / "known-forwards.bad").read_text().startswith("hikyaku-known-forwards 9")
    assert state.read_text().startswith("hikyaku-known-forwards 1\n")


def test_restart_without_a_queued_plain_forward_warns(make_hikyaku, dns_server, farside):
    # A forward that is not hidden is not remembered: removed while a
    # message waits for it, then a restart, its fallback is gone. The start
    # says so, naming the message.
    farside.gmail.set_mode("tempfail_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, hidden=False, retry='["1h"]'))
    Client(hk).send(message("waiting"))
    wait_for(lambda: "status=deferred" in hk.log_text(), what="the forward deferred")
    restart_without_the_forward(hk)
    line = wait_for(lambda: next((l for l in hk.log_text().splitlines()
                                  if "wait for a forward the configuration no longer has" in l), None),
                    what="the warning at start")
    assert "1 queued message(s)" in line, line
    assert "removed hidden forward(s) still known" not in hk.log_text()


# --- loops ------------------------------------------------------------------

@pytest.mark.parametrize("field", [f"X-Forwarded-For: {RCPT}", f"X-Hikyaku-Forwarded-For: <{RCPT}>"])
def test_message_already_forwarded_for_recipient_is_not_reforwarded(make_hikyaku, dns_server, farside, field):
    """The field we write (X-Forwarded-For, issue 17) and the one versions
    before it wrote both mark a copy that came back."""
    hk = make_hikyaku(extra=config(dns_server, farside))
    c = Client(hk)
    looped = (field + "\r\n").encode() + message("came back")
    c.send(looped)
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    head = diverted_header(read(copy))
    assert "5.4.6" in head and "already passed through" in head
    wait_spool_empty(hk)
    assert farside.gmail.attempts == []
    assert len(hk.messages("ituki")) == 1
    assert farside.sender.attempts == []


def test_our_own_forwarded_copy_coming_back_is_a_loop(make_hikyaku, dns_server, farside):
    """The copy exactly as the far side received it (our Received,
    X-Forwarded-To/-For) sent back to us — a forward at the far side
    pointing back here — is not forwarded a second time."""
    hk = make_hikyaku(extra=config(dns_server, farside))
    c = Client(hk)
    c.send(message("round trip"))
    [first] = farside.gmail.wait_messages(1)
    wait_spool_empty(hk)
    c.send(first.data)
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    head = diverted_header(read(copy))
    assert "5.4.6" in head and "(X-Forwarded-For)" in head
    # The diverted copy keeps the fields it came back with, and gets none of
    # ours on top (it is not a forwarded copy).
    assert read(copy).count(b"X-Forwarded-To:") == 1
    wait_spool_empty(hk)
    assert len(farside.gmail.received()) == 1
    assert len(hk.messages("ituki")) == 2


def test_forward_to_local_domain_is_a_loop(make_hikyaku, dns_server, farside):
    extra_cfg = config(dns_server, farside).replace(FORWARD, "bob@example.test")
    hk = make_hikyaku(extra=extra_cfg)
    c = Client(hk)
    c.send(message("local loop"))
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    assert "5.4.6" in diverted_header(read(copy))
    wait_spool_empty(hk)
    assert hk.messages("bob") == []


# --- restart during a defer period ------------------------------------------

def test_defer_deadline_survives_restart(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("tempfail_rcpt")
    hk = make_hikyaku(extra=config(dns_server, farside, defer_limit="8s", retry='["1s"]'))
    c = Client(hk)
    t0 = time.monotonic()
    c.send(message("restart"))
    # Two deferrals recorded, then a crash (SIGKILL) in the defer period.
    wait_for(lambda: hk.log_text().count("status=deferred") >= 2, timeout=20, what="two deferrals")
    hk.kill()
    assert hk.messages("ituki-gm") == []
    killed_at = time.monotonic() - t0
    assert killed_at < 7
    hk.start()
    [copy] = wait_mailbox(hk, "ituki-gm", 1, timeout=30)
    elapsed = time.monotonic() - t0
    # Diverted at the original deadline (8 s after the first attempt), not 8 s
    # after the restart.
    assert 7.5 <= elapsed < killed_at + 7.5, (elapsed, killed_at)
    assert "451 4.7.0" in diverted_header(read(copy))
    wait_spool_empty(hk)
    assert len(hk.messages("ituki")) == 1
    assert farside.sender.attempts == []


def srs_table(tmp_path):
    """An [srs] table for example.test with its own secret file."""
    secret = tmp_path / "srs.secret"
    secret.write_text("s3cret-for-this-test\n")
    secret.chmod(0o600)
    return f'\n[srs]\ndomain = "example.test"\nsecret_file = "{secret}"\n'


def late_bounce(hk, to, mta):
    """A null-sender bounce from `mta`'s domain to our SRS address `to`;
    every reply must be 2xx."""
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=10) as s:
        s.ehlo(f"mx.{mta}")
        s.mail("")
        assert s.rcpt(to)[0] == 250
        code, _ = s.data(f"From: MAILER-DAEMON@{mta}\r\nTo: <{to}>\r\nSubject: late bounce\r\n"
                         f"Message-ID: <late@{mta}>\r\n\r\nundeliverable after all\r\n".encode())
        assert code == 250


@pytest.mark.parametrize("way_in", ["received", "submitted"])
def test_a_hidden_forward_s_copy_from_a_local_sender_still_carries_its_identity(make_hikyaku, dns_server,  # noqa: F811
                                                                                farside, tmp_path,  # noqa: F811
                                                                                way_in):
    """A sender at our own SRS domain (anyone may claim one in MAIL FROM on
    port 25; alice herself on the submission port) still gets the hidden
    forward's SRS address: Gmail's late bounce to it, which quotes the
    hidden address, lands in the fallback mailbox, not in alice's. Submitted
    mail used to keep alice's address, so the bounce told her the address."""
    hk = make_hikyaku(extra=config(dns_server, farside) + srs_table(tmp_path), allow_plaintext=True)
    if way_in == "received":
        Client(hk).send(message("local sender"), sender="alice@example.test")
    else:
        hk.set_password("alice", "pw-alice-123456")
        with smtplib.SMTP("127.0.0.1", hk.submission_port, timeout=10) as s:
            s.ehlo("pc")
            s.login("alice", "pw-alice-123456")
            s.sendmail("alice@example.test", [RCPT],
                       message("local sender").replace(SENDER.encode(), b"alice@example.test"))
    got = farside.gmail.wait_messages(1)[0]
    assert got.mail_from.startswith("SRS0=") and got.mail_from.endswith("@example.test"), got.mail_from
    late_bounce(hk, got.mail_from, "gmail.test")
    wait_for(lambda: len(hk.messages("ituki-gm")) == 1, what="the late bounce in the fallback mailbox")
    assert hk.messages("alice") == []


def test_a_late_bounce_to_a_sender_in_another_of_our_domains_reaches_its_mailbox(make_hikyaku, dns_server,  # noqa: F811
                                                                                farside, tmp_path):  # noqa: F811
    """carol@other-local.test (another [[domain]] of ours) writes to ituki@,
    whose forward rewrites her address under the SRS domain. Gmail's late
    bounce to it reaches carol's mailbox: it used to be planned as a forward
    to a local domain, refused as a routing loop and dropped after its 250."""
    carol = """
[[domain]]
name = "other-local.test"

[[mailbox]]
name = "carol"

[[address]]
address = "carol@other-local.test"
deliver = ["mailbox:carol"]
"""
    hk = make_hikyaku(extra=config(dns_server, farside, hidden=False) + carol + srs_table(tmp_path))
    Client(hk).send(message("from carol"), sender="carol@other-local.test")
    got = farside.gmail.wait_messages(1)[0]
    assert got.mail_from.startswith("SRS0=") and got.mail_from.endswith("=carol@example.test"), got.mail_from
    late_bounce(hk, got.mail_from, "gmail.test")
    wait_for(lambda: len(hk.messages("carol")) == 1, what="the late bounce in carol's mailbox")
    assert "routing loop" not in hk.log_text()


def test_trace_hides_a_hidden_address_in_the_recorded_checks(make_hikyaku, dns_server, farside):  # noqa: F811
    """The owner writes from the hidden address to the domain: `trace` shows
    our Authentication-Results, whose smtp.mailfrom is that address, redacted
    as `queue show` redacts."""
    hk = make_hikyaku(extra=config(dns_server, farside))
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=10) as s:
        s.ehlo("mail.gmail.test")
        s.mail(FORWARD)
        s.rcpt("alice@example.test")
        code, text = s.data(f"From: Owner <{FORWARD}>\r\nTo: alice@example.test\r\nSubject: note\r\n"
                            "Message-ID: <note@gmail.test>\r\n\r\nhi\r\n".encode())
    assert code == 250
    qid = text.decode().rsplit(" ", 1)[-1]
    wait_for(lambda: "removed" in hk.run_cli("trace", qid).stdout, what="the trace of a finished message")
    out = hk.run_cli("trace", qid).stdout
    [checks] = [line for line in out.splitlines() if "checks: " in line]
    assert "spf=none <hidden>;" in checks, out  # the redaction takes the whole atext run
    assert FORWARD not in out.lower(), out


def test_a_hidden_copy_over_its_mailbox_quota_outlives_expire(make_hikyaku, dns_server, farside):  # noqa: F811
    """Gmail refuses; the fallback mailbox is over its quota (4.2.2). At
    [delivery] expire the copy is not dropped (no DSN may name the hidden
    path, and there is nowhere else to go): it keeps waiting in the queue,
    and the log says so. (It used to fail for good: lost.)"""
    cfg = config(dns_server, farside, expire="3s")
    hk = make_hikyaku(extra=cfg.replace('name = "ituki-gm"', 'name = "ituki-gm"\nquota = "2K"'))
    farside.gmail.set_mode("reject_rcpt")
    Client(hk).send(message("over quota", body=("y" * 70 + "\r\n") * 60))  # ~4 KiB
    wait_for(lambda: "is past [delivery] expire and still waits for mailbox:ituki-gm" in hk.log_text(),
             what="the copy kept past expire")
    assert "status=failed" not in hk.log_text()
    listed = hk.run_cli("queue", "list").stdout
    assert listed.rstrip().endswith("1 message in the queue"), listed
    assert hk.messages("ituki-gm") == [] and farside.sender.received() == []


@pytest.mark.parametrize("link_table", ["plain", "none"])
def test_a_late_bounce_to_a_fallback_forward_s_copy_stays_with_the_owner(make_hikyaku, dns_server, farside,  # noqa: F811
                                                                         tmp_path, link_table):
    """Gmail refuses; the hidden forward's fallback chain goes on to
    forward:b@other.test (its own [[forward]] not hidden, or no table at
    all), which accepts. b's copy carries the hidden forward's SRS identity,
    so b's later bounce lands in the owner's fallback mailbox: never at the
    sender (a plain SRS0 used to send it there), never refused (a table-less
    link's own empty chain used to refuse it)."""
    other = farside.add("127.0.0.3", name="mx.other.test")
    with dns_server.batch():
        dns_server.add_mx("other.test", "mx.other.test")
        dns_server.add_host("mx.other.test", "127.0.0.3")
    cfg = config(dns_server, farside, fallback='"forward:b@other.test", "mailbox:ituki-gm"')
    if link_table == "plain":
        cfg += '\n[[forward]]\nto = "b@other.test"\nhidden = false\n'
    hk = make_hikyaku(extra=cfg + srs_table(tmp_path))
    farside.gmail.set_mode("reject_rcpt")
    Client(hk).send(message("to b after gmail"))
    got = other.wait_messages(1)[0]
    assert got.mail_from.startswith("SRS0="), got.mail_from
    late_bounce(hk, got.mail_from, "other.test")
    wait_for(lambda: len(hk.messages("ituki-gm")) == 1, what="the late bounce in the owner's fallback mailbox")
    assert farside.sender.received() == []
