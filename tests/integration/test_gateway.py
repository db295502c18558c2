"""The SMTP gateway (issue 14): the real hikyaku routes by its [[route]] table
to two internal servers and a provider's relay, all aiosmtpd far sides on
other loopback addresses (farside.py):

    127.0.0.5  internal server A (user1@corp.test, and moved@example.test)
    127.0.0.6  internal server B (the rest of corp.test)
    127.0.0.7  relay.isp.test: STARTTLS, then AUTH (CRAM-MD5 and LOGIN in
               the test's handler, PLAIN aiosmtpd's own); MAIL before AUTH
               gets 530
    127.0.0.8  a real Postfix with Cyrus SASL (sasldb) as a second relay
               (postfix_peer.PostfixSaslRelay), each mechanism in turn

Mail comes in from anyone on port 25 (gateway recipients listed in the
rules) and from logged-in users on 587 (everything else goes to the relay,
logged in with the rule's account or the sender's own). What is checked at
each far side: the envelope, that the message is unchanged (no SRS, no
X-Forwarded-To/-For, no ARC), the HELO name the rule announces, the
relay login, TLS. A wrong relay password is retried, then gives one DSN to
the sender's own mailbox and nothing else; a rule that points back at
hikyaku is refused at load with file and line.

Run: HIKYAKU_BIN=build/src/app/hikyaku /usr/bin/python3 -m pytest -q tests/integration/test_gateway.py
"""
import email
import email.policy
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest

from conftest import HIKYAKU_BIN, free_port, require_programs, wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import FarSide, free_shared_port, make_self_signed
from postfix_peer import PostfixSaslRelay

PASSWORD = "alice's submission password"
RELAY_ACCOUNTS = {"gw-account": "relay secret 1", "carol-own": "carol's relay secret"}


def message(sender, to, subject):
    return (f"From: <{sender}>\r\n"
            f"To: <{to}>\r\n"
            f"Subject: {subject}\r\n"
            "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@gw.test>\r\n"
            "\r\n"
            f"{subject}: routed by the gateway.\r\n").encode()


def no_verify():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def submit(server, login, password, sender, to, subject):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as s:
        s.starttls(context=no_verify())
        s.login(login, password)
        s.sendmail(sender, [to], message(sender, to, subject))


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def routes(port, relay_pw, carol_pw, relay_extra=""):
    return f"""
[[mailbox]]
name = "copies"

[[mailbox]]
name = "carol"
send_as = ["carol@example.test"]

[[address]]
address = "moved@example.test"
deliver = ["mailbox:alice"]

[[route]]
match = "user1@corp.test"
via = "[127.0.0.5]:{port}"
helo = "gw-for-a.example.test"
recipients = ["user1@corp.test"]

[[route]]
match = "moved@example.test"
via = "127.0.0.5:{port}"

[[route]]
match = "@corp.test"
via = "[127.0.0.6]:{port}"
recipients = ["user2@corp.test"]
copy_to = "mailbox:copies"

[[route]]
match = "*"
via = "relay.isp.test:{port}"
helo = "customer-42.isp.test"
auth = {{ user = "gw-account", password_file = "{relay_pw}" }}
{relay_extra}

[[route.account]]
sender = "carol@example.test"
user = "carol-own"
password_file = "{carol_pw}"
"""


def secret(path, text):
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def gateway(tmp_path, dns_server, make_hikyaku):  # noqa: F811
    port = free_shared_port(["127.0.0.5", "127.0.0.6", "127.0.0.7"])
    dns_server.add_host("relay.isp.test", "127.0.0.7")
    (tmp_path / "tls").mkdir()
    a = FarSide("127.0.0.5", port, name="a.corp.test").start()
    b = FarSide("127.0.0.6", port, name="b.corp.test").start()
    relay = FarSide("127.0.0.7", port, name="relay.isp.test", tls_context=make_self_signed(tmp_path / "tls", "relay.isp.test"),
                    auth=RELAY_ACCOUNTS).start()
    sides = [a, b, relay]

    def make(relay_password="relay secret 1", delivery='retry = ["1s"]', relay_extra=""):
        n = len(list(tmp_path.glob("relay*.pw")))
        relay_pw = secret(tmp_path / f"relay{n}.pw", relay_password)
        carol_pw = secret(tmp_path / f"carol{n}.pw", RELAY_ACCOUNTS["carol-own"])
        server = make_hikyaku(extra=f"""
{dns_server.toml()}
[delivery]
{delivery}
{routes(port, relay_pw, carol_pw, relay_extra)}
""")
        server.set_password("alice", PASSWORD)
        server.set_password("carol", "carol's password")
        return server

    class Gateway:
        pass
    g = Gateway()
    g.port, g.a, g.b, g.relay, g.make = port, a, b, relay, make
    yield g
    for side in sides:
        side.stop()


