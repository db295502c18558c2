"""Forward delivery through hikyaku's SMTP client (issue 3, part 2).

The real binary forwards to far sides on other loopback addresses (see
farside.py), found through a real dnsmasq (dns_server.py):
`ituki@example.test` → mailbox ituki + forward to `ituki-ex@gmail.test`
(MX mx.gmail.test → 127.0.0.2). Fallback chains, diversion and DSNs belong
to another part of the issue and are not tested here.
"""
import smtplib
import time

import pytest

from conftest import wait_for
from forward_client import FORWARD, RCPT, SENDER, message
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside, farside_tls  # noqa: F401  (pytest fixtures)



def forward_config(dns, fs, forward_to=FORWARD, srs_secret=None, delivery_extra=""):
    srs = ""
    if srs_secret is not None:
        srs = f'\n[srs]\ndomain = "example.test"\nsecret_file = "{srs_secret}"\n'
    return f"""
[[mailbox]]
name = "ituki"

[[mailbox]]
name = "ituki-gm"

[[address]]
address = "{RCPT}"
deliver = ["mailbox:ituki", "forward:{forward_to}"]

[[forward]]
to = "{forward_to}"
hidden = true
fallback = ["mailbox:ituki-gm"]
{dns.toml()}
{fs.toml(delivery_extra)}
{srs}
"""


def send(hk, msg, rcpt=RCPT, sender=SENDER):
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=10) as s:
        s.sendmail(sender, [rcpt], msg)


def test_forward_reaches_gmail_byte_exact(make_hikyaku, dns_server, farside):
    hk = make_hikyaku(extra=forward_config(dns_server, farside))
    # Dots at line starts (dot-stuffing), 8-bit bytes and a long line.
    body = (b".leading dot\r\n..two dots\r\n.\r\nnot the end\r\n"
            b"caf\xc3\xa9 8bit\r\n" + b"x" * 900 + b"\r\n")
    original = message("byte exact", "") + body
    send(hk, original)
    got = farside.gmail.wait_messages(1)
    assert len(got) == 1
    m = got[0]
    assert m.rcpt_tos == [FORWARD]
    assert m.mail_from == SENDER  # no [srs]: the original sender
    # hikyaku prepends header fields (Received, loop-detection trace); the
    # original message follows them unchanged.
    assert m.data.endswith(original), m.data[-300:]
    prefix = m.data[:-len(original)]
    assert b"Received: " in prefix and prefix.endswith(b"\r\n")
    assert "BODY=8BITMIME" in m.mail_options
    assert any(o.startswith("SIZE=") for o in m.mail_options)
    # The PC mailbox copy arrived too, and the sender's MX got nothing.
    wait_for(lambda: len(hk.messages("ituki")) == 1, what="ituki's mailbox copy")
    assert farside.sender.received() == []
    # The delivery line says what protected the connection (nothing here).
    relay = f"relay=mx.gmail.test[127.0.0.2]:{farside.port}"
    line = f"{relay} tls=none (STARTTLS not offered) status=2.0.0"
    wait_for(lambda: line in hk.log_text(), what="the delivery line")  # logged after the far side's 250


def test_srs_envelope_sender(make_hikyaku, dns_server, farside, tmp_path):
    secret = tmp_path / "srs.secret"
    secret.write_text("a-test-secret-that-is-long-enough\n")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, srs_secret=secret))
    send(hk, message("srs"))
    m = farside.gmail.wait_messages(1)[0]
    # SRS0=HHHH=TT=sender.test=someone@example.test
    assert m.mail_from.startswith("SRS0=") and m.mail_from.endswith("@example.test"), m.mail_from
    assert "=sender.test=someone@" in m.mail_from
    assert "a-test-secret" not in hk.log_text()


def test_null_sender_stays_null_with_srs(make_hikyaku, dns_server, farside, tmp_path):
    secret = tmp_path / "srs.secret"
    secret.write_text("another-secret\n")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, srs_secret=secret))
    send(hk, message("bounce"), sender="")
    m = farside.gmail.wait_messages(1)[0]
    assert m.mail_from == "<>" or m.mail_from == ""


