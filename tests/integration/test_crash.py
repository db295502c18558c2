"""Crash safety of the queue (docs/queue.md, STYLE R12).

1,000 messages over 10 concurrent SMTP sessions while the server is killed
with SIGKILL a few times at random moments and restarted. Every message that
got a 250 must end up in the mailbox; duplicates (a delivery repeated because
the crash came between the Maildir link and the queue record, or a 250 lost
on the wire) are counted and printed, never fatal. Everything waits on
conditions (ports, counters, Maildir contents), never on fixed sleeps.
"""
import os
import random
import re
import smtplib
import threading
import time

from conftest import maildir_messages, port_open, wait_for

MESSAGES = int(os.environ.get("HIKYAKU_CRASH_MESSAGES", "1000"))
SESSIONS = 10
KILLS = 3

MSGID_RE = re.compile(rb"^Message-ID: <([^>]+)>", re.MULTILINE | re.IGNORECASE)


def make_message(tag):
    return (f"From: sender@example.org\r\n"
            f"To: alice@example.test\r\n"
            f"Subject: crash {tag}\r\n"
            f"Message-ID: <{tag}@crash.example.org>\r\n"
            f"\r\n"
            f"payload {tag}\r\n" + ("x" * 70 + "\r\n") * 8).encode()


class Sender(threading.Thread):
    """One SMTP client sending its share of messages, reconnecting after a kill.

    A message counts as acknowledged only when sendmail() returned (250 to the
    final dot). A message whose session broke is not retried: its fate is
    unknown, so it is reported separately and not required in the mailbox.
    """

    def __init__(self, server, index, tags, stop):
        super().__init__(daemon=True)
        self.server, self.index, self.tags, self.stop = server, index, tags, stop
        self.acked, self.unacked = [], []
        self.lock = threading.Lock()

    def run(self):
        conn = None
        for tag in self.tags:
            if self.stop.is_set():
                break
            try:
                if conn is None:
                    wait_for(lambda: port_open(self.server.smtp_port), timeout=60,
                             interval=0.01, what="SMTP port after restart")
                    conn = smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30)
                    conn.ehlo("crash-client.example.org")
                conn.sendmail("sender@example.org", ["alice@example.test"], make_message(tag))
                with self.lock:
                    self.acked.append(tag)
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.unacked.append(tag)
                try:
                    if conn is not None:
                        conn.close()
                except OSError:
                    pass
                conn = None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass

    def acked_count(self):
        with self.lock:
            return len(self.acked)


def delivered_ids(maildir):
    """Message-ID → number of copies in the Maildir."""
    counts = {}
    for path in maildir_messages(maildir):
        try:
            head = path.read_bytes()[:2048]
        except FileNotFoundError:
            continue
        m = MSGID_RE.search(head)
        if m:
            key = m.group(1).decode().split("@")[0]
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_sigkill_loses_no_acknowledged_message(hikyaku):
    seed = int(os.environ.get("HIKYAKU_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    tags = [f"m{i:05d}-{seed}" for i in range(MESSAGES)]
    stop = threading.Event()
    senders = [Sender(hikyaku, i, tags[i::SESSIONS], stop) for i in range(SESSIONS)]
    for s in senders:
        s.start()

    def total_acked():
        return sum(s.acked_count() for s in senders)

    # Kill at random points of the run (by acknowledged count, so the moments
    # do not depend on machine speed), with a random extra delay after the
    # threshold so the kill lands at an arbitrary point of an SMTP exchange.
    thresholds = sorted(rng.sample(range(MESSAGES // 10, MESSAGES * 8 // 10), KILLS))
    kills = 0
    for threshold in thresholds:
        wait_for(lambda: total_acked() >= threshold or not any(s.is_alive() for s in senders),
                 timeout=300, what=f"{threshold} acknowledged messages")
        if not any(s.is_alive() for s in senders):
            break
        time.sleep(rng.uniform(0, 0.05))  # jitter the kill point, not a synchronisation
        hikyaku.kill()
        kills += 1
        hikyaku.start()
    for s in senders:
        s.join(timeout=600)
        assert not s.is_alive(), "sender stuck"

    acked = [t for s in senders for t in s.acked]
    unacked = [t for s in senders for t in s.unacked]
    maildir = hikyaku.maildir("alice")

    # Every acknowledged message arrives (the queue drains after the restarts).
    def all_there():
        counts = delivered_ids(maildir)
        return counts if all(t in counts for t in acked) else None

    try:
        counts = wait_for(all_there, timeout=120, interval=0.2, what="every acknowledged message")
    except AssertionError:
        counts = delivered_ids(maildir)
        missing = [t for t in acked if t not in counts]
        raise AssertionError(f"seed {seed}: {len(missing)} acknowledged message(s) lost, "
                             f"e.g. {missing[:5]}\n{hikyaku.log_text()[-3000:]}")

    spool = hikyaku.data_dir / "spool" / "queue"
    wait_for(lambda: not spool.exists() or not any(spool.iterdir()), timeout=60,
             what="the spool to drain")

    duplicated = {t: n for t, n in counts.items() if n > 1}
    extra_copies = sum(n - 1 for n in duplicated.values())
    unacked_delivered = sum(1 for t in unacked if t in counts)
    print(f"\ncrash test (seed {seed}): {len(tags)} sent over {SESSIONS} sessions, {kills} SIGKILLs; "
          f"{len(acked)} acknowledged (all delivered), {len(unacked)} unacknowledged "
          f"({unacked_delivered} of those delivered anyway); "
          f"{len(duplicated)} message(s) duplicated ({extra_copies} extra copies)")
    assert kills >= 1
    assert len(acked) >= MESSAGES // 2, "most messages should get through despite the kills"