def assert_unchanged(got, sender, to, subject):
    """A gateway relays the message as it came (plus its Received)."""
    assert got.mail_from == sender, got.mail_from  # no SRS
    assert got.rcpt_tos == [to]
    msg = parse(got.data)
    assert msg["Subject"] == subject
    for added in ("X-Forwarded-For", "X-Forwarded-To", "ARC-Seal", "X-Hikyaku-Diverted"):
        assert msg[added] is None, added
    assert msg.get_all("Received")[0].startswith("from "), msg.get_all("Received")


def test_mail_from_anyone_reaches_the_internal_server_its_rule_names(gateway):
    hk = gateway.make()
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=10) as s:
        s.ehlo("mx.sender.test")
        s.sendmail("someone@sender.test", ["user1@corp.test"], message("someone@sender.test", "user1@corp.test", "to A"))
        s.sendmail("someone@sender.test", ["user2@corp.test"], message("someone@sender.test", "user2@corp.test", "to B"))
        s.sendmail("someone@sender.test", ["moved@example.test"],
                   message("someone@sender.test", "moved@example.test", "moved away"))
        # Not listed for the next hop: refused at RCPT, never accepted and
        # bounced later; and the gateway relays nothing else.
        for rcpt in ("intern@corp.test", "friend@elsewhere.test"):
            s.mail("someone@sender.test")
            code, text = s.rcpt(rcpt)
            assert code == 554 and b"5.7.1" in text, (rcpt, code, text)
            s.rset()
    got_a = gateway.a.wait_messages(2)
    by_subject = {parse(m.data)["Subject"]: m for m in got_a}
    assert_unchanged(by_subject["to A"], "someone@sender.test", "user1@corp.test", "to A")
    assert by_subject["to A"].helo == "gw-for-a.example.test"
    # The rule for moved@ has no helo: the server's hostname; a local
    # address a rule names goes there, not into its mailbox.
    assert_unchanged(by_subject["moved away"], "someone@sender.test", "moved@example.test", "moved away")
    assert by_subject["moved away"].helo == hk.hostname
    assert hk.messages("alice") == []
    got_b = gateway.b.wait_messages(1)
    assert_unchanged(got_b[0], "someone@sender.test", "user2@corp.test", "to B")
    # copy_to keeps a copy of what the @corp.test rule relays.
    wait_for(lambda: len(hk.messages("copies")) == 1, what="the copy_to copy")
    assert b"Subject: to B" in hk.messages("copies")[0].read_bytes()
    assert gateway.relay.received() == []


def test_submitted_mail_goes_through_the_relay_logged_in_with_the_right_account(gateway):
    hk = gateway.make()
    submit(hk, "alice", PASSWORD, "alice@example.test", "friend@gmail.test", "from alice")
    submit(hk, "carol", "carol's password", "carol@example.test", "friend@gmail.test", "from carol")
    got = {parse(m.data)["Subject"]: m for m in gateway.relay.wait_messages(2)}
    alice, carol = got["from alice"], got["from carol"]
    assert alice.login == "gw-account" and carol.login == "carol-own"  # per-sender account first
    for m in (alice, carol):
        assert m.tls and m.helo == "customer-42.isp.test"
    assert alice.mail_from == "alice@example.test" and alice.rcpt_tos == ["friend@gmail.test"]
    # CRAM-MD5 is the strongest both sides allow; the password never appears.
    log = hk.log_text()
    assert "login=gw-account" in log and "authenticated as gw-account (CRAM-MD5)" in log
    assert "relay secret 1" not in log and RELAY_ACCOUNTS["carol-own"] not in log
    # A submitted message to a gateway recipient follows the same rules.
    submit(hk, "alice", PASSWORD, "alice@example.test", "user1@corp.test", "alice to A")
    assert gateway.a.wait_messages(1)[0].mail_from == "alice@example.test"


