"""Self-test of the PostfixSaslRelay fixture (postfix_peer.py): a private
Postfix on 127.0.0.8 acting as a provider's relay that wants STARTTLS and
SMTP AUTH (Cyrus SASL, sasldb) before it relays for any domain. A gateway test
uses it as hikyaku's "second relay"; these tests only check that the fixture
behaves like one, driven by swaks and smtplib from loopback.

  * no AUTH: RCPT for elsewhere.test gets 554 5.7.1 Relay access denied
    (swaks exit 24), with or without STARTTLS;
  * AUTH is advertised only after STARTTLS (smtpd_tls_auth_only), and then
    exactly PLAIN LOGIN CRAM-MD5 (mech_list of the private smtpd.conf);
  * with STARTTLS and AUTH PLAIN, LOGIN or CRAM-MD5 as the plain username
    `relayuser`, the message is relayed into the relay's Maildir; the record
    names the SASL user and the HELO name (smtpd's Received header) and the
    maillog names the mechanism;
  * a wrong password or an unknown user gets 535 5.7.8 (swaks exit 28);
  * the message is kept byte for byte apart from the headers Postfix adds.

Waits are on conditions (wait_for), never sleeps. No hikyaku binary needed.
"""
import re
import smtplib
import ssl
import subprocess

import pytest

from conftest import free_port, require_programs, wait_for
from postfix_peer import PostfixSaslRelay

RELAY_HOST = "127.0.0.8"
USER, PASSWORD = "relayuser", "relay s3cret!"
OTHER, OTHER_PASSWORD = "otheruser", "other-pw"
REMOTE = "someone@elsewhere.test"
SENDER = "gateway@example.test"


@pytest.fixture(autouse=True)
def _needs_programs():
    require_programs("postfix", "swaks", "saslpasswd2", "openssl")


@pytest.fixture
def relay(tmp_path):
    peer = PostfixSaslRelay(tmp_path / "relay", RELAY_HOST, free_port(RELAY_HOST),
                            {USER: PASSWORD, OTHER: OTHER_PASSWORD})
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()


def swaks(relay, *args, ehlo="gw.example.test"):
    return subprocess.run(
        ["swaks", "--server", RELAY_HOST, "--port", str(relay.port), "--ehlo", ehlo,
         "--from", SENDER, "--to", REMOTE, *args],
        capture_output=True, text=True, timeout=60)


# --- refusals ------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls"])
def test_relay_refused_without_auth(relay, tls):
    r = swaks(relay, *(["--tls"] if tls else []))
    assert r.returncode == 24, r.stdout + r.stderr        # all recipients refused
    assert re.search(r"<[*~]\* +554 5\.7\.1 <someone@elsewhere\.test>: Relay access denied",
                     r.stdout), r.stdout
    assert relay.messages() == []


def test_auth_offered_only_after_starttls(relay):
    ctx = ssl.create_default_context(cafile=str(relay.cert_path))
    with smtplib.SMTP(RELAY_HOST, relay.port, local_hostname="gw.example.test", timeout=30) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        assert not s.has_extn("auth"), s.esmtp_features
        # Verified: the certificate names the relay's address (and host name).
        s.starttls(context=ctx)
        s.ehlo()
        assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN", "CRAM-MD5"}

    # swaks insisting on AUTH without STARTTLS: not advertised, exit 28.
    r = swaks(relay, "--auth", "LOGIN", "--auth-user", USER, "--auth-password", PASSWORD)
    assert r.returncode == 28, r.stdout + r.stderr
    assert "Host did not advertise authentication" in r.stdout + r.stderr
    assert relay.messages() == []


@pytest.mark.parametrize("user,password", [(USER, OTHER_PASSWORD), ("nobody-here", PASSWORD)],
                         ids=["wrong-password", "unknown-user"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_bad_credentials_get_535(relay, mech, user, password):
    r = swaks(relay, "--tls", "--auth", mech, "--auth-user", user, "--auth-password", password)
    assert r.returncode == 28, r.stdout + r.stderr
    assert re.search(r"<~\* +535 5\.7\.8 Error: authentication failed", r.stdout), r.stdout
    assert relay.messages() == []


# --- relayed mail --------------------------------------------------------------

@pytest.mark.parametrize("mech", ["LOGIN", "CRAM-MD5", "PLAIN"])
def test_authenticated_relay(relay, mech):
    ehlo = f"gw-{mech.lower()}.example.test"
    marker = f"sasl-relay-{mech}"
    r = swaks(relay, "--tls", "--auth", mech, "--auth-user", USER, "--auth-password", PASSWORD,
              "--header", f"Subject: {marker}", ehlo=ehlo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"<~ +235 2\.7\.0 Authentication successful", r.stdout), r.stdout

    msgs = wait_for(relay.messages, timeout=10, what="the relayed message")
    assert len(msgs) == 1
    m = msgs[0]
    assert (m.mail_from, m.rcpt_to) == (SENDER, REMOTE)
    assert m.helo == ehlo
    assert m.sasl_username == USER          # plain username: no @realm (module docstring)
    assert m.protocol == "ESMTPSA"          # STARTTLS and AUTH
    assert f"Subject: {marker}".encode() in m.data
    # The maillog agrees and names the mechanism actually used.
    login = wait_for(lambda: relay.sasl_login(m.queue_id), timeout=10, what="smtpd's client= line")
    assert login == (mech, USER)


def test_other_account_and_bytes_kept(relay):
    """A second account is told apart, and the message arrives as sent:
    `submitted` strips only what Postfix prepended."""
    body = (b"From: Gateway <gateway@example.test>\r\n"
            b"To: <Someone@Elsewhere.TEST>\r\n"
            b"Subject: bytes\r\n"
            b"Message-ID: <bytes-1@example.test>\r\n"
            b"\r\n"
            b"line one\r\n"
            b".leading dot\r\n"
            b"\tindented line\r\n")
    ctx = ssl.create_default_context(cafile=str(relay.cert_path))
    with smtplib.SMTP(RELAY_HOST, relay.port, local_hostname="[127.0.0.1]", timeout=30) as s:
        s.starttls(context=ctx)
        s.login(OTHER, OTHER_PASSWORD)       # smtplib prefers CRAM-MD5
        s.sendmail(SENDER, ["Someone@Elsewhere.TEST", "second@far.test"], body)

    msgs = wait_for(lambda: len(relay.messages()) == 2 and relay.messages(), timeout=10,
                    what="one copy per recipient")
    assert sorted(m.rcpt_to for m in msgs) == ["Someone@Elsewhere.TEST", "second@far.test"]
    for m in msgs:
        assert m.sasl_username == OTHER
        assert m.helo == "[127.0.0.1]"
        assert m.submitted == body
    assert wait_for(lambda: relay.sasl_login(msgs[0].queue_id)) == ("CRAM-MD5", OTHER)
