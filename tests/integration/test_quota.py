"""Mailbox quotas (issue 15 item 5): `[[mailbox]] quota`, kept as Maildir++
quota (DATA_DIR/mailboxes/NAME/maildirsize), over the real binary.

A flood into a mailbox must stop at its quota, never at a full disk:
- SMTP: a recipient whose mailbox is at its quota gets 452 4.2.2 at RCPT
  (smtplib), others of the same transaction are still accepted;
- a message already queued that would go over it is deferred (4.2.2), stays
  in the queue and is delivered by `hikyaku queue flush` once room is made;
- IMAP (imaplib): GETQUOTAROOT/GETQUOTA report STORAGE in KiB (RFC 9208),
  APPEND over the quota gets NO [OVERQUOTA] (RFC 5530), and an EXPUNGE
  makes room again at once (it records its change in maildirsize);
- Dovecot (quota = maildir, PEERS.md "Dovecot as a reference reader") on a
  copy of the tree reports the same usage from our maildirsize, and what it
  records there for its own APPEND is read back by hikyaku.

Run: /usr/bin/python3 -m pytest tests/integration/test_quota.py
"""
import imaplib
import re
import shutil
import smtplib
import ssl

from conftest import wait_for
from test_maildir_readers import dovecot_on_copy

PASSWORD = "correct horse battery"
LIMIT = 20000

CAROL = f"""
[[mailbox]]
name = "carol"
quota = {LIMIT}

[[address]]
address = "carol@example.test"
deliver = ["mailbox:carol"]
"""


def message(tag, size):
    return (f"From: sender@example.org\r\nTo: carol@example.test\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@example.org>\r\n\r\n").encode() + b"x" * size + b"\r\n"


def recorded(hk):
    """maildirsize as Maildir++ defines it: "<limit>S", then "<bytes> <count>" lines."""
    lines = (hk.maildir("carol") / "maildirsize").read_text().splitlines()
    assert lines[0] == f"{LIMIT}S", lines
    total = [0, 0]
    for line in lines[1:]:
        b, c = line.split()
        total[0] += int(b)
        total[1] += int(c)
    return tuple(total)


def kib(n):
    """RFC 9208 STORAGE units, rounded up (as Dovecot rounds)."""
    return (n + 1023) // 1024


def imap_login(hk):
    imap = imaplib.IMAP4("127.0.0.1", hk.imap_port, timeout=30)
    ctx = ssl.create_default_context(cafile=str(hk.cert_path))
    ctx.check_hostname = False
    imap.starttls(ssl_context=ctx)
    imap.login("carol", PASSWORD)
    return imap


