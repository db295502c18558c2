"""Disk failures on the way to 250 and on the way into a mailbox.

The real server runs with the fault injector of tests/faultinject preloaded
(faultinject.py): while faults are on, chosen calls (write, fdatasync, fsync,
rename, link, openat) fail with EIO or ENOSPC for paths under the spool or
under one Maildir.

The spool (DESIGN.md: 250 only when durable): the client gets
`451 4.3.0` (EIO) or `452 4.3.1` (ENOSPC, RFC 3463 X.3.1 "mail system full";
RFC 5321 §4.3.2 allows 452 after DATA); nothing of the message is left in
spool/tmp or spool/queue nor in any Maildir; once the faults stop, the
client's retry is accepted and delivered exactly as sent, once.

The Maildir (docs/queue.md): a failing write, flush, link or directory
flush withdraws the message, so it never shows in new/ or cur/; the delivery
is deferred and retried, and after the faults stop it arrives once.

Everything waits on conditions: SMTP replies, the server's log (one line per
injected failure, one per delivery attempt), files appearing.
"""
import re
import smtplib

import pytest

from conftest import wait_for
from faultinject import faults, faultinject_lib  # noqa: F401  (pytest fixtures)

# A failed Maildir delivery is retried 2 s later: the checks made right after
# a deferral (nothing in new/) finish long before the next attempt.
RETRY = '\n[delivery]\nretry = ["2s"]\n'


def make_message(tag):
    return (f"From: sender@example.org\r\n"
            f"To: alice@example.test\r\n"
            f"Subject: faults {tag}\r\n"
            f"Message-ID: <{tag}@faults.example.org>\r\n"
            f"\r\n"
            f"payload {tag}\r\n" + ("y" * 70 + "\r\n") * 40).encode()


def send(conn, message):
    """One transaction on an open connection: the reply to the final dot."""
    code, text = conn.mail("sender@example.org")
    assert code == 250, text
    code, text = conn.rcpt("alice@example.test")
    assert code == 250, text
    return conn.data(message)


def files(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def nothing_anywhere(hk):
    """No trace of a refused message: empty spool, empty Maildirs (tmp/ too)."""
    leftovers = {}
    for sub in ("tmp", "queue"):
        leftovers[f"spool/{sub}"] = files(hk.data_dir / "spool" / sub)
    for box in ("alice", "bob"):
        for sub in ("tmp", "new", "cur"):
            leftovers[f"{box}/{sub}"] = files(hk.maildir(box) / sub)
    return {k: v for k, v in leftovers.items() if v}


def stored_as_sent(path, message):
    """The Maildir file ends with the message exactly as sent (LF endings:
    the Maildir convention); the server only prepends header fields."""
    return path.read_bytes().endswith(message.replace(b"\r\n", b"\n"))


def wait_delivered_once(hk, message):
    got = wait_for(lambda: hk.messages("alice"), what="the message in alice's Maildir")
    queue = hk.data_dir / "spool" / "queue"
    wait_for(lambda: not files(queue), what="an empty queue")
    got = hk.messages("alice")
    assert len(got) == 1, [p.name for p in got]
    assert stored_as_sent(got[0], message)
    assert not files(hk.maildir("alice") / "tmp")


@pytest.mark.parametrize("call,errno,reply", [
    ("write", "ENOSPC", (452, "4.3.1")),
    ("openat", "ENOSPC", (452, "4.3.1")),
    ("fdatasync", "ENOSPC", (452, "4.3.1")),
    ("write", "EIO", (451, "4.3.0")),
    ("fdatasync", "EIO", (451, "4.3.0")),
    ("rename", "EIO", (451, "4.3.0")),
    ("fsync", "EIO", (451, "4.3.0")),  # the spool/queue directory, after the rename
])
def test_spool_failure_refuses_then_retry_is_delivered_once(make_hikyaku, faults, tmp_path, call, errno, reply):
    data = tmp_path / "data"
    hk = make_hikyaku(env=faults.env(), data_dir=data, extra=RETRY)
    hk.expect_log(r"smtpd: .* not stored: ")  # the injected fault, refused with 451/452
    message = make_message(f"spool-{call}-{errno}")
    faults.on(call, errno, prefix=data / "spool")
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as conn:
        conn.ehlo("faults.example.org")
        for _ in range(2):  # the client retries while the disk still fails
            code, text = send(conn, message)
            assert (code, text.decode().split()[0]) == reply, (code, text)
        assert faults.injected(hk, call) >= 2
        assert "not stored" in hk.log_text()
        assert nothing_anywhere(hk) == {}
        faults.off()
        code, text = send(conn, message)
        assert code == 250, text
        queue_id = re.search(rb"queued as (\w+)", text).group(1).decode()
    wait_delivered_once(hk, message)
    assert re.search(rf"{queue_id}: to=<alice@example.test>, target=mailbox:alice, status=delivered",
                     hk.log_text())


@pytest.mark.parametrize("call,errno,status", [
    ("fdatasync", "EIO", "4.3.0"),     # the flush of the file in tmp/: never linked
    ("fdatasync", "ENOSPC", "4.3.1"),
    ("write", "ENOSPC", "4.3.1"),
    ("link", "EIO", "4.3.0"),
    ("fsync", "EIO", "4.3.0"),         # the flush of new/: linked, then withdrawn
])
def test_maildir_failure_withdraws_and_retries(make_hikyaku, faults, tmp_path, call, errno, status):
    data = tmp_path / "data"
    hk = make_hikyaku(env=faults.env(), data_dir=data, extra=RETRY)
    message = make_message(f"maildir-{call}-{errno}")
    faults.on(call, errno, prefix=hk.maildir("alice"))
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as conn:
        conn.ehlo("faults.example.org")
        code, text = send(conn, message)
        assert code == 250, text  # the spool is fine
        queue_id = re.search(rb"queued as (\w+)", text).group(1).decode()
    deferred = re.compile(rf"{queue_id}: to=<alice@example.test>, target=mailbox:alice, "
                          rf"status=deferred \({re.escape(status)} ")
    # Two failed attempts: the retry really happens, and fails the same way.
    wait_for(lambda: len(deferred.findall(hk.log_text())) >= 2, timeout=30,
             what="two deferred deliveries to alice")
    assert faults.injected(hk, call) >= 2
    for sub in ("tmp", "new", "cur"):
        assert files(hk.maildir("alice") / sub) == [], f"alice/{sub}"
    assert files(data / "spool" / "queue") == [queue_id], "the queue keeps the message"
    faults.off()
    wait_delivered_once(hk, message)