def test_starttls_opportunistic(make_hikyaku, dns_server, farside_tls):
    """RFC 7435 opportunistic TLS (docs/smtp-client.md): the far side's
    certificate is self-signed and names another host, so it verifies
    neither by chain nor by name; the message still goes over TLS at the
    first attempt, and the log says the certificate was not verified (RFC
    7435 §3: no misrepresentation of security)."""
    hk = make_hikyaku(extra=forward_config(dns_server, farside_tls))
    send(hk, message("tls"))
    m = farside_tls.gmail.wait_messages(1)[0]
    assert m.tls, "the client should use STARTTLS when offered (certificate not verified)"
    assert len(farside_tls.gmail.attempts) == 1 and farside_tls.gmail.connections == 1
    relay = f"relay=mx.gmail.test[127.0.0.2]:{farside_tls.port}"
    line = wait_for(lambda: next((l for l in hk.log_text().splitlines() if relay in l and "status=2.0.0" in l), None),
                    what="the delivery line")
    assert f"{relay} tls=TLSv1." in line, line
    assert ", certificate not verified status=2.0.0" in line, line
    assert "verified" not in line.replace("not verified", ""), line  # never claimed authenticated


def test_failed_starttls_handshake_defers_then_plaintext_retry(make_hikyaku, dns_server, farside):
    """A far side whose STARTTLS handshake fails (it answers 220, then bytes
    that are not TLS). Policy (docs/smtp-client.md, as Postfix's "may"
    level): a message's first attempt is not sent in plaintext after a
    failed handshake — deferred 4.7.5; its retry tries TLS again and, when
    the handshake fails again, sends on a new plaintext connection to the
    same address, logged as such. That connection is not pooled: the next
    message's first attempt tries TLS again and is deferred too."""
    broken = farside.add_broken_tls("127.0.0.3", name="mx.brokentls.test")
    dns_server.add_mx("brokentls.test", "mx.brokentls.test", 10)
    dns_server.add_host("mx.brokentls.test", "127.0.0.3")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, forward_to="ituki@brokentls.test",
                                           delivery_extra='retry = ["1s"]'))
    send(hk, message("broken tls one"))
    [m] = broken.wait_messages(1, timeout=30)
    assert not m.tls and b"broken tls one" in m.data
    # First attempt: one broken handshake, no plaintext; the retry: a broken
    # handshake, then the plaintext connection that delivered.
    assert broken.starttls == 2 and broken.connections == 3, (broken.starttls, broken.connections)
    relay = f"relay=mx.brokentls.test[127.0.0.3]:{farside.port}"
    delivered_line = f"{relay} tls=none (plaintext retry after a failed STARTTLS handshake) status=2.0.0"
    # The far side holds the message before hikyaku reads its 250 and logs.
    wait_for(lambda: delivered_line in hk.log_text(), what="the delivery line")
    log = hk.log_text()
    refused = log.find("TLS handshake failed")
    deferred = log.find("(4.7.5); no plaintext retry on a message's first attempt")
    retried = log.find("retrying without TLS (an earlier attempt of this message failed)")
    delivered = log.find(delivered_line)
    assert -1 < refused < deferred < retried < delivered, (refused, deferred, retried, delivered)
    assert "target=forward:<hidden>, status=deferred (4.7.5 mx.brokentls.test[127.0.0.3]" in log

    send(hk, message("broken tls two"))
    broken.wait_messages(2, timeout=30)
    assert broken.starttls == 4 and broken.connections == 6, (broken.starttls, broken.connections)
    assert hk.log_text().count("no plaintext retry on a message's first attempt") == 2


