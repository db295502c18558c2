"""Submission for Gmail's "Send mail as" (issue 13 items 1-2): the real
hikyaku on 587 (STARTTLS, then AUTH) and 465 (implicit TLS), driven by
software nobody here wrote — Python's smtplib, swaks, msmtp — and a
Gmail-like judge (gmail_judge.py: SPF with pyspf, DKIM with dkimpy, DMARC)
as the recipient's MX.

Zones (dnsmasq): hk.test is our domain (SPF "ip4:127.0.0.1 -all",
p=reject, DKIM key hk1); gmail.test MX → 127.0.0.2 (the judge);
refuses.test MX → 127.0.0.3 (a far side that refuses every recipient).

Run: HIKYAKU_BIN=build/src/app/hikyaku /usr/bin/python3 -m pytest -q tests/integration/test_submission.py
"""
import base64
import email
import email.policy
import smtplib
import ssl
import subprocess

import pytest

from conftest import require_programs, wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import FarSide, free_shared_port
from gmail_judge import GmailJudge
from test_auth_e2e import rsa_key

PASSWORD = "correct horse battery staple"


def message(sender="me@hk.test", to="friend@gmail.test", subject="reply from my own domain"):
    return (f"From: Me <{sender}>\r\n"
            f"To: {to}\r\n"
            f"Subject: {subject}\r\n"
            "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@hk.test>\r\n"
            "\r\n"
            "Sent through hikyaku's submission port.\r\n").encode()


def no_verify():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the demo's self-signed certificate
    return ctx


@pytest.fixture
def world(tmp_path, dns_server, make_hikyaku):  # noqa: F811
    keys = tmp_path / "keys"
    keys.mkdir()
    ours_p = rsa_key(keys / "hk.pem")
    with dns_server.batch():
        dns_server.add_txt("hk.test", "v=spf1 ip4:127.0.0.1 -all")
        dns_server.add_txt("_dmarc.hk.test", "v=DMARC1; p=reject")
        dns_server.add_txt("hk1._domainkey.hk.test", "v=DKIM1; k=rsa; p=" + ours_p)
        dns_server.add_mx("refuses.test", "mx.refuses.test", 10)
        dns_server.add_host("mx.refuses.test", "127.0.0.3")

    port = free_shared_port(["127.0.0.2", "127.0.0.3"])
    judge = GmailJudge("127.0.0.2", port, dns_server.resolver()).start()
    refuser = FarSide("127.0.0.3", port, name="mx.refuses.test").start()
    refuser.set_mode("reject_rcpt", "550 5.1.1 No such user here")
    extra = f"""
{dns_server.toml()}
[delivery]
smtp_port = {port}

[[domain]]
name = "hk.test"
dkim_selector = "hk1"
dkim_key = "{keys / 'hk.pem'}"

[[mailbox]]
name = "owner"
send_as = ["me@hk.test"]

[[mailbox]]
name = "partner"
send_as = ["partner@hk.test"]

[[address]]
address = "me@hk.test"
deliver = ["mailbox:owner"]

[[address]]
address = "partner@hk.test"
deliver = ["mailbox:partner"]
"""
    server = make_hikyaku(extra=extra)
    server.set_password("owner", PASSWORD)
    server.set_password("partner", "partner's own password")

    class World:
        pass
    w = World()
    w.server, w.judge, w.refuser = server, judge, refuser
    yield w
    refuser.stop()
    judge.stop()


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def assert_sent_as_ourselves(got, sender="me@hk.test"):
    """What Gmail must see for "Send mail as": SPF, DKIM and DMARC pass for
    our domain, the envelope is the user's own address (no SRS), and nothing
    says where the user was."""
    v = got.verdict
    assert got.reply.startswith("250"), v
    assert got.mail_from == sender
    assert v.spf == "pass" and v.spf_domain == "hk.test", v
    assert ("hk.test", "pass") in v.dkim, v
    assert v.dmarc == "pass" and v.from_domain == "hk.test", v
    msg = parse(got.data)
    received = msg.get_all("Received")
    assert len(received) == 1 and received[0].startswith("by mx.example.test (hikyaku)"), received
    assert "ESMTPSA" in received[0]
    assert "127.0.0.1" not in received[0]
    assert msg["X-Forwarded-For"] is None and msg["X-Forwarded-To"] is None and msg["ARC-Seal"] is None
    assert msg["Authentication-Results"] is None