def test_a_full_mailbox_refuses_at_rcpt_defers_queued_mail_and_refuses_append(make_hikyaku):
    hk = make_hikyaku(extra=CAROL)
    hk.set_password("carol", PASSWORD)

    # Three messages of about 6 KB fit in 20,000 bytes.
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
        for i in range(3):
            s.sendmail("sender@example.org", ["carol@example.test"], message(f"fits{i}", 6000))
    # A delivery links the message into new/ first and appends its line to
    # maildirsize just after: wait for both.
    wait_for(lambda: len(hk.messages("carol")) == 3 and recorded(hk)[1] == 3,
             what="three messages in carol's Maildir and in its maildirsize")
    used, count = recorded(hk)
    assert count == 3 and sum(p.stat().st_size for p in hk.messages("carol")) == used, (used, count)

    imap = imap_login(hk)
    try:
        assert "QUOTA" in imap.capabilities and "QUOTA=RES-STORAGE" in imap.capabilities
        typ, data = imap.getquotaroot("INBOX")
        assert typ == "OK", data
        assert data[0] == [b'INBOX ""'], data
        assert data[1] == [f'"" (STORAGE {kib(used)} {kib(LIMIT)})'.encode()], data

        # A fourth is accepted at RCPT (the mailbox is not full yet) but
        # would go over: the delivery is deferred, the message kept.
        with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
            s.sendmail("sender@example.org", ["carol@example.test"], message("waits", 6000))
        line = wait_for(lambda: re.search(r"(\S+): to=<carol@example.test>, target=mailbox:carol, status=deferred"
                                          r" \(4\.2\.2 mailbox carol is over its quota\)", hk.log_text()),
                        what="the over-quota delivery to be deferred")
        queue_id = line.group(1)
        assert queue_id in hk.run_cli("queue", "list").stdout
        assert len(hk.messages("carol")) == 3

        # APPEND over the quota: NO [OVERQUOTA]; nothing stored.
        typ, data = imap.append("INBOX", None, None, message("appended", 6000))
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), (typ, data)
        assert len(hk.messages("carol")) == 3

        # Fill it to the byte (the message has two CRLFs, stored as LF).
        used, _ = recorded(hk)
        fill = b"Subject: fill\r\n\r\n" + b"f" * (LIMIT - used - 15)
        typ, data = imap.append("INBOX", None, None, fill)
        assert typ == "OK", data
        assert recorded(hk)[0] == LIMIT

        # Full: RCPT refused with 452 4.2.2; another recipient still accepted.
        with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
            s.ehlo("client.example.org")
            s.mail("sender@example.org")
            code, text = s.rcpt("carol@example.test")
            assert (code, text[:5]) == (452, b"4.2.2"), (code, text)
            assert s.rcpt("alice@example.test")[0] == 250
            s.rset()

        # An expunge makes room at once; the queued message goes in on a flush.
        imap.select("INBOX")
        imap.store("1:2", "+FLAGS.SILENT", r"(\Deleted)")
        typ, data = imap.expunge()
        assert typ == "OK", data
        assert recorded(hk)[1] == 2
        with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
            s.ehlo("client.example.org")
            s.mail("sender@example.org")
            assert s.rcpt("carol@example.test")[0] == 250
            s.rset()
        r = hk.run_cli("queue", "flush", queue_id)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: f"{queue_id}: removed" in hk.log_text(), what="the deferred message to be delivered")
        assert any(b"Subject: waits" in p.read_bytes() for p in hk.messages("carol"))
        assert recorded(hk)[1] == 3
    finally:
        imap.logout()


DOVECOT_QUOTA = f"""
mail_plugins = $mail_plugins quota
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage={LIMIT}B
}}
"""


def quota_of(imap):
    typ, data = imap.getquotaroot("INBOX")
    assert typ == "OK", data
    m = re.match(rb'"?[^"]*"? \(STORAGE (\d+) (\d+)\)', data[1][0])
    assert m, data
    return int(m.group(1)), int(m.group(2))


def test_dovecot_agrees_on_the_maildirsize_file(make_hikyaku, request):
    hk = make_hikyaku(extra=CAROL)
    hk.set_password("carol", PASSWORD)
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
        for i in range(2):
            s.sendmail("sender@example.org", ["carol@example.test"], message(f"shared{i}", 3000))
    wait_for(lambda: len(hk.messages("carol")) == 2 and recorded(hk)[1] == 2,
             what="two messages in carol's Maildir and in its maildirsize")
    imap = imap_login(hk)
    ours = quota_of(imap)
    assert ours == (kib(recorded(hk)[0]), kib(LIMIT))

    with dovecot_on_copy(request, hk.maildir("carol"), "carol", DOVECOT_QUOTA) as (port, _, copy):
        dove = imaplib.IMAP4("127.0.0.1", port, timeout=30)
        dove.login("carol", "secret")
        assert quota_of(dove) == ours, "Dovecot reads the same usage and limit"
        typ, data = dove.append("INBOX", None, None, message("from-dovecot", 4000))
        assert typ == "OK", data
        dove.logout()

    # Dovecot kept our file (same limit line) and recorded its APPEND in it;
    # hikyaku reads that record as it is.
    text = (copy / "maildirsize").read_text()
    assert text.startswith(f"{LIMIT}S\n"), text
    dove_used = sum(int(line.split()[0]) for line in text.splitlines()[1:])
    added = [p for p in (copy / "new").iterdir()] + [p for p in (copy / "cur").iterdir()]
    assert dove_used == sum(p.stat().st_size for p in added), text
    shutil.copyfile(copy / "maildirsize", hk.maildir("carol") / "maildirsize")
    assert quota_of(imap)[0] == kib(dove_used)
    imap.logout()