def test_refused_rset_on_a_reused_connection_delivers_once(make_hikyaku, dns_server, farside):
    """On a reused connection hikyaku pipelines RSET ahead of MAIL, RCPT and,
    with CHUNKING, "BDAT n LAST" and the message itself (RFC 2920, RFC 3030).
    A far side that refuses that RSET while alive goes on with the commands
    behind it and takes the message: hikyaku reads their replies and counts
    it delivered, instead of sending it again on a new connection (a
    duplicate). The connection is not reused after that."""
    odd = farside.add_broken_tls("127.0.0.3", name="mx.odd.test", starttls=False, chunking=True,
                                 rset_reply="502 5.5.2 RSET is not for today")
    dns_server.add_mx("odd.test", "mx.odd.test", 10)
    dns_server.add_host("mx.odd.test", "127.0.0.3")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, forward_to="ituki@odd.test"))

    def delivered():
        return hk.log_text().count("target=forward:<hidden>, status=delivered")

    for i in range(3):
        send(hk, message(f"odd rset {i}"))
        # The outcome is logged once the attempt is over, a second send
        # included: after it, the far side holds what it will ever hold.
        wait_for(lambda: delivered() >= i + 1, what=f"delivery {i + 1}")
        got = [m.data for m in odd.received()]
        assert len(got) == i + 1, [d[:80] for d in got]
        assert f"odd rset {i}".encode() in got[i]
    assert "reusing connection" in hk.log_text()
    assert odd.connections == 2, "the connection whose RSET was refused is not reused"


def test_tempfail_is_retried(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("tempfail_data", times=1)
    hk = make_hikyaku(extra=forward_config(dns_server, farside, delivery_extra='retry = ["1s"]'))
    send(hk, message("retry"))
    attempts = farside.gmail.wait_attempts(2, timeout=30)
    assert attempts[0].reply.startswith("451")
    assert attempts[1].reply.startswith("250")
    assert len(farside.gmail.received()) == 1


def test_rate_limit_deferral_is_retried(make_hikyaku, dns_server, farside):
    """421 4.7.28 pauses the destination for rate_limit_pause (here 2 s), then
    the message is retried and delivered. The pause itself, the ramp and the
    state across restarts: test_rate_limit_pause.py."""
    farside.gmail.set_mode("tempfail_mail", times=1)  # 421 4.7.28 ... and close
    hk = make_hikyaku(extra=forward_config(dns_server, farside,
                                           delivery_extra='retry = ["1s"]\nrate_limit_pause = "2s"'))
    send(hk, message("rate"))
    farside.gmail.wait_messages(1, timeout=30)
    refused, retried = farside.gmail.session_times()
    assert retried[0] - refused[0] >= 2.0, (refused, retried)
    assert "rate-limiting" in hk.log_text()


def test_damaged_rate_limit_state_is_reported(make_hikyaku, dns_server, farside):
    """A damaged line in DATA_DIR/state/destinations is logged with the file
    and line and ignored (gmail.test is not limited); a good line beside it
    is still used; hikyaku starts and delivers normally. (A version 1 file,
    as written before issue 17: it still loads.)"""
    hk = make_hikyaku(extra=forward_config(dns_server, farside))
    hk.stop()
    state = hk.data_dir / "state" / "destinations"
    state.parent.mkdir(parents=True, exist_ok=True)
    until = int(time.time()) + 3600
    state.write_text("hikyaku-destinations 1\n"
                     "gmail.test four-seconds 1795000000\n"
                     f"other.test 8000 {until}\n")
    hk.start()
    send(hk, message("not limited"))
    farside.gmail.wait_messages(1)
    log = hk.log_text()
    assert f"{state}:2: bad spacing" in log
    assert "other.test is still rate-limiting us" in log
    assert "gmail.test is still rate-limiting us" not in log


def test_permanent_reject_is_not_retried(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("reject_data")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, delivery_extra='retry = ["1s"]'))
    send(hk, message("rejected"))
    farside.gmail.wait_attempts(1)
    wait_for(lambda: "status=5.7.26" in hk.log_text(), what="the 5.7.26 outcome in the log")
    # A permanent refusal diverts the copy at once and the message leaves the
    # queue: nothing is left that could be retried (a retry would instead
    # keep it queued and reach the far side again).
    wait_for(lambda: len(hk.messages("ituki-gm")) == 1, what="the diverted copy")
    wait_for(lambda: "0 messages in the queue" in hk.run_cli("queue", "list").stdout, what="an empty queue")
    assert len(farside.gmail.attempts) == 1