def test_gmail_send_mail_as_587_starttls_auth_login(world):
    """Gmail's handshake: 587, STARTTLS, AUTH LOGIN (no initial response)."""
    with smtplib.SMTP("127.0.0.1", world.server.submission_port, timeout=10) as s:
        s.ehlo("mail-gmail.example")
        assert not s.has_extn("auth"), "AUTH must not be offered before TLS"
        s.starttls(context=no_verify())
        s.ehlo("mail-gmail.example")
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        s.user, s.password = "owner", PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        s.sendmail("me@hk.test", ["friend@gmail.test"], message())
    assert_sent_as_ourselves(world.judge.wait_attempts(1)[0])
    assert "authenticated: user=owner mechanism=LOGIN tls=yes" in world.server.log_text()
    assert PASSWORD not in world.server.log_text()


def test_465_implicit_tls_auth_plain(world):
    with smtplib.SMTP_SSL("127.0.0.1", world.server.submissions_port, timeout=10, context=no_verify()) as s:
        s.ehlo("laptop.home")
        s.login("owner", PASSWORD)  # smtplib prefers PLAIN of what we offer
        s.sendmail("me@hk.test", ["friend@gmail.test"], message(subject="over implicit TLS"))
    got = world.judge.wait_attempts(1)[0]
    assert_sent_as_ourselves(got)
    assert "laptop.home" not in got.data.decode()
    assert "authenticated: user=owner mechanism=PLAIN tls=yes" in world.server.log_text()


def test_swaks_tls_auth(world):
    require_programs("swaks")
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{world.server.submission_port}", "--tls",
                        "--auth", "PLAIN", "--auth-user", "owner", "--auth-password", PASSWORD,
                        "--from", "me@hk.test", "--to", "friend@gmail.test",
                        "--header", "From: me@hk.test", "--header", "Subject: from swaks",
                        "--body", "swaks was here"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout
    got = world.judge.wait_attempts(1)[0]
    assert_sent_as_ourselves(got)
    assert b"swaks was here" in got.data


def test_msmtp_as_a_real_client(world, tmp_path):
    require_programs("msmtp")
    conf = tmp_path / "msmtprc"
    conf.write_text(f"""defaults
tls on
tls_starttls on
tls_certcheck off
logfile -

account hk
host 127.0.0.1
port {world.server.submission_port}
auth on
user owner
password {PASSWORD}
from me@hk.test

account default : hk
""")
    conf.chmod(0o600)
    r = subprocess.run(["msmtp", "-C", str(conf), "friend@gmail.test"], input=message(subject="from msmtp"),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")
    assert_sent_as_ourselves(world.judge.wait_attempts(1)[0])


def smtp_reply(s, line):
    s.putcmd(line)
    return s.getreply()


def test_open_relay_battery(world):
    """Every way to push mail through without being the user, and the reply
    code of each; then what the user may do."""
    srv = world.server
    # Port 25: no AUTH at all, and never a relay.
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=10) as s:
        s.ehlo("prober.example")
        assert not s.has_extn("auth")
        assert smtp_reply(s, "AUTH PLAIN " + base64.b64encode(b"\0owner\0" + PASSWORD.encode()).decode())[0] == 503
        assert s.mail("me@hk.test")[0] == 250
        assert s.rcpt("friend@gmail.test")[0] == 554          # 5.7.1 relay access denied
        assert s.rcpt("partner@hk.test")[0] == 250            # local delivery is what port 25 is for
        s.rset()
    with smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=10) as s:
        s.ehlo("prober.example")
        # No TLS yet: AUTH is refused with 538, MAIL with 530.
        assert smtp_reply(s, "AUTH PLAIN " + base64.b64encode(b"\0owner\0" + PASSWORD.encode()).decode())[0] == 538
        assert s.mail("me@hk.test")[0] == 530
        s.starttls(context=no_verify())
        s.ehlo("prober.example")
        # Unauthenticated: no MAIL, so no recipient of any kind.
        assert s.mail("me@hk.test")[0] == 530
        # A wrong password.
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("owner", "wrong password")
        assert e.value.smtp_code == 535
        # Another user's password for this login.
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("owner", "partner's own password")
    with smtplib.SMTP_SSL("127.0.0.1", srv.submissions_port, timeout=10, context=no_verify()) as s:
        s.login("owner", PASSWORD)
        # A foreign MAIL FROM (another local user's, a remote one).
        assert s.mail("partner@hk.test")[0] == 553
        assert s.mail("ceo@gmail.test")[0] == 553
        # Its own: local and remote recipients both accepted.
        assert s.mail("me@hk.test")[0] == 250
        assert s.rcpt("partner@hk.test")[0] == 250
        assert s.rcpt("friend@gmail.test")[0] == 250
        # A foreign From: header is refused at the end of DATA.
        code, text = s.data(message(sender="partner@hk.test"))
        assert code == 553 and b"5.7.1" in text, (code, text)
        # And the honest message goes through.
        s.sendmail("me@hk.test", ["partner@hk.test", "friend@gmail.test"], message(subject="to both"))
    assert_sent_as_ourselves(world.judge.wait_attempts(1)[0])
    files = wait_for(lambda: srv.messages("partner"), what="the local copy in partner's mailbox")
    assert b"Subject: to both" in files[0].read_bytes()
    assert world.judge.attempts[0].rcpt_tos == ["friend@gmail.test"]
    assert len(world.judge.attempts) == 1, "the refused messages never left"


