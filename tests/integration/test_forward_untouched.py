"""A forwarded copy is marked and otherwise untouched (issue 17 item 3).

Google's forwarding guidance (2026-03) asks forwarders to add X-Forwarded-To /
X-Forwarded-For and to leave Subject, MIME boundaries, To/Cc/Date/Message-ID
and the body encoding as they were. The real binary forwards three messages —
plain, multipart/mixed with a base64 attachment, and 8-bit (BODY=8BITMIME,
UTF-8 body) — for a domain that seals ARC (hk.test, with a DKIM key) to an
aiosmtpd far side (farside.py, 127.0.0.2, MX of gmail.test in dnsmasq).

What reaches the far side must be: some added fields, all of them on top,
each named in ADDED, then every header field of the original byte for byte
and in its order, then the body byte for byte. sender.test publishes no
DMARC policy, so the From rewrite (forward_transform.hpp) never applies here.
"""
import base64
import random
import smtplib
import subprocess

import pytest

from conftest import wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside  # noqa: F401  (pytest fixture)

RCPT = "owner@hk.test"
FORWARD = "owner-private@gmail.test"
SENDER = "someone@sender.test"

# The only fields a forwarded copy may gain (in any number, except as noted
# in test_forwarded_copy_is_untouched): ours, never a change of one the
# author wrote.
ADDED = {"received", "x-forwarded-to", "x-forwarded-for", "authentication-results", "arc-seal",
         "arc-message-signature", "arc-authentication-results", "dkim-signature"}

HEAD = (f"From: Someone <{SENDER}>\r\n"
        f"To: Owner <{RCPT}>,\r\n  second@hk.test\r\n"
        f"Cc: =?UTF-8?B?5rC05Y+W?= <cc@sender.test>, \"Third, Person\" <third@sender.test>\r\n"
        "Subject: =?UTF-8?Q?Quarterly_figures_=E2=80=94_draft?=  (two  spaces)\r\n"
        "Date: Tue, 14 Apr 2026 09:00:00 +0900\r\n"
        "Message-ID: <untouched.{kind}@sender.test>\r\n")

PLAIN = (HEAD + "\r\n"
         "Hello,\r\n"
         ". a line that starts with a dot\r\n"
         "..two dots\r\n"
         "trailing spaces   \r\n"
         "\ttab first\r\n"
         "\r\n"
         "\r\n"
         "last line\r\n").format(kind="plain").encode()


def multipart():
    rng = random.Random(17)
    attachment = bytes(rng.randrange(256) for _ in range(3000))
    b64 = base64.encodebytes(attachment).replace(b"\n", b"\r\n")  # 76-column lines
    boundary = "=_hk boundary'()+_,-./:=?"
    return ((HEAD + "MIME-Version: 1.0\r\n"
             f"Content-Type: multipart/mixed;\r\n\tboundary=\"{boundary}\"\r\n"
             "\r\n"
             "This is a multi-part message in MIME format.\r\n"
             f"--{boundary}\r\n"
             "Content-Type: text/plain; charset=UTF-8\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n"
             "\r\n"
             "Figures attached =E2=80=94 see below.=\r\n"
             " Soft break above.\r\n"
             f"--{boundary}\r\n"
             "Content-Type: application/octet-stream; name=\"figures.bin\"\r\n"
             "Content-Transfer-Encoding: base64\r\n"
             "Content-Disposition: attachment; filename=\"figures.bin\"\r\n"
             "\r\n").format(kind="multipart").encode()
            + b64
            + f"--{boundary}--\r\n"
              "epilogue\r\n".encode())


EIGHT_BIT = (HEAD + "MIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=UTF-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n"
             "\r\n"
             "こんにちは、飛脚です。\r\n"
             "Grüße aus Köln — naïve café.\r\n").format(kind="8bit").encode("utf-8")