def test_no_8bit_data_to_a_server_without_8bitmime(make_hikyaku, dns_server, farside):
    """RFC 6152 §3: to a server that does not offer 8BITMIME, a 7-bit message
    goes as before; an 8-bit one is never sent: refused for good (5.6.3), so
    the forward's copy diverts to its fallback mailbox."""
    farside.gmail.eightbitmime = False
    hk = make_hikyaku(extra=forward_config(dns_server, farside))
    send(hk, message("seven bit", "plain ascii\r\n"))
    [got] = farside.gmail.wait_messages(1)
    assert not any(o.startswith("BODY=") for o in got.mail_options), got.mail_options
    send(hk, message("eight bit", "") + b"caf\xc3\xa9\r\n")
    wait_for(lambda: len(hk.messages("ituki-gm")) == 1, what="the diverted 8-bit copy")
    assert b"caf\xc3\xa9" in hk.messages("ituki-gm")[0].read_bytes()
    assert "status=5.6.3" in hk.log_text() and "does not support 8BITMIME" in hk.log_text()
    assert len(farside.gmail.messages) == 1 and len(farside.gmail.attempts) == 1


def test_eicar_gets_552(make_hikyaku, dns_server, farside):
    from farside import EICAR
    hk = make_hikyaku(extra=forward_config(dns_server, farside))
    send(hk, message("virus", EICAR.decode() + "\r\n"))
    attempts = farside.gmail.wait_attempts(1)
    assert attempts[0].reply.startswith("552 5.7.0")
    wait_for(lambda: "status=5.7.0" in hk.log_text(), what="the 5.7.0 outcome in the log")
    assert farside.gmail.received() == []


def test_connection_reuse(make_hikyaku, dns_server, farside):
    hk = make_hikyaku(extra=forward_config(dns_server, farside))
    def relayed():
        return sum(1 for line in hk.log_text().splitlines() if " relay=" in line and "status=2.0.0" in line)

    for i in range(4):
        send(hk, message(f"reuse {i}"))
        farside.gmail.wait_messages(i + 1)
        # The far side has the message before hikyaku has read its 250; the
        # connection is back in the pool when the delivery line is logged
        # (smtp/client/session.cpp), and only then can the next one reuse it.
        wait_for(lambda: relayed() >= i + 1, what=f"delivery line {i + 1}")
    assert farside.gmail.connections == 1, "idle connection should be reused (RSET, not a new connect)"
    assert "reusing connection" in hk.log_text()


def test_mx_preference_order(make_hikyaku, dns_server, farside):
    third = farside.add("127.0.0.3", name="mx1.pref.test")
    fifth = farside.add("127.0.0.5", name="mx2.pref.test")
    dns_server.add_mx("pref.test", "mx2.pref.test", 20)
    dns_server.add_mx("pref.test", "mx1.pref.test", 10)
    dns_server.add_host("mx1.pref.test", "127.0.0.3")
    dns_server.add_host("mx2.pref.test", "127.0.0.5")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, forward_to="ituki@pref.test"))
    send(hk, message("preference"))
    third.wait_messages(1)
    assert fifth.received() == []


def test_second_mx_when_first_refuses(make_hikyaku, dns_server, farside):
    # 127.0.0.6 has no listener on the port: connection refused (4.4.1).
    second = farside.add("127.0.0.3", name="mx2.fb.test")
    dns_server.add_mx("fb.test", "mx1.fb.test", 10)
    dns_server.add_mx("fb.test", "mx2.fb.test", 20)
    dns_server.add_host("mx1.fb.test", "127.0.0.6")
    dns_server.add_host("mx2.fb.test", "127.0.0.3")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, forward_to="ituki@fb.test"))
    send(hk, message("fallback mx"))
    second.wait_messages(1)
    assert "127.0.0.6" in hk.log_text()