def test_a_sender_s_own_account_is_never_used_for_mail_anyone_could_have_sent(gateway):
    """[[route.account]] logs in as carol only for what carol submits herself:
    a message from the internet that merely claims carol's address, forwarded
    through the same rule, goes out under the rule's own login."""
    hk = gateway.make(delivery='retry = ["1s"]\n\n[[address]]\naddress = "dave@example.test"\n'
                               'deliver = ["forward:friend@gmail.test"]\n')
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=10) as s:
        s.ehlo("mx.somewhere.test")
        s.sendmail("carol@example.test", ["dave@example.test"],
                   message("carol@example.test", "dave@example.test", "claims to be carol"))
    got = gateway.relay.wait_messages(1)[0]
    assert parse(got.data)["Subject"] == "claims to be carol"
    assert got.login == "gw-account", got.login
    assert got.rcpt_tos == ["friend@gmail.test"]


def test_relay_offering_only_login_gets_login(gateway):
    gateway.relay.mechanisms = {"LOGIN"}
    hk = gateway.make()
    submit(hk, "alice", PASSWORD, "alice@example.test", "friend@gmail.test", "by LOGIN")
    assert gateway.relay.wait_messages(1)[0].login == "gw-account"
    assert "authenticated as gw-account (LOGIN)" in hk.log_text()


def test_relay_without_the_allowed_mechanism_or_tls_gets_nothing(gateway):
    """tls = "required" (implied by auth): no plaintext, no password sent in
    clear; a relay that offers no allowed mechanism gets nothing either."""
    gateway.relay.mechanisms = {"PLAIN"}
    hk = gateway.make(relay_extra='')  # the rule allows CRAM-MD5, LOGIN, PLAIN by default
    submit(hk, "alice", PASSWORD, "alice@example.test", "friend@gmail.test", "by PLAIN")
    assert gateway.relay.wait_messages(1)[0].login == "gw-account"
    assert "authenticated as gw-account (PLAIN)" in hk.log_text()

    hk2 = gateway.make(relay_extra='tls = "required"')
    gateway.relay.mechanisms = set()
    submit(hk2, "alice", PASSWORD, "alice@example.test", "friend@gmail.test", "nothing offered")
    wait_for(lambda: "AUTH required for this route, but the server offers none" in hk2.log_text(),
             what="the 4.7.4 refusal to send without AUTH")
    assert len(gateway.relay.received()) == 1


def test_wrong_relay_password_is_retried_then_one_dsn_to_the_sender(gateway):
    hk = gateway.make(relay_password="not the password", delivery='retry = ["1s"]\nexpire = "4s"')
    submit(hk, "alice", PASSWORD, "alice@example.test", "friend@gmail.test", "wrong password")
    # Retried (535 is temporary for us: the operator's to fix)...
    wait_for(lambda: gateway.relay.auth_failures >= 2, what="two refused logins")
    # ...then, at expire, one DSN into the submitting user's own mailbox.
    wait_for(lambda: len(hk.messages("alice")) == 1, timeout=30, what="the DSN in alice's mailbox")
    dsn = parse(hk.messages("alice")[0].read_bytes())
    assert dsn.get_content_type() == "multipart/report"
    report = dsn.get_payload()[1].as_string()
    assert "Final-Recipient: rfc822; friend@gmail.test" in report and "Action: failed" in report
    assert "Diagnostic-Code: smtp; 535 5.7.8 Authentication credentials invalid" in report, report
    # Never a loop: the DSN went to the mailbox, nothing reached the relay,
    # and the message is gone from the queue.
    failures = gateway.relay.auth_failures
    wait_for(lambda: "0 messages in the queue" in hk.run_cli("queue", "list").stdout, what="an empty queue")
    assert gateway.relay.received() == []
    assert gateway.relay.auth_failures == failures
    assert len(hk.messages("alice")) == 1


def test_route_back_at_hikyaku_is_refused_with_file_and_line(gateway, make_hikyaku):
    hk = gateway.make()
    text = hk.config_path.read_text()
    looping = text + f'\n[[route]]\nmatch = "@loop.test"\nvia = "[127.0.0.1]:{hk.smtp_port}"\n'
    hk.config_path.write_text(looping)
    r = hk.run_cli("check-config")
    assert r.returncode == 1
    line = looping.count("\n", 0, looping.index('match = "@loop.test"'))  # the [[route]] header line
    assert f"{hk.config_path}:{line}:1: route '@loop.test' via [127.0.0.1]:{hk.smtp_port}" in r.stderr, r.stderr
    assert "is one of this server's own listeners: mail would loop" in r.stderr
    # A rule that can never match is a warning, with its position.
    hk.config_path.write_text(text + '\n[[route]]\nmatch = "user9@corp.test"\nvia = "[127.0.0.9]:25"\n')
    r = hk.run_cli("check-config")
    assert r.returncode == 0, r.stderr
    assert "warning: route 'user9@corp.test' via [127.0.0.9]:25 can never match: the rule at" in r.stderr
    hk.config_path.write_text(text)