MESSAGES = {"plain": (PLAIN, []), "multipart": (multipart(), []), "8bit": (EIGHT_BIT, ["BODY=8BITMIME"])}


def rsa_key(path):
    """An RSA-2048 PKCS#8 key at `path`; returns the DKIM p= value."""
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(path)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


def split(raw):
    """(header fields, body): each field its raw bytes with folding and CRLF."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, "no end of header section"
    fields = []
    for line in (head + b"\r\n").split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields, body


def name_of(field):
    return field.split(b":", 1)[0].decode().strip().lower()


@pytest.fixture
def hk(tmp_path, dns_server, farside, make_hikyaku):  # noqa: F811
    keys = tmp_path / "keys"
    keys.mkdir()
    p = rsa_key(keys / "hk.pem")
    dns_server.add_txt("hk1._domainkey.hk.test", "v=DKIM1; k=rsa; p=" + p)
    return make_hikyaku(extra=f"""
{dns_server.toml()}
{farside.toml()}

[[domain]]
name = "hk.test"
dkim_selector = "hk1"
dkim_key = "{keys / 'hk.pem'}"

[[mailbox]]
name = "owner"

[[mailbox]]
name = "owner-fb"

[[address]]
address = "{RCPT}"
deliver = ["mailbox:owner", "forward:{FORWARD}"]

[[forward]]
to = "{FORWARD}"
hidden = true
fallback = ["mailbox:owner-fb"]
""")


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_forwarded_copy_is_untouched(hk, farside, kind):  # noqa: F811
    original, options = MESSAGES[kind]
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=10) as s:
        s.ehlo("mta.sender.test")
        assert s.sendmail(SENDER, [RCPT], original, mail_options=options) == {}
    [got] = farside.gmail.wait_messages(1)
    assert got.rcpt_tos == [FORWARD]
    if options:
        assert "BODY=8BITMIME" in got.mail_options, got.mail_options

    want_fields, want_body = split(original)
    fields, body = split(got.data)
    # The body, byte for byte (MIME boundaries, base64 lines, 8-bit octets,
    # dots, trailing white space, empty lines).
    assert body == want_body
    # Every original field unchanged and in order, after the added ones.
    assert len(fields) > len(want_fields)
    added, kept = fields[:len(fields) - len(want_fields)], fields[len(fields) - len(want_fields):]
    assert kept == want_fields
    for name in ("subject", "to", "cc", "date", "message-id"):
        assert [f for f in fields if name_of(f) == name] == [f for f in want_fields if name_of(f) == name], name
    if kind == "multipart":
        assert [f for f in fields if name_of(f) == "content-type"] == \
               [f for f in want_fields if name_of(f) == "content-type"]
    # Only fields of ours were added: one ARC set on top (RFC 8617 §4.1:
    # hk.test has a key; arc = true is the default), one Received (ours),
    # one of each X-Forwarded-* right after it, our Authentication-Results.
    names = [name_of(f) for f in added]
    assert set(names) <= ADDED, names
    assert names.count("received") == 1, names
    received = names.index("received")
    assert names[:received] == ["arc-seal", "arc-message-signature", "arc-authentication-results"], names
    assert names[received + 1:received + 3] == ["x-forwarded-to", "x-forwarded-for"], names
    assert b"(hikyaku)" in added[received]
    assert added.count(f"X-Forwarded-To: {FORWARD}\r\n".encode()) == 1
    assert added.count(f"X-Forwarded-For: {RCPT}\r\n".encode()) == 1
    assert names.count("x-forwarded-to") == 1 and names.count("x-forwarded-for") == 1
    for arc in ("arc-seal", "arc-message-signature", "arc-authentication-results"):
        assert names.count(arc) == 1, (arc, names)

    # The local copy is the original too, and never names the forward.
    [local] = wait_for(lambda: hk.messages("owner"), what="the local copy")
    assert FORWARD.encode() not in local.read_bytes()
    assert b"X-Forwarded-To" not in local.read_bytes()