def test_second_mx_after_4xx(make_hikyaku, dns_server, farside):
    farside.gmail.set_mode("tempfail_rcpt")
    backup = farside.add("127.0.0.3", name="alt1.gmail.test")
    dns_server.add_mx("gmail.test", "alt1.gmail.test", 20)
    dns_server.add_host("alt1.gmail.test", "127.0.0.3")
    hk = make_hikyaku(extra=forward_config(dns_server, farside))
    send(hk, message("4xx then next mx"))
    backup.wait_messages(1)
    assert farside.gmail.received() == []


def test_implicit_mx(make_hikyaku, dns_server, farside):
    side = farside.add("127.0.0.3", name="implicit.test")
    dns_server.add_host("implicit.test", "127.0.0.3")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, forward_to="ituki@implicit.test"))
    send(hk, message("implicit mx"))
    side.wait_messages(1)


def test_null_mx(make_hikyaku, dns_server, farside):
    dns_server.add_null_mx("nomail.test")
    hk = make_hikyaku(extra=forward_config(dns_server, farside, forward_to="ituki@nomail.test"))
    send(hk, message("null mx"))
    wait_for(lambda: "status=5.1.10" in hk.log_text(), what="null MX outcome 5.1.10")
    for side in farside.sides.values():
        assert side.connections == 0


def test_nxdomain(make_hikyaku, dns_server, farside):
    hk = make_hikyaku(extra=forward_config(dns_server, farside, forward_to="ituki@nowhere.test"))
    send(hk, message("nxdomain"))
    wait_for(lambda: "status=5.1.2" in hk.log_text(), what="NXDOMAIN outcome 5.1.2")


def test_route_to_own_listener_is_a_loop(make_hikyaku, dns_server, farside):
    # The forward domain's MX is this hikyaku itself (127.0.0.1 on our own
    # port): refused with 5.4.6 instead of sending the message to ourselves.
    dns_server.add_mx("loop.test", "mx.loop.test", 10)
    dns_server.add_host("mx.loop.test", "127.0.0.1")
    from conftest import Hikyaku  # noqa: F401
    hk = make_hikyaku(extra=forward_config(dns_server, farside, forward_to="ituki@loop.test"))
    # Point smtp_port at our own listener by restarting with that port.
    text = hk.config_path.read_text().replace(f"smtp_port = {farside.port}", f"smtp_port = {hk.smtp_port}")
    hk.config_path.write_text(text)
    hk.restart()
    send(hk, message("loop"))
    wait_for(lambda: "status=5.4.6" in hk.log_text(), what="routing loop 5.4.6")


@pytest.mark.parametrize("mode", ["drop_data", "drop_mail"])
def test_dropped_connection_is_temporary(make_hikyaku, dns_server, farside, mode):
    farside.gmail.set_mode(mode, times=1)
    hk = make_hikyaku(extra=forward_config(dns_server, farside, delivery_extra='retry = ["1s"]'))
    send(hk, message(f"dropped {mode}"))
    farside.gmail.wait_messages(1, timeout=30)
    assert "status=4.4.2" in hk.log_text()


def test_shutdown_with_delivery_in_flight(make_hikyaku, dns_server, farside):
    # The far side stalls at end of data; SIGTERM must not wait for the
    # client's 10-minute timeout: the in-flight forward is reported
    # temporary (4.3.2) and retried after the restart.
    farside.gmail.set_mode("stall_data", stall=60)
    hk = make_hikyaku(extra=forward_config(dns_server, farside, delivery_extra='retry = ["1s"]'))
    send(hk, message("in flight"))
    # The far side holds the message at end of data: the forward is in flight.
    wait_for(lambda: farside.gmail.stalls >= 1, what="the far side to stall at end of data")
    started = time.monotonic()
    hk.stop()
    assert time.monotonic() - started < 10
    farside.gmail.set_mode("accept")
    hk.start()
    farside.gmail.wait_messages(1, timeout=30)
    assert "4.3.2 delivery interrupted by shutdown" in hk.log_text()
