"""End to end (issue 4): the real hikyaku between a sender on loopback and a
Gmail-like judge (gmail_judge.py) with dnsmasq serving every zone.

Zones: author.test (the author: p=reject DMARC, SPF "ip4:127.0.0.5 -all",
DKIM key), hk.test (our forwarding domain: DKIM key, SPF "ip4:127.0.0.1
-all", p=reject), gmail.test MX → 127.0.0.2 (the judge). The sender
connects to hikyaku from 127.0.0.5 (allowed by author.test's SPF) or
127.0.0.6 (not allowed); hikyaku forwards from 127.0.0.1.

Run: HIKYAKU_BIN=build-authw/src/app/hikyaku /usr/bin/python3 -m pytest -q tests/integration/test_auth_e2e.py
"""
import email
import email.policy
import email.utils
import smtplib
import subprocess

import dkim
import pytest

from conftest import wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import free_shared_port
from gmail_judge import GmailJudge

MESSAGE = (b"From: Ann Author <ann@author.test>\r\n"
           b"To: owner@hk.test\r\n"
           b"Subject: quarterly figures\r\n"
           b"Date: Tue, 14 Apr 2026 09:00:00 +0000\r\n"
           b"Message-ID: <q1@author.test>\r\n"
           b"\r\n"
           b"Hello,\r\nthe figures are attached in spirit.\r\n")


def rsa_key(path):
    """An RSA-2048 PKCS#8 key at `path`; returns the DKIM p= value."""
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(path)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    import base64
    return base64.b64encode(der).decode()


@pytest.fixture
def world(tmp_path, dns_server, make_hikyaku):  # noqa: F811
    keys = tmp_path / "keys"
    keys.mkdir()
    author_p = rsa_key(keys / "author.pem")
    ours_p = rsa_key(keys / "hk.pem")
    with dns_server.batch():
        dns_server.add_txt("author.test", "v=spf1 ip4:127.0.0.5 -all")
        dns_server.add_txt("_dmarc.author.test", "v=DMARC1; p=reject")
        dns_server.add_txt("sel._domainkey.author.test", "v=DKIM1; k=rsa; p=" + author_p)
        dns_server.add_txt("hk.test", "v=spf1 ip4:127.0.0.1 -all")
        dns_server.add_txt("_dmarc.hk.test", "v=DMARC1; p=reject")
        dns_server.add_txt("hk1._domainkey.hk.test", "v=DKIM1; k=rsa; p=" + ours_p)
    (keys / "srs.secret").write_text("e2e-srs-secret\n")

    port = free_shared_port(["127.0.0.2"])
    judge = GmailJudge("127.0.0.2", port, dns_server.resolver(), trusted_sealers=["hk.test"]).start()
    extra = f"""
{dns_server.toml()}
[delivery]
smtp_port = {port}

[srs]
domain = "hk.test"
secret_file = "{keys / 'srs.secret'}"

[[domain]]
name = "hk.test"
dkim_selector = "hk1"
dkim_key = "{keys / 'hk.pem'}"

[[mailbox]]
name = "owner-fb"

[[address]]
address = "owner@hk.test"
deliver = ["forward:owner@gmail.test"]

[[forward]]
to = "owner@gmail.test"
hidden = true
fallback = ["mailbox:owner-fb"]
"""
    server = make_hikyaku(extra=extra, message_size="10M")  # the large-message tests send 3 MiB

    class World:
        pass
    w = World()
    w.server, w.judge, w.dns, w.author_key = server, judge, dns_server, (keys / "author.pem").read_bytes()
    yield w
    judge.stop()