def test_world_readable_relay_password_is_refused(gateway):
    """check-config names it; serve does not start with it."""
    hk = gateway.make()
    hk.stop()
    for pw in hk.tmp.parent.glob("relay*.pw"):
        pw.chmod(0o644)
    r = hk.run_cli("check-config")
    assert r.returncode == 1
    assert "route password file " in r.stderr and "is readable by every user: chmod o-r" in r.stderr, r.stderr
    r = subprocess.run([HIKYAKU_BIN, "serve", "--config", str(hk.config_path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert "is readable by every user: chmod o-r (it holds a secret)" in r.stdout + r.stderr


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "PLAIN", "LOGIN"])
def test_real_postfix_relay_with_cyrus_sasldb(tmp_path, make_hikyaku, mechanism):
    """The second relay: a real Postfix with Cyrus SASL (sasldb) behind
    STARTTLS (postfix_peer.PostfixSaslRelay); the rule allows one mechanism
    at a time, so each is used against software nobody here wrote."""
    require_programs("postfix", "saslpasswd2")
    host = "127.0.0.8"
    relay = PostfixSaslRelay(tmp_path / "postfix", host, free_port(host), {"gwuser": "postfix relay secret"})
    relay.start()
    try:
        pw = secret(tmp_path / "postfix.pw", "postfix relay secret")
        hk = make_hikyaku(extra=f"""
[[route]]
match = "*"
via = "[{host}]:{relay.port}"
helo = "gw-{mechanism.lower()}.example.test"
auth = {{ user = "gwuser", password_file = "{pw}", mechanisms = ["{mechanism}"] }}
""")
        hk.set_password("alice", PASSWORD)
        submit(hk, "alice", PASSWORD, "alice@example.test", "friend@elsewhere.test", f"via postfix {mechanism}")
        wait_for(lambda: len(relay.messages()) == 1, timeout=30, what="the message at the Postfix relay")
        got = relay.messages()[0]
        assert got.sasl_username == "gwuser" and got.protocol == "ESMTPSA"
        assert got.helo == f"gw-{mechanism.lower()}.example.test"
        assert got.mail_from == "alice@example.test" and got.rcpt_to == "friend@elsewhere.test"
        wait_for(lambda: relay.sasl_login(got.queue_id) is not None, what="Postfix's sasl log line")
        assert relay.sasl_login(got.queue_id) == (mechanism, "gwuser")
        assert f"authenticated as gwuser ({mechanism})" in hk.log_text()
    finally:
        relay.stop()


def test_a_route_loop_between_two_gateways_ends_at_the_hop_limit_with_one_dsn(make_hikyaku):
    """Item 4: loops that the load-time check cannot see (two gateways
    routing a domain to each other) are stopped by the Received hop limit
    (RFC 5321 §6.3: 554 5.4.6 at the end of DATA), and the sender gets
    exactly one DSN."""
    route = """
[[route]]
match = "@loop.test"
via = "[127.0.0.1]:{port}"
recipients = ["x@loop.test"]
"""
    limits = "received_headers = 6"
    a = make_hikyaku(extra=route.format(port=9), limits_extra=limits, hostname="a.example.test")
    b = make_hikyaku(extra=route.format(port=a.smtp_port), limits_extra=limits, hostname="b.example.test")
    a.stop()
    a.config_path.write_text(a.config_path.read_text().replace("[127.0.0.1]:9\"", f"[127.0.0.1]:{b.smtp_port}\""))
    a.start()
    with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=10) as s:
        s.sendmail("alice@example.test", ["x@loop.test"], message("alice@example.test", "x@loop.test", "round and round"))
    wait_for(lambda: len(a.messages("alice")) + len(b.messages("alice")) == 1, timeout=30, what="one DSN")
    dsn_path = (a.messages("alice") + b.messages("alice"))[0]
    report = parse(dsn_path.read_bytes()).get_payload()[1].as_string()
    assert "Final-Recipient: rfc822; x@loop.test" in report and "5.4.6" in report, report
    # Both queues drain; nothing else was sent anywhere.
    for hk in (a, b):
        wait_for(lambda: "0 messages in the queue" in hk.run_cli("queue", "list").stdout, what="an empty queue")
    assert len(a.messages("alice")) + len(b.messages("alice")) == 1


