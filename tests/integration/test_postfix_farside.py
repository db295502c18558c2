"""A real Postfix as the far side of a forward (issue 3: "a real Postfix
instance as a second far side that rejects through its own access and header
checks").

The real hikyaku binary, a real dnsmasq (pfx.test MX → mx.pfx.test →
127.0.0.5, plus the defaults: sender.test MX → 127.0.0.4) and a private
Postfix 3.7 (postfix_peer.py) on 127.0.0.5, on the same port as the aiosmtpd
far sides of farside.py (hikyaku has one `[delivery] smtp_port`; each far
side has its own loopback address). The farside fixture's recording sink at
127.0.0.4 is the original sender's MX, so every byte that reaches the sender
side (a DSN, say) is recorded.

Postfix accepts mail for pfx.test into a Maildir (virtual(8)) and refuses
through its own policy:
  * `check_recipient_access` refuses BLOCKED at RCPT: `550 5.7.1 <...>:
    Recipient address rejected: Recipient refused by pfx.test access policy`;
  * `header_checks` rejects a Subject containing MARKER at end of data:
    `550 5.7.0 Message content rejected by pfx.test header policy`.

`ituki@example.test` is delivered to mailbox `ituki` (the PC copy) and
forwarded to a pfx.test address with fallback mailbox `ituki-gm`. Waits are on
conditions (wait_for), never sleeps.
"""
import email
import email.policy
import re
import time

import pytest

from conftest import require_programs, wait_for
from forward_client import RCPT, SENDER, Client
from forward_client import message as forward_message
from dns_server import DnsServer
from farside import farside  # noqa: F401  (pytest fixture)
from postfix_peer import ACCESS_TEXT, HEADER_TEXT, PostfixPeer

PFX_HOST = "127.0.0.5"
ACCEPTED = "ituki-ex@pfx.test"     # Postfix accepts it
BLOCKED = "ituki-blocked@pfx.test"  # Postfix's access table refuses it
MARKER = "PFX-REJECT-MARKER"        # Postfix's header_checks reject a Subject with it

@pytest.fixture(autouse=True)
def _needs_postfix():
    require_programs("postfix")


# --- fixtures ----------------------------------------------------------------

@pytest.fixture
def pfx_dns():
    """dnsmasq with the default records plus pfx.test MX → 127.0.0.5 (added
    before the start: no restart)."""
    server = DnsServer()
    server.add_mx("pfx.test", "mx.pfx.test", 10)
    server.add_host("mx.pfx.test", PFX_HOST)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postfix(tmp_path, farside):  # noqa: F811  (the farside fixture)
    """A private Postfix on 127.0.0.5:<the far sides' shared port>."""
    peer = PostfixPeer(tmp_path / "postfix", PFX_HOST, farside.port, domain="pfx.test",
                       refused=[BLOCKED], subject_marker=MARKER)
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()


# --- helpers -----------------------------------------------------------------

def config(dns, fs, forward, hidden=True, fallback='"mailbox:ituki-gm"'):
    return f"""
[[mailbox]]
name = "ituki"

[[mailbox]]
name = "ituki-gm"

[[address]]
address = "{RCPT}"
deliver = ["mailbox:ituki", "forward:{forward}"]

[[forward]]
to = "{forward}"
hidden = {"true" if hidden else "false"}
fallback = [{fallback}]
defer_limit = "15m"
notify = false
{dns.toml()}
{fs.toml('retry = ["1s"]' + chr(10) + 'expire = "5d"')}
"""


BODY = ("Hello from the sender.\r\n"
        ".a line that starts with a dot (dot-stuffed on the wire)\r\n"
        "..two dots\r\n"
        "trailing space   \r\n"
        "\r\n"
        + "x" * 900 + "\r\n"
        "last line\r\n")


def message(subject, body=BODY):
    return forward_message(subject, body)


def body_of(raw):
    """The body (after the first empty line), line ends normalised to LF
    (Postfix stores Maildir files with LF)."""
    raw = raw.replace(b"\r\n", b"\n")
    return raw.split(b"\n\n", 1)[1]