def author_signed(w, message=MESSAGE):
    sig = dkim.sign(message, b"sel", b"author.test", w.author_key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + message


def send(w, message, source_ip, mail_from="ann@author.test", rcpt="owner@hk.test"):
    with smtplib.SMTP("127.0.0.1", w.server.smtp_port, timeout=10, source_address=(source_ip, 0)) as s:
        s.ehlo("mta.author.test")
        return s.sendmail(mail_from, [rcpt], message)


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def test_signed_mail_forwarded_with_srs_and_arc_is_accepted(world):
    """(1) p=reject author, valid DKIM: SRS envelope, a valid ARC set, accepted."""
    signed = author_signed(world)
    send(world, signed, "127.0.0.5")
    got = world.judge.wait_attempts(1)[0]
    assert got.reply.startswith("250"), got.verdict
    v = got.verdict
    assert got.mail_from.startswith("SRS0=") and got.mail_from.endswith("@hk.test")
    assert "owner@gmail.test" not in got.mail_from
    assert v.spf == "pass" and v.spf_domain == "hk.test"   # SRS: SPF of the forwarder
    assert ("author.test", "pass") in v.dkim               # the body is unchanged
    assert v.dmarc == "pass" and v.from_domain == "author.test"
    assert v.arc == "pass" and v.arc_sealer == "hk.test"
    msg = parse(got.data)
    assert msg["From"] == "Ann Author <ann@author.test>"   # never rewritten
    aar = msg["ARC-Authentication-Results"]
    assert "i=1" in aar and "mx.example.test" in aar
    assert "dkim=pass header.d=author.test" in aar and "dmarc=pass" in aar
    assert "spf=pass smtp.mailfrom=ann@author.test" in aar
    # Our inbound Authentication-Results travels with it, after our Received.
    assert "mx.example.test; spf=pass" in msg["Authentication-Results"]


def large_message(subject=b"quarterly figures, in full"):
    """A 3 MiB message (past the 1 MiB spill threshold: its body is kept in
    a file from receipt to delivery), with lines that need dot-stuffing."""
    lines = b"".join(b".line %d of the figures\r\n" % i for i in range(120000))
    return MESSAGE.replace(b"quarterly figures", subject).replace(b"Hello,\r\n", b"Hello,\r\n" + lines)


def test_large_signed_mail_is_verified_sealed_and_forwarded_byte_exact(world):
    """Issue 12 item 6: a message whose body never sits in memory is checked
    (the author's DKIM body hash from the file), sealed (our ARC set's body
    hash from the file), and forwarded from the file: the judge verifies both
    and the body arrives unchanged."""
    signed = author_signed(world, large_message())
    assert len(signed) > 3 * 1024 * 1024
    send(world, signed, "127.0.0.5")
    got = world.judge.wait_attempts(1, timeout=60)[0]
    assert got.reply.startswith("250"), got.verdict
    v = got.verdict
    assert ("author.test", "pass") in v.dkim
    assert v.dmarc == "pass" and v.arc == "pass" and v.arc_sealer == "hk.test"
    assert "dkim=pass header.d=author.test" in parse(got.data)["ARC-Authentication-Results"]
    body = signed.split(b"\r\n\r\n", 1)[1]
    assert got.data.endswith(b"\r\n\r\n" + body)


def test_large_mail_with_a_broken_signature_is_diverted_whole(world):
    """The same with the body altered on the way in: our inbound check sees
    dkim=fail from the file's body hash, the judge refuses, and the fallback
    mailbox gets the whole message."""
    signed = author_signed(world, large_message()).replace(b"line 99999 of", b"LINE 99999 of")
    send(world, signed, "127.0.0.6")
    got = world.judge.wait_attempts(1, timeout=60)[0]
    assert got.reply.startswith("550 5.7.26"), got.verdict
    files = wait_for(lambda: world.server.messages("owner-fb"), timeout=60, what="diverted copy in owner-fb")
    data = files[0].read_bytes()
    assert b"dkim=fail" in data and b"dmarc=fail" in data
    body = signed.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
    assert data.endswith(b"\n\n" + body), "the Maildir copy holds every byte (LF lines)"


def test_broken_signature_refused_by_judge_and_diverted(world):
    """(2) The body altered on the way in (signature broken), sent from an IP
    the author's SPF does not list: DMARC fails here (recorded, delivered),
    the judge refuses with 550 5.7.26 and the message lands in the fallback."""
    signed = author_signed(world).replace(b"in spirit", b"in SPIRIT")
    send(world, signed, "127.0.0.6")
    got = world.judge.wait_attempts(1)[0]
    assert got.reply.startswith("550 5.7.26"), got.verdict
    assert got.verdict.dmarc == "fail" and got.verdict.arc == "pass"
    assert got.verdict.arc_aar_dmarc == "fail"   # our seal says what we saw: no override
    files = wait_for(lambda: world.server.messages("owner-fb"), what="diverted copy in owner-fb")
    data = files[0].read_bytes()
    assert b"X-Hikyaku-Diverted:" in data and b"5.7.26" in data
    assert b"dmarc=fail" in data


def test_plain_forward_without_srs_would_fail_spf(world):
    """(3) The same message judged as a plain forward would arrive: original
    MAIL FROM, from our IP 127.0.0.1 → SPF fail; with our SRS sender → pass."""
    signed = author_signed(world)
    plain = world.judge.judge.judge(signed, "127.0.0.1", "ann@author.test", "mx.example.test")
    assert plain.spf == "fail"
    send(world, signed, "127.0.0.5")
    got = world.judge.wait_attempts(1)[0]
    assert got.verdict.spf == "pass" and got.mail_from.startswith("SRS0=")


def test_spf_only_mail_gets_rewritten_from_and_reply_to(world):
    """(4) p=reject author with SPF only (no DKIM): From rewritten to our
    domain (signed by us, aligned), accepted; Reply-To reaches the author."""
    send(world, MESSAGE, "127.0.0.5")
    got = world.judge.wait_attempts(1)[0]
    assert got.reply.startswith("250"), got.verdict
    v = got.verdict
    assert v.from_domain == "hk.test" and v.dmarc == "pass"
    assert ("hk.test", "pass") in v.dkim
    msg = parse(got.data)
    name, addr = email.utils.parseaddr(msg["From"])
    assert addr == "noreply@hk.test" and name == "Ann Author via hk.test"
    assert msg["X-Original-From"] == "Ann Author <ann@author.test>"
    # The owner hits "reply": the reply goes to the original author.
    reply_to = email.utils.getaddresses([msg["Reply-To"]])
    assert [a for _, a in reply_to] == ["ann@author.test"]
    # The hidden address is in no header we add but X-Forwarded-To (issue 17:
    # this copy goes to that address only), and not in the rewritten From.
    assert got.data.count(b"owner@gmail.test") == 1
    assert b"\r\nX-Forwarded-To: owner@gmail.test\r\n" in got.data


@pytest.mark.parametrize("large", [False, True], ids=["in-memory", "body-in-file"])
def test_long_lines_are_broken_before_we_sign(world, large):
    """A line over 998 octets is broken on the wire (RFC 5321 §4.5.3.1.6).
    Our DKIM signature (the From rewrite of SPF-only mail) and our ARC set
    are made over the broken text, so the judge verifies both; before, they
    were made over the long lines and failed at the far side."""
    long_field = b"X-Long: " + b"h" * 1500 + b"\r\n"
    long_body = b"a" * 2500 + b"\r\n." + b"b" * 997 + b"\r\n"
    message = large_message() if large else MESSAGE
    message = message.replace(b"Date:", long_field + b"Date:").replace(b"Hello,\r\n", b"Hello,\r\n" + long_body)
    send(world, message, "127.0.0.5")
    got = world.judge.wait_attempts(1, timeout=60)[0]
    assert got.reply.startswith("250"), got.verdict
    v = got.verdict
    assert v.from_domain == "hk.test" and ("hk.test", "pass") in v.dkim and v.dmarc == "pass", v
    assert v.arc == "pass" and v.arc_sealer == "hk.test", v
    assert b"\r\n" + b"a" * 998 + b"\r\n " + b"a" * 997 + b"\r\n " + b"a" * 505 + b"\r\n" in got.data


def test_a_quoted_mail_from_cannot_add_results_to_ours(world):
    """A sender whose SPF passes puts '"@author.test x;dmarc=pass x"' in its
    MAIL FROM local part, for a From: at a p=reject domain it may not use.
    Our Authentication-Results must still say dmarc=fail when the forwarder
    reads it back: no From rewrite, no signature of ours, no ARC seal that
    vouches for a pass, and the judge refuses it as it refuses the plain
    spoof. (The quoted string once ended at its escaped quote, and the
    "dmarc=pass" in it was read as a result of ours.)"""
    world.dns.add_txt("evil.test", "v=spf1 ip4:127.0.0.6 -all")
    spoof = (b"From: The CEO <ceo@author.test>\r\nTo: owner@hk.test\r\nSubject: wire the money\r\n"
             b"Date: Tue, 14 Apr 2026 09:00:00 +0000\r\nMessage-ID: <spoof1@evil.test>\r\n\r\nToday.\r\n")
    with smtplib.SMTP("127.0.0.1", world.server.smtp_port, timeout=10, source_address=("127.0.0.6", 0)) as s:
        s.ehlo("mta.evil.test")
        assert s.docmd('MAIL FROM:<"@author.test x;dmarc=pass x"@evil.test>')[0] == 250
        assert s.rcpt("owner@hk.test")[0] == 250
        assert s.data(spoof)[0] == 250
    got = world.judge.wait_attempts(1)[0]
    assert got.reply.startswith("550"), got.verdict
    assert got.verdict.from_domain == "author.test" and got.verdict.dkim == []
    assert got.verdict.arc_aar_dmarc != "pass", got.verdict
    ours = [v for v in parse(got.data).get_all("Authentication-Results") if v.startswith("mx.example.test")]
    assert len(ours) == 1 and "dmarc=fail" in ours[0] and "dmarc=pass" not in ours[0], ours
    assert "smtp.mailfrom=evil.test" in ours[0], ours


def test_srs_bounces_hidden_to_fallback_invalid_refused(world):
    """SRS: a bounce to the SRS address of a hidden forward lands in the
    owner's fallback mailbox (never the sender); a forged one gets 550 at RCPT."""
    send(world, author_signed(world), "127.0.0.5")
    srs_address = world.judge.wait_attempts(1)[0].mail_from
    bounce = (b"From: MAILER-DAEMON@mx.gmail.test\r\nTo: " + srs_address.encode() +
              b"\r\nSubject: Undelivered Mail\r\n\r\nThe mail to owner@gmail.test bounced.\r\n")
    with smtplib.SMTP("127.0.0.1", world.server.smtp_port, timeout=10) as s:
        s.ehlo("mx.gmail.test")
        s.sendmail("", [srs_address], bounce)
        s.mail("")
        code, text = s.rcpt("SRS0=AAAA=AA=author.test=ann@hk.test")
        assert code == 550 and b"5.1.1" in text
    files = wait_for(lambda: world.server.messages("owner-fb"), what="bounce in owner-fb")
    assert b"Undelivered Mail" in files[0].read_bytes()
    assert len(world.judge.attempts) == 1  # nothing went back out