def make_ca_and_leaf(directory, name):
    """A private CA and a certificate it signs for `name` (DNS SAN): a relay
    whose certificate a `tls = "verify"` route can check."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hikyaku test CA",
            "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", "leaf.key", "-out", "leaf.csr")
    (d / "san.ext").write_text(f"subjectAltName=DNS:{name}\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-out", "leaf.pem", "-extfile", "san.ext")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(d / "leaf.pem"), str(d / "leaf.key"))
    return d / "ca.pem", ctx


def test_verify_route_checks_the_relays_certificate(tmp_path, dns_server, make_hikyaku):  # noqa: F811
    """tls = "verify": the relay's certificate must chain to tls_ca_file and
    name the host the rule names; otherwise nothing is sent, not even the
    login."""
    host = "127.0.0.9"
    port = free_port(host)
    ca, ctx = make_ca_and_leaf(tmp_path / "pki", "relay.verify.test")
    dns_server.add_host("relay.verify.test", host)
    relay = FarSide(host, port, name="relay.verify.test", tls_context=ctx, auth=RELAY_ACCOUNTS).start()
    other_ca, _ = make_ca_and_leaf(tmp_path / "other-pki", "relay.verify.test")
    pw = secret(tmp_path / "verify.pw", RELAY_ACCOUNTS["gw-account"])
    try:
        def server(via, ca_file):
            hk = make_hikyaku(extra=f"""
{dns_server.toml()}
[delivery]
retry = ["1h"]
[[route]]
match = "*"
via = "{via}"
tls = "verify"
tls_ca_file = "{ca_file}"
auth = {{ user = "gw-account", password_file = "{pw}" }}
""")
            hk.set_password("alice", PASSWORD)
            return hk
        good = server(f"relay.verify.test:{port}", ca)
        submit(good, "alice", PASSWORD, "alice@example.test", "friend@gmail.test", "verified")
        assert relay.wait_messages(1)[0].login == "gw-account"
        assert "certificate verified" in good.log_text()
        # Another CA, or the right CA but a name the certificate does not
        # carry (the address literal): the handshake fails, no plaintext retry.
        for via, ca_file in ((f"relay.verify.test:{port}", other_ca), (f"[{host}]:{port}", ca)):
            bad = server(via, ca_file)
            submit(bad, "alice", PASSWORD, "alice@example.test", "friend@gmail.test", "not verified")
            wait_for(lambda: "TLS handshake failed:" in bad.log_text(), what="the failed verification")
            assert "certificate verify failed" in bad.log_text()
            assert "no plaintext retry (the route requires TLS)" in bad.log_text()
        assert len(relay.received()) == 1 and relay.auth_failures == 0
    finally:
        relay.stop()


def test_recipients_verified_at_the_next_hop_before_250(gateway, make_hikyaku):
    """verify_recipients: the gateway asks the internal server (MAIL FROM:<>,
    RCPT, RSET) before answering, keeps the answer, and says 451 when the
    server cannot answer for good — it never accepts mail it would bounce."""
    gateway.b.unknown_users = {"ghost@corp2.test"}
    hk = make_hikyaku(extra=f"""
[[route]]
match = "@corp2.test"
via = "[127.0.0.6]:{gateway.port}"
verify_recipients = true
""")
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=20) as s:
        s.ehlo("mx.sender.test")
        s.mail("someone@sender.test")
        assert s.rcpt("real@corp2.test")[0] == 250
        code, text = s.rcpt("ghost@corp2.test")
        assert code == 550 and b"5.1.1" in text, (code, text)
        code, _ = s.rcpt("Ghost@corp2.test")  # the cached answer, not a second question
        assert code == 550
        s.data(message("someone@sender.test", "real@corp2.test", "verified"))
        # Relayed before the next hop changes its mind (else the relay's own
        # RCPT could meet the 451 below and wait for its retry).
        got = gateway.b.wait_messages(1)[0]
        # A next hop that cannot answer now: 451, nothing accepted blind.
        gateway.b.set_mode("tempfail_rcpt")
        s.mail("someone@sender.test")
        code, text = s.rcpt("later@corp2.test")
        assert code == 451 and b"4.4.3" in text, (code, text)
        s.rset()
    assert got.rcpt_tos == ["real@corp2.test"] and got.mail_from == "someone@sender.test"
    probes = [r for r in gateway.b.rcpts if r.lower() == "ghost@corp2.test"]
    assert len(probes) == 1, gateway.b.rcpts
    # The real recipient was asked once and then got its message: the probe
    # itself sent nothing (MAIL FROM:<>, RCPT, RSET).
    assert len(gateway.b.received()) == 1