def headers(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def wait_mailbox(hk, name, n, timeout=20):
    return wait_for(lambda: len(hk.messages(name)) >= n and hk.messages(name), timeout=timeout,
                    what=f"{n} message(s) in hikyaku mailbox {name}")


def wait_spool_empty(hk, timeout=20):
    q = hk.data_dir / "spool" / "queue"
    wait_for(lambda: q.is_dir() and not any(q.iterdir()), timeout=timeout,
             what="hikyaku's queue to be empty")


def assert_no_leak(fs, client, *hidden):
    """No hidden address in any byte that reached the sender side: the SMTP
    replies the sender saw and everything the sender's MX (127.0.0.4) got."""
    blob = b"".join(m.data for m in fs.sender.attempts)
    blob += " ".join(client.replies).encode()
    blob += " ".join(str(m.rcpt_tos) + str(m.mail_from) for m in fs.sender.attempts).encode()
    blob = blob.lower()
    for address in hidden:
        assert address.encode() not in blob
        assert address.split("@")[0].encode() not in blob


def unfold(value):
    """RFC 5322 §2.2.3: a folded field body with the CRLFs removed."""
    return re.sub(r"\r?\n(?=[ \t])", "", value)


def parse_dsn(raw):
    """RFC 3464 structure → (msg, per-recipient field blocks)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status",
                                                     "text/rfc822-headers"]
    blocks = parts[1].get_payload()
    per_message, per_recipient = blocks[0], blocks[1:]
    assert per_message["Reporting-MTA"].startswith("dns;")
    return msg, per_recipient


def assert_diverted(hk, subject, reply_parts):
    """The fallback copy: the original message (body intact) plus exactly one
    X-Hikyaku-Diverted naming Postfix's reply; returns that header."""
    [copy] = wait_mailbox(hk, "ituki-gm", 1)
    raw = copy.read_bytes()
    head = headers(raw).get("X-Hikyaku-Diverted")
    assert head is not None, raw[:500]
    assert head.split(";")[0].strip()  # a date first
    for part in reply_parts:
        assert part in head, head
    assert "\r" not in head and "\n" not in head
    assert raw.count(b"X-Hikyaku-Diverted:") == 1
    assert headers(raw)["Subject"] == subject
    assert body_of(raw) == body_of(message(subject))
    return head


# --- tests -------------------------------------------------------------------

def test_accepted_mail_arrives_in_postfix_maildir_intact(make_hikyaku, pfx_dns, farside, postfix):
    hk = make_hikyaku(extra=config(pfx_dns, farside, ACCEPTED))
    c = Client(hk)
    subject = "accepted by postfix"
    c.send(message(subject))
    [stored] = wait_for(lambda: postfix.messages(), what="the message in Postfix's Maildir")
    raw = stored.read_bytes()
    h = headers(raw)
    assert h["Delivered-To"] == ACCEPTED  # Postfix's virtual agent, for the forward address
    assert h["Subject"] == subject
    assert h["Message-ID"] == "<accepted-by-postfix@sender.test>"
    assert h["X-Forwarded-For"] == RCPT
    assert h["X-Forwarded-To"] == ACCEPTED
    assert body_of(raw) == body_of(message(subject))  # dots, spaces, long line: byte for byte
    # postlogd writes the log asynchronously: the line may trail the file.
    wait_for(lambda: "status=sent (delivered to maildir)" in postfix.log_text(),
             what="Postfix's delivery log line")
    wait_mailbox(hk, "ituki", 1)
    wait_spool_empty(hk)
    assert len(postfix.messages()) == 1
    assert len(hk.messages("ituki")) == 1
    assert hk.messages("ituki-gm") == []
    assert farside.sender.attempts == []
    assert farside.gmail.attempts == []
    assert_no_leak(farside, c, ACCEPTED)
    # Postfix offers CHUNKING and PIPELINING: the message went as BDAT LAST
    # (RFC 3030), no DATA. smtpd counts the session's commands in its
    # disconnect line, written when hikyaku drops its pooled connection.
    hk.stop()
    line = wait_for(lambda: re.search(r"disconnect from .* mail=1 rcpt=1 bdat=1 .*", postfix.log_text()),
                    what="Postfix's disconnect line").group(0)
    assert "data=" not in line, line


@pytest.mark.parametrize("lines", [2000, 30000], ids=["150KiB", "2MiB-body-in-a-file"])
def test_large_message_is_chunked_after_the_recipient_is_accepted(make_hikyaku, pfx_dns, farside, postfix, lines):
    """Over 64 KiB the BDAT chunk waits for the MAIL/RCPT replies (a refused recipient
    would not cost the upload); the message still arrives byte for byte. Past 1 MiB
    the body is kept in a file from receipt on and sent from there."""
    hk = make_hikyaku(extra=config(pfx_dns, farside, ACCEPTED), message_size="10M")
    c = Client(hk)
    subject = "large message to postfix"
    body = BODY + "".join(f"line {i:05d} " + "y" * 60 + "\r\n" for i in range(lines)) + ".\r\n"
    c.send(message(subject, body))
    [stored] = wait_for(lambda: postfix.messages(), what="the message in Postfix's Maildir")
    raw = stored.read_bytes()
    assert len(raw) > lines * 64
    assert headers(raw)["Subject"] == subject
    assert body_of(raw) == body_of(message(subject, body))
    hk.stop()
    wait_for(lambda: re.search(r"disconnect from .* mail=1 rcpt=1 bdat=1 ", postfix.log_text()),
             what="Postfix's disconnect line")


def test_access_refused_recipient_diverts_hidden(make_hikyaku, pfx_dns, farside, postfix):
    hk = make_hikyaku(extra=config(pfx_dns, farside, BLOCKED))
    c = Client(hk)
    subject = "refused by postfix access"
    t0 = time.monotonic()
    c.send(message(subject))
    head = assert_diverted(hk, subject, ["550 5.7.1", "Recipient address rejected", ACCESS_TEXT])
    assert time.monotonic() - t0 < 5  # a 5xx diverts at once, no retry interval
    # Postfix's reply named the hidden address; the header carries it redacted.
    assert BLOCKED not in head.lower()
    # It was Postfix's own access table that refused (at RCPT, nothing queued).
    wait_for(lambda: re.search(r"NOQUEUE: reject: RCPT .*" + re.escape(ACCESS_TEXT),
                               postfix.log_text()),
             what="Postfix's access reject log line")
    wait_mailbox(hk, "ituki", 1)
    wait_spool_empty(hk)
    assert len(hk.messages("ituki")) == 1      # the PC copy, exactly once
    assert len(hk.messages("ituki-gm")) == 1
    assert postfix.messages() == []
    assert farside.sender.attempts == []       # hidden: never a DSN
    assert_no_leak(farside, c, BLOCKED)
    # The chunk was pipelined behind the refused RCPT and refused in turn
    # ("bdat=0/1"): Postfix read it and the connection stayed in step.
    hk.stop()
    wait_for(lambda: re.search(r"disconnect from .* mail=1 rcpt=0/1 bdat=0/1 ", postfix.log_text()),
             what="Postfix's disconnect line")


def test_header_checks_rejection_diverts_hidden(make_hikyaku, pfx_dns, farside, postfix):
    hk = make_hikyaku(extra=config(pfx_dns, farside, ACCEPTED))
    c = Client(hk)
    subject = f"contains {MARKER} here"
    t0 = time.monotonic()
    c.send(message(subject))
    assert_diverted(hk, subject, ["550 5.7.0", HEADER_TEXT])
    assert time.monotonic() - t0 < 5
    # Postfix's cleanup(8) rejected it by its header_checks, at end of data.
    wait_for(lambda: f"reject: header Subject: {subject}" in postfix.log_text(),
             what="Postfix's header_checks reject log line")
    wait_mailbox(hk, "ituki", 1)
    wait_spool_empty(hk)
    assert len(hk.messages("ituki")) == 1
    assert len(hk.messages("ituki-gm")) == 1
    assert postfix.messages() == []
    assert farside.sender.attempts == []
    assert_no_leak(farside, c, ACCEPTED)


def test_accepted_and_refused_in_one_run(make_hikyaku, pfx_dns, farside, postfix):
    """Postfix's policy is per message: after a header_checks rejection the
    next message to the same forward is accepted (nothing sticky in hikyaku's
    per-destination state turns an accept into a diversion)."""
    hk = make_hikyaku(extra=config(pfx_dns, farside, ACCEPTED))
    c = Client(hk)
    c.send(message(f"first {MARKER}"))
    wait_mailbox(hk, "ituki-gm", 1)
    c.send(message("second is fine"))
    [stored] = wait_for(lambda: postfix.messages(), what="the second message at Postfix")
    assert headers(stored.read_bytes())["Subject"] == "second is fine"
    wait_mailbox(hk, "ituki", 2)
    wait_spool_empty(hk)
    assert len(postfix.messages()) == 1
    assert len(hk.messages("ituki")) == 2
    assert len(hk.messages("ituki-gm")) == 1
    assert farside.sender.attempts == []
    assert_no_leak(farside, c, ACCEPTED)


@pytest.mark.parametrize("kind", ["access", "header_checks"])
def test_non_hidden_refused_by_postfix_sends_one_dsn(make_hikyaku, pfx_dns, farside, postfix, kind):
    forward = BLOCKED if kind == "access" else ACCEPTED
    subject = "bounce me" if kind == "access" else f"bounce me {MARKER}"
    status, reply = ("5.7.1", "550 5.7.1") if kind == "access" else ("5.7.0", "550 5.7.0")
    hk = make_hikyaku(extra=config(pfx_dns, farside, forward, hidden=False, fallback=""))
    c = Client(hk)
    c.send(message(subject))
    dsns = farside.sender.wait_messages(1, timeout=20)
    wait_spool_empty(hk)  # the DSN itself went through the queue: nothing more is coming
    assert len(farside.sender.attempts) == 1
    d = dsns[0]
    assert d.mail_from in ("", "<>")  # RFC 3464: null reverse-path
    assert d.rcpt_tos == [SENDER]
    msg, recipients = parse_dsn(d.data)
    assert msg["To"] == f"<{SENDER}>"
    assert len(recipients) == 1
    r = recipients[0]
    assert r["Final-Recipient"] == f"rfc822; {RCPT}"  # the original recipient
    assert r["Action"] == "failed"
    assert r["Status"] == status
    diagnostic = unfold(r["Diagnostic-Code"])
    assert diagnostic.startswith(f"smtp; {reply}")
    assert (ACCESS_TEXT if kind == "access" else HEADER_TEXT) in diagnostic
    assert f"Subject: {subject}" in str(msg.get_payload()[2].get_payload())
    assert len(hk.messages("ituki")) == 1
    assert hk.messages("ituki-gm") == []
    assert postfix.messages() == []