def test_refused_recipient_brings_a_dsn_to_the_users_own_mailbox(world):
    """A final failure after our 250: an RFC 3464 DSN in the user's own
    mailbox, nothing sent anywhere else."""
    with smtplib.SMTP_SSL("127.0.0.1", world.server.submissions_port, timeout=10, context=no_verify()) as s:
        s.login("owner", PASSWORD)
        s.sendmail("me@hk.test", ["nobody@refuses.test"], message(to="nobody@refuses.test", subject="to a typo"))
    files = wait_for(lambda: world.server.messages("owner"), what="the DSN in owner's mailbox")
    dsn = parse(files[0].read_bytes())
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    report = dsn.get_payload()[1].as_string()
    assert "Final-Recipient: rfc822; nobody@refuses.test" in report
    assert "Action: failed" in report and "Status: 5.1.1" in report
    assert "Subject: to a typo" in dsn.as_string()
    assert not world.judge.attempts


def test_mail_submitted_to_the_owners_hidden_address_is_not_logged_by_name(world):
    """The owner's own domain forwards, hidden, to their Gmail address; the
    owner then sends a message to that address by submission (a test, a
    note to self). It is relayed like any other, and no log line names the
    address: smtpd's, the queue's and the SMTP client's write <hidden>."""
    private = "me.private@gmail.test"
    config = world.server.config_path.read_text()
    config = config.replace('address = "me@hk.test"\ndeliver = ["mailbox:owner"]',
                            f'address = "me@hk.test"\ndeliver = ["mailbox:owner", "forward:{private}"]\n\n'
                            f'[[forward]]\nto = "{private}"\nfallback = ["mailbox:owner"]')
    assert private in config
    world.server.config_path.write_text(config)
    r = world.server.run_cli("reload")
    assert r.returncode == 0, r.stdout + r.stderr
    with smtplib.SMTP_SSL("127.0.0.1", world.server.submissions_port, timeout=10, context=no_verify()) as s:
        s.login("owner", PASSWORD)
        s.sendmail("me@hk.test", [private], message(to=private, subject="note to self"))
    [got] = world.judge.wait_attempts(1)
    assert got.reply.startswith("250") and got.rcpt_tos == [private]
    wait_for(lambda: "status=delivered" in world.server.log_text() and ": removed" in world.server.log_text(),
             what="the relayed copy delivered and the message removed")
    log = world.server.log_text()
    assert "to=<<hidden>>" in log
    assert [line for line in log.splitlines() if private in line.lower()] == []
