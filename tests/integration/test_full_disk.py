"""A full data directory for real: a small tmpfs as DATA_DIR, filled up.

The address forwards to the "gmail" stand-in (farside.py records every
message it accepts) and keeps a copy in a local mailbox. With the disk full,
a sending MTA (here a retrying smtplib loop) sends the same messages (same
Message-ID) again and again: every try gets `452 4.3.1` (insufficient
system storage: the spool's write fails with ENOSPC) and nothing reaches the
far side, because no forward starts before its message is durable while
commits fail (src/queue/spool.hpp rule 6; "forward at once" would otherwise
send every retry of a refused message). Once space is freed, each message's
next retry is accepted, and the far side and the mailbox get exactly one copy
per Message-ID. After that the fast start is back: a new message's forward
starts before its commit again.

Needs root (mount); the tmpfs is always unmounted, after the server stopped.
"""
import email
import errno
import os
import re
import smtplib
import subprocess

import pytest

from conftest import wait_for
from dns_server import dns_server  # noqa: F401  (pytest fixture)
from farside import farside  # noqa: F401  (pytest fixture)
from forward_client import FORWARD, RCPT, SENDER

TRIES_WHILE_FULL = 4
MESSAGES = 3


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs at tmp_path/data. Request it before make_hikyaku, so it
    is unmounted after the server has stopped."""
    mnt = tmp_path / "data"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def config(dns, fs):
    return f"""
[[mailbox]]
name = "ituki"

[[mailbox]]
name = "ituki-gm"

[[address]]
address = "{RCPT}"
deliver = ["mailbox:ituki", "forward:{FORWARD}"]

[[forward]]
to = "{FORWARD}"
hidden = true
fallback = ["mailbox:ituki-gm"]
{dns.toml()}
{fs.toml('retry = ["1s"]')}
"""


def make_message(tag):
    return (f"From: Someone <{SENDER}>\r\n"
            f"To: Ituki <{RCPT}>\r\n"
            f"Subject: full disk {tag}\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            f"Message-ID: <{tag}@sender.test>\r\n"
            f"\r\n" + f"body of {tag}\r\n" * 20).encode()


def try_send(hk, message):
    """One attempt of the sending MTA: a connection, one transaction."""
    with smtplib.SMTP("127.0.0.1", hk.smtp_port, timeout=30) as s:
        s.ehlo("mta.sender.test")
        s.mail(SENDER)
        code, text = s.rcpt(RCPT)
        assert code == 250, text
        return s.data(message)


def fill(path):
    """Write a file until the file system says ENOSPC; returns the file."""
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    return filler


def message_id(data):
    m = email.message_from_bytes(data)
    return m["Message-ID"]


def copies(messages):
    counts = {}
    for data in messages:
        key = message_id(data)
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_full_disk_refuses_with_452_and_forwards_each_message_once(small_tmpfs, make_hikyaku, dns_server, farside):
    hk = make_hikyaku(data_dir=small_tmpfs, extra=config(dns_server, farside))
    hk.expect_log(r"smtpd: .* not stored: .*No space left on device")  # the full disk, refused with 452
    messages = {f"<full{i}@sender.test>": make_message(f"full{i}") for i in range(MESSAGES)}
    filler = fill(small_tmpfs)

    # The sending MTA retries every message while the disk is full.
    for attempt in range(TRIES_WHILE_FULL):
        for key, message in messages.items():
            code, text = try_send(hk, message)
            assert (code, text.split()[0]) == (452, b"4.3.1"), (attempt, key, code, text)
    assert "No space left on device" in hk.log_text()
    assert not any((small_tmpfs / "spool" / "queue").iterdir())
    assert not any((small_tmpfs / "spool" / "tmp").iterdir())
    assert hk.messages("ituki") == []

    # Space again: the next retry of each message is accepted.
    os.unlink(filler)
    ids = {}
    for key, message in messages.items():
        code, text = try_send(hk, message)
        assert code == 250, text
        ids[key] = re.search(rb"queued as (\w+)", text).group(1).decode()
    wait_for(lambda: set(copies(m.data for m in farside.gmail.received())) >= set(messages), timeout=30,
             what="every message at the far side")
    wait_for(lambda: len(hk.messages("ituki")) >= MESSAGES, timeout=30, what="every message in ituki")
    queue = small_tmpfs / "spool" / "queue"
    wait_for(lambda: not any(queue.iterdir()), timeout=30, what="an empty queue")

    at_far_side = copies(m.data for m in farside.gmail.received())
    in_mailbox = copies(p.read_bytes() for p in hk.messages("ituki"))
    # Every try while the disk was full reached the far side without rule 6.
    assert at_far_side == {key: 1 for key in messages}, at_far_side
    assert in_mailbox == {key: 1 for key in messages}, in_mailbox
    assert hk.messages("ituki-gm") == []
    # The first retry after the failures still waited for its commit.
    first = ids[next(iter(messages))]
    assert f"{first}: forwards wait for the commit" in hk.log_text()

    # A commit succeeded: the next message's forward starts before its commit.
    code, text = try_send(hk, make_message("after"))
    assert code == 250, text
    after = re.search(rb"queued as (\w+)", text).group(1).decode()
    wait_for(lambda: "<after@sender.test>" in copies(m.data for m in farside.gmail.received()), timeout=30,
             what="the next message at the far side")
    assert f"{after}: forwards wait for the commit" not in hk.log_text()
    hk.stop()
